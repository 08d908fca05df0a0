"""Resumable searches: the search state after every generation, on disk.

A checkpoint holds everything the rest of a search depends on, so that a
search killed at any point and resumed gives the same front as one that ran
through:

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

The fitted estimator keeps the same state in memory (the front's members
themselves rather than copies of their parameters): it is what
``warm_start=True`` continues, with the same checks as a checkpoint.

The file is written with :func:`torch.save` and only ever holds tensors,
strings, numbers, lists and dicts (metadata as one JSON string), so it loads
with ``torch.load(weights_only=True)``: opening a checkpoint never executes
code from it. Every write goes to a temporary file in the same folder that
then replaces the checkpoint in one ``os.replace``; a crash mid-write leaves
the previous checkpoint intact.
"""

import contextlib
import dataclasses
import functools
import json
import os
import tempfile
import warnings

import numpy as np
import torch
from pymoo.core.population import Population

from ._fingerprint import check_fingerprint, search_fingerprint
from ._front import Member, sorted_front
from ._safe_load import safe_load

__all__ = [
    "SearchState",
    "load_checkpoint",
    "check_checkpoint_path",
    "transactional_fit",
    "open_search_state",
]

FORMAT = "evoprune_sklearn.checkpoint"
FORMAT_VERSION = 1

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
    blob = dict(blob)
    blob["meta"] = json.loads(blob["meta"])
    return blob


# ---------------------------------------------------------------- search state
def _algorithm_state(algorithm):
    """What pymoo's NSGA-II needs to continue exactly where it stopped."""
    rng = algorithm.random_state.bit_generator.state
    if not algorithm.is_initialized:
        return {"rng": rng, "n_iter": None}, {}
    pop = algorithm.pop
    X = np.asarray(pop.get("X"))
    tensors = {
        "pop_X": torch.from_numpy(X.astype(bool)),
        "pop_F": torch.from_numpy(np.asarray(pop.get("F"), dtype=np.float64)),
        "pop_rank": torch.from_numpy(np.asarray(pop.get("rank"), dtype=np.float64)),
        "pop_crowding": torch.from_numpy(
            np.asarray(pop.get("crowding"), dtype=np.float64)
        ),
    }
    meta = {"rng": rng, "n_iter": int(algorithm.n_iter), "x_dtype": X.dtype.str}
    return meta, tensors


def _restore_algorithm(algorithm, meta, blob):
    algorithm.random_state.bit_generator.state = meta["rng"]
    if meta["n_iter"] is None:
        return
    X = blob["pop_X"].numpy().astype(np.dtype(meta["x_dtype"]))
    pop = Population.new(X=X, F=blob["pop_F"].numpy().copy())
    pop.set("rank", blob["pop_rank"].numpy().astype(int))
    pop.set("crowding", blob["pop_crowding"].numpy().copy())
    # What Algorithm.advance() leaves behind after a tell(), without drawing
    # from the random generator: the survivors, the counter, the optimum.
    algorithm._initialize()
    algorithm.pop = pop
    algorithm.is_initialized = True
    algorithm.n_iter = meta["n_iter"]
    algorithm._set_optimum()


def _front_state(front, with_tensors=True):
    members = list(front)
    meta = [
        {"objectives": dict(m.objectives), "train_loss": [float(v) for v in m.train_loss]}
        for m in members
    ]
    if not with_tensors:
        return meta, {}
    tensors = {
        "front_genomes": torch.from_numpy(
            np.array([m.genome for m in members], dtype=bool).reshape(len(members), -1)
        ),
        "front_params": [
            [(torch.as_tensor(w).cpu(), torch.as_tensor(b).cpu()) for w, b in m.params]
            for m in members
        ],
    }
    return meta, tensors


def _restore_front(front, meta, blob):
    """A new front like ``front`` (empty) holding the stored members."""
    if "front_members" in blob:  # an in-memory state (warm_start)
        return dataclasses.replace(front, members=tuple(blob["front_members"]))
    genomes = blob["front_genomes"].numpy()
    return dataclasses.replace(front, members=tuple(
        Member(
            genomes[i],
            info["objectives"],
            params=[(w, b) for w, b in blob["front_params"][i]],
            train_loss=info["train_loss"],
        )
        for i, info in enumerate(meta)
    ))


def _evaluator_state(evaluator):
    keys = list(evaluator.cache)
    sizes = sorted({k[0] for k in keys})
    packed = np.array([np.frombuffer(k[1], dtype=np.uint8) for k in keys], dtype=np.uint8)
    values = np.array([np.asarray(evaluator.cache[k], dtype=np.float64) for k in keys])
    meta = {
        "genome_size": sizes[0] if sizes else 0,
        "n_trained": int(evaluator.n_trained),
        "flops": float(getattr(evaluator, "flops", 0.0)),
        "train_seconds": float(getattr(evaluator, "train_seconds", 0.0)),
    }
    tensors = {
        "cache_keys": torch.from_numpy(packed.reshape(len(keys), -1)),
        "cache_values": torch.from_numpy(values.reshape(len(keys), -1)),
    }
    return meta, tensors


def _restore_evaluator(evaluator, meta, blob):
    size = meta["genome_size"]
    keys = blob["cache_keys"].numpy()
    values = blob["cache_values"].numpy()
    evaluator.cache = {
        (size, keys[i].tobytes()): values[i].copy() for i in range(len(keys))
    }
    evaluator.n_trained = meta["n_trained"]
    evaluator.flops = meta["flops"]
    evaluator.train_seconds = meta["train_seconds"]


class SearchState:
    """The state of a search after its last completed generation.

    :func:`~evoprune_sklearn._search.run_search` calls :meth:`save` after
    every generation; the state keeps a snapshot in memory (what a fit
    interrupted by Ctrl-C returns, and what ``warm_start=True`` continues
    from, see :meth:`resume_point`) and, with a ``path``, writes it
    atomically to disk. Built by :meth:`open`, it holds a loaded checkpoint
    or a previous fit's state that :meth:`restore` puts back into a freshly
    set-up search.

    A search runs in *segments*: the generations of one ``fit``. A ``fit``
    that continues a search which stopped (its budget spent, a stop
    criterion met) starts a new segment; one that resumes a search killed
    or interrupted mid-way continues the old segment, so that its stop
    criteria (``n_iter_no_change``) see the same generations as an
    uninterrupted run would.

    Parameters
    ----------
    path : str or None
        Checkpoint file; None keeps the state in memory only.
    fingerprint : dict
        ``{"version", "parameters", "data"}`` identifying the problem.
    seeds : dict
        Seeds of the fit (split, search, init, shuffle).
    split : tuple of ndarray
        Train and validation indices.

    Attributes
    ----------
    folds : list of tuple of ndarray or None
        The ``(train, val)`` pairs of the search: one, or the ``n_folds``
        folds; None until the fit sets them.
    """

    def __init__(self, path, fingerprint, seeds, split=None):
        self.path = path
        self.fingerprint = fingerprint
        self.seeds = dict(seeds)
        self.folds = None if split is None else [split]
        self.loaded = None
        self.front = None
        self.history = None
        self.evaluator = None
        self.generation = 0
        self.done = 0
        self.segment_start = 0
        self.resume = None

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
        if n_evaluations is not None and meta["done"] > n_evaluations:
            raise ValueError(
                f"n_evaluations={n_evaluations} is smaller than the {meta['done']} "
                f"evaluations {source} has already done; a search cannot be "
                f"shortened. Pass n_evaluations >= {meta['done']} to continue it, "
                "or start a new search ("
                + ("warm_start=False)." if blob is previous
                   else "another checkpoint path).")
            )
        state.loaded = blob
        state.seeds = meta["seeds"]
        state.folds = [(np.asarray(blob["train_index"]), np.asarray(blob["val_index"]))]
        if "cv_train_index" in blob:
            state.folds = list(zip(
                _unstack(blob["cv_train_index"], blob["cv_train_sizes"]),
                _unstack(blob["cv_val_index"], blob["cv_val_sizes"])))
        if meta.get("stop_reason") is None:  # killed or interrupted mid-way
            state.segment_start = int(meta.get("segment_start", 0))
        else:
            state.segment_start = int(meta["generation"])
        return state

    @property
    def split(self):
        """Train and validation indices of the first fold (None before the fit)."""
        return None if self.folds is None else self.folds[0]

    def restore(self, algorithm, evaluator, front, history):
        """Put a loaded checkpoint back; return ``(done, generation, front)``.

        ``front`` is the (empty) front of the new search; the returned one
        holds the stored members.
        """
        if self.loaded is None:
            return 0, 0, front
        blob, meta = self.loaded, self.loaded["meta"]
        _restore_algorithm(algorithm, meta["algorithm"], blob)
        _restore_evaluator(evaluator, meta["evaluator"], blob)
        front = _restore_front(front, meta["front"], blob)
        history[:] = [dict(r) for r in meta["history"]]
        self.evaluator = evaluator
        self._snapshot(front, history, meta["done"], meta["generation"])
        self.resume = self._memory_blob(blob, meta, front)
        return meta["done"], meta["generation"], front

    def _snapshot(self, front, history, done, generation):
        self.front = front  # immutable: no copy needed
        self.history = [dict(r) for r in history]
        self.done, self.generation = int(done), int(generation)

    def _memory_blob(self, tensors, meta, front):
        # What warm_start continues from: the checkpoint's content, with the
        # front's members themselves instead of their parameters as tensors
        # (they are the fitted estimator's members, so nothing is copied).
        blob = {k: v for k, v in tensors.items()
                if k not in ("meta", "front_genomes", "front_params")}
        blob["meta"] = {**meta, "history": [dict(r) for r in meta["history"]]}
        blob["front_members"] = list(front.members)
        return blob

    def save(self, algorithm, evaluator, front, history, done, generation,
             stop_reason=None):
        """Record the state after a completed generation (and write it).

        ``stop_reason`` says that the search ends with this generation (and
        why); None while it goes on.
        """
        self._snapshot(front, history, done, generation)
        self.evaluator = evaluator
        alg_meta, alg_t = _algorithm_state(algorithm)
        ev_meta, ev_t = _evaluator_state(evaluator)
        fr_meta, fr_t = _front_state(front, with_tensors=self.path is not None)
        meta = {
            "fingerprint": self.fingerprint,
            "seeds": self.seeds,
            "done": int(done),
            "generation": int(generation),
            "segment_start": int(self.segment_start),
            "stop_reason": stop_reason,
            "history": self.history,
            "algorithm": alg_meta,
            "evaluator": ev_meta,
            "front": fr_meta,
        }
        train, val = self.split
        tensors = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "train_index": torch.as_tensor(np.asarray(train, dtype=np.int64)),
            "val_index": torch.as_tensor(np.asarray(val, dtype=np.int64)),
            **_fold_tensors(self.folds),
            **alg_t,
            **ev_t,
        }
        self.resume = self._memory_blob(tensors, meta, front)
        if self.path is None:
            return
        blob = {**tensors, **fr_t, "meta": json.dumps(meta, default=_json_default)}
        _atomic_save(blob, self.path)

    def resume_point(self, stop_reason):
        """The state a later ``fit(warm_start=True)`` continues from.

        Parameters
        ----------
        stop_reason : str or None
            Why this fit's search ended; None when it was interrupted (the
            next fit then resumes the same segment).

        Returns
        -------
        blob : dict or None
            None when no generation has completed.
        """
        if self.resume is None:
            return None
        blob = dict(self.resume)
        blob["meta"] = {**blob["meta"], "stop_reason": stop_reason}
        return blob

    def interrupted_result(self):
        """Front, history and evaluator of the last completed generation.

        Raises KeyboardInterrupt again when no generation completed.
        """
        if self.front is None or not len(self.front):
            raise KeyboardInterrupt
        return sorted_front(self.front), self.history, self.evaluator


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
    """The k-fold split as flat index tensors (nothing with a single split)."""
    if len(folds) < 2:
        return {}
    out = {}
    for j, part in enumerate(("train", "val")):
        arrays = [np.asarray(f[j], dtype=np.int64) for f in folds]
        out[f"cv_{part}_index"] = torch.as_tensor(np.concatenate(arrays))
        out[f"cv_{part}_sizes"] = torch.as_tensor(
            np.array([len(a) for a in arrays], dtype=np.int64))
    return out


def _unstack(flat, sizes):
    flat, sizes = np.asarray(flat), np.asarray(sizes)
    return np.split(flat, np.cumsum(sizes)[:-1])
