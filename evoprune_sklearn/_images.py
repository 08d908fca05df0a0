"""Image arrays: layout detection, value range and conversion to tensors.

Images enter the package in the layouts people actually hold them in. The rules
are applied in this order and are the documented way ambiguity is resolved:

* 3-D ``(n, H, W)`` arrays are grayscale.
* 4-D arrays whose **last** axis has 1 or 3 entries are channels-last
  ``(n, H, W, C)`` (what PIL, matplotlib and OpenCV give).
* otherwise 4-D arrays whose **second** axis has 1 or 3 entries are
  channels-first ``(n, C, H, W)`` (what torch gives).

So an array of shape ``(n, 3, 32, 3)`` is read as channels-last. ``uint8``
values are read as ``[0, 255]``; floating-point values must already lie in
``[0, 1]``. Grayscale images are replicated to three channels.

Inside the package images travel as one value, :class:`Images`: the array (or
a lazy :class:`~evoprune_sklearn.datasets.ImageFolderArray`) together with its
:class:`ImageSpec`, with the only conversions anything needs (float tensors in
``[0, 1]`` at a given size, in batches, and ``uint8`` channels-last arrays).
"""

import hashlib
import numbers

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Images", "ImageSpec", "image_spec", "to_unit_tensor", "resize_batch"]

_FLOAT_TOLERANCE = 1e-3


class ImageSpec:
    """Shape facts about an image array, remembered at fit time.

    Parameters
    ----------
    height, width : int
        Spatial size of the images.
    channels : int
        1 (grayscale) or 3 (RGB).
    channels_last : bool
        Whether the array stored channels on its last axis.
    """

    def __init__(self, height, width, channels, channels_last):
        self.height = height
        self.width = width
        self.channels = channels
        self.channels_last = channels_last

    @property
    def shape(self):
        """``(H, W, C)`` of one image."""
        return (self.height, self.width, self.channels)

    def __repr__(self):
        return f"ImageSpec(height={self.height}, width={self.width}, channels={self.channels})"


def image_spec(X, *, name="X"):
    """Work out the layout of an image array and validate its values.

    Parameters
    ----------
    X : ndarray
        Images as ``(n, H, W)``, ``(n, H, W, C)`` or ``(n, C, H, W)``.
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    spec : ImageSpec
    """
    if not isinstance(X, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array of images, got {type(X).__name__}."
        )
    if X.ndim not in (3, 4):
        raise ValueError(
            f"{name} must hold images with 3 dimensions (n, H, W) or 4 dimensions "
            f"(n, H, W, C) / (n, C, H, W); got an array with {X.ndim} "
            f"dimension(s) and shape {X.shape}. Use backbone=None to pass a 2-D "
            "feature matrix."
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} holds 0 images; at least one is required.")
    if X.dtype.kind not in "uif":
        raise TypeError(
            f"{name} must be a numeric image array (uint8 in [0, 255] or float in "
            f"[0, 1]); got dtype {X.dtype}."
        )
    if X.ndim == 3:
        spec = ImageSpec(X.shape[1], X.shape[2], 1, channels_last=True)
    elif X.shape[-1] in (1, 3):
        spec = ImageSpec(X.shape[1], X.shape[2], X.shape[3], channels_last=True)
    elif X.shape[1] in (1, 3):
        spec = ImageSpec(X.shape[2], X.shape[3], X.shape[1], channels_last=False)
    else:
        raise ValueError(
            f"{name} has shape {X.shape}: neither its last axis nor its second axis "
            "has 1 or 3 channels. Images must be grayscale or RGB."
        )
    if spec.height < 2 or spec.width < 2:
        raise ValueError(
            f"{name} images are {spec.height}x{spec.width} pixels; at least 2x2 is "
            "required."
        )
    _check_values(X, name)
    return spec


def _check_values(X, name):
    if X.dtype.kind == "f":
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} contains NaN or infinity.")
        lo, hi = float(X.min()), float(X.max())
        if lo < -_FLOAT_TOLERANCE or hi > 1 + _FLOAT_TOLERANCE:
            raise ValueError(
                f"Floating-point images in {name} must lie in [0, 1]; found values "
                f"in [{lo:.3g}, {hi:.3g}]. Divide uint8-range floats by 255, or "
                "pass them as uint8."
            )
    elif X.dtype != np.uint8:
        lo, hi = int(X.min()), int(X.max())
        if lo < 0 or hi > 255:
            raise ValueError(
                f"Integer images in {name} must lie in [0, 255]; found values in "
                f"[{lo}, {hi}]."
            )


def to_unit_tensor(X, spec, *, channels_last=False):
    """Convert images to a float32 ``(n, 3, H, W)`` tensor in ``[0, 1]``.

    Parameters
    ----------
    X : ndarray
        Images in the layout described by ``spec``.
    spec : ImageSpec
    channels_last : bool, default=False
        Return the tensor in :data:`torch.channels_last` memory format (the
        same values, stored pixel by pixel): what convolutions run fastest
        on, and for ``(n, H, W, C)`` arrays a conversion without a
        transposing copy.

    Returns
    -------
    images : torch.Tensor
    """
    arr = np.asarray(X)
    if arr.ndim == 3:
        arr = arr[:, :, :, None]
    elif not spec.channels_last:
        arr = np.moveaxis(arr, 1, -1)
    scale = 255.0 if arr.dtype.kind in "ui" else 1.0
    # (n, H, W, C) in memory, viewed as (n, C, H, W): channels-last storage.
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(0, 3, 1, 2)
    if scale != 1.0:
        t = t / scale
    t = t.clamp_(0.0, 1.0)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    return t.contiguous(memory_format=torch.channels_last if channels_last
                        else torch.contiguous_format)


def resize_batch(images, size):
    """Resize a ``(n, 3, H, W)`` batch to ``size`` with antialiased bilinear.

    The one resize of the package: feature extraction, the objectives'
    attacks, the explainers and exported models all resize through it.

    Parameters
    ----------
    images : torch.Tensor
    size : int or tuple of int

    Returns
    -------
    torch.Tensor
    """
    if isinstance(size, numbers.Integral):
        size = (int(size), int(size))
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    antialias = bool(images.shape[-2] > size[0] or images.shape[-1] > size[1])
    # Out of place, so that it is differentiable and exportable as well.
    return F.interpolate(
        images, size=list(size), mode="bilinear", align_corners=False,
        antialias=antialias,
    ).clamp(0.0, 1.0)


class Images:
    """Images with their layout, validated once.

    What the package passes between its parts instead of an array and its
    :class:`ImageSpec` side by side: the backbone, the objectives, the
    background sampler and the explainers all take an ``Images`` and convert
    it with the methods below, so the layout rules, the value range and the
    resizing live here only. :class:`~evoprune_sklearn.datasets.ImageFolderArray`
    is an ``Images`` that decodes its files only when rows are used.

    Parameters
    ----------
    data : ndarray
        Images as ``(n, H, W)``, ``(n, H, W, C)`` or ``(n, C, H, W)`` (see the
        module's layout rules).
    spec : ImageSpec or None, default=None
        The layout of ``data``; None validates ``data`` and works it out.
    name : str, default="X"
        Name used in error messages.

    Attributes
    ----------
    data : ndarray
        The images as given.
    spec : ImageSpec
        Their layout.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn.datasets import Images
    >>> images = Images(np.zeros((5, 8, 8), dtype=np.uint8))
    >>> len(images), images.image_shape
    (5, (8, 8, 1))
    >>> images.to_tensor(size=16, index=[0, 2]).shape
    torch.Size([2, 3, 16, 16])
    >>> [(start, stop, t.shape[0]) for start, stop, t in images.batches(2)]
    [(0, 2, 2), (2, 4, 2), (4, 5, 1)]
    >>> images.to_uint8().shape
    (5, 8, 8, 3)
    """

    def __init__(self, data, spec=None, *, name="X"):
        if spec is None:
            spec = image_spec(data, name=name)
        self.data = data
        self.spec = spec

    @classmethod
    def of(cls, X, *, name="X"):
        """``X`` as :class:`Images`: validated, unless it already is one.

        Parameters
        ----------
        X : array-like or Images
        name : str, default="X"
            Name used in error messages.

        Returns
        -------
        images : Images
        """
        if isinstance(X, Images):
            return X
        if hasattr(X, "__array__") and not isinstance(X, np.ndarray):
            X = np.asarray(X)
        return cls(X, name=name)

    @property
    def image_shape(self):
        """``(H, W, C)`` of one image."""
        return self.spec.shape

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        return f"Images(n_images={len(self)}, image_shape={self.image_shape})"

    def rows(self, index=None):
        """The raw array of the images at ``index`` (all when None).

        Parameters
        ----------
        index : slice, array-like of int or None, default=None

        Returns
        -------
        ndarray
            In this value's layout and dtype.
        """
        return np.asarray(self.data if index is None else self.data[index])

    def take(self, index):
        """The images at ``index``, as :class:`Images` of the same layout.

        Parameters
        ----------
        index : slice or array-like of int

        Returns
        -------
        images : Images
        """
        return Images(self.rows(index), self.spec)

    def load(self, index=None):
        """The images at ``index`` (all when None), decoded into memory.

        The same as :meth:`take` for an array; a lazy folder's ``take``
        stays lazy, its ``load`` decodes once (for images used many times).

        Parameters
        ----------
        index : slice, array-like of int or None, default=None

        Returns
        -------
        images : Images
        """
        return Images(self.rows(index), self.spec)

    def to_tensor(self, size=None, index=None):
        """Float32 ``(n, 3, H, W)`` tensor in ``[0, 1]``, resized to ``size``.

        Parameters
        ----------
        size : int, tuple of int or None, default=None
            Output size (antialiased bilinear, see :func:`resize_batch`);
            None keeps the images' own size.
        index : slice, array-like of int or None, default=None
            Rows to convert (all when None).

        Returns
        -------
        torch.Tensor
        """
        unit = to_unit_tensor(self.rows(index), self.spec)
        return unit if size is None else resize_batch(unit, size)

    def row_digests(self, index=None):
        """One digest per image, of its pixels (what a feature cache is keyed by).

        Two images with the same values, dtype and layout have the same
        digest, wherever they sit in which array.

        Parameters
        ----------
        index : slice, array-like of int or None, default=None

        Returns
        -------
        digests : list of bytes
            16 bytes each.
        """
        rows = self.rows(index)
        head = f"{rows.dtype.str}|{rows.shape[1:]}|{self.spec.channels_last}|".encode()
        out = []
        for row in rows:
            h = hashlib.blake2b(head, digest_size=16)
            h.update(memoryview(np.ascontiguousarray(row)).cast("B"))
            out.append(h.digest())
        return out

    def batches(self, batch_size=64, *, size=None, device="cpu", channels_last=False):
        """Iterate over the images as tensors, ``batch_size`` at a time.

        Only a few batches are held (and, for a lazy folder, decoded) at a
        time.

        Parameters
        ----------
        batch_size : int, default=64
        size : int, tuple of int or None, default=None
            Output size, as in :meth:`to_tensor`.
        device : str or torch.device, default="cpu"
        channels_last : bool, default=False
            Tensors in :data:`torch.channels_last` memory format.

        Yields
        ------
        start, stop : int
            The rows of the batch.
        images : torch.Tensor
            ``(stop - start, 3, H, W)`` on ``device``.
        """
        n = len(self)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield start, stop, self._batch_tensor(
                self.rows(slice(start, stop)), size, device, channels_last)

    def _batch_tensor(self, rows, size, device, channels_last):
        unit = to_unit_tensor(rows, self.spec, channels_last=channels_last)
        if size is not None:
            unit = resize_batch(unit, size)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        return unit.to(device).contiguous(memory_format=fmt)

    def to_uint8(self, index=None):
        """The images as ``uint8`` RGB ``(n, H, W, 3)``, as the backbone sees them.

        Grayscale is replicated to three channels, float values are rounded
        from ``[0, 1]`` to ``[0, 255]``: a compact copy that converts back
        (see :meth:`to_tensor`) to what the backbone was given.

        Parameters
        ----------
        index : slice, array-like of int or None, default=None

        Returns
        -------
        ndarray of uint8
        """
        unit = to_unit_tensor(self.rows(index), self.spec)
        return np.ascontiguousarray(
            (unit * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
