"""The batched engine trains the same heads as one skorch net per candidate."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import MaskedHead
from evoprune_sklearn._engine import TrainingConfig, train_heads

N_FEATURES, N_CLASSES = 48, 3


def _data(n, seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(N_CLASSES, N_FEATURES))
    y = rng.integers(N_CLASSES, size=n)
    X = rng.normal(size=(n, N_FEATURES)) + 0.6 * centers[y]
    return X.astype(np.float32), y


def _genomes(n, length, seed):
    """Densities spread over (0, 1], as the search's first population."""
    rng = np.random.default_rng(seed)
    G = rng.random((n, length)) < rng.uniform(0.05, 1.0, size=(n, 1))
    G[~G.any(axis=1), 0] = True
    return G


@pytest.fixture(scope="module")
def split():
    X, y = _data(300, seed=0)
    return X[:200], y[:200], X[200:], y[200:]


def _config(**kw):
    base = dict(
        encoding="features", n_features=N_FEATURES, hidden_layer_sizes=(16,),
        n_classes=N_CLASSES, lr=0.02, max_epochs=5, batch_size=50, patience=3,
        init_seed=7, shuffle_seed=11,
    )
    base.update(kw)
    return TrainingConfig(**base)


def _accuracy(heads, X, y):
    return (heads.logits(X).argmax(-1).numpy() == y[None]).mean(axis=1)


@pytest.mark.parametrize("encoding, n_genomes", [("features", 20), ("neurons", 8)])
def test_batched_engine_matches_skorch_reference(split, encoding, n_genomes):
    # Tolerance: both engines start from the same weights and see the same
    # batches, so they differ only by float rounding. A genome's validation
    # accuracy may differ by at most one validation sample, and the mean accuracy
    # of the genomes by at most 0.5 points.
    X, y, X_val, y_val = split
    config = _config(encoding=encoding)
    length = N_FEATURES if encoding == "features" else 16
    genomes = _genomes(n_genomes, length, seed=1)
    fast = train_heads(genomes, X, y, config)
    ref = train_heads(genomes, X, y, config, engine="skorch")
    acc_fast, acc_ref = _accuracy(fast, X_val, y_val), _accuracy(ref, X_val, y_val)
    assert np.abs(acc_fast - acc_ref).max() <= 1.0 / len(y_val) + 1e-12
    assert abs(acc_fast.mean() - acc_ref.mean()) <= 0.005
    assert acc_ref.mean() > 0.6  # the heads learned something
    np.testing.assert_array_equal(fast.epochs, ref.epochs)
    np.testing.assert_allclose(
        [c[-1] for c in fast.train_loss], [c[-1] for c in ref.train_loss],
        rtol=1e-3, atol=1e-5,
    )


def test_early_stopping_matches_reference_and_freezes_the_head(split):
    # A coarse tolerance makes candidates stop at different epochs, so the
    # batched engine has to drop them from the stack mid-training.
    X, y, _, _ = split
    config = _config(max_epochs=10, patience=1, tol=0.2)
    genomes = _genomes(6, N_FEATURES, seed=2)
    fast = train_heads(genomes, X, y, config)
    ref = train_heads(genomes, X, y, config, engine="skorch")
    np.testing.assert_array_equal(fast.epochs, ref.epochs)
    assert len(set(fast.epochs)) > 1 and fast.epochs.max() < 10
    # A stopped head is exactly the head trained for its epochs alone.
    i = int(np.argmin(fast.epochs))
    alone = train_heads(genomes[[i]], X, y, _config(max_epochs=int(fast.epochs[i])))
    for (w, b), (w1, b1) in zip(fast.head_parameters(i), alone.head_parameters(0)):
        assert torch.equal(w, w1) and torch.equal(b, b1)


def test_evaluation_does_not_depend_on_the_generation(split):
    # What makes n_jobs and Dask give the front of n_jobs=1: a genome's head
    # is a function of the genome, whoever shares its generation.
    X, y, X_val, _ = split
    config = _config()
    genomes = _genomes(12, N_FEATURES, seed=3)
    together = train_heads(genomes, X, y, config).logits(X_val)
    order = [7, 2, 11]
    apart = train_heads(genomes[order], X, y, config).logits(X_val)
    for j, i in enumerate(order):
        assert torch.equal(apart[j], together[i])
    alone = train_heads(genomes[[5]], X, y, config).logits(X_val)
    assert torch.equal(alone[0], together[5])


def test_compact_parameters_rebuild_the_masked_head(split):
    X, y, X_val, _ = split
    config = _config(max_epochs=3)
    genomes = _genomes(4, N_FEATURES, seed=4)
    heads = train_heads(genomes, X, y, config)
    logits = heads.logits(X_val)
    for i, genome in enumerate(genomes):
        sets, compact = heads.compact_parameters(i)
        assert compact[0][0].shape == (genome.sum(), 16)
        head = MaskedHead(N_FEATURES, (16,), N_CLASSES, feature_mask=genome)
        head.load_parameters(heads.head_parameters(i))
        with torch.no_grad():
            out = head(torch.as_tensor(X_val))
        torch.testing.assert_close(out, logits[i], rtol=1e-5, atol=1e-5)


def test_flops_count_falls_with_density(split):
    X, y, _, _ = split
    config = _config(max_epochs=1)
    dense = np.ones((1, N_FEATURES), dtype=bool)
    sparse = dense.copy()
    sparse[0, N_FEATURES // 4 :] = False
    f_dense = train_heads(dense, X, y, config).flops
    f_sparse = train_heads(sparse, X, y, config).flops
    assert f_sparse < 0.5 * f_dense


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_engine_matches_cpu(split):
    X, y, X_val, y_val = split
    genomes = _genomes(6, N_FEATURES, seed=5)
    cpu = train_heads(genomes, X, y, _config())
    gpu = train_heads(genomes, X, y, _config(device="cuda"))
    assert gpu.groups[0].weights[0].is_cuda
    acc_cpu, acc_gpu = _accuracy(cpu, X_val, y_val), _accuracy(gpu, X_val, y_val)
    assert np.abs(acc_cpu - acc_gpu).max() <= 2.0 / len(y_val)


@pytest.mark.parametrize("hidden", [(), (16,)])
@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs_engine_matches_skorch_reference(split, hidden, weighted):
    # The default recipe: full-batch L-BFGS on the penalised, sample-weighted
    # loss. The compact engine trains kept units only, its first layer in
    # preconditioned coordinates; skorch trains the masked full-size head in
    # raw coordinates. Same objective: for a linear head (convex) the same
    # optimum.
    X, y, X_val, y_val = split
    config = _config(solver="lbfgs", alpha=1.0, max_iter=100, hidden_layer_sizes=hidden)
    genomes = _genomes(6, N_FEATURES, seed=3)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    fast = train_heads(genomes, X, y, config, sample_weight=w)
    ref = train_heads(genomes, X, y, config, engine="skorch", sample_weight=w)
    acc_fast, acc_ref = _accuracy(fast, X_val, y_val), _accuracy(ref, X_val, y_val)
    assert acc_ref.mean() > 0.6 and acc_fast.mean() > 0.6
    if hidden:
        # Non-convex: the compact engine's preconditioned first layer takes
        # other iterates than skorch's raw one and may end in another local
        # optimum; the heads are equally good on average.
        assert abs(acc_fast.mean() - acc_ref.mean()) <= 0.03
    else:
        # convex: the same optimum (up to a shift of all logits)
        assert np.abs(acc_fast - acc_ref).max() <= 1.0 / len(y_val) + 1e-12
        np.testing.assert_allclose(torch.softmax(fast.logits(X_val), -1),
                                   torch.softmax(ref.logits(X_val), -1), atol=1e-2)


def test_lbfgs_head_is_penalised_logistic_regression(split):
    # alpha=1 with a linear head is LogisticRegression(C=1) divided by n.
    from sklearn.linear_model import LogisticRegression

    X, y, X_val, _ = split
    config = _config(solver="lbfgs", alpha=1.0, max_iter=500, hidden_layer_sizes=())
    heads = train_heads(np.ones((1, N_FEATURES), bool), X, y, config)
    lr = LogisticRegression(C=1.0, max_iter=5000).fit(X, y)
    np.testing.assert_allclose(heads.head_parameters(0)[0][0].numpy(), lr.coef_.T,
                               atol=2e-2)
    assert np.mean(heads.logits(X_val)[0].argmax(-1).numpy() == lr.predict(X_val)) > 0.98


def test_sample_weight_two_equals_a_duplicate(split):
    X, y, X_val, _ = split
    config = _config(solver="lbfgs", alpha=1.0, max_iter=200, hidden_layer_sizes=())
    genomes = _genomes(3, N_FEATURES, seed=4)
    w = np.ones(len(y))
    w[:20] = 2.0
    weighted = train_heads(genomes, X, y, config, sample_weight=w)
    repeated = train_heads(genomes, np.vstack([X, X[:20]]), np.r_[y, y[:20]], config)
    np.testing.assert_allclose(torch.softmax(weighted.logits(X_val), -1),
                               torch.softmax(repeated.logits(X_val), -1), atol=1e-2)


def _lbfgs_config(**kw):
    return _config(**{"solver": "lbfgs", "alpha": 1.0, "max_iter": 50,
                      "hidden_layer_sizes": (), **kw})


def _same_heads(a, i, b, j):
    (sets_a, pa), (sets_b, pb) = a.compact_parameters(i), b.compact_parameters(j)
    assert all(np.array_equal(u, v) for u, v in zip(sets_a, sets_b))
    for (w, c), (w1, c1) in zip(pa, pb):
        assert torch.equal(w, w1) and torch.equal(c, c1)
    assert a.train_loss[i] == b.train_loss[j]
    assert a.epochs[i] == b.epochs[j]


@pytest.mark.parametrize("weighted", [False, True])
def test_stacked_lbfgs_head_does_not_depend_on_the_generation(split, weighted):
    # The stacked engine trains a generation in slots of fixed shape and
    # refills a slot when its candidate converges: a genome's head must be
    # bit-for-bit the same whatever its slot, its start time and its company.
    from evoprune_sklearn._engine import _stackable, _StackedProblem

    X, y, _, _ = split
    config = _lbfgs_config()
    assert _stackable(config)
    genomes = _genomes(40, N_FEATURES, seed=6)  # more genomes than slots
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
    genomes = _genomes(6, N_FEATURES, seed=7)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = train_heads(genomes, X, y, _lbfgs_config())
        torch.set_num_threads(2)
        two = train_heads(genomes, X, y, _lbfgs_config())
    finally:
        torch.set_num_threads(before)
    for i in range(len(genomes)):
        _same_heads(one, i, two, i)


def test_stacked_lbfgs_converges_like_torch_lbfgs(split):
    # Same objective and stopping rules as torch.optim.LBFGS with a
    # strong-Wolfe line search, trained per head: the same optimum, in about
    # as many function evaluations.
    from evoprune_sklearn._engine import _train_lbfgs

    X, y, X_val, _ = split
    config = _lbfgs_config(max_iter=100)
    genomes = _genomes(8, N_FEATURES, seed=8)
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


def test_stacked_lbfgs_memory_is_bounded():
    # Slots shrink with the problem so that a pool stays within its budget.
    from evoprune_sklearn._engine import _STACK, _STACK_BYTES, _stack_size

    assert _stack_size(1664, 1344, 10) == _STACK
    for d_pad in (1344, 50_048, 1_000_000):
        size = _stack_size(4096, d_pad, 10)
        per_candidate = 4 * 10 * (d_pad * 30 + 6 * 4096)
        assert size >= 1 and (size == 1 or size * per_candidate <= _STACK_BYTES)


def test_stacked_lbfgs_search_gives_the_same_front_for_any_n_jobs():
    # The default linear head goes through the stacked engine; process
    # workers each train their share of a generation (other company in the
    # pool). At realistic sizes: tests/test_reproducibility.py.
    from sklearn.datasets import make_classification

    from evoprune_sklearn import EvoPruneClassifier

    X, y = make_classification(n_samples=160, n_features=24, n_informative=8,
                               n_classes=3, random_state=0)
    X = X.astype(np.float32)

    def front(n_jobs):
        clf = EvoPruneClassifier(
            backbone=None, hidden_layer_sizes=(), solver="lbfgs",
            objectives=("accuracy", "complexity"), pop_size=6, n_evaluations=12,
            random_state=0, n_jobs=n_jobs,
        ).fit(X, y)
        return sorted((tuple(np.flatnonzero(m.genome)), tuple(m.objectives.values()))
                      for m in clf.pareto_front_)

    assert front(1) == front(2)
