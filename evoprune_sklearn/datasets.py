"""Image data: the bundled demo set and class-per-folder image folders."""

import os

import numpy as np

from ._images import Images, ImageSpec

__all__ = [
    "load_digits_images",
    "load_image_folder",
    "ImageFolderArray",
    "Images",
    "IMAGE_EXTENSIONS",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_digits_images(size=32, *, n_per_class=None, random_state=0):
    """scikit-learn's handwritten digits as RGB images (offline demo data).

    The 8x8 digits (1797 images, 10 classes) are upsampled with bilinear
    interpolation to ``size x size`` and replicated to three channels.

    Parameters
    ----------
    size : int, default=32
        Side length of the returned images (at least 8).
    n_per_class : int, default=None
        Keep at most this many images per class (a stratified subsample,
        for quick experiments); all when None.
    random_state : int, default=0
        Seed of the subsample.

    Returns
    -------
    X : ndarray of shape (n_images, size, size, 3), dtype uint8
    y : ndarray of shape (n_images,), dtype int

    Examples
    --------
    >>> from evoprune_sklearn.datasets import load_digits_images
    >>> X, y = load_digits_images(size=16)
    >>> X.shape, X.dtype, sorted(set(y)) == list(range(10))
    ((1797, 16, 16, 3), dtype('uint8'), True)
    """
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an integer of at least 8, got {size!r}.")
    digits = load_digits()
    images, y = digits.images, digits.target
    if n_per_class is not None:
        rng = np.random.default_rng(random_state)
        keep = np.concatenate(
            [rng.permutation(np.flatnonzero(y == c))[:n_per_class] for c in np.unique(y)]
        )
        keep.sort()
        images, y = images[keep], y[keep]
    t = torch.as_tensor(images / 16.0, dtype=torch.float32)[:, None]
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    arr = (t.clamp(0, 1) * 255).round().to(torch.uint8).numpy()[:, 0]
    return np.repeat(arr[..., None], 3, axis=-1), y.astype(int)


def _list_folder(path):
    if not os.path.isdir(path):
        raise ValueError(f"Image folder {os.fspath(path)!r} does not exist or is not a directory.")
    classes = sorted(
        d for d in os.listdir(path)
        if os.path.isdir(os.path.join(path, d)) and not d.startswith(".")
    )
    if not classes:
        raise ValueError(
            f"Image folder {os.fspath(path)!r} has no class subfolders; expected "
            "one subfolder of images per class."
        )
    files = []
    for label in classes:
        folder = os.path.join(path, label)
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                files.append((os.path.join(folder, name), label))
    if not files:
        raise ValueError(
            f"Image folder {os.fspath(path)!r} holds no image files (looked for "
            f"{', '.join(IMAGE_EXTENSIONS)} in {len(classes)} class subfolders)."
        )
    return files


def _read_image(file, size):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            img = img.convert("RGB")
            if size is not None:
                img = img.resize((size, size), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"Cannot read image file {file!r}: {exc}") from exc


def _header_size(file):
    """``(H, W)`` of an image file, reading its header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"Cannot read image file {file!r}: {exc}") from exc
    return height, width


class ImageFolderArray(Images):
    """The images of a folder, decoded only when indexed.

    What :func:`load_image_folder` returns with ``lazy=True``. It behaves like
    a read-only uint8 array of shape ``(n_images, H, W, 3)``: ``len``,
    ``shape``, ``dtype``, integer, slice and index-array access (each decodes
    just the images asked for), and ``np.asarray`` (decodes everything).
    :class:`~evoprune_sklearn.EvoPruneClassifier` accepts it as ``X`` and
    decodes one backbone batch at a time, so memory does not grow with the
    number of images. It is an :class:`~evoprune_sklearn._images.Images`
    (always channels-last RGB), so everything that takes images takes it.

    Parameters
    ----------
    files : list of str
        Image file paths, in order.
    size : int or None
        Side length images are resized to; None keeps their own size (which
        must then be the same for every file).
    height, width : int
        Size of every decoded image.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from evoprune_sklearn.datasets import load_image_folder
    >>> root = tempfile.mkdtemp()
    >>> for label in ("a", "b"):
    ...     os.makedirs(os.path.join(root, label))
    ...     Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(
    ...         os.path.join(root, label, "0.png"))
    >>> X, y = load_image_folder(root, size=8, lazy=True)
    >>> X
    ImageFolderArray(n_images=2, shape=(8, 8, 3))
    >>> X[1:].shape, np.asarray(X).shape
    ((1, 8, 8, 3), (2, 8, 8, 3))
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, files, size, height, width):
        self.files = list(files)
        self.size = size
        self.height = int(height)
        self.width = int(width)

    @property
    def shape(self):
        """``(n_images, H, W, 3)``."""
        return (len(self.files), self.height, self.width, 3)

    def __len__(self):
        return len(self.files)

    def __repr__(self):
        return (
            f"ImageFolderArray(n_images={len(self)}, "
            f"shape={(self.height, self.width, 3)})"
        )

    def _read(self, i):
        image = _read_image(self.files[i], self.size)
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"Image file {self.files[i]!r} is {image.shape[1]}x{image.shape[0]} "
                f"pixels, unlike the {self.width}x{self.height} of the others; "
                "pass size= to resize every image to one size."
            )
        return image

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._read(range(len(self))[key])
        if isinstance(key, slice):
            index = range(len(self))[key]
        else:
            index = np.arange(len(self))[np.asarray(key)]
            if index.ndim != 1:
                raise IndexError("ImageFolderArray takes 1-D indices only.")
        out = np.empty((len(index), self.height, self.width, 3), dtype=np.uint8)
        for j, i in enumerate(index):
            out[j] = self._read(int(i))
        return out

    def __array__(self, dtype=None, copy=None):
        X = self[:]
        return X if dtype is None else X.astype(dtype)

    @property
    def spec(self):
        """The :class:`~evoprune_sklearn._images.ImageSpec` of every image."""
        return ImageSpec(self.height, self.width, 3, channels_last=True)

    @property
    def data(self):
        """The folder itself: rows are decoded when indexed."""
        return self

    def take(self, index):
        """The images at ``index`` as a smaller folder, still not decoded.

        Parameters
        ----------
        index : slice or array-like of int

        Returns
        -------
        ImageFolderArray
        """
        if isinstance(index, slice):
            rows = range(len(self))[index]
        else:
            rows = np.arange(len(self))[np.asarray(index)]
        return ImageFolderArray([self.files[int(i)] for i in rows], self.size,
                                self.height, self.width)

    def fingerprint(self):
        """A digest of the file list, sizes and modification times.

        Identifies the data for checkpoints without decoding any image.
        """
        import hashlib

        h = hashlib.blake2b(digest_size=20)
        h.update(repr((self.size, self.height, self.width)).encode())
        for file in self.files:
            st = os.stat(file)
            h.update(f"{os.path.abspath(file)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()


def load_image_folder(path, size=224, *, lazy=False):
    """Load a class-per-subfolder image folder.

    The layout users' own data comes in::

        path/
            cats/ img001.jpg img002.png ...
            dogs/ ...

    Parameters
    ----------
    path : str or path-like
        Folder with one subfolder of images per class (subfolder name = label).
    size : int or None, default=224
        Every image is resized to ``size x size``; None keeps the original
        sizes, which must then all agree.
    lazy : bool, default=False
        Return an :class:`ImageFolderArray` that decodes images only when
        they are used (one backbone batch at a time inside
        :class:`~evoprune_sklearn.EvoPruneClassifier`), so memory stays flat
        however many images the folder holds. Every file's header is checked
        now (unreadable files and, with ``size=None``, mixed sizes are
        reported at once); a file whose image data is corrupt is reported
        when it is decoded.

    Returns
    -------
    X : ndarray of shape (n_images, size, size, 3), dtype uint8, or \
            ImageFolderArray
    y : ndarray of shape (n_images,), dtype object
        The subfolder name of each image.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from evoprune_sklearn.datasets import load_image_folder
    >>> root = tempfile.mkdtemp()
    >>> for label in ("a", "b"):
    ...     os.makedirs(os.path.join(root, label))
    ...     Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(
    ...         os.path.join(root, label, "0.png"))
    >>> X, y = load_image_folder(root, size=8)
    >>> X.shape, list(y)
    ((2, 8, 8, 3), ['a', 'b'])
    """
    if size is not None and (not isinstance(size, (int, np.integer)) or size < 1):
        raise ValueError(f"size must be a positive integer or None, got {size!r}.")
    files = _list_folder(path)
    y = np.array([label for _, label in files], dtype=object)
    if lazy:
        if size is not None:
            for f, _ in files:
                _header_size(f)
            return ImageFolderArray([f for f, _ in files], size, size, size), y
        shapes = {}
        for f, _ in files:
            shapes.setdefault(_header_size(f), f)
        if len(shapes) > 1:
            raise ValueError(
                f"Images in {os.fspath(path)!r} have different sizes "
                f"{sorted((w, h) for h, w in shapes)} (width, height); pass size= "
                "to resize them to one size."
            )
        (height, width), = shapes
        return ImageFolderArray([f for f, _ in files], None, height, width), y
    images = [_read_image(f, size) for f, _ in files]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(
            f"Images in {os.fspath(path)!r} have different sizes {sorted(shapes)}; "
            "pass size= to resize them to one size."
        )
    X = np.stack(images)
    return X, y
