"""n_jobs and Dask spread evaluations without changing the result.

These fronts are small (160 x 24) and check the mechanics (shipping the fit
context, chunking); tests/test_reproducibility.py compares fronts bit for
bit at 1,000 x 1,280, where thread counts change matrix products.
"""

import numpy as np
import pytest
from sklearn.datasets import make_classification

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._parallel import FitContext, resolve
from evoprune_sklearn._search import _balanced_chunks
from evoprune_sklearn.objectives import ObjectiveContext


def _problem():
    X, y = make_classification(
        n_samples=160, n_features=24, n_informative=8, n_classes=3, random_state=0
    )
    return X.astype(np.float32), y


def _estimator(**kw):
    return EvoPruneClassifier(
        backbone=None, hidden_layer_sizes=(8,), objectives=("accuracy", "complexity"),
        pop_size=6, n_evaluations=12, random_state=0, **kw,
    )


def _front(clf):
    return sorted(
        (tuple(np.flatnonzero(m.genome)), tuple(m.objectives.values()))
        for m in clf.pareto_front_
    )


@pytest.fixture(scope="module")
def sequential_front():
    X, y = _problem()
    return _front(_estimator(n_jobs=1).fit(X, y))


def test_dask_cluster_gives_the_sequential_front(sequential_front):
    import distributed  # the dask extra, installed by `make test`
    import joblib

    X, y = _problem()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:
        seen = []
        real_scatter = client.scatter

        def counting_scatter(data, **kw):
            seen.append(type(data).__name__)
            return real_scatter(data, **kw)

        client.scatter = counting_scatter
        with joblib.parallel_config(backend="dask"):
            clf = _estimator().fit(X, y)
        tasks = sum(
            v for k, v in client.run_on_scheduler(_task_prefix_counts).items()
            if "evaluate_chunk" in k
        )
    assert _front(clf) == sequential_front
    # The features went out once for the whole fit, not with every task.
    assert seen.count("tuple") == 1
    assert tasks >= 2


def _task_prefix_counts(dask_scheduler=None):
    counts = {}
    for prefix, tp in dask_scheduler.task_prefixes.items():
        counts[prefix] = sum(tp.state_counts.values())
    return counts


def test_process_workers_give_the_sequential_front(sequential_front):
    X, y = _problem()
    assert _front(_estimator(n_jobs=2).fit(X, y)) == sequential_front


def test_process_workers_give_the_sequential_front_with_kfold_fitness():
    X, y = _problem()
    sequential = _front(_estimator(n_jobs=1, n_folds=3).fit(X, y))
    assert _front(_estimator(n_jobs=2, n_folds=3).fit(X, y)) == sequential


def test_a_search_continued_with_more_workers_gives_the_sequential_front(
    sequential_front,
):
    # n_jobs may change between a fit and its warm-started continuation
    X, y = _problem()
    clf = _estimator(n_jobs=1, warm_start=True).set_params(n_evaluations=6).fit(X, y)
    clf.set_params(n_jobs=2, n_evaluations=12).fit(X, y)
    assert _front(clf) == sequential_front


def test_fit_context_is_written_once_and_loaded_once_per_process():
    data = ObjectiveContext(np.ones((4, 2)), np.zeros(4), np.ones((2, 2)), np.zeros(2), 2)
    context = FitContext((data, "config", []))
    ref = context.ref("process")
    assert context.ref("process") is ref and context.n_shipped == 1
    first, second = resolve(ref), resolve(ref)
    assert first is second
    np.testing.assert_array_equal(first[0].X_train, data.X_train)
    assert context.ref("thread") is context.payload
    context.close()


def test_chunks_cover_every_genome_once_with_balanced_cost():
    rng = np.random.default_rng(0)
    genomes = rng.random((30, 100)) < rng.random((30, 1))
    chunks = _balanced_chunks(genomes, 4)
    np.testing.assert_array_equal(np.sort(np.concatenate(chunks)), np.arange(30))
    loads = [genomes[c].sum() for c in chunks]
    assert max(loads) - min(loads) <= genomes.sum(axis=1).max() + 1


def test_deterministic_arithmetic_restores_the_thread_setting():
    # Scopes opened by several threads at once (the threading backend): the
    # user's torch setting comes back once the last one closes, and inside
    # every torch kernel runs on one thread.
    import threading

    import torch

    from evoprune_sklearn._parallel import deterministic_arithmetic, parallel_map

    before = torch.get_num_threads()
    seen = []
    barrier = threading.Barrier(2)

    def worker():
        with deterministic_arithmetic(2) as scope:
            barrier.wait()
            seen.append(torch.get_num_threads())
            seen.extend(scope.map(lambda _: torch.get_num_threads(), range(4)))
            barrier.wait()

    try:
        torch.set_num_threads(3)
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == [1] * 10
        assert torch.get_num_threads() == 3
        assert parallel_map(lambda x: x * 2, [1, 2, 3]) == [2, 4, 6]
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
