"""The background sample explanations compare against, kept at fit time.

A small stratified sample of the training fold: its backbone features (the
heads' input) and, for image input, the images themselves as RGB ``uint8``
at their own resolution (what pixel attributions integrate from).
"""

import numpy as np
import torch

__all__ = ["BACKGROUND_SIZE", "Background", "sample_background"]

#: Training samples kept at fit time as the SHAP background (stratified).
BACKGROUND_SIZE = 64


class Background:
    """The reference sample SHAP compares each explained sample against.

    Parameters
    ----------
    features : ndarray of shape (n_background, n_features), float32
        Backbone features (or the raw features when ``backbone=None``).
    images : ndarray of shape (n_background, H, W, 3), uint8, or None
        The same samples as RGB images at their own resolution; None for
        feature input.
    labels : ndarray of int or None
        Encoded labels of the samples, when known.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._background import Background
    >>> Background(np.zeros((4, 3), dtype=np.float32)).nbytes
    48
    """

    def __init__(self, features, images=None, labels=None):
        self.features = np.asarray(features, dtype=np.float32)
        self.images = images
        self.labels = labels

    def __len__(self):
        return len(self.features)

    @property
    def nbytes(self):
        """Memory held, in bytes."""
        n = self.features.nbytes
        if self.images is not None:
            n += self.images.nbytes
        return int(n)

    def unit_images(self):
        """Images as a float32 ``(n, 3, H, W)`` tensor in ``[0, 1]``."""
        return torch.from_numpy(np.moveaxis(self.images, -1, 1).astype(np.float32) / 255.0)

    def __repr__(self):
        kind = "images+features" if self.images is not None else "features"
        return f"Background({len(self)} samples, {kind}, {self.nbytes / 1e6:.2f} MB)"


def _stratified_subset(labels, size, seed):
    n = len(labels)
    if n <= size:
        return np.arange(n)
    from sklearn.model_selection import train_test_split

    try:
        chosen, _ = train_test_split(
            np.arange(n), train_size=size, stratify=labels, random_state=seed
        )
    except ValueError:  # more classes than slots, or singleton classes
        chosen = np.random.RandomState(seed).choice(n, size, replace=False)
    return np.sort(chosen)


def sample_background(features, labels, index, seed, images=None, size=BACKGROUND_SIZE):
    """Keep a small stratified sample of the training data for :meth:`explain`.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Features of all fitted samples.
    labels : ndarray of int, shape (n_samples,)
        Encoded labels of all fitted samples.
    index : ndarray of int
        Indices the sample is drawn from (the training fold).
    seed : int
        Seed of the draw.
    images : Images or None, default=None
        The fitted images (None for feature input).
    size : int, default=BACKGROUND_SIZE
        Samples kept: at most ``size * (n_features * 4 + H * W * 3)`` bytes.

    Returns
    -------
    background : Background

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._background import sample_background
    >>> y = np.repeat([0, 1], 50)
    >>> bg = sample_background(np.zeros((100, 2)), y, np.arange(100), seed=0, size=10)
    >>> np.bincount(bg.labels).tolist()
    [5, 5]
    """
    index = np.asarray(index)
    chosen = index[_stratified_subset(labels[index], size, seed)]
    kept_images = None
    if images is not None:
        kept_images = images.to_uint8(chosen)
    return Background(features[chosen], kept_images, np.asarray(labels)[chosen])


