"""Image data: the bundled demo set and class-per-folder image folders."""

import os

import numpy as np

__all__ = ["load_digits_images", "load_image_folder", "IMAGE_EXTENSIONS"]

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


def load_image_folder(path, size=224):
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

    Returns
    -------
    X : ndarray of shape (n_images, size, size, 3), dtype uint8
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
    images = [_read_image(f, size) for f, _ in files]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(
            f"Images in {os.fspath(path)!r} have different sizes {sorted(shapes)}; "
            "pass size= to resize them to one size."
        )
    X = np.stack(images)
    y = np.array([label for _, label in files], dtype=object)
    return X, y
