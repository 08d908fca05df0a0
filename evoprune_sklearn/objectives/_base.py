"""The objective base class and the context it is prepared with.

An objective turns a generation of trained heads into one number per
candidate. The search minimises ``-value`` for objectives where higher is
better and ``value`` otherwise, so objectives plug in without touching the
search. All objective values of a genome are computed together and cached
together.

An objective is configured by its own parameters (``get_params`` /
``set_params``, as any scikit-learn estimator), so ``clone`` and
``GridSearchCV`` handle it. It never reads the estimator: :meth:`prepare`
receives an :class:`ObjectiveContext` holding every input of the fit it may
need.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from .._head import MaskedHead

__all__ = ["Objective", "ObjectiveContext", "fitted_copy", "frozen_heads"]


@dataclass
class ObjectiveContext:
    """What an objective may read: the inputs of one fit.

    Built by :meth:`EvoPruneClassifier.fit` after feature extraction and
    handed to :meth:`Objective.prepare`; the search then passes
    :meth:`without_raw_inputs` to :meth:`Objective.evaluate` (and to parallel
    workers), so that images, OoD data and the backbone are not copied to
    every worker. Each parameter is kept as the attribute of the same name.

    Parameters
    ----------
    X_train, y_train : ndarray
        Backbone features and encoded labels the heads are trained on.
    X_val, y_val : ndarray
        Held-out validation fold where fitness is measured.
    n_classes : int
        Number of classes.
    w_train, w_val : ndarray or None, default=None
        Sample weights of the two folds (None: every sample counts once).
    train_index, val_index : ndarray of int or None, default=None
        Rows of ``images`` in the two folds.
    images : Images or None, default=None
        The images given to ``fit``, with their layout
        (:class:`~evoprune_sklearn._images.Images`: converted to tensors at
        any size with ``to_tensor``/``batches``), or None for feature input
        (``backbone=None``).
    X_ood : ndarray, Images or None, default=None
        Validated out-of-distribution samples given to ``fit``: a feature
        matrix for feature input, images otherwise.
    backbone : Backbone or None, default=None
        The frozen feature extractor (None for feature input).
    seed : int, default=0
        Seed for the objectives' own random draws (subsets, synthetic OoD
        samples, random starts), drawn from the estimator's
        ``random_state``.
    config : TrainingConfig or None, default=None
        How heads are trained (solver, engine, torch device), for objectives
        that train a reference head and for the search.
    n_evaluations : int or None, default=None
        The search budget (for time estimates).
    verbose : int, default=0
        The estimator's verbosity.
    folds : tuple of ObjectiveContext or None, default=None
        With k-fold fitness (the estimator's ``n_folds=k``), the folds 2 to k,
        each a context without raw inputs whose ``X_train``, ``y_train``,
        ``w_train``, ``train_index`` and ``X_val``, ``y_val``, ``w_val``,
        ``val_index`` are that fold's; this context is fold 1. The search
        trains every candidate once per fold and evaluates the
        :attr:`Objective.cross_validated` objectives on each; the other
        objectives see fold 1 only. None: a single validation split.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn.objectives import ObjectiveContext
    >>> ctx = ObjectiveContext(np.ones((4, 2)), np.array([0, 1, 0, 1]),
    ...                        np.ones((2, 2)), np.array([0, 1]), n_classes=2)
    >>> ctx.images is None, ctx.seed
    (True, 0)
    """

    X_train: Any
    y_train: Any
    X_val: Any
    y_val: Any
    n_classes: int
    w_train: Any | None = None
    w_val: Any | None = None
    train_index: Any | None = None
    val_index: Any | None = None
    images: Any | None = None
    X_ood: Any | None = None
    backbone: Any | None = None
    seed: int = 0
    config: Any | None = None
    n_evaluations: int | None = None
    verbose: int = 0
    folds: Any | None = None

    @property
    def device(self):
        """Torch device of the fit: ``config.device`` ("cpu" without a config)."""
        return getattr(self.config, "device", "cpu")

    @property
    def n_folds(self):
        """Number of folds the cross-validated objectives are measured on."""
        return 1 + len(self.folds or ())

    def without_raw_inputs(self):
        """A copy without images, OoD data and backbone (for the search).

        Returns
        -------
        context : ObjectiveContext
        """
        return dataclasses.replace(self, images=None, X_ood=None,
                                   backbone=None)


class Objective(BaseEstimator):
    """Base class of an objective.

    Subclasses set :attr:`name` and :attr:`greater_is_better`, take their
    settings as keyword arguments of ``__init__`` (stored unchanged, as a
    scikit-learn estimator does) and implement :meth:`evaluate`.
    :meth:`prepare` runs once per fit, before the search, for data shared by
    every evaluation; what it computes for the search is kept in attributes
    starting with ``_``, what it learns for the user in attributes ending with
    ``_``. :meth:`check` refuses bad settings before any heavy work.

    Values should lie in ``[0, 1]``: the hypervolume's reference point is
    each objective's worst value, 0 for objectives to maximise and 1 for
    those to minimise (override with a ``hypervolume_reference`` attribute).

    Attributes
    ----------
    name : str
        Column of the objective in ``pareto_front_`` and ``history_``.
    greater_is_better : bool
        Whether the search maximises (True) or minimises the value.
    uses_ood : bool
        Whether the objective reads ``context.X_ood`` (``fit`` warns when
        ``X_ood`` is given and no objective uses it).
    cross_validated : bool
        Whether, with k-fold fitness (the estimator's ``n_folds``), the objective
        is evaluated on every fold's heads (``evaluate(fold_heads, fold)``
        for each context of ``context.folds``, besides fold 1) and its value
        is the mean over folds weighted by each fold's validation weight
        (the sum of ``w_val``, or the number of validation samples) -- for a
        per-sample mean such as accuracy, exactly the value over the pooled
        out-of-fold predictions of every training sample. False (the
        default): evaluated on fold 1 only, what :meth:`prepare` saw.
    runs_backbone : bool
        Whether :meth:`evaluate` runs the backbone (after :meth:`prepare`):
        the search then gives it torch's own threads for the convolutions.
        False here; ``ODIN(epsilon>0)`` and ``Adversarial`` on images say
        True.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn.objectives import Objective
    >>> class Sparsity(Objective):
    ...     name = "sparsity"
    ...     greater_is_better = True
    ...     def evaluate(self, heads, context):
    ...         return 1.0 - np.asarray(heads.genomes, dtype=bool).mean(axis=1)
    >>> Sparsity()
    Sparsity()
    """

    name = None
    greater_is_better = True
    uses_ood = False
    cross_validated = False
    runs_backbone = False

    _parameter_constraints = {}

    def check(self, *, image_input):
        """Refuse settings that cannot work, before any heavy work.

        Validates the parameters against ``_parameter_constraints``.

        Parameters
        ----------
        image_input : bool
            Whether the fit takes images (a backbone is set).
        """
        self._validate_params()

    def prepare(self, context):
        """Precompute what every evaluation needs (once per fit).

        Parameters
        ----------
        context : ObjectiveContext
        """

    def evaluate(self, heads, context):
        """Score every candidate of a generation.

        Parameters
        ----------
        heads : TrainedHeads
            The heads of a generation: ``heads.genomes``,
            ``heads.logits(X)`` (a tensor of shape ``(n_candidates, n,
            n_classes)``) and ``heads.head_parameters(i)``.
        context : ObjectiveContext
            Without raw inputs (see :meth:`ObjectiveContext.without_raw_inputs`).

        Returns
        -------
        values : ndarray of shape (n_candidates,)
        """
        raise NotImplementedError

    def to_minimize(self, values):
        """The values as the search minimises them (negated when higher is better).

        Parameters
        ----------
        values : array-like

        Returns
        -------
        values : ndarray of float
        """
        values = np.asarray(values, dtype=float)
        return -values if self.greater_is_better else values


def fitted_copy(objective):
    """``objective`` with its fitted attributes, without its scratch state.

    What ``prepare`` computed for the search (attributes starting with
    ``_``) is left behind; what it learned for the user (public attributes
    ending with ``_``) is kept.

    Parameters
    ----------
    objective : Objective

    Returns
    -------
    copy : Objective
        A new instance with the same parameters and fitted attributes.
    """
    copy = type(objective)(**objective.get_params(deep=False))
    for key, value in vars(objective).items():
        if key.endswith("_") and not key.startswith("_"):
            setattr(copy, key, value)
    return copy


def frozen_heads(heads, device="cpu"):
    """Every candidate of a generation as a frozen feature -> logits module.

    Pruned rows and columns of the parameters are zero, so no masks are
    needed; used by objectives that need gradients through a head.

    Parameters
    ----------
    heads : TrainedHeads
    device : str, default="cpu"

    Returns
    -------
    modules : list of MaskedHead
    """
    return [head_module(heads.head_parameters(i), device) for i in range(len(heads))]


def head_module(params, device="cpu"):
    """A frozen :class:`MaskedHead` computing a trained head from its parameters."""
    sizes = [w.shape[0] for w, _ in params] + [params[-1][0].shape[1]]
    head = MaskedHead(sizes[0], tuple(sizes[1:-1]), sizes[-1])
    head.load_parameters(params)
    head.requires_grad_(False)
    return head.eval().to(device)
