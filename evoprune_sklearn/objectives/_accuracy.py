"""Accuracy of a head on the validation fold."""

import numpy as np

from ._base import Objective

__all__ = ["Accuracy"]


class Accuracy(Objective):
    """Accuracy of the head on the validation fold (higher is better).

    Weighted by the validation samples' weights when the fit has any. Every
    fit needs it: it is what the selection rules and the ensembles rank by.
    Cross-validated: with the estimator's ``n_folds=k`` it is the accuracy of the
    out-of-fold predictions over every training sample, each predicted by
    the head trained on the other folds.

    Examples
    --------
    >>> from evoprune_sklearn.objectives import Accuracy
    >>> Accuracy().name, Accuracy().greater_is_better
    ('accuracy', True)
    """

    name = "accuracy"
    greater_is_better = True
    cross_validated = True

    def evaluate(self, heads, context):
        """Validation accuracy of every candidate.

        Parameters
        ----------
        heads : TrainedHeads
        context : ObjectiveContext

        Returns
        -------
        values : ndarray of shape (n_candidates,)
        """
        pred = heads.logits(context.X_val).argmax(dim=-1).numpy()
        correct = pred == np.asarray(context.y_val)[None, :]
        if context.w_val is None:
            return correct.mean(axis=1)
        w = np.asarray(context.w_val, dtype=np.float64)
        return correct @ w / w.sum()
