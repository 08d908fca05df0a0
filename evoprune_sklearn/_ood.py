"""Out-of-distribution (OoD) data: the ``X_ood`` input of ``fit``.

``X_ood`` is validated here before any heavy work; when it is not given, the
objectives that need OoD samples (ODIN, :mod:`evoprune_sklearn.objectives`)
build a synthetic set from the training fold with the functions below.
"""

import warnings

import numpy as np

from ._images import Images

__all__ = [
    "MAX_SYNTHETIC_OOD",
    "OODSet",
    "SYNTHETIC_KINDS",
    "synthetic_ood_size",
    "validate_ood",
    "synthetic_ood_images",
    "synthetic_ood_features",
]

#: Kinds of the default synthetic OoD set, in the order samples are made.
SYNTHETIC_KINDS = ("gaussian", "uniform", "shuffled")

#: Most samples of a synthetic OoD set. An AUROC against 512 OoD samples is
#: already far more precise than the validation accuracy beside it, and at
#: 224 px every synthetic image costs a backbone pass (about 15 s of a
#: 5,000-photo fit for the 488 more a 1,000-image validation fold would ask).
MAX_SYNTHETIC_OOD = 512


def synthetic_ood_size(n_validation):
    """Samples in the synthetic OoD set of a fit: as many as the validation
    fold, at least one per kind, at most :data:`MAX_SYNTHETIC_OOD`.

    Parameters
    ----------
    n_validation : int

    Returns
    -------
    n : int

    Examples
    --------
    >>> synthetic_ood_size(270), synthetic_ood_size(1), synthetic_ood_size(1000)
    (270, 3, 512)
    """
    return max(len(SYNTHETIC_KINDS), min(int(n_validation), MAX_SYNTHETIC_OOD))


class OODSet:
    """Out-of-distribution samples for ``fit``, safe from cross-validation slicing.

    scikit-learn's :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_val_score` and friends slice every
    fit parameter whose length equals the number of training samples, as if
    it were one value per sample. OoD samples are not aligned with ``X``, so
    when ``len(X_ood) == len(X)`` a plain array would silently be cut down to
    each training fold. An ``OODSet`` has no length, so scikit-learn passes it
    through whole; :meth:`EvoPruneClassifier.fit` unwraps it. Wrap ``X_ood``
    whenever it travels through a scikit-learn meta-estimator; a plain array
    is fine for a direct ``fit``.

    (A constructor parameter would also escape slicing, but it would make the
    data part of the estimator's parameters: copied by ``clone`` for every
    candidate of a grid search and printed in its ``repr``.)

    Parameters
    ----------
    X : array-like
        OoD images (any size, same formats as ``X`` in ``fit``) or, with
        ``backbone=None``, a 2-D feature matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn import OODSet
    >>> OODSet(np.zeros((5, 3)))
    OODSet(n_samples=5)
    """

    __slots__ = ("X",)

    def __init__(self, X):
        if isinstance(X, OODSet):
            X = X.X
        self.X = X

    def __repr__(self):
        n = getattr(self.X, "shape", (len(self.X),))[0]
        return f"OODSet(n_samples={n})"


def _kind_counts(n_samples):
    base, extra = divmod(int(n_samples), len(SYNTHETIC_KINDS))
    return [base + (i < extra) for i in range(len(SYNTHETIC_KINDS))]


def synthetic_ood_images(X, n_samples, random_state=0, n_patches=4):
    """The default OoD set for image input, built from the training images.

    In the spirit of the synthetic noise sets of the ODIN paper, three kinds
    in (nearly) equal numbers, all at the training images' size and channels:

    - ``"gaussian"``: i.i.d. pixels from a normal distribution with the
      per-channel mean and standard deviation of the training images;
    - ``"uniform"``: i.i.d. pixels uniform between the per-channel minimum
      and maximum of the training images;
    - ``"shuffled"``: training images cut into an ``n_patches x n_patches``
      grid whose patches are randomly permuted (local statistics kept, global
      structure destroyed; the hardest of the three).

    Parameters
    ----------
    X : Images or ndarray
        Training images.
    n_samples : int
        Total number of OoD images.
    random_state : int, default=0
    n_patches : int, default=4
        Grid size of the shuffled-patch images.

    Returns
    -------
    images : ndarray of shape (n_samples, H, W, C), uint8
    kinds : ndarray of str, shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._ood import synthetic_ood_images
    >>> X = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    >>> images, kinds = synthetic_ood_images(X, 6)
    >>> images.shape, sorted(set(kinds.tolist()))
    ((6, 8, 8, 3), ['gaussian', 'shuffled', 'uniform'])
    """
    rng = np.random.default_rng(random_state)
    n_g, n_u, n_s = _kind_counts(n_samples)
    X = Images.of(X)
    C, H, W = X.spec.channels, X.spec.height, X.spec.width
    pick = rng.choice(len(X), size=min(len(X), 512), replace=False)
    unit = X.to_tensor(index=np.sort(pick))[:, :C].numpy()  # (n, C, H, W)
    mean = unit.mean(axis=(0, 2, 3))[None, :, None, None]
    std = unit.std(axis=(0, 2, 3))[None, :, None, None]
    lo = unit.min(axis=(0, 2, 3))[None, :, None, None]
    hi = unit.max(axis=(0, 2, 3))[None, :, None, None]
    gaussian = mean + std * rng.standard_normal((n_g, C, H, W))
    uniform = lo + (hi - lo) * rng.random((n_u, C, H, W))
    source = unit[rng.integers(0, len(unit), size=n_s)]
    shuffled = _shuffle_patches(source, min(n_patches, H, W), rng)
    images = np.concatenate([gaussian, uniform, shuffled]).clip(0.0, 1.0)
    images = np.round(np.moveaxis(images, 1, -1) * 255).astype(np.uint8)
    kinds = np.repeat(np.array(SYNTHETIC_KINDS), [n_g, n_u, n_s])
    return images, kinds


def _shuffle_patches(images, grid, rng):
    out = images.copy()
    n, _, H, W = images.shape
    ph, pw = H // grid, W // grid
    for i in range(n):
        patches = [
            images[i, :, r * ph : (r + 1) * ph, c * pw : (c + 1) * pw]
            for r in range(grid)
            for c in range(grid)
        ]
        for k, src in enumerate(rng.permutation(len(patches))):
            r, c = divmod(k, grid)
            out[i, :, r * ph : (r + 1) * ph, c * pw : (c + 1) * pw] = patches[src]
    return out


def synthetic_ood_features(X, n_samples, random_state=0):
    """The default OoD set for feature input (``backbone=None``).

    With precomputed features there are no pixels to corrupt, so OoD means
    "not from the joint distribution of the training features". Three kinds
    mirror the image default:

    - ``"gaussian"``: each feature drawn independently from a normal with
      that feature's training mean and standard deviation;
    - ``"uniform"``: each feature uniform between its training min and max;
    - ``"shuffled"``: each feature drawn from a *different* random training
      row, so every marginal is exact but the correlations between features
      (the structure a trained head relies on) are destroyed.

    Parameters
    ----------
    X : ndarray of shape (n_train, n_features)
        Training features.
    n_samples : int
    random_state : int, default=0

    Returns
    -------
    features : ndarray of shape (n_samples, n_features), float32
    kinds : ndarray of str, shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._ood import synthetic_ood_features
    >>> F, kinds = synthetic_ood_features(np.eye(4), 5)
    >>> F.shape, kinds.tolist()
    ((5, 4), ['gaussian', 'gaussian', 'uniform', 'uniform', 'shuffled'])
    """
    rng = np.random.default_rng(random_state)
    X = np.asarray(X, dtype=np.float64)
    n_g, n_u, n_s = _kind_counts(n_samples)
    n, d = X.shape
    gaussian = X.mean(axis=0) + X.std(axis=0) * rng.standard_normal((n_g, d))
    lo, hi = X.min(axis=0), X.max(axis=0)
    uniform = lo + (hi - lo) * rng.random((n_u, d))
    shuffled = X[rng.integers(0, n, size=(n_s, d)), np.arange(d)]
    features = np.concatenate([gaussian, uniform, shuffled]).astype(np.float32)
    kinds = np.repeat(np.array(SYNTHETIC_KINDS), [n_g, n_u, n_s])
    return features, kinds


def validate_ood(X_ood, *, image_input, n_features=None, n_samples=None, used=True):
    """Check ``X_ood`` as given to ``fit``, before any heavy work.

    Parameters
    ----------
    X_ood : array-like, OODSet or None
    image_input : bool
        Whether the estimator takes images (``backbone`` is not None).
    n_features : int, default=None
        Columns of ``X`` for feature input.
    n_samples : int, default=None
        Samples in ``X``; a plain ``X_ood`` of exactly that length may have
        been sliced by a cross-validation splitter, which earns a warning.
    used : bool, default=True
        Whether an objective (ODIN) will use it; a warning says when not.

    Returns
    -------
    X_ood : None, ndarray (features) or Images
    """
    if X_ood is None:
        return None
    if not used:
        warnings.warn(
            "X_ood is ignored: no objective uses OoD samples (ODIN does: "
            "'robustness' or 'odin' in objectives).",
            UserWarning,
            stacklevel=3,
        )
    if isinstance(X_ood, OODSet):
        X_ood = X_ood.X
    elif n_samples is not None and getattr(X_ood, "__len__", None) and len(X_ood) == n_samples:
        warnings.warn(
            f"X_ood has as many samples as X ({n_samples}). If it was passed "
            "through GridSearchCV, cross_val_score or another scikit-learn "
            "meta-estimator, it has been sliced like X; wrap it as "
            "OODSet(X_ood) to pass it whole (and to silence this warning).",
            UserWarning,
            stacklevel=3,
        )
    if X_ood is None:
        raise ValueError("OODSet wraps None; pass an array of OoD samples.")
    if image_input and isinstance(X_ood, Images):  # e.g. a lazy image folder
        return X_ood
    if not isinstance(X_ood, np.ndarray):
        try:
            X_ood = np.asarray(X_ood)
        except Exception as exc:  # ragged nested lists and the like
            raise TypeError(
                f"X_ood must be an array of samples, got {type(X_ood).__name__}."
            ) from exc
    if image_input:
        return Images(X_ood, name="X_ood")
    if X_ood.ndim != 2:
        raise ValueError(
            "With backbone=None, X_ood must be a 2-D feature matrix of shape "
            f"(n_ood, {n_features}) like X; got an array of shape {X_ood.shape}."
        )
    if X_ood.shape[0] == 0:
        raise ValueError("X_ood holds 0 samples; at least one is required.")
    if X_ood.shape[1] != n_features:
        raise ValueError(
            f"X_ood has {X_ood.shape[1]} features, but X has {n_features}; OoD "
            "samples must live in the same feature space."
        )
    if X_ood.dtype.kind not in "uifb":
        raise TypeError(f"X_ood must be numeric; got dtype {X_ood.dtype}.")
    X_ood = X_ood.astype(np.float32)
    if not np.all(np.isfinite(X_ood)):
        raise ValueError("X_ood contains NaN or infinity.")
    return X_ood
