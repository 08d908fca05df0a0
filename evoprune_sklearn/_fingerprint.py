"""Fingerprints: what identifies a search, so that it is never continued
for another problem.

A search (a checkpoint file, or the previous fit that ``warm_start=True``
continues) is identified by the package version, the estimator parameters
that shape the search and a digest of the training data. A fit continues a
stored search only when all three agree (:func:`check_fingerprint`).
"""

import hashlib
import numbers
import os

import numpy as np

from ._images import Images
from ._version import __version__
from .objectives import Objective, get_objective

__all__ = ["data_fingerprint", "search_parameters", "search_fingerprint",
           "check_fingerprint"]

# Parameters that cannot change what the search finds: the front is the same
# for any n_jobs (heads are pure functions of their genomes), verbosity only
# prints, selection and ensemble pick members after the search. The budget
# and the stop criteria say how far a search goes, not where it goes, so a
# search may be continued with other ones (see SearchState.open). A feature
# store (memory) gives the features the backbone would.
_NOT_SEARCH_PARAMETERS = frozenset({
    "checkpoint", "verbose", "n_jobs", "selection", "ensemble", "ensemble_voting",
    "n_evaluations", "warm_start", "max_time", "n_iter_no_change",
    "hypervolume_tol", "callbacks", "memory",
})


def _hash_array(h, a):
    if hasattr(a, "fingerprint"):  # lazy image arrays hash their files
        h.update(b"lazy:" + a.fingerprint().encode())
        return
    if isinstance(a, Images):  # identified by its images, as given
        a = a.data
    a = np.asarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    if a.dtype.kind == "O":
        h.update(repr(a.tolist()).encode())
    else:
        h.update(memoryview(np.ascontiguousarray(a)).cast("B"))


def data_fingerprint(*arrays):
    """A hex digest identifying the data a search runs on.

    Parameters
    ----------
    *arrays : array-like or None
        ``X``, ``y`` and any further data (None entries are allowed).

    Returns
    -------
    digest : str

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._fingerprint import data_fingerprint
    >>> X = np.zeros((3, 2))
    >>> data_fingerprint(X, [0, 1, 0]) == data_fingerprint(X.copy(), [0, 1, 0])
    True
    >>> data_fingerprint(X, [0, 1, 0]) == data_fingerprint(X, [0, 1, 1])
    False
    """
    h = hashlib.blake2b(digest_size=20)
    for a in arrays:
        if a is None:
            h.update(b"none")
        else:
            _hash_array(h, a)
        h.update(b"|")
    return h.hexdigest()


def _jsonable(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Objective):
        # By class and parameters: repr abbreviates, and a search with
        # another attack budget or temperature is another problem.
        return {"objective": f"{type(value).__module__}.{type(value).__qualname__}",
                "params": {k: _jsonable(v)
                           for k, v in sorted(value.get_params(deep=False).items())}}
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.random.RandomState):
        # The seeds drawn from it are stored in the checkpoint and reused.
        return "RandomState instance"
    if hasattr(value, "fingerprint"):  # BackboneSpec: its weights count too
        return value.fingerprint()
    return repr(value)


def _file_digest(path):
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def search_parameters(params):
    """The estimator parameters a search must agree on, JSON-able.

    Objectives are identified by their class and parameters (a name by the
    objective it stands for). Parameters that cannot change the front
    (``checkpoint``, ``verbose``, ``n_jobs``, ``selection``, ``ensemble``,
    ``ensemble_voting``) and those
    that only say how far the search goes (``n_evaluations``, ``max_time``,
    ``n_iter_no_change``, ``hypervolume_tol``, ``callbacks``, ``warm_start``)
    are left out, so a search may be resumed with more workers or continued
    with a larger budget. A weights file is identified by a digest of its
    content, not only by its path.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params(deep=False)``.

    Returns
    -------
    params : dict
    """
    out = {
        k: _jsonable(v)
        for k, v in sorted(params.items())
        if k not in _NOT_SEARCH_PARAMETERS
    }
    if "objectives" in out:
        # Names resolved to objectives: "robustness" and ODIN() are one problem,
        # ODIN() and ODIN(temperature=1.0) two.
        out["objectives"] = [_jsonable(get_objective(o)) for o in params["objectives"]]
    weights = params.get("weights")
    if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        out["weights_digest"] = _file_digest(weights)
    return out


def search_fingerprint(params, data):
    """What identifies a search: package version, parameters and data.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params(deep=False)``.
    data : tuple
        The validated training inputs; :class:`~evoprune_sklearn._images.Images`
        are identified by their pixels (a lazy folder by its files).

    Returns
    -------
    fingerprint : dict
        ``{"version", "parameters", "data"}``, JSON-able.
    """
    return {
        "version": __version__,
        "parameters": search_parameters(params),
        "data": data_fingerprint(*data),
    }


def check_fingerprint(source, stored, current, warm=False):
    """Refuse to continue a search of another version, parameters or data.

    Parameters
    ----------
    source : str
        Names the stored search in messages (a checkpoint file).
    stored, current : dict
        The :func:`search_fingerprint` of the stored search and of this fit.
    warm : bool, default=False
        Whether the stored search is the estimator's previous fit
        (``warm_start=True``) rather than a checkpoint file.

    Raises
    ------
    ValueError
        Naming what differs and how to start a new search instead.
    """
    if warm:
        what, fix = ("warm_start=True continues the previous search, but it",
                     "set warm_start=False to start a new search")
        verb = "continue"
    else:
        what, fix = source, "pass another checkpoint path"
        verb = "resume"
    if stored.get("version") != current["version"]:
        raise ValueError(
            f"{what} was written by evoprune_sklearn "
            f"{stored.get('version')}, but this is version {current['version']}; "
            f"a search cannot be {verb}d across versions. "
            + ("Delete the file or " if not warm else "") + f"{fix}."
        )
    old, new = stored.get("parameters", {}), current["parameters"]
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        diffs = ", ".join(f"{k}={old.get(k)!r} there, {new.get(k)!r} here" for k in changed)
        raise ValueError(
            f"{what} belongs to a search with other parameters "
            f"({diffs}). Fit with the same parameters to {verb} it, or {fix}."
        )
    if stored.get("data") != current["data"]:
        raise ValueError(
            f"{what} belongs to a search on other training data "
            "(X, y, sample_weight or X_ood differ from the data it ran on). Fit on "
            f"the same data to {verb} it, or {fix}."
        )
