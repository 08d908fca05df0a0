"""Objectives a genome is scored on.

An objective turns a generation of trained heads into one number per
candidate. The search minimises ``-value`` for objectives where higher is
better and ``value`` otherwise, so objectives plug in without touching the
search. All objective values of a genome are computed together and cached
together.
"""

import numpy as np

__all__ = [
    "Objective",
    "Accuracy",
    "Complexity",
    "SearchData",
    "register_objective",
    "make_objectives",
    "OBJECTIVES",
]


class SearchData:
    """What objectives may read: the cached features of a fit.

    Attributes
    ----------
    X_train, y_train : ndarray
        Backbone features and encoded labels the heads are trained on.
    X_val, y_val : ndarray
        Held-out validation fold where fitness is measured.
    n_classes : int
    w_train, w_val : ndarray or None
        Sample weights of the two folds (None: every sample counts once).
        The training loss and the validation accuracy are weighted.
    extras : dict
        Data an objective prepared for itself (e.g. out-of-distribution
        features), filled by :meth:`Objective.prepare`.
    """

    def __init__(self, X_train, y_train, X_val, y_val, n_classes, w_train=None,
                 w_val=None):
        self.X_train = X_train
        self.y_train = y_train
        self.X_val = X_val
        self.y_val = y_val
        self.n_classes = n_classes
        self.w_train = w_train
        self.w_val = w_val
        self.extras = {}


class Objective:
    """Base class of an objective.

    Subclasses set :attr:`name` and :attr:`greater_is_better` and implement
    :meth:`evaluate`. :meth:`prepare` runs once per fit, before the search,
    for data shared by every evaluation.
    """

    name = None
    greater_is_better = True

    def prepare(self, data, estimator):
        """Precompute what every evaluation needs (once per fit)."""

    def evaluate(self, heads, data):
        """Score every candidate of a generation.

        Parameters
        ----------
        heads : TrainedHeads
        data : SearchData

        Returns
        -------
        values : ndarray of shape (n_candidates,)
        """
        raise NotImplementedError

    def to_minimize(self, values):
        values = np.asarray(values, dtype=float)
        return -values if self.greater_is_better else values


class Accuracy(Objective):
    """Accuracy of the head on the validation fold (higher is better).

    Weighted by the validation samples' weights when the fit has any.
    """

    name = "accuracy"
    greater_is_better = True

    def evaluate(self, heads, data):
        pred = heads.logits(data.X_val).argmax(dim=-1).numpy()
        correct = pred == np.asarray(data.y_val)[None, :]
        if data.w_val is None:
            return correct.mean(axis=1)
        w = np.asarray(data.w_val, dtype=np.float64)
        return correct @ w / w.sum()


class Complexity(Objective):
    """Fraction of genes switched on (lower is better)."""

    name = "complexity"
    greater_is_better = False

    def evaluate(self, heads, data):
        return np.asarray(heads.genomes, dtype=bool).mean(axis=1)


OBJECTIVES = {"accuracy": Accuracy, "complexity": Complexity}


def register_objective(name, factory):
    """Make ``name`` usable in ``objectives=``.

    Parameters
    ----------
    name : str
    factory : callable
        Called with the estimator, returns an :class:`Objective`.
    """
    OBJECTIVES[name] = factory


def make_objectives(names, estimator):
    """Instantiate the objectives named in ``names`` for ``estimator``."""
    out = []
    for name in names:
        factory = OBJECTIVES[name]
        obj = factory(estimator) if not isinstance(factory, type) else factory()
        out.append(obj)
    return out


def _robustness_objective(estimator):
    # Imported lazily: _ood and _adversarial build on this module.
    from ._ood import make_robustness_objective

    return make_robustness_objective(estimator)


# "robustness": ODIN OoD-detection AUROC, or accuracy under FGSM/PGD attack,
# as chosen by the estimator's ``robustness`` parameter (see _ood.py).
register_objective("robustness", _robustness_objective)
