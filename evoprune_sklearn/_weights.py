"""Sample and class weights, and the samples a fit actually uses.

A sample of weight ``w`` must count as ``w`` copies of itself (scikit-learn's
sample-weight contract), and a fit holds out a validation fold. Both are
served by merging identical samples before the split: a repeated sample and a
weighted one become the same row with the same weight, and a duplicate image
can never sit on both sides of the split, where it would inflate the fitness.
"""

import hashlib

import numpy as np
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import _check_sample_weight

__all__ = ["fit_weights", "merge_samples"]


def fit_weights(sample_weight, class_weight, y):
    """Per-sample weights of a fit: ``sample_weight`` times ``class_weight``.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or None
    class_weight : dict, "balanced" or None
    y : ndarray of shape (n_samples,)
        Labels (original values: ``class_weight`` dict keys are labels).

    Returns
    -------
    weights : ndarray of float64, shape (n_samples,)
    """
    w = _check_sample_weight(sample_weight, np.empty((len(y), 0)), dtype=np.float64,
                             ensure_non_negative=True)
    w = np.array(w, dtype=np.float64, copy=True)
    if class_weight is not None:
        w *= compute_sample_weight(class_weight, y)
    if not np.isfinite(w).all():
        raise ValueError("sample_weight must be finite.")
    if w.sum() <= 0:
        raise ValueError(
            "sample_weight (times class_weight) sums to zero: no sample would count."
        )
    return w


def _row_digest(row, label):
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(row).tobytes())
    h.update(np.int64(label).tobytes())
    return h.digest()


def merge_samples(X, y, weights, *, can_index=True):
    """The samples a fit uses, in a canonical order, with merged weights.

    Identical samples (same values, same label) are merged into one that
    carries their summed weight; samples of weight 0 are dropped. The order
    is that of a content hash, so it does not depend on the order of ``X``.

    Parameters
    ----------
    X : ndarray
        Images or features, one sample per first-axis entry.
    y : ndarray of shape (n_samples,)
    weights : ndarray of shape (n_samples,)
    can_index : bool, default=True
        False for images, which are not compared (lazy image folders cannot
        be, and eager images must give the same fit): only samples of
        weight 0 are dropped, in their order.

    Returns
    -------
    index : ndarray of int
        Positions in ``X`` of the samples used (one per merged group).
    weights : ndarray of float64
        Their weights.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0], [2.0], [1.0]]); y = np.array([0, 1, 0])
    >>> index, w = merge_samples(X, y, np.ones(3))
    >>> sorted(zip(index.tolist(), w.tolist()))
    [(0, 2.0), (1, 1.0)]
    """
    weights = np.asarray(weights, dtype=np.float64)
    if not can_index:
        index = np.flatnonzero(weights > 0)
        return index, weights[index]
    n = len(y)
    rows = np.asarray(X).reshape(n, -1)
    first, total = {}, {}
    for i in range(n):
        if weights[i] <= 0:
            continue
        key = _row_digest(rows[i], y[i])
        if key not in first:
            first[key] = i
            total[key] = 0.0
        total[key] += weights[i]
    keys = sorted(first)
    return (np.array([first[k] for k in keys], dtype=np.int64),
            np.array([total[k] for k in keys], dtype=np.float64))
