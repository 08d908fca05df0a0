"""Image data: the bundled demo set and class-per-folder image folders."""

import hashlib
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

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


def _header_sizes(files, path):
    """``{file: (H, W)}`` of every file; one error naming all unreadable ones."""
    sizes, bad = {}, []
    for file in files:
        try:
            sizes[file] = _header_size(file)
        except ValueError as exc:
            bad.append(str(exc.__cause__ or exc))
            bad[-1] = f"{file!r} ({bad[-1]})"
    if bad:
        shown = "; ".join(bad[:10])
        more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise ValueError(
            f"Cannot read image file {shown}{more}: {len(bad)} of the {len(files)} "
            f"files in {os.fspath(path)!r} are not readable images. Remove or "
            "replace them."
        )
    return sizes


def _default_workers():
    return max(1, min(4, os.cpu_count() or 1))


class ImageFolderArray(Images):
    """The images of a folder, decoded only when indexed.

    What :func:`load_image_folder` returns with ``lazy=True``. It behaves like
    a read-only uint8 array of shape ``(n_images, H, W, 3)``: ``len``,
    ``shape``, ``dtype``, integer, slice and index-array access (each decodes
    just the images asked for), and ``np.asarray`` (decodes everything).
    :class:`~evoprune_sklearn.EvoPruneClassifier` accepts it as ``X`` and
    decodes one backbone batch at a time, so memory does not grow with the
    number of images. Files are decoded by ``n_workers`` threads (Pillow
    releases the GIL while it decodes), up to two batches ahead of the
    backbone's forward pass, and always put back in order: the images, and
    so the features and the fit, do not depend on ``n_workers``. It is an
    :class:`~evoprune_sklearn._images.Images` (always channels-last RGB),
    so everything that takes images takes it.

    Parameters
    ----------
    files : list of str
        Image file paths, in order.
    size : int or None
        Side length images are resized to; None keeps their own size (which
        must then be the same for every file).
    height, width : int
        Size of every decoded image.
    n_workers : int, default=None
        Threads decoding files; None uses up to 4 (at most the number of
        CPUs), 1 decodes in the calling thread.

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

    def __init__(self, files, size, height, width, n_workers=None):
        self.files = list(files)
        self.size = size
        self.height = int(height)
        self.width = int(width)
        if n_workers is not None and (not isinstance(n_workers, (int, np.integer))
                                      or isinstance(n_workers, bool) or n_workers < 1):
            raise ValueError(f"n_workers must be a positive integer or None, got "
                             f"{n_workers!r}.")
        self.n_workers = n_workers

    def _workers(self):
        return _default_workers() if self.n_workers is None else int(self.n_workers)

    def _decode_rows(self, index, pool=None):
        """The images of ``index`` stacked, decoded in order by ``pool``'s threads."""
        out = np.empty((len(index), self.height, self.width, 3), dtype=np.uint8)
        if pool is None and self._workers() > 1 and len(index) > 1:
            with ThreadPoolExecutor(self._workers(), thread_name_prefix="evoprune-decode") \
                    as pool:
                return self._decode_rows(index, pool)
        images = (map(self._read, map(int, index)) if pool is None
                  else pool.map(self._read, map(int, index)))
        for j, image in enumerate(images):  # map yields in order, whatever finishes first
            out[j] = image
        return out

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

    def _positions(self, index):
        """Row numbers of a slice or array-like of int (negatives counted from the end)."""
        if isinstance(index, slice):
            return range(len(self))[index]
        return np.arange(len(self))[np.asarray(index)]

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._read(range(len(self))[key])
        index = self._positions(key)
        if not isinstance(index, range) and np.ndim(index) != 1:
            raise IndexError("ImageFolderArray takes 1-D indices only.")
        return self._decode_rows(index)

    def batches(self, batch_size=64, *, size=None, device="cpu", channels_last=False):
        """Iterate over the images as tensors, decoded ahead by worker threads.

        Parameters
        ----------
        batch_size : int, default=64
        size : int, tuple of int or None, default=None
            Output size (antialiased bilinear); None keeps the decoded size.
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
        if self._workers() == 1:
            yield from super().batches(batch_size, size=size, device=device,
                                       channels_last=channels_last)
            return
        pool = ThreadPoolExecutor(self._workers(), thread_name_prefix="evoprune-decode")
        starts = iter(range(0, n, batch_size))
        pending = deque()

        def submit():
            start = next(starts, None)
            if start is not None:
                stop = min(start + batch_size, n)
                pending.append((start, stop, [pool.submit(self._read, i)
                                              for i in range(start, stop)]))

        try:
            # Two batches in flight: the threads decode while the caller
            # runs the backbone on the batch before.
            submit()
            submit()
            while pending:
                start, stop, futures = pending.popleft()
                submit()
                rows = np.stack([f.result() for f in futures])  # in order
                yield start, stop, self._batch_tensor(rows, size, device, channels_last)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

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
        files = [self.files[int(i)] for i in self._positions(index)]
        return ImageFolderArray(files, self.size, self.height, self.width,
                                n_workers=self.n_workers)

    def row_digests(self, index=None):
        """One digest per image, of its file's bytes and the decoded size.

        What a feature cache is keyed by: reading the files is far cheaper
        than decoding them, and a cached image is never decoded.

        Parameters
        ----------
        index : slice, array-like of int or None, default=None

        Returns
        -------
        digests : list of bytes
            16 bytes each.
        """
        rows = range(len(self)) if index is None else self._positions(index)
        head = f"file|{self.size}|{self.height}|{self.width}|".encode()
        out = []
        for i in rows:
            h = hashlib.blake2b(head, digest_size=16)
            with open(self.files[int(i)], "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            out.append(h.digest())
        return out

    def fingerprint(self):
        """A digest of the file list, sizes and modification times.

        Identifies the data for checkpoints without decoding any image.
        """
        h = hashlib.blake2b(digest_size=20)
        h.update(repr((self.size, self.height, self.width)).encode())
        for file in self.files:
            st = os.stat(file)
            h.update(f"{os.path.abspath(file)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()


def load_image_folder(path, size=224, *, lazy=False, n_workers=None):
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
        now, lazy or not: unreadable files are reported together, in one
        ValueError naming them (and, with ``size=None``, mixed sizes too); a
        file whose image data is corrupt is reported when it is decoded.
    n_workers : int, default=None
        Threads decoding the files, in parallel with the backbone when
        ``lazy=True``; None uses up to 4 (at most the number of CPUs), 1
        decodes in one thread. The images are the same for any value.

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
    paths = [f for f, _ in files]
    sizes = _header_sizes(paths, path)
    if size is not None:
        height = width = size
    else:
        shapes = {}
        for f in paths:
            shapes.setdefault(sizes[f], f)
        if len(shapes) > 1:
            raise ValueError(
                f"Images in {os.fspath(path)!r} have different sizes "
                f"{sorted((w, h) for h, w in shapes)} (width, height); pass size= "
                "to resize them to one size."
            )
        (height, width), = shapes
    X = ImageFolderArray(paths, size, height, width, n_workers=n_workers)
    return (X if lazy else X[:]), y
