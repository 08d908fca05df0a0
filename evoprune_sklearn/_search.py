"""NSGA-II over bit genomes, driven by pymoo's ask-and-tell interface.

pymoo owns the genetic algorithm (non-dominated sorting, crowding distance,
tournament selection, uniform crossover, bit-flip mutation, duplicate
elimination). This module owns what is specific to pruning: the paper's
density-spread initialisation, the repair of empty genomes, the evaluation
cache, the archive of non-dominated heads and the per-generation history.
"""

import time

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.operators.crossover.ux import UniformCrossover
from pymoo.operators.mutation.bitflip import BitflipMutation

from ._engines import expand_parameters, train_heads
from ._front import Member, ParetoFront, merge_front, sorted_front
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
    "generations_without_improvement",
    "run_search",
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


def _evaluate_chunk(genomes, context, engine, n_threads):
    """Train heads for ``genomes`` and score them on every objective.

    Runs in a worker: ``context`` is the fit context (or a reference to it,
    see :mod:`evoprune_sklearn._parallel`). Trained heads come back compact
    (kept units only), which is all that has to travel. ``n_threads``:
    threads it may use (None: ``torch.get_num_threads()``); the values do
    not depend on it.
    """
    data, config, objectives = resolve(context)
    with deterministic_arithmetic(n_threads):
        values, heads, flops = score_genomes(genomes, data, config, objectives, engine)
    params = [heads.compact_parameters(i) for i in range(len(genomes))]
    return values, params, heads.train_loss, flops


def _validation_weight(fold):
    if fold.w_val is None:
        return float(len(fold.y_val))
    return float(np.sum(np.asarray(fold.w_val, dtype=np.float64)))


def score_genomes(genomes, data, config, objectives, engine="batched", train=None):
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
    config : TrainingConfig
    objectives : list of Objective
    engine : str, default="batched"
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
        return _score_genomes(genomes, data, config, objectives, engine,
                              train_heads if train is None else train)


def _evaluate_objective(obj, heads, data):
    """``obj.evaluate`` with single-threaded head arithmetic (the scope is open).

    Objectives that run the backbone inside the search (``Adversarial``,
    ``ODIN(epsilon>0)`` on images: a ``_backbone`` set by ``prepare``) get
    the scope's threads back for it: their convolutions would take up to
    ``n_threads`` times longer on one thread, and, like feature extraction,
    are not made independent of the thread count.
    """
    if getattr(obj, "_backbone", None) is not None:
        with native_threads():
            return obj.evaluate(heads, data)
    return obj.evaluate(heads, data)


def _score_genomes(genomes, data, config, objectives, engine, train):
    heads = train(genomes, data.X_train, data.y_train, config, engine=engine,
                  sample_weight=data.w_train)
    values = np.column_stack([_evaluate_objective(obj, heads, data) for obj in objectives])
    flops = heads.flops
    cv = [j for j, o in enumerate(objectives) if o.cross_validated]
    if data.folds and cv:
        values = values.astype(np.float64)
        total = _validation_weight(data)
        values[:, cv] *= total
        for fold in data.folds:
            fold_heads = train(genomes, fold.X_train, fold.y_train, config,
                               engine=engine, sample_weight=fold.w_train)
            flops += fold_heads.flops
            w = _validation_weight(fold)
            values[:, cv] += w * np.column_stack(
                [_evaluate_objective(objectives[j], fold_heads, fold) for j in cv])
            total += w
            del fold_heads
        values[:, cv] /= total
    return values, heads, flops


def _n_workers(n_jobs):
    return n_workers(n_jobs)


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
    front and one generation.
    """

    def __init__(self, data, config, objectives, engine, n_jobs):
        self.data = data
        self.config = config
        self.objectives = objectives
        self.engine = engine
        self.n_jobs = n_jobs
        self.cache = {}
        self.n_trained = 0
        self.flops = 0.0
        self.train_seconds = 0.0
        self.context = FitContext((data, config, objectives))

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
        n_workers = min(_n_workers(self.n_jobs), len(genomes))
        if n_workers <= 1:
            chunks = [np.arange(len(genomes))]
            outs = [_evaluate_chunk(genomes, self.context.payload, self.engine, None)]
        else:
            from joblib import Parallel, delayed

            kind = backend_kind()
            ref = self.context.ref(kind)
            threads = torch_threads(kind, n_workers)
            chunks = _balanced_chunks(genomes, n_workers)
            outs = Parallel(n_jobs=n_workers)(
                delayed(_evaluate_chunk)(genomes[c], ref, self.engine, threads)
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


def run_search(
    data,
    config,
    objectives,
    *,
    pop_size,
    n_evaluations,
    crossover_rate=1.0,
    mutation_rate=None,
    seed=0,
    engine="batched",
    n_jobs=None,
    verbose=0,
    state=None,
    control=None,
    sampling=None,
    gene_scores=None,
):
    """Evolve pruning genomes with NSGA-II.

    Parameters
    ----------
    data : ObjectiveContext
    config : TrainingConfig
    objectives : list of Objective
    pop_size : int
    n_evaluations : int
        Genomes evaluated in total, the first population included (and the
        generations of a continued search). The last generation is cut short
        so that exactly this many are evaluated.
    crossover_rate : float, default=1.0
        Probability that two parents are recombined (uniform crossover,
        each gene from either parent with probability 0.5).
    mutation_rate : float, default=None
        Per-gene bit-flip probability; ``1 / n_genes`` when None.
    seed : int
    engine : {"batched", "skorch"}
    n_jobs : int, default=None
    verbose : int, default=0
    state : SearchState, default=None
        Records the search after every generation (in memory, and in a
        checkpoint file when it has a path); when it holds a loaded
        checkpoint or a previous fit's state, the search continues from there.
    control : SearchControl, default=None
        Stop criteria besides ``n_evaluations``, and callbacks.
    sampling : Sampling, default=None
        The first population; the papers' :class:`DensitySampling` when None
        (see :class:`~evoprune_sklearn._operators.InformedSampling`).
    gene_scores : GeneScores, default=None
        When given, mutation is
        :class:`~evoprune_sklearn._operators.InformedMutation` on these
        scores, updated from the front after every generation; pymoo's
        bit-flip mutation when None.

    Returns
    -------
    front : ParetoFront
        Members carry trained parameters (no class labels yet).
    history : list of dict
    evaluator : _Evaluator
    stop_reason : str
        ``"n_evaluations"``, ``"no_new_genomes"`` (pymoo could breed no
        genome it had not seen), or a reason of ``control``.
    """
    control = SearchControl() if control is None else control
    L = config.head.n_genes
    problem = PruningProblem(L, len(objectives))
    if gene_scores is None:
        mutation = BitflipMutation(prob=1.0, prob_var=mutation_rate or 1.0 / L)
    else:
        mutation = InformedMutation(gene_scores, prob_var=mutation_rate or 1.0 / L)
    algorithm = NSGA2(
        pop_size=pop_size,
        sampling=DensitySampling() if sampling is None else sampling,
        crossover=UniformCrossover(prob=crossover_rate),
        mutation=mutation,
        repair=KeepOneGene(),
        eliminate_duplicates=True,
    )
    algorithm.setup(problem, seed=int(seed), verbose=False)
    front = ParetoFront(
        [o.name for o in objectives], [o.greater_is_better for o in objectives]
    )
    evaluator = _Evaluator(data, config, objectives, engine, n_jobs)
    history = []
    done = 0
    bar = None
    t_start = time.perf_counter()
    generation = 0
    segment_start = 0
    if state is not None:
        done, generation, front = state.restore(algorithm, evaluator, front, history)
        segment_start = state.segment_start
        if history:
            t_start -= history[-1]["seconds"]
    if gene_scores is not None:
        gene_scores.update(front)
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_evaluations, desc="NSGA-II evaluations", unit="genome",
                   initial=done)
    control.begin(history, segment_start)
    reason = "n_evaluations" if done >= n_evaluations else None
    try:
        while reason is None:
            pop = algorithm.ask()
            if pop is None or len(pop) == 0:
                reason = "no_new_genomes"
                control.message = "NSGA-II bred no genome it had not seen"
                break
            pop = pop[: n_evaluations - done]
            genomes = np.asarray(pop.get("X"), dtype=bool)
            raw, candidates = evaluator(genomes)
            F = np.column_stack(
                [o.to_minimize(raw[:, j]) for j, o in enumerate(objectives)]
            )
            pop.set("F", F)
            algorithm.tell(infills=pop)
            front = merge_front(front, candidates)
            if gene_scores is not None:
                gene_scores.update(front)
            done += len(pop)
            record = {
                "generation": generation,
                "n_evaluations": done,
                "n_trained": evaluator.n_trained,
                "front_size": len(front),
                "seconds": time.perf_counter() - t_start,
            }
            for o in objectives:
                col = [m.objectives[o.name] for m in front]
                record[f"best_{o.name}"] = max(col) if o.greater_is_better else min(col)
            record["hypervolume"] = front_hypervolume(front, objectives)
            history.append(record)
            generation += 1
            reason = control.after_generation(
                record, front, history, budget_spent=done >= n_evaluations
            )
            if state is not None:
                state.save(algorithm, evaluator, front, history, done, generation,
                           stop_reason=reason)
            if bar is not None:
                bar.update(len(pop))
                bar.set_postfix(front=len(front))
    except BaseException as exc:
        control.end(history, "interrupted" if isinstance(exc, KeyboardInterrupt)
                    else "error")
        raise
    finally:
        if bar is not None:
            bar.close()
    if verbose and reason != "n_evaluations":
        print(f"Search stopped after {done} evaluations: {control.message}.")
    control.end(history, reason)
    return sorted_front(front), history, evaluator, reason
