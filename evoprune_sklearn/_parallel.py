"""Spreading a generation's evaluations over joblib workers, Dask included.

A generation's new genomes are split into one chunk per worker; each chunk is
trained and scored by the batched engine in the worker. What every chunk
needs besides its genomes (the cached features, the training configuration
and the prepared objectives: the *fit context*) travels to the workers once
per fit, not once per task:

* ``joblib.parallel_config(backend="dask")``: the context is scattered to
  every worker of the cluster (``Client.scatter(..., broadcast=True)``) the
  first time it is needed; tasks carry only the future.
* process backends (``"loky"``, the default, and ``"multiprocessing"``): the
  context is pickled once into a temporary file; each worker process loads
  it on its first task and keeps it for the rest of the fit.
* threads and any other backend (e.g. Ray's): the object itself is passed;
  threads share it, and Ray puts large arguments into its object store.

Reproducibility rule: head arithmetic never depends on a thread count.
Inside :func:`deterministic_arithmetic` every torch kernel runs on one
thread (so no product or reduction is split by the thread count), and the
parallelism comes from running independent pieces of FIXED shape (a block
of samples, a candidate, a group of candidates) on a pool of Python threads
(torch releases the GIL). The pieces, and the order in which their results
are combined, depend on the problem alone; the number of threads only says
how many run at once. So one genome's head and scores are the same for any
``n_jobs``, backend and ``torch.set_num_threads``.

Oversubscription rule: threads per evaluation x evaluations running at
once <= CPU cores. With process and thread backends each worker gets
``cpu_count // n_workers`` threads; Dask workers use the thread count their
nanny sets (``OMP_NUM_THREADS=1`` by default, and a ``LocalCluster`` runs
one task a core), so size the cluster's ``n_workers x threads_per_worker``
to the cores. With ``n_jobs=None`` the search uses ``torch.get_num_threads()``
threads, as torch would.
"""

import os
import pickle
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

__all__ = [
    "n_workers", "backend_kind", "FitContext", "torch_threads", "deterministic_arithmetic",
    "parallel_map", "native_threads",
]

_PROCESS_BACKENDS = {"LokyBackend", "MultiprocessingBackend"}
_THREAD_BACKENDS = {"ThreadingBackend", "SequentialBackend"}

# Worker-side cache of loaded fit contexts: one fit at a time per process,
# so keep only the latest to bound memory.
_LOADED = {}


def n_workers(n_jobs):
    """Workers joblib would use for ``n_jobs`` under the active backend."""
    from joblib import effective_n_jobs

    return max(1, effective_n_jobs(n_jobs))


def backend_kind():
    """``"dask"``, ``"process"``, ``"thread"`` or ``"other"``."""
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    name = type(backend).__name__
    if name == "DaskDistributedBackend":
        return "dask"
    if name in _PROCESS_BACKENDS:
        return "process"
    if name in _THREAD_BACKENDS:
        return "thread"
    return "other"


class _FileRef:
    """Points a worker process at a pickled context; loaded once per process."""

    def __init__(self, path, token):
        self.path = path
        self.token = token

    def load(self):
        hit = _LOADED.get(self.token)
        if hit is None:
            with open(self.path, "rb") as f:
                hit = pickle.load(f)
            _LOADED.clear()
            _LOADED[self.token] = hit
        return hit


def resolve(ref):
    """The fit context a task received (a file reference, or the object)."""
    return ref.load() if isinstance(ref, _FileRef) else ref


class FitContext:
    """What every evaluation of a fit reads, shipped to workers once.

    Parameters
    ----------
    payload : object
        Picklable; here ``(data, objectives)`` (``data.config`` says how
        heads are trained).
    """

    def __init__(self, payload):
        self.payload = payload
        self._refs = {}
        self._tmp = None
        self.n_shipped = 0

    def ref(self, kind):
        """A per-backend reference to pass as a task argument."""
        if kind in ("thread", "other"):
            return self.payload
        if kind in self._refs:
            return self._refs[kind]
        if kind == "dask":
            from joblib.parallel import get_active_backend

            client = get_active_backend()[0].client
            # hash=False: see dask/distributed#3703 (joblib does the same).
            ref = client.scatter(self.payload, broadcast=True, hash=False)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="evoprune-")
            path = os.path.join(self._tmp.name, "context.pkl")
            with open(path, "wb") as f:
                pickle.dump(self.payload, f, protocol=pickle.HIGHEST_PROTOCOL)
            ref = _FileRef(path, uuid.uuid4().hex)
        self.n_shipped += 1
        self._refs[kind] = ref
        return ref

    def close(self):
        """Release the scattered data and the temporary file."""
        fut = self._refs.pop("dask", None)
        if fut is not None:
            try:
                fut.release()
            except Exception:  # the client may already be gone
                pass
        self._refs.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def torch_threads(kind, workers):
    """Threads each worker should use, or None for the worker's own setting."""
    if kind in ("process", "thread"):
        return max(1, (os.cpu_count() or 1) // workers)
    return None


# torch.set_num_threads writes a process-wide default (which threads read
# the first time they run an op) and the calling thread's own setting. The
# scopes of all threads share one count, so that the last scope to close,
# whichever thread it runs in, restores the setting found by the first.
_LOCK = threading.Lock()
_DEPTH = 0
_SAVED = None
_LOCAL = threading.local()


class _Arithmetic:
    """An open :func:`deterministic_arithmetic` scope: its thread pool."""

    def __init__(self, n_threads):
        self.n_threads = max(1, int(n_threads))
        self._pool = None

    def map(self, fn, items):
        """``[fn(item) for item in items]``, in order, on the scope's threads.

        Every call runs single-threaded (see :func:`deterministic_arithmetic`),
        so the results do not depend on how many run at once.
        """
        items = list(items)
        if self.n_threads <= 1 or len(items) <= 1:
            return [fn(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                min(self.n_threads, 64), thread_name_prefix="evoprune",
                initializer=_one_torch_thread,
            )
        return list(self._pool.map(fn, items))

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _one_torch_thread():
    import torch

    torch.set_num_threads(1)


@contextmanager
def deterministic_arithmetic(n_threads=None):
    """Run torch single-threaded here; parallelise with :func:`parallel_map`.

    Matrix products and reductions split their sums differently with the
    number of threads (MKL, oneDNN and torch's own reductions all do, for
    some shapes), and one last-bit difference in a head can change a
    validation prediction and so the course of the search. Inside this
    scope every torch kernel of the calling thread runs on one thread;
    :func:`parallel_map` spreads fixed pieces of work over ``n_threads``
    Python threads instead. The setting of ``torch.set_num_threads`` is
    restored when the outermost scope (over all threads) closes.

    Parameters
    ----------
    n_threads : int, default=None
        Threads for :func:`parallel_map`; ``torch.get_num_threads()`` (as
        found on entry) when None. A scope opened inside another one of the
        same thread with ``n_threads=None`` is that scope.

    Yields
    ------
    scope : object
        With ``map(fn, items)``.
    """
    import torch

    global _DEPTH, _SAVED
    outer = getattr(_LOCAL, "scope", None)
    if outer is not None and n_threads is None:
        yield outer
        return
    before = torch.get_num_threads()
    with _LOCK:
        if _DEPTH == 0:
            _SAVED = before
        _DEPTH += 1
        torch.set_num_threads(1)
    scope = _Arithmetic(before if n_threads is None else n_threads)
    _LOCAL.scope = scope
    try:
        yield scope
    finally:
        _LOCAL.scope = outer
        scope.close()
        with _LOCK:
            _DEPTH -= 1
            torch.set_num_threads(_SAVED if _DEPTH == 0 else (1 if outer else before))


@contextmanager
def native_threads():
    """Inside a :func:`deterministic_arithmetic` scope, give the calling
    thread's torch kernels the scope's ``n_threads`` again, for work that is
    not made thread-independent (a backbone's convolutions)."""
    import torch

    scope = getattr(_LOCAL, "scope", None)
    if scope is None or scope.n_threads <= 1:
        yield
        return
    torch.set_num_threads(scope.n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(1)


def parallel_map(fn, items):
    """``[fn(item) for item in items]`` with single-threaded torch, in parallel.

    Inside :func:`deterministic_arithmetic`, on its threads; outside, in a
    scope of its own with ``torch.get_num_threads()`` threads.
    """
    with deterministic_arithmetic() as scope:
        return scope.map(fn, items)
