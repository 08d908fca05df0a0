"""The stacked L-BFGS engine (engines/_stacked_lbfgs.py): linear heads in a
pool of fixed shape, each candidate's iterates its own."""

import numpy as np
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import evoprune_sklearn._engines._stacked_lbfgs as stacked_module
from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._engines import TrainingConfig, train_heads
from evoprune_sklearn._engines._lbfgs import _train_lbfgs, full_batch
from evoprune_sklearn._engines._stacked_lbfgs import (
    _HISTORY,
    _STACK,
    _Pool,
    _stack_size,
    _stackable,
    _StackedProblem,
)
from evoprune_sklearn._parallel import deterministic_arithmetic

from ._helpers import N_FEATURES, against_skorch, lbfgs_config, make_genomes


def _same_heads(a, i, b, j):
    (sets_a, pa), (sets_b, pb) = a.compact_parameters(i), b.compact_parameters(j)
    assert all(np.array_equal(u, v) for u, v in zip(sets_a, sets_b))
    for (w, c), (w1, c1) in zip(pa, pb):
        assert torch.equal(w, w1) and torch.equal(c, c1)
    assert a.train_loss[i] == b.train_loss[j]
    assert a.epochs[i] == b.epochs[j]


@pytest.mark.parametrize("weighted", [False, True])
def test_stacked_engine_matches_skorch_reference(split, weighted):
    # A linear head is convex: the same optimum as skorch's masked full-size
    # head trained with torch's L-BFGS (up to a shift of all logits).
    X_val, y_val = split[2:]
    fast, ref, acc_fast, acc_ref = against_skorch(split, lbfgs_config(max_iter=100), weighted)
    assert np.abs(acc_fast - acc_ref).max() <= 1.0 / len(y_val) + 1e-12
    np.testing.assert_allclose(torch.softmax(fast.logits(X_val), -1),
                               torch.softmax(ref.logits(X_val), -1), atol=1e-2)


def test_lbfgs_head_is_penalised_logistic_regression(split):
    # alpha=1 with a linear head is LogisticRegression(C=1) divided by n.
    from sklearn.linear_model import LogisticRegression

    X, y, X_val, _ = split
    config = lbfgs_config(max_iter=500)
    heads = train_heads(np.ones((1, N_FEATURES), bool), X, y, config)
    lr = LogisticRegression(C=1.0, max_iter=5000).fit(X, y)
    np.testing.assert_allclose(heads.head_parameters(0)[0][0].numpy(), lr.coef_.T,
                               atol=2e-2)
    assert np.mean(heads.logits(X_val)[0].argmax(-1).numpy() == lr.predict(X_val)) > 0.98


def test_sample_weight_two_equals_a_duplicate(split):
    X, y, X_val, _ = split
    config = lbfgs_config(max_iter=200)
    genomes = make_genomes(3, N_FEATURES, seed=4)
    w = np.ones(len(y))
    w[:20] = 2.0
    weighted = train_heads(genomes, X, y, config, sample_weight=w)
    repeated = train_heads(genomes, np.vstack([X, X[:20]]), np.r_[y, y[:20]], config)
    np.testing.assert_allclose(torch.softmax(weighted.logits(X_val), -1),
                               torch.softmax(repeated.logits(X_val), -1), atol=1e-2)


@pytest.mark.parametrize("weighted", [False, True])
def test_stacked_lbfgs_head_does_not_depend_on_the_generation(split, weighted):
    # The stacked engine trains a generation in slots of fixed shape and
    # refills a slot when its candidate converges: a genome's head must be
    # bit-for-bit the same whatever its slot, its start time and its company.
    X, y, _, _ = split
    config = lbfgs_config()
    assert _stackable(config)
    genomes = make_genomes(40, N_FEATURES, seed=6)  # more genomes than slots
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y)) if weighted else None
    together = train_heads(genomes, X, y, config, sample_weight=w)
    order = [33, 2, 17, 0]
    apart = train_heads(genomes[order], X, y, config, sample_weight=w)
    alone = train_heads(genomes[[25]], X, y, config, sample_weight=w)
    for j, i in enumerate(order):
        _same_heads(apart, j, together, i)
    _same_heads(alone, 0, together, 25)
    assert len(genomes) > _StackedProblem(
        torch.as_tensor(X), torch.as_tensor(y), None, len(y), config,
        torch.zeros(N_FEATURES), torch.ones(N_FEATURES)).S
    assert len(set(together.epochs)) > 1  # candidates converge at their own pace


def test_stacked_lbfgs_does_not_depend_on_torch_threads(split):
    # A quick check of the code path only: products this small are never
    # split across threads. tests/test_reproducibility.py checks whole
    # searches at 1,000 x 1,280, where they are.
    X, y, _, _ = split
    genomes = make_genomes(6, N_FEATURES, seed=7)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = train_heads(genomes, X, y, lbfgs_config())
        torch.set_num_threads(2)
        two = train_heads(genomes, X, y, lbfgs_config())
    finally:
        torch.set_num_threads(before)
    for i in range(len(genomes)):
        _same_heads(one, i, two, i)


def test_stacked_lbfgs_converges_like_torch_lbfgs(split):
    # Same objective and stopping rules as torch.optim.LBFGS with a
    # strong-Wolfe line search, trained per head: the same optimum, in about
    # as many function evaluations.
    X, y, X_val, _ = split
    config = lbfgs_config(max_iter=100)
    genomes = make_genomes(8, N_FEATURES, seed=8)
    stacked = train_heads(genomes, X, y, config)
    torch_lbfgs = _train_lbfgs(genomes, X, y, config)
    loss = np.array([c[-1] for c in stacked.train_loss])
    loss_ref = np.array([c[-1] for c in torch_lbfgs.train_loss])
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(torch.softmax(stacked.logits(X_val), -1),
                               torch.softmax(torch_lbfgs.logits(X_val), -1), atol=5e-3)
    evals = np.mean([len(c) for c in stacked.train_loss])
    evals_ref = np.mean([len(c) for c in torch_lbfgs.train_loss])
    assert evals <= 1.25 * evals_ref
    assert stacked.flops > 0 and stacked.executed_flops >= stacked.flops


def _peak_bytes(fn):
    """Peak bytes torch allocated on the CPU while ``fn`` ran (profiler's count
    of every allocation and release, in time order), and ``fn``'s result."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage),
                    key=lambda e: e.time_range.start)
    now = peak = 0
    for e in events:
        now += e.self_cpu_memory_usage
        peak = max(peak, now)
    return peak, out


def _pool_peak(n_samples, n_features, n_classes, n_genomes):
    """Peak working memory of a pool, the finished candidates' results excluded."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, n_features)).astype(np.float32)
    y = rng.integers(n_classes, size=n_samples)
    config = TrainingConfig("features", n_features, (), n_classes, solver="lbfgs",
                            alpha=1.0, max_iter=12)
    X, y, w, n_weighted, mean, scale = full_batch(X, y, config, None)
    problem = _StackedProblem(X, y, w, n_weighted, config, mean, scale)
    sets = [config.head.unit_sets(g) for g in rng.random((n_genomes, n_features)) < 0.5]
    init = config.initial_parameters()
    with deterministic_arithmetic(n_threads=1):  # every allocation on this thread
        peak, (results, _, _) = _peak_bytes(lambda: _Pool(problem, sets, init, config).run())
    kept = sum(x.numel() * x.element_size() for x, _ in results)
    return peak - kept, problem.S


@pytest.mark.parametrize("n_samples", [300, 1100])  # 2 and 5 blocks of samples
def test_stacked_pool_memory_stays_within_its_budget(monkeypatch, n_samples):
    # _STACK_BYTES promises the bytes a pool holds (parameters, gradients,
    # history, logits); _stack_size picks the slots to keep it. Measured:
    # with a budget of four slots' worth, the pool takes four slots, and
    # every byte it allocates while training stays within the budget.
    n_features, n_classes = 500, 10
    d_pad, n_pad = 512, -(-n_samples // 64) * 64
    per_slot = 4 * n_classes * (d_pad * (2 * _HISTORY + 10) + 6 * n_pad)
    monkeypatch.setattr(stacked_module, "_STACK_BYTES", 4 * per_slot)
    used, slots = _pool_peak(n_samples, n_features, n_classes, n_genomes=4)
    assert slots == 4 < _STACK
    # (the lower bound: the measurement does see the pool's tensors)
    assert 0.5 * 4 * per_slot < used <= 4 * per_slot


def test_stack_size_halves_until_the_pool_fits():
    assert _stack_size(1664, 1344, 10) == _STACK  # the demo's size: every slot
    assert _stack_size(4096, 1_000_000, 10) == 1  # one slot, whatever it needs


def test_stacked_lbfgs_search_gives_the_same_front_for_any_n_jobs(blobs_small, engine_calls):
    # The default linear head goes through the stacked engine; process
    # workers each train their share of a generation (other company in the
    # pool). At realistic sizes: tests/test_reproducibility.py.
    X, y = blobs_small

    def front(n_jobs):
        clf = EvoPruneClassifier(
            backbone=None, hidden_layer_sizes=(), solver="lbfgs",
            objectives=("accuracy", "complexity"), pop_size=6, n_evaluations=12,
            random_state=0, n_jobs=n_jobs,
        ).fit(X, y)
        return sorted((tuple(np.flatnonzero(m.genome)), tuple(m.objectives.values()))
                      for m in clf.pareto_front_)

    one = front(1)
    # n_jobs=1: every head of the fit went through this engine
    assert engine_calls["stacked_lbfgs"] >= 12
    assert sum(engine_calls.values()) == engine_calls["stacked_lbfgs"]
    assert one == front(2)


def _wide_problem(n_genomes=24):
    """A problem at the size of a real search's products (512 features, 5
    classes), with more genomes than slots, so the pool ends with a tail of
    empty slots."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 512)).astype(np.float32)
    y = rng.integers(5, size=500)
    X[np.arange(500), y] += 1.5
    return X, y, make_genomes(n_genomes, 512, seed=9)


def test_pool_computes_only_the_slots_still_training(monkeypatch):
    # Once the queue runs dry, the products with the feature matrix take
    # only the slots still training: each slot's rows come out of the same
    # sums (rows_independent holds at this size), so the heads are those of
    # a pool computing every slot, bit for bit, for fewer products.
    X, y, genomes = _wide_problem()
    config = TrainingConfig("features", 512, (), 5, solver="lbfgs", alpha=1.0, max_iter=50)
    Xt, yt, w, n_weighted, mean, scale = full_batch(X, y, config, None)
    assert _StackedProblem(Xt, yt, w, n_weighted, config, mean, scale).rows_independent()
    compact = train_heads(genomes, X, y, config)
    monkeypatch.setattr(_StackedProblem, "rows_independent", lambda self: False)
    every_slot = train_heads(genomes, X, y, config)
    for i in range(len(genomes)):
        _same_heads(compact, i, every_slot, i)
    assert compact.executed_flops < 0.9 * every_slot.executed_flops
    assert compact.flops == every_slot.flops


def test_rows_independent_is_probed_once_per_shape(monkeypatch):
    # The probe compares the products of every number of slots with the full
    # ones; a BLAS that computes a row differently with other rows around it
    # (monkeypatched here) makes the pool compute every slot.
    X, y, _ = _wide_problem(n_genomes=3)
    config = TrainingConfig("features", 512, (), 5, solver="lbfgs", alpha=1.0, max_iter=20)
    Xt, yt, w, n_weighted, mean, scale = full_batch(X, y, config, None)
    problem = _StackedProblem(Xt, yt, w, n_weighted, config, mean, scale)
    monkeypatch.setattr(stacked_module, "_ROWS_INDEPENDENT", {})
    calls = []
    real = stacked_module._probe_rows
    monkeypatch.setattr(stacked_module, "_probe_rows",
                        lambda p: calls.append(p) or real(p))
    assert problem.rows_independent() and problem.rows_independent()
    assert len(calls) == 1
    # a product whose rows depend on the rows around them (the last row
    # perturbed by the number of rows) fails the probe
    matmul = torch.Tensor.__matmul__

    def row_dependent(a, b):
        out = matmul(a, b)
        out[-1] += 1e-3 * a.shape[0]
        return out

    monkeypatch.setattr(torch.Tensor, "__matmul__", row_dependent)
    assert not real(problem)


def test_two_loop_keeps_its_pairs_only_within_the_memory_budget(monkeypatch):
    # The recursion keeps the history pairs it gathers for its second loop
    # when the budget has room for the copy; with a budget just below that it
    # gathers them again: the same heads either way.
    X, y, genomes = _wide_problem(n_genomes=6)
    config = TrainingConfig("features", 512, (), 5, solver="lbfgs", alpha=1.0, max_iter=30)
    Xt, yt, w, n_weighted, mean, scale = full_batch(X, y, config, None)
    problem = _StackedProblem(Xt, yt, w, n_weighted, config, mean, scale)
    assert problem.keep_pairs and problem.S == _STACK
    kept = train_heads(genomes, X, y, config)
    n_pad = Xt.shape[0] + (-Xt.shape[0]) % 64
    without = _STACK * stacked_module._slot_bytes(n_pad, problem.D, 5)
    monkeypatch.setattr(stacked_module, "_STACK_BYTES", without)
    problem = _StackedProblem(Xt, yt, w, n_weighted, config, mean, scale)
    assert not problem.keep_pairs and problem.S == _STACK
    gathered = train_heads(genomes, X, y, config)
    for i in range(len(genomes)):
        _same_heads(kept, i, gathered, i)
