"""The validation folds of a fit: where the search measures fitness.

A splitter in scikit-learn's style (``split(X, y)`` yielding ``(train,
val)`` positions, ``get_n_splits``), holding its settings once. It hands
the estimator plain index arrays, as ``StratifiedKFold`` does; it knows
nothing of the estimator.
"""

import warnings

import numpy as np

__all__ = ["ValidationSplitter"]


class ValidationSplitter:
    """Stratified validation folds that tolerate classes of a single sample.

    With ``n_folds=None``, one stratified hold-out split whose validation
    part is ``validation_fraction`` of the samples (at least one sample of
    every class that has two); with ``n_folds=k``, ``k`` stratified folds
    whose validation parts partition the samples. A class seen once cannot
    be on both sides of a split: its sample always trains (a warning names
    the class). Positions come back sorted.

    Parameters
    ----------
    validation_fraction : float, default=0.2
        Fraction of the samples in the validation part of the single split
        (ignored with ``n_folds``).
    n_folds : int or None, default=None
        Number of folds; None for the single split.
    random_state : int, default=0
        Seed of the shuffling.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._folds import ValidationSplitter
    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    >>> splitter = ValidationSplitter(n_folds=2, random_state=0)
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # class 2 has one sample
    ...     folds = list(splitter.split(None, y))
    >>> [len(val) for _, val in folds], all(8 in train for train, _ in folds)
    ([4, 4], True)
    """

    def __init__(self, validation_fraction=0.2, n_folds=None, random_state=0):
        self.validation_fraction = validation_fraction
        self.n_folds = n_folds
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of ``(train, val)`` pairs :meth:`split` yields.

        Parameters
        ----------
        X, y, groups : object
            Ignored, for scikit-learn compatibility.

        Returns
        -------
        n_splits : int
        """
        return 1 if self.n_folds is None else int(self.n_folds)

    def split(self, X, y, groups=None):
        """Yield the ``(train, val)`` positions of every fold.

        Parameters
        ----------
        X : object
            Ignored (the split depends on the labels alone).
        y : array-like of shape (n_samples,)
            Class labels.
        groups : object
            Ignored.

        Yields
        ------
        train, val : ndarray of int
            Sorted positions of the training and validation samples.

        Raises
        ------
        ValueError
            When every class has a single sample, when the single split
            leaves a side without a sample of some class, or when no class
            has ``n_folds`` samples.
        """
        yield from self._folds(np.asarray(y))

    def _folds(self, y):
        classes, y_enc, counts = np.unique(y, return_inverse=True, return_counts=True)
        if counts.max() < 2:
            raise ValueError(
                "Every class has a single sample (after merging identical "
                "samples); the search needs a validation fold to measure fitness."
            )
        single = np.flatnonzero(counts == 1)
        if len(single):
            names = [c.item() if isinstance(c, np.generic) else c for c in classes[single]]
            warnings.warn(
                f"Class(es) {names} have 1 sample: used for training only; the "
                "validation accuracy that drives the search does not measure them.",
                UserWarning, stacklevel=4,
            )
        alone = np.isin(y_enc, single)
        rest = np.flatnonzero(~alone)
        if self.n_folds is not None:
            return self._kfold(y_enc, rest, np.flatnonzero(alone), counts)
        return [self._holdout(y_enc, rest, np.flatnonzero(alone), int(np.sum(counts >= 2)))]

    def _holdout(self, y_enc, rest, alone, n_classes):
        n = len(rest)
        # At least one validation sample of each class, even on tiny data.
        n_val = max(int(np.ceil(self.validation_fraction * n)), n_classes)
        if n - n_val < n_classes:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} of {n} samples "
                f"leaves {n_val} validation and {n - n_val} training samples; each "
                f"must hold at least one sample of each of the {n_classes} classes. "
                "Use more samples or change validation_fraction."
            )
        from sklearn.model_selection import train_test_split

        train, val = train_test_split(
            rest, test_size=n_val, stratify=y_enc[rest], random_state=self.random_state
        )
        return np.sort(np.concatenate([train, alone])), np.sort(val)

    def _kfold(self, y_enc, rest, alone, counts):
        if counts.max() < self.n_folds:
            raise ValueError(
                f"n_folds={self.n_folds} folds need at least {self.n_folds} samples of some "
                f"class, but the largest class has {counts.max()} (after merging "
                "identical samples). Use fewer folds, n_folds=None or more samples."
            )
        from sklearn.model_selection import StratifiedKFold

        splitter = StratifiedKFold(n_splits=self.n_folds, shuffle=True,
                                   random_state=self.random_state)
        with warnings.catch_warnings():
            # a class with fewer samples than folds is missing from some
            # validation folds: each of its samples is still validated once
            warnings.filterwarnings("ignore", "The least populated class",
                                    UserWarning)
            folds = list(splitter.split(rest, y_enc[rest]))
        return [(np.sort(np.concatenate([rest[tr], alone])), np.sort(rest[va]))
                for tr, va in folds]
