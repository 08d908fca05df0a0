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

Oversubscription rule: torch threads per evaluation x evaluations running at
once <= CPU cores. With process backends each worker gets
``cpu_count // n_workers`` torch threads; with threads the parent's torch
pool is shrunk the same way for the duration; Dask workers keep the thread
count their nanny sets (``OMP_NUM_THREADS=1`` by default, and a
``LocalCluster`` runs one task a core), so size the cluster's
``n_workers x threads_per_worker`` to the cores.
"""

import os
import pickle
import tempfile
import uuid
from contextlib import contextmanager

__all__ = ["n_workers", "backend_kind", "FitContext", "torch_threads"]

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
        Picklable; here ``(data, config, objectives)``.
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
    """Torch threads each worker should use, or None to leave it alone."""
    if kind == "process":
        return max(1, (os.cpu_count() or 1) // workers)
    return None


@contextmanager
def shared_torch_pool(kind, workers):
    """Shrink the parent's torch pool while ``workers`` threads share it."""
    import torch

    if kind != "thread" or workers <= 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)
