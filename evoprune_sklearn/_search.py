"""NSGA-II over bit genomes, driven by pymoo's ask-and-tell interface.

pymoo owns the genetic algorithm (non-dominated sorting, crowding distance,
tournament selection, uniform crossover, bit-flip mutation, duplicate
elimination). This module owns what is specific to pruning: the paper's
density-spread initialisation, the repair of empty genomes, the evaluation
cache, the archive of non-dominated heads and the per-generation history.
"""

import dataclasses
import numbers
import time
from typing import Any

import numpy as np
import torch
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.operators.crossover.ux import UniformCrossover
from pymoo.operators.mutation.bitflip import BitflipMutation

from ._engines import expand_parameters, train_heads
from ._front import Member, ParetoFront, merge_front
from ._operators import InformedMutation, density_spread_genomes
from ._parallel import (
    FitContext,
    backend_kind,
    deterministic_arithmetic,
    n_workers,
    native_threads,
    resolve,
    torch_threads,
)
from .callbacks import StopSearch
from .selection import _minimized

__all__ = [
    "DensitySampling",
    "KeepOneGene",
    "SearchControl",
    "NSGA2Search",
    "SearchResult",
    "generations_without_improvement",
    "genome_key",
    "score_genomes",
]


def genome_key(genome):
    """A hashable, compact key for a genome."""
    genome = np.asarray(genome, dtype=bool)
    return genome.size, np.packbits(genome).tobytes()


class PruningProblem(Problem):
    """Binary decision space of ``n_genes``; evaluation happens outside."""

    def __init__(self, n_genes, n_objectives):
        super().__init__(n_var=n_genes, n_obj=n_objectives, xl=0, xu=1, vtype=bool)


class DensitySampling(Sampling):
    """The papers' initialisation: each genome's density drawn from U(0, 1).

    For every individual draw ``p ~ U(0, 1)`` and switch on ``round(p * L)``
    genes chosen at random (at least one), so the first population spreads
    over every density instead of clustering at 50%.
    """

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        return density_spread_genomes(n_samples, problem.n_var, random_state)


class KeepOneGene(Repair):
    """Repair a genome with no gene on by switching one random gene on.

    An empty head cannot be trained into a classifier; repairing it keeps the
    offspring count of every generation and costs nothing. (Scoring it
    "worst" instead would put it on the front: zero complexity is optimal.)
    """

    def _do(self, problem, X, random_state=None, **kwargs):
        X = np.asarray(X, dtype=bool).copy()
        empty = np.flatnonzero(~X.any(axis=1))
        rng = random_state if random_state is not None else np.random.default_rng(0)
        for i in empty:
            X[i, rng.integers(X.shape[1])] = True
        return X


def _evaluate_chunk(genomes, context, n_threads):
    """Train heads for ``genomes`` and score them on every objective.

    Runs in a worker: ``context`` is the fit context (or a reference to it,
    see :mod:`evoprune_sklearn._parallel`). Trained heads come back compact
    (kept units only), which is all that has to travel. ``n_threads``:
    threads it may use (None: ``torch.get_num_threads()``); the values do
    not depend on it.
    """
    data, objectives = resolve(context)
    with deterministic_arithmetic(n_threads):
        values, heads, flops = score_genomes(genomes, data, objectives)
    params = [heads.compact_parameters(i) for i in range(len(genomes))]
    return values, params, heads.train_loss, flops


def _validation_weight(fold):
    if fold.w_val is None:
        return float(len(fold.y_val))
    return float(np.sum(np.asarray(fold.w_val, dtype=np.float64)))


def score_genomes(genomes, data, objectives, train=None):
    """Train heads for ``genomes`` and measure every objective.

    The heads are trained on ``data``'s training fold and every objective is
    evaluated on them. With k-fold fitness (``data.folds``), each further
    fold trains the genomes' heads again on its own training part, and the
    :attr:`~evoprune_sklearn.objectives.Objective.cross_validated`
    objectives (accuracy) are the mean over all folds weighted by each
    fold's validation weight: for accuracy, the accuracy of the out-of-fold
    predictions over every training sample. Each head is only ever scored
    on rows it was not trained on.

    Parameters
    ----------
    genomes : ndarray of bool of shape (n_candidates, n_genes)
    data : ObjectiveContext
        The fold data, and the ``config`` the heads are trained with (its
        ``engine`` included).
    objectives : list of Objective
    train : callable, default=None
        The training function (``train_heads`` when None).

    Returns
    -------
    values : ndarray of shape (n_candidates, n_objectives)
    heads : TrainedHeads
        The heads of the first fold (what the members keep).
    flops : float
        Training FLOPs of every fold together.
    """
    with deterministic_arithmetic():
        return _score_genomes(genomes, data, objectives,
                              train_heads if train is None else train)


def _evaluate_objective(obj, heads, data):
    """``obj.evaluate`` with single-threaded head arithmetic (the scope is open).

    Objectives that run the backbone inside the search (``Adversarial``,
    ``ODIN(epsilon>0)`` on images: ``runs_backbone`` after ``prepare``) get
    the scope's threads back for it: their convolutions would take up to
    ``n_threads`` times longer on one thread, and, like feature extraction,
    are not made independent of the thread count.
    """
    if obj.runs_backbone:
        with native_threads():
            return obj.evaluate(heads, data)
    return obj.evaluate(heads, data)


def _score_genomes(genomes, data, objectives, train):
    config = data.config
    heads = train(genomes, data.X_train, data.y_train, config, sample_weight=data.w_train)
    values = np.column_stack([_evaluate_objective(obj, heads, data) for obj in objectives])
    flops = heads.flops
    cv = [j for j, o in enumerate(objectives) if o.cross_validated]
    if data.folds and cv:
        values = values.astype(np.float64)
        total = _validation_weight(data)
        values[:, cv] *= total
        for fold in data.folds:
            fold_heads = train(genomes, fold.X_train, fold.y_train, config,
                               sample_weight=fold.w_train)
            flops += fold_heads.flops
            w = _validation_weight(fold)
            values[:, cv] += w * np.column_stack(
                [_evaluate_objective(objectives[j], fold_heads, fold) for j in cv])
            total += w
            del fold_heads
        values[:, cv] /= total
    return values, heads, flops


def _balanced_chunks(genomes, n_chunks):
    """Split genomes into chunks of about equal training cost.

    Cost grows with the kept genes; longest-first greedy assignment keeps
    the slowest worker, which the generation waits for, short.
    """
    cost = genomes.sum(axis=1) + 1
    loads = np.zeros(n_chunks)
    chunks = [[] for _ in range(n_chunks)]
    for i in np.argsort(-cost, kind="stable"):
        j = int(np.argmin(loads))
        chunks[j].append(int(i))
        loads[j] += cost[i]
    return [np.array(sorted(c), dtype=int) for c in chunks if c]


class _Evaluator:
    """Evaluates genomes with a cache; trains only genomes never seen before.

    A genome's result depends on the genome alone (see
    :mod:`evoprune_sklearn._engines`), so a generation can be split across
    workers in any way and the front is the same as with ``n_jobs=1``.
    Only objective values are cached; trained parameters of a genome live
    on in the front's members or not at all, so memory is bounded by the
    front and one generation. ``start`` (a :class:`SearchResult`) gives the
    cache and the counters of the search being continued.
    """

    def __init__(self, data, objectives, n_jobs, start):
        self.data = data
        self.config = data.config
        self.objectives = objectives
        self.n_jobs = n_jobs
        self.cache = dict(start.evaluated)
        self.n_trained = start.n_trained
        self.flops = start.flops
        self.train_seconds = start.train_seconds
        self.context = FitContext((data, objectives))

    def __call__(self, genomes):
        keys = [genome_key(g) for g in genomes]
        new = []
        seen = set()
        for i, k in enumerate(keys):
            if k not in self.cache and k not in seen:
                new.append(i)
                seen.add(k)
        candidates = self.train([genomes[i] for i in new]) if new else []
        for i, member in zip(new, candidates):
            self.cache[keys[i]] = np.array(
                [member.objectives[o.name] for o in self.objectives]
            )
        F = np.array([self.cache[k] for k in keys], dtype=float)
        return F, candidates

    def train(self, genomes):
        """Train and score ``genomes`` (no cache look-up): one Member each."""
        t0 = time.perf_counter()
        results = self._run(genomes)
        self.train_seconds += time.perf_counter() - t0
        self.n_trained += len(genomes)
        return [
            Member(
                genome,
                {o.name: float(v) for o, v in zip(self.objectives, values)},
                params=expand_parameters(*params, self.config),
                train_loss=loss,
            )
            for genome, (values, params, loss) in zip(genomes, results)
        ]

    def _run(self, genomes):
        genomes = np.asarray(genomes, dtype=bool)
        workers = min(n_workers(self.n_jobs), len(genomes))
        if workers <= 1:
            chunks = [np.arange(len(genomes))]
            outs = [_evaluate_chunk(genomes, self.context.payload, None)]
        else:
            from joblib import Parallel, delayed

            kind = backend_kind()
            ref = self.context.ref(kind)
            threads = torch_threads(kind, workers)
            chunks = _balanced_chunks(genomes, workers)
            outs = Parallel(n_jobs=workers)(
                delayed(_evaluate_chunk)(genomes[c], ref, threads)
                for c in chunks
            )
        results = [None] * len(genomes)
        for chunk, (values, params, losses, flops) in zip(chunks, outs):
            self.flops += flops
            for j, i in enumerate(chunk):
                results[i] = (values[j], params[j], losses[j])
        return results

    def close(self):
        """Release what was shipped to workers for this fit."""
        self.context.close()


def hypervolume_reference(objectives):
    """The fixed reference point of the hypervolume, in minimisation form.

    Each objective's worst possible value: every built-in objective lies in
    ``[0, 1]`` (accuracy, AUROC and attacked accuracy: worst 0; complexity:
    worst 1), so the reference is ``0`` for objectives to maximise (minimised
    as ``-value``) and ``1`` for those to minimise. An objective may set a
    ``hypervolume_reference`` attribute (its own worst value) instead.
    Members at the reference in some objective add no volume.
    """
    ref = []
    for o in objectives:
        worst = getattr(o, "hypervolume_reference", 0.0 if o.greater_is_better else 1.0)
        ref.append(-worst if o.greater_is_better else worst)
    return np.array(ref, dtype=float)


def front_hypervolume(front, objectives):
    """Hypervolume of ``front`` (pymoo's exact indicator) at the fixed
    :func:`hypervolume_reference`; with the built-in objectives it is the
    fraction of the unit objective box the front dominates, in ``[0, 1]``."""
    from pymoo.indicators.hv import HV

    if len(front) == 0:
        return 0.0
    return float(HV(ref_point=hypervolume_reference(objectives))(_minimized(front)))


class SearchControl:
    """When a search stops, and which callbacks hear about each generation.

    The search stops between generations, after the first generation at
    which one of these holds (checked in this order, which is also the
    order of precedence for ``stop_reason``):

    * ``"n_evaluations"``: the evaluation budget is spent;
    * ``"max_time"``: ``max_time`` seconds have passed since ``started``;
    * ``"n_iter_no_change"``: the front's hypervolume has not grown by more
      than ``tol`` for ``n_iter_no_change`` generations of this run segment
      (see :func:`generations_without_improvement`);
    * a callback returned True or raised
      :class:`~evoprune_sklearn.callbacks.StopSearch`: its name.

    Every callback sees every generation, also when another one stops it.

    Parameters
    ----------
    callbacks : list of (str, callback), default=()
    estimator : EvoPruneClassifier, default=None
        Passed to the callbacks' ``on_search_begin``.
    max_time : float, default=None
    started : float, default=None
        ``time.perf_counter()`` at which the time budget started.
    n_iter_no_change : int, default=None
    tol : float, default=0.0
    """

    def __init__(self, callbacks=(), estimator=None, max_time=None, started=None,
                 n_iter_no_change=None, tol=0.0):
        self.callbacks = list(callbacks)
        self.estimator = estimator
        self.max_time = max_time
        self.started = time.perf_counter() if started is None else started
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.segment_start = 0
        self.message = ""

    def begin(self, history, segment_start):
        self.segment_start = segment_start
        for _, cb in self.callbacks:
            if hasattr(cb, "on_search_begin"):
                cb.on_search_begin(self.estimator, [dict(r) for r in history])

    def after_generation(self, record, front, history, budget_spent):
        """Call the callbacks; return the stop reason, or None to go on."""
        stopped_by = None
        for name, cb in self.callbacks:
            # the front is immutable: every callback can have it as it is
            hook = getattr(cb, "on_generation_end", cb)
            try:
                stop = hook(dict(record), front)
                message = ""
            except StopSearch as exc:
                stop, message = True, str(exc)
            if stop and stopped_by is None:
                stopped_by = name
                self.message = f"{name} stopped the search" + (
                    f": {message}" if message else "")
        if budget_spent:
            self.message = f"n_evaluations={record['n_evaluations']} reached"
            return "n_evaluations"
        elapsed = time.perf_counter() - self.started
        if self.max_time is not None and elapsed >= self.max_time:
            self.message = f"max_time={self.max_time} s reached ({elapsed:.1f} s)"
            return "max_time"
        if self.n_iter_no_change is not None and generations_without_improvement(
            history, self.segment_start, self.tol
        ) >= self.n_iter_no_change:
            self.message = (
                f"hypervolume did not improve by more than {self.tol} for "
                f"{self.n_iter_no_change} generation(s)"
            )
            return "n_iter_no_change"
        return stopped_by

    def end(self, history, reason):
        for _, cb in self.callbacks:
            if hasattr(cb, "on_search_end"):
                cb.on_search_end([dict(r) for r in history], reason)


def generations_without_improvement(history, segment_start=0, tol=0.0):
    """Generations since the hypervolume last grew by more than ``tol``.

    Counted within the run segment that starts at record ``segment_start``
    (where a ``fit`` started or continued a search), against the best
    hypervolume before it; a function of the history alone, so a search
    resumed from a checkpoint after a crash stops where the uninterrupted
    one would.

    Examples
    --------
    >>> from evoprune_sklearn._search import generations_without_improvement
    >>> h = [{"hypervolume": v} for v in (0.5, 0.6, 0.6, 0.60001, 0.6)]
    >>> generations_without_improvement(h, tol=1e-3)
    3
    >>> generations_without_improvement(h, segment_start=3, tol=1e-3)
    2
    """
    best = history[segment_start - 1]["hypervolume"] if segment_start > 0 else -np.inf
    count = 0
    for record in history[segment_start:]:
        if record["hypervolume"] > best + tol:
            best, count = record["hypervolume"], 0
        else:
            count += 1
    return count


def _tensor(array, dtype):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, dtype=dtype)))


def _rows(rows, dtype):
    """A tensor with one row per item of ``rows`` (shape ``(0, 0)`` for none)."""
    return _tensor(rows, dtype) if len(rows) else torch.from_numpy(np.zeros((0, 0), dtype))


@dataclasses.dataclass(eq=False)  # arrays inside: compare fields, not results
class SearchResult:
    """What a search found, and everything needed to continue it.

    Returned by :meth:`NSGA2Search.run` (as pymoo's ``minimize`` returns a
    ``Result``), and handed to its ``on_generation`` hook after every
    generation. :meth:`state_dict` gives the state as tensors and plain
    values (what a checkpoint file stores); :meth:`load_state_dict` puts
    one back, and ``run(start=result)`` continues the search exactly where
    it stood.

    Parameters
    ----------
    front : ParetoFront or None, default=None
        The non-dominated members found so far, in the order the search
        kept them (trained parameters, no class labels).
    history : list of dict, default=[]
        One record per generation (see ``EvoPruneClassifier.history_``).
    n_evaluations : int, default=0
        Genomes evaluated, cached ones included.
    n_trained : int, default=0
        Genomes trained (each distinct genome once).
    n_generations : int, default=0
        Completed generations.
    stop_reason : str or None, default=None
        Why the search ended with this generation; None while it goes on.
    segment_start : int, default=0
        The generation at which the current run segment began (where stop
        criteria such as ``n_iter_no_change`` start counting).
    flops : float, default=0.0
        Training FLOPs spent.
    train_seconds : float, default=0.0
        Seconds spent training and scoring heads.
    population : dict of ndarray or None, default=None
        NSGA-II's survivors: ``X`` (genomes), ``F`` (objectives to
        minimise), ``rank`` and ``crowding``, in pymoo's order; None before
        the first generation.
    random_state : dict or None, default=None
        The state of pymoo's bit generator (``bit_generator.state``).
    evaluated : dict, default={}
        Objective values of every genome evaluated, by :func:`genome_key`.

    Examples
    --------
    >>> from evoprune_sklearn._search import SearchResult
    >>> result = SearchResult()
    >>> result.load_state_dict(SearchResult(n_evaluations=6).state_dict())
    >>> result.n_evaluations, result.stop_reason
    (6, None)
    """

    front: Any = None
    history: list = dataclasses.field(default_factory=list)
    n_evaluations: int = 0
    n_trained: int = 0
    n_generations: int = 0
    stop_reason: str | None = None
    segment_start: int = 0
    flops: float = 0.0
    train_seconds: float = 0.0
    population: dict | None = None
    random_state: dict | None = None
    evaluated: dict = dataclasses.field(default_factory=dict)

    _COUNTERS = ("n_evaluations", "n_trained", "n_generations", "stop_reason",
                 "segment_start", "flops", "train_seconds")

    def state_dict(self):
        """The state as tensors and plain values (``torch.save``-able).

        Returns
        -------
        state : dict
            ``"meta"`` (numbers, strings, lists and dicts only: JSON-safe)
            and tensors.
        """
        members = list(self.front) if self.front is not None else []
        meta = {k: getattr(self, k) for k in self._COUNTERS}
        meta["history"] = [dict(r) for r in self.history]
        meta["random_state"] = self.random_state
        meta["objective_names"] = None if self.front is None else list(
            self.front.objective_names)
        meta["greater_is_better"] = None if self.front is None else [
            bool(g) for g in self.front.greater_is_better]
        meta["members"] = [{"objectives": dict(m.objectives),
                            "train_loss": [float(v) for v in m.train_loss]} for m in members]
        keys = list(self.evaluated)
        meta["genome_size"] = int(keys[0][0]) if keys else 0
        state = {
            "evaluated_genomes": _rows([np.frombuffer(k[1], dtype=np.uint8) for k in keys],
                                       np.uint8),
            "evaluated_values": _rows([self.evaluated[k] for k in keys], np.float64),
            "front_genomes": _rows([m.genome for m in members], bool),
            "front_params": [[(torch.as_tensor(w).cpu(), torch.as_tensor(b).cpu())
                              for w, b in m.params] for m in members],
        }
        if self.population is not None:
            meta["x_dtype"] = np.asarray(self.population["X"]).dtype.str
            state.update({
                "population_X": _tensor(self.population["X"], bool),
                **{f"population_{k}": _tensor(self.population[k], np.float64)
                   for k in ("F", "rank", "crowding")}})
        state["meta"] = meta
        return state

    def load_state_dict(self, state):
        """Take the state of :meth:`state_dict` (in place).

        Parameters
        ----------
        state : dict
        """
        meta = state["meta"]
        for key in self._COUNTERS:
            setattr(self, key, meta[key])
        self.history = [dict(r) for r in meta["history"]]
        self.random_state = meta["random_state"]
        self.front = None
        if meta["objective_names"] is not None:
            genomes = state["front_genomes"].numpy()
            self.front = ParetoFront(meta["objective_names"], meta["greater_is_better"],
                                     members=tuple(
                Member(genomes[i], info["objectives"],
                       params=[(w, b) for w, b in state["front_params"][i]],
                       train_loss=info["train_loss"])
                for i, info in enumerate(meta["members"])))
        keys, values = state["evaluated_genomes"].numpy(), state["evaluated_values"].numpy()
        self.evaluated = {(meta["genome_size"], keys[i].tobytes()): values[i].copy()
                          for i in range(len(keys))}
        self.population = None
        if "population_X" in state:
            self.population = {"X": state["population_X"].numpy().astype(
                np.dtype(meta["x_dtype"]))}
            for k in ("F", "rank", "crowding"):
                self.population[k] = state[f"population_{k}"].numpy().copy()
            self.population["rank"] = self.population["rank"].astype(int)


class NSGA2Search:
    """NSGA-II over pruning genomes: the settings of a search, given once.

    :meth:`run` takes the data (an
    :class:`~evoprune_sklearn.objectives.ObjectiveContext`, whose ``config``
    says how a candidate head is trained, engine included) and the objectives,
    and returns a :class:`SearchResult`; given a result as ``start``, it
    continues that search, which then ends where an uninterrupted one would.

    Parameters
    ----------
    pop_size : int, default=30
    n_evaluations : int, default=200
        Genomes evaluated in total, the first population included (and the
        generations of a continued search). The last generation is cut short
        so that exactly this many are evaluated.
    crossover_rate : float, default=1.0
        Probability that two parents are recombined (uniform crossover,
        each gene from either parent with probability 0.5).
    mutation_rate : float, default=None
        Per-gene bit-flip probability; ``1 / n_genes`` when None.
    seed : int, default=0
        Seed of pymoo's random generator.
    n_jobs : int, default=None
        Workers that train a generation's heads (see :func:`n_workers`).
    sampling : Sampling, default=None
        The first population; the papers' :class:`DensitySampling` when None
        (see :class:`~evoprune_sklearn._operators.InformedSampling`).
    gene_scores : GeneScores, default=None
        When given, mutation is
        :class:`~evoprune_sklearn._operators.InformedMutation` on these
        scores, updated from the front after every generation; pymoo's
        bit-flip mutation when None.
    control : SearchControl, default=None
        Stop criteria besides ``n_evaluations``, and callbacks.
    verbose : int, default=0
        A progress bar when positive.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._engines import TrainingConfig
    >>> from evoprune_sklearn._search import NSGA2Search
    >>> from evoprune_sklearn.objectives import Accuracy, Complexity, ObjectiveContext
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(60, 8)).astype(np.float32), np.arange(60) % 2
    >>> data = ObjectiveContext(X[:40], y[:40], X[40:], y[40:], n_classes=2,
    ...                         config=TrainingConfig("features", 8, (), 2))
    >>> result = NSGA2Search(pop_size=4, n_evaluations=8).run(
    ...     data, [Accuracy(), Complexity()])
    >>> result.n_evaluations, result.n_generations, result.stop_reason
    (8, 2, 'n_evaluations')
    """

    def __init__(self, *, pop_size=30, n_evaluations=200, crossover_rate=1.0,
                 mutation_rate=None, seed=0, n_jobs=None, sampling=None,
                 gene_scores=None, control=None, verbose=0):
        self.pop_size = pop_size
        self.n_evaluations = n_evaluations
        self.crossover_rate = crossover_rate
        self.mutation_rate = mutation_rate
        self.seed = seed
        self.n_jobs = n_jobs
        self.sampling = sampling
        self.gene_scores = gene_scores
        self.control = control
        self.verbose = verbose

    def _check(self, data, objectives):
        """Refuse settings and inputs a search cannot run with."""
        for name, low in (("pop_size", 1), ("n_evaluations", 1)):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) \
                    or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        if self.n_evaluations < self.pop_size:
            raise ValueError(
                f"n_evaluations={self.n_evaluations} is smaller than pop_size="
                f"{self.pop_size}; the first population alone needs pop_size "
                "evaluations.")
        for name in ("crossover_rate", "mutation_rate"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, numbers.Real)
                                          and 0 <= value <= 1):
                raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
        if getattr(data, "config", None) is None:
            raise ValueError("data.config is None: the search needs the TrainingConfig "
                             "of its heads in the ObjectiveContext.")
        if not objectives:
            raise ValueError("objectives is empty: a search needs at least one.")

    def run(self, data, objectives, *, start=None, on_generation=None):
        """Evolve the front; continue ``start`` when given.

        Parameters
        ----------
        data : ObjectiveContext
            The fold data, without raw inputs, with the ``config`` of the
            heads.
        objectives : list of Objective
            Prepared objectives.
        start : SearchResult, default=None
            A search to continue (from its last completed generation).
        on_generation : callable, default=None
            Called with the :class:`SearchResult` of every completed
            generation (a checkpoint writes it); its ``stop_reason`` says
            whether the search ends there.

        Returns
        -------
        result : SearchResult
            ``stop_reason`` is ``"n_evaluations"``, ``"no_new_genomes"``
            (pymoo could breed no genome it had not seen), or a reason of
            ``control``.
        """
        self._check(data, objectives)
        run = _Run(self, data, objectives, SearchResult() if start is None else start)
        try:
            return run.loop(on_generation)
        finally:
            run.evaluator.close()


def _nsga2(search, problem, start):
    """pymoo's NSGA-II for ``search``'s settings, afresh or at ``start``'s generation.

    A continued search gives NSGA-II the stored survivors as its first
    population and tells it their stored objectives (pymoo's public
    ask-and-tell, which draws nothing for them), then puts back the
    ranks and crowding distances they had among their rivals and the
    random generator's state: the next generation is bred exactly as
    in an uninterrupted search.
    """
    L = problem.n_var
    rate = search.mutation_rate or 1.0 / L
    sampling = DensitySampling() if search.sampling is None else search.sampling
    if start.population is not None:
        sampling = Population.new(X=start.population["X"])
    algorithm = NSGA2(
        pop_size=search.pop_size,
        sampling=sampling,
        crossover=UniformCrossover(prob=search.crossover_rate),
        mutation=(BitflipMutation(prob=1.0, prob_var=rate) if search.gene_scores is None
                  else InformedMutation(search.gene_scores, prob_var=rate)),
        repair=KeepOneGene(),
        eliminate_duplicates=True,
    )
    algorithm.setup(problem, seed=int(search.seed), verbose=False)
    if start.population is not None:
        pop = algorithm.ask()
        pop.set("F", start.population["F"])
        algorithm.tell(infills=pop)
        survivors = Population.new(X=start.population["X"], F=start.population["F"])
        survivors.set("rank", start.population["rank"])
        survivors.set("crowding", start.population["crowding"])
        algorithm.pop = survivors
        algorithm.n_iter = start.n_generations + 1
    if start.random_state is not None:
        algorithm.random_state.bit_generator.state = start.random_state
    return algorithm


class _Run:
    """One run of a search: the state a :class:`SearchResult` snapshots."""

    def __init__(self, search, data, objectives, start):
        self.search, self.objectives = search, objectives
        config = data.config
        names = [o.name for o in objectives]
        L = config.head.n_genes
        if start.front is not None and list(start.front.objective_names) != names:
            raise ValueError(
                f"start holds a search of the objectives {start.front.objective_names!r}, "
                f"not of {tuple(names)!r}.")
        self.algorithm = _nsga2(search, PruningProblem(L, len(objectives)), start)
        self.evaluator = _Evaluator(data, objectives, search.n_jobs, start)
        self.front = start.front if start.front is not None else ParetoFront(
            names, [o.greater_is_better for o in objectives])
        self.history = [dict(r) for r in start.history]
        self.done, self.generation = start.n_evaluations, start.n_generations
        # a search killed mid-way resumes its run segment; a finished one
        # (its budget spent, a stop criterion met) starts a new one
        self.segment_start = (start.segment_start if start.stop_reason is None
                              else start.n_generations)
        self.control = SearchControl() if search.control is None else search.control
        # after each told generation: a failed ask (no_new_genomes) draws,
        # but the search stands where its last generation left it
        self.random_state = self.algorithm.random_state.bit_generator.state
        self.t_start = time.perf_counter() - (
            self.history[-1]["seconds"] if self.history else 0.0)

    def loop(self, on_generation):
        search, control = self.search, self.control
        if search.gene_scores is not None:
            search.gene_scores.update(self.front)
        bar = None
        if search.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=search.n_evaluations, desc="NSGA-II evaluations",
                       unit="genome", initial=self.done)
        control.begin(self.history, self.segment_start)
        reason = "n_evaluations" if self.done >= search.n_evaluations else None
        try:
            while reason is None:
                n = self.generation_step()
                if n == 0:
                    reason = "no_new_genomes"
                    control.message = "NSGA-II bred no genome it had not seen"
                    break
                reason = control.after_generation(
                    self.history[-1], self.front, self.history,
                    budget_spent=self.done >= search.n_evaluations)
                if on_generation is not None:
                    on_generation(self.result(reason))
                if bar is not None:
                    bar.update(n)
                    bar.set_postfix(front=len(self.front))
        except BaseException as exc:
            control.end(self.history, "interrupted" if isinstance(exc, KeyboardInterrupt)
                        else "error")
            raise
        finally:
            if bar is not None:
                bar.close()
        if search.verbose and reason != "n_evaluations":
            print(f"Search stopped after {self.done} evaluations: {control.message}.")
        control.end(self.history, reason)
        return self.result(reason)

    def generation_step(self):
        """Breed, evaluate and tell one generation; return its size (0: none bred)."""
        pop = self.algorithm.ask()
        if pop is None or len(pop) == 0:
            return 0
        pop = pop[: self.search.n_evaluations - self.done]
        genomes = np.asarray(pop.get("X"), dtype=bool)
        raw, candidates = self.evaluator(genomes)
        pop.set("F", np.column_stack(
            [o.to_minimize(raw[:, j]) for j, o in enumerate(self.objectives)]))
        self.algorithm.tell(infills=pop)
        self.front = merge_front(self.front, candidates)
        if self.search.gene_scores is not None:
            self.search.gene_scores.update(self.front)
        self.random_state = self.algorithm.random_state.bit_generator.state
        self.done += len(pop)
        self.history.append(self.record())
        self.generation += 1
        return len(pop)

    def record(self):
        record = {
            "generation": self.generation,
            "n_evaluations": self.done,
            "n_trained": self.evaluator.n_trained,
            "front_size": len(self.front),
            "seconds": time.perf_counter() - self.t_start,
        }
        for o in self.objectives:
            col = [m.objectives[o.name] for m in self.front]
            record[f"best_{o.name}"] = max(col) if o.greater_is_better else min(col)
        record["hypervolume"] = front_hypervolume(self.front, self.objectives)
        return record

    def result(self, stop_reason):
        """A snapshot of the search after its last completed generation."""
        algorithm, ev = self.algorithm, self.evaluator
        population = None
        if algorithm.is_initialized:
            pop = algorithm.pop
            population = {"X": np.array(pop.get("X")),
                          **{k: np.array(pop.get(k), dtype=np.float64)
                             for k in ("F", "rank", "crowding")}}
            population["rank"] = population["rank"].astype(int)
        return SearchResult(
            front=self.front, history=[dict(r) for r in self.history],
            n_evaluations=int(self.done), n_trained=int(ev.n_trained),
            n_generations=int(self.generation), stop_reason=stop_reason,
            segment_start=int(self.segment_start), flops=float(ev.flops),
            train_seconds=float(ev.train_seconds), population=population,
            random_state=self.random_state, evaluated=dict(ev.cache))
