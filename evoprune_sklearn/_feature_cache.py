"""The feature cache behind ``memory=``: the backbone runs once per image.

A grid search or a cross-validation fits the estimator on overlapping
subsets of the same images, and scores it on the rest. With ``memory=`` set,
features are stored per image, keyed by a digest of the image (its pixels, or
for a lazy folder its file's bytes and decoded size), in files under a
directory named after everything else the features depend on: the
backbone's identity (architecture, a digest of its weights, input size,
normalisation), the precision, the device type and the torch version. Any
subset of images already seen is then served from the store, whatever the
fold, the candidate or the order of the rows, and only new images go through
the backbone.

Every file carries its key and a SHA-256 checksum of its contents; a file
that fails either check (truncated, edited, or copied from another
extractor's directory) is reported with a warning, removed, and its images
are extracted again: cached features are never trusted unchecked. Files are
written atomically (a temporary name, then a rename), so parallel fits
(``GridSearchCV(n_jobs=...)``) and interrupted ones leave only whole files.
"""

import hashlib
import json
import os
import uuid
import warnings

import numpy as np
import torch

from ._version import __version__

__all__ = ["FeatureStore", "check_memory_param", "memory_directory", "open_store"]

_FORMAT = 1
# Rows per file: an interrupted extraction keeps what it finished, in
# files small enough to check and load one at a time.
CHUNK_ROWS = 1024


def check_memory_param(memory):
    """Validate ``memory=`` as scikit-learn's ``Pipeline`` does (cheap, no I/O).

    Parameters
    ----------
    memory : None, str, path-like or joblib.Memory

    Raises
    ------
    TypeError
        For any other value.
    """
    if memory is None or isinstance(memory, (str, os.PathLike)):
        return
    if not hasattr(memory, "location"):
        raise TypeError(
            "memory must be None, a directory path or a joblib.Memory (an object "
            f"with a location), got {type(memory).__name__}."
        )


def memory_directory(memory):
    """The directory features are stored in, or None when nothing is cached.

    Parameters
    ----------
    memory : None, str, path-like or joblib.Memory
        A path is used as ``joblib.Memory(path)`` is: the store lives in its
        ``joblib`` subdirectory, so ``joblib.Memory(path).clear()`` empties
        it too. ``joblib.Memory(None)`` caches nothing.

    Returns
    -------
    directory : str or None
    """
    check_memory_param(memory)
    if memory is None:
        return None
    location = memory if isinstance(memory, (str, os.PathLike)) else memory.location
    if location is None:
        return None
    return os.path.join(os.fspath(location), "joblib", "evoprune_sklearn_features")


def _module_digest(module):
    h = hashlib.sha256()
    for name, value in module.state_dict().items():
        h.update(name.encode())
        t = value.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16
                 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def extractor_key(backbone, device):
    """What, besides the image, the features depend on, as a hex digest.

    Parameters
    ----------
    backbone : Backbone
    device : str or torch.device

    Returns
    -------
    key : str
    """
    identity = {
        "format": _FORMAT,
        "package": __version__,
        "torch": torch.__version__,
        "name": backbone.name,
        "class": f"{type(backbone.module).__module__}.{type(backbone.module).__qualname__}",
        "weights": _module_digest(backbone.module),
        "input_size": backbone.input_size,
        "mean": list(backbone.mean),
        "std": list(backbone.std),
        "precision": backbone.precision,
        # batch norms folded (Backbone.extract): other rounding
        "fused": callable(getattr(backbone.module, "fused", None)),
        "device": torch.device(device).type,
        "n_features": backbone.n_features,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _checksum(digests, features):
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(digests).tobytes())
    h.update(np.ascontiguousarray(features).tobytes())
    return h.hexdigest()


class FeatureStore:
    """Features of images keyed by their digests, in one extractor's directory.

    Parameters
    ----------
    directory : str
        The root returned by :func:`memory_directory`.
    key : str
        The extractor's key (:func:`extractor_key`).
    n_features : int
        Width of a feature vector.
    """

    def __init__(self, directory, key, n_features):
        self.key = key
        self.n_features = int(n_features)
        self.directory = os.path.join(directory, key[:32])

    def _files(self):
        if not os.path.isdir(self.directory):
            return []
        return sorted(os.path.join(self.directory, f) for f in os.listdir(self.directory)
                      if f.endswith(".npz") and not f.startswith("."))

    def _read(self, file):
        """``(digests, features)`` of a file, or None (with a warning) if it is bad."""
        try:
            with np.load(file, allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode())
                digests, features = data["digests"], data["features"]
            why = None
            if header.get("format") != _FORMAT or header.get("key") != self.key:
                why = "it belongs to another extractor or format"
            elif (digests.dtype != np.uint8 or digests.ndim != 2 or digests.shape[1] != 16
                  or features.dtype != np.float32
                  or features.shape != (len(digests), self.n_features)):
                why = "its arrays have the wrong shape or type"
            elif header.get("checksum") != _checksum(digests, features):
                why = "its checksum does not match its contents"
        except Exception as exc:  # numpy/zipfile/json raise many types for bad files
            why = f"it cannot be read ({type(exc).__name__}: {exc})"
        if why is None:
            return digests, features
        warnings.warn(
            f"Ignoring feature cache file {file!r}: {why}. Its images are "
            "extracted again; the file is removed.", UserWarning, stacklevel=4)
        try:
            os.remove(file)
        except OSError:
            pass
        return None

    def lookup(self, digests):
        """Cached features of the images with these digests.

        Parameters
        ----------
        digests : list of bytes

        Returns
        -------
        features : ndarray of shape (n_images, n_features), float32
            Rows of images not found are left uninitialised.
        found : ndarray of shape (n_images,), bool
        """
        features = np.empty((len(digests), self.n_features), dtype=np.float32)
        found = np.zeros(len(digests), dtype=bool)
        wanted = {}
        for i, d in enumerate(digests):
            wanted.setdefault(d, []).append(i)
        for file in self._files():
            if found.all():
                break
            entry = self._read(file)
            if entry is None:
                continue
            stored, rows = entry
            for j, d in enumerate(map(bytes, stored)):
                for i in wanted.pop(d, ()):
                    features[i] = rows[j]
                    found[i] = True
        return features, found

    def add(self, digests, features):
        """Store features of images, in one new file per ``CHUNK_ROWS`` rows.

        Parameters
        ----------
        digests : list of bytes
        features : ndarray of shape (n_images, n_features)
        """
        if getattr(self, "_unwritable", False):
            return
        try:
            self._write(digests, features)
        except OSError as exc:  # a read-only or full disk: the fit goes on uncached
            self._unwritable = True
            warnings.warn(
                f"Cannot write to the feature cache {self.directory!r} ({exc}); "
                "features are not stored.", UserWarning, stacklevel=3)

    def _write(self, digests, features):
        os.makedirs(self.directory, exist_ok=True)
        digests = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, 16)
        features = np.ascontiguousarray(features, dtype=np.float32)
        for start in range(0, len(digests), CHUNK_ROWS):
            d, f = digests[start:start + CHUNK_ROWS], features[start:start + CHUNK_ROWS]
            header = json.dumps({"format": _FORMAT, "key": self.key,
                                 "checksum": _checksum(d, f)}).encode()
            name = uuid.uuid4().hex
            tmp = os.path.join(self.directory, f".{name}.tmp")
            with open(tmp, "wb") as fh:
                np.savez(fh, header=np.frombuffer(header, dtype=np.uint8),
                         digests=d, features=f)
            os.replace(tmp, os.path.join(self.directory, f"{name}.npz"))


def open_store(memory, backbone, device):
    """The :class:`FeatureStore` for ``memory=``, or None when nothing is cached.

    Parameters
    ----------
    memory : None, str, path-like or joblib.Memory
    backbone : Backbone
    device : str or torch.device

    Returns
    -------
    store : FeatureStore or None
    """
    directory = memory_directory(memory)
    if directory is None:
        return None
    return FeatureStore(directory, extractor_key(backbone, device), backbone.n_features)
