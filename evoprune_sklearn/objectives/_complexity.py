"""Complexity of a head: the fraction of genes it keeps."""

import numpy as np

from ._base import Objective

__all__ = ["Complexity"]


class Complexity(Objective):
    """Fraction of genes switched on (lower is better).

    Examples
    --------
    >>> from evoprune_sklearn.objectives import Complexity
    >>> Complexity().name, Complexity().greater_is_better
    ('complexity', False)
    """

    name = "complexity"
    greater_is_better = False

    def evaluate(self, heads, context):
        """Fraction of genes each candidate keeps.

        Parameters
        ----------
        heads : TrainedHeads
        context : ObjectiveContext

        Returns
        -------
        values : ndarray of shape (n_candidates,)
        """
        return np.asarray(heads.genomes, dtype=bool).mean(axis=1)
