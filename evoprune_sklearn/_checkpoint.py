"""Resumable searches: the search state after every generation, on disk.

A checkpoint holds everything the rest of a search depends on, so that a
search killed at any point and resumed gives the same front as one that ran
through. The search's own part is its result's
:meth:`~evoprune_sklearn._search.SearchResult.state_dict` (this module
reads no attribute of the search or of pymoo):

* the NSGA-II population (genomes, objective values, rank, crowding), the
  generation counter and the bit-generator state of pymoo's random generator;
* the evaluation cache (packed genomes and their objective values), so that
  genomes seen before the interruption are not retrained (a trained head is a
  pure function of its genome, see :mod:`evoprune_sklearn._engines`);
* the Pareto front so far, trained head parameters included, and ``history_``;
* the seeds and the train/validation split of the fit;
* a fingerprint of the training data, of the parameters that shape the search
  and of the package version, so a checkpoint is never resumed for another
  problem;
* where the current run of the search began and, once it ended, why, so that
  a fit resuming a killed search stops where the uninterrupted one would,
  while a fit continuing a finished one (a larger ``n_evaluations``) starts
  a new run with its own stop criteria.

The fitted estimator keeps the same content in memory (its tensors share
memory with the search's members): it is what ``warm_start=True``
continues, with the same checks as a checkpoint.

The file is written with :func:`torch.save` and only ever holds tensors,
strings, numbers, lists and dicts (metadata as one JSON string), so it loads
with ``torch.load(weights_only=True)``: opening a checkpoint never executes
code from it. Every write goes to a temporary file in the same folder that
then replaces the checkpoint in one ``os.replace``; a crash mid-write leaves
the previous checkpoint intact.
"""

import contextlib
import functools
import json
import os
import tempfile
import warnings

import numpy as np
import torch

from ._fingerprint import check_fingerprint, search_fingerprint
from ._safe_load import safe_load
from ._search import SearchResult

__all__ = [
    "SearchState",
    "load_checkpoint",
    "check_checkpoint_path",
    "transactional_fit",
    "open_search_state",
]

FORMAT = "evoprune_sklearn.checkpoint"
FORMAT_VERSION = 2

# ------------------------------------------------------------------ file I/O
def _atomic_save(obj, path):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".evoprune-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_checkpoint_path(path):
    """Validate ``checkpoint=`` cheaply: a file path in an existing folder."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint must be a file path or None, got {type(path).__name__}."
        )
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(
            f"checkpoint={path!r} is a directory; pass the path of a file "
            "(it is created if missing)."
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(
            f"checkpoint={path!r}: the folder {folder!r} does not exist."
        )
    return path


def load_checkpoint(path):
    """Read a checkpoint file safely (``torch.load(weights_only=True)``).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    blob : dict
        The stored tensors plus ``"meta"``, the decoded metadata.

    Raises
    ------
    ValueError
        When the file cannot be read, would need code to be unpickled, or is
        not an evoprune_sklearn checkpoint.
    """
    path = os.fspath(path)
    blob = safe_load(path, "checkpoint file", "an evoprune_sklearn checkpoint", (
        "Checkpoints are loaded with torch.load(weights_only=True) and never run "
        "code; delete the file or pass another checkpoint path."))
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(
            f"checkpoint file {path!r} is not an evoprune_sklearn checkpoint; "
            "delete it or pass another checkpoint path."
        )
    if blob.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint file {path!r} is in checkpoint format version "
            f"{blob.get('format_version')!r}; this version of evoprune_sklearn reads "
            f"version {FORMAT_VERSION}. Delete it or pass another checkpoint path."
        )
    blob = dict(blob)
    blob["meta"] = json.loads(blob["meta"])
    return blob


# ---------------------------------------------------------------- search state
class SearchState:
    """The search of a fit: where it starts, and its state after every generation.

    Built by :meth:`open`, it holds the
    :class:`~evoprune_sklearn._search.SearchResult` a fit continues
    (:attr:`start`: a loaded checkpoint, or the previous fit's search with
    ``warm_start=True``), with the seeds and folds that search used. The
    search calls :meth:`record` after every generation (as a skorch
    ``Checkpoint`` callback): the state keeps the result in memory (what a
    fit interrupted by Ctrl-C returns, see :meth:`interrupted_result`) and,
    with a ``path``, writes its :meth:`SearchResult.state_dict
    <evoprune_sklearn._search.SearchResult.state_dict>` atomically to disk.
    :meth:`resume_point` is what ``warm_start=True`` later continues: the
    same content as the file, in memory.

    Parameters
    ----------
    path : str or None
        Checkpoint file; None keeps the state in memory only.
    fingerprint : dict
        ``{"version", "parameters", "data"}`` identifying the problem.
    seeds : dict
        Seeds of the fit (split, search, init, shuffle).
    folds : list of tuple of ndarray, default=None
        The ``(train, val)`` pairs of the search.

    Attributes
    ----------
    start : SearchResult or None
        The search to continue; None for a new search.
    last : SearchResult or None
        The result of the last completed generation (``start`` until this
        fit completes one).
    """

    def __init__(self, path, fingerprint, seeds, folds=None):
        self.path = path
        self.fingerprint = fingerprint
        self.seeds = dict(seeds)
        self.folds = folds
        self.start = None
        self.last = None

    @classmethod
    def open(cls, path, fingerprint, seeds, previous=None, n_evaluations=None):
        """A state for ``path``, resuming the checkpoint stored there if any.

        Without a checkpoint file, ``previous`` (the :meth:`resume_point` of
        an earlier fit, for ``warm_start=True``) is continued when given.

        Raises ValueError when the file (or ``previous``) belongs to another
        version, other parameters or other data, or has already evaluated
        more genomes than ``n_evaluations``.
        """
        state = cls(path, fingerprint, seeds)
        if path is not None and os.path.exists(path):
            blob = load_checkpoint(path)
            source = f"checkpoint file {path!r}"
        elif previous is not None:
            blob = previous
            source = "the search being continued (warm_start=True)"
        else:
            return state
        meta = blob["meta"]
        check_fingerprint(source, meta["fingerprint"], fingerprint,
                          warm=blob is previous)
        done = meta["search"]["n_evaluations"]
        if n_evaluations is not None and done > n_evaluations:
            raise ValueError(
                f"n_evaluations={n_evaluations} is smaller than the {done} "
                f"evaluations {source} has already done; a search cannot be "
                f"shortened. Pass n_evaluations >= {done} to continue it, "
                "or start a new search ("
                + ("warm_start=False)." if blob is previous
                   else "another checkpoint path).")
            )
        state.seeds = meta["seeds"]
        state.folds = list(zip(_unstack(blob["train_index"], blob["train_sizes"]),
                               _unstack(blob["val_index"], blob["val_sizes"])))
        state.start = SearchResult()
        state.start.load_state_dict({**blob["search"], "meta": meta["search"]})
        # Ctrl-C before this fit completes a generation keeps what was resumed
        state.last = state.start
        return state

    def record(self, result):
        """Keep ``result`` (a completed generation) and write it to the file."""
        self.last = result
        if self.path is not None:
            blob = self._blob(result)
            blob["meta"] = json.dumps(blob["meta"], default=_json_default)
            _atomic_save(blob, self.path)

    def _blob(self, result):
        search = result.state_dict()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "meta": {"fingerprint": self.fingerprint, "seeds": self.seeds,
                     "search": search.pop("meta")},
            **_fold_tensors(self.folds),
            "search": search,
        }

    def resume_point(self, result):
        """What a later ``fit(warm_start=True)`` continues.

        Parameters
        ----------
        result : SearchResult or None
            Where this fit's search stands: its final result, or after an
            interrupt the last completed generation (``stop_reason`` None:
            the next fit resumes the same run segment).

        Returns
        -------
        blob : dict or None
            The content of a checkpoint file, in memory; None when no
            generation has completed.
        """
        return None if result is None else self._blob(result)

    def interrupted_result(self):
        """The result of the last completed generation.

        Raises KeyboardInterrupt again when no generation completed.
        """
        if self.last is None or not len(self.last.front):
            raise KeyboardInterrupt
        return self.last


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")


# --------------------------------------------------------------- failed fits
def transactional_fit(fit):
    """Make ``fit`` all-or-nothing.

    When ``fit`` raises (bad input found late, Ctrl-C before any generation
    completed, ...), the estimator gets back exactly the fitted state it had
    before, instead of a mix of new attributes (``classes_``) and an old
    front that would predict garbage.
    """
    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        saved = dict(self.__dict__)
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return wrapper


def open_search_state(params, data, seeds, previous=None, fitted=False):
    """The :class:`SearchState` of a fit: new, or continuing an earlier search.

    A checkpoint file at ``params["checkpoint"]`` is resumed when it exists;
    otherwise, with ``warm_start=True``, ``previous`` (the search of the
    estimator's previous fit) is continued. Called after input validation
    and before any heavy work, so a search written for other data, other
    parameters or another version is refused at once.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params(deep=False)``.
    data : tuple
        The validated training inputs (``X``, ``y``, ``X_ood``, and
        ``sample_weight`` when given); images are identified by their
        pixels (a lazy folder by its files).
    seeds : dict
        Seeds drawn from ``random_state``; replaced by the stored ones when a
        search is continued (so ``random_state=None`` continues too).
    previous : dict or None, default=None
        The :meth:`SearchState.resume_point` the estimator kept from its
        previous fit; used only with ``warm_start=True``.
    fitted : bool, default=False
        Whether the estimator is fitted (a fitted estimator without
        ``previous`` was restored without its search: a warning says that
        ``warm_start=True`` starts a new search).

    Returns
    -------
    state : SearchState
    """
    path = check_checkpoint_path(params.get("checkpoint"))
    # Always identified: a later fit(warm_start=True) checks it, even when
    # this fit does not continue anything. Hashing costs far less than one
    # backbone pass over the same images.
    fingerprint = search_fingerprint(params, data)
    if not params.get("warm_start", False):
        previous = None
    elif previous is not None and previous.get("format_version") != FORMAT_VERSION:
        warnings.warn(
            "warm_start=True, but this fitted estimator holds its search state in "
            "the format of an older version; a new search starts.",
            UserWarning,
            stacklevel=4,
        )
        previous = None
    elif previous is None and fitted:
        warnings.warn(
            "warm_start=True, but this fitted estimator holds no search state "
            "to continue (it was restored without one); a new search starts.",
            UserWarning,
            stacklevel=4,
        )
    return SearchState.open(path, fingerprint, seeds, previous=previous,
                            n_evaluations=params.get("n_evaluations"))


def _fold_tensors(folds):
    """The folds as flat index tensors and their sizes."""
    out = {}
    for j, part in enumerate(("train", "val")):
        arrays = [np.asarray(f[j], dtype=np.int64) for f in folds]
        out[f"{part}_index"] = torch.as_tensor(np.concatenate(arrays))
        out[f"{part}_sizes"] = torch.as_tensor(
            np.array([len(a) for a in arrays], dtype=np.int64))
    return out


def _unstack(flat, sizes):
    flat, sizes = np.asarray(flat), np.asarray(sizes)
    return np.split(flat, np.cumsum(sizes)[:-1])
