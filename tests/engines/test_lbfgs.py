"""The per-head L-BFGS engine (engines/_lbfgs.py): heads with hidden
layers, each alone, full batch, on its kept units."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._engines import train_heads
from evoprune_sklearn._engines._lbfgs import _train_lbfgs, input_preconditioner

from ._helpers import N_FEATURES, against_skorch, make_config, make_genomes


def _config(**kw):
    return make_config(**{"solver": "lbfgs", "alpha": 1.0, "max_iter": 100, **kw})


@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs_engine_matches_skorch_reference(split, weighted):
    # Full-batch L-BFGS on the penalised, sample-weighted loss. This engine
    # trains kept units only, its first layer in preconditioned coordinates;
    # skorch trains the masked full-size head in raw coordinates. Same
    # objective, but non-convex with a hidden layer: the iterates differ and
    # may end in another local optimum; the heads are equally good on average.
    _, _, acc_fast, acc_ref = against_skorch(split, _config(hidden_layer_sizes=(16,)),
                                             weighted)
    assert abs(acc_fast.mean() - acc_ref.mean()) <= 0.03


def test_a_head_does_not_depend_on_the_generation(split):
    X, y, X_val, _ = split
    config = _config(hidden_layer_sizes=(16,), max_iter=20)
    genomes = make_genomes(5, N_FEATURES, seed=9)
    together = train_heads(genomes, X, y, config)
    alone = train_heads(genomes[[3]], X, y, config)
    assert torch.equal(alone.logits(X_val)[0], together.logits(X_val)[3])
    assert alone.train_loss[0] == together.train_loss[3]
    # stored compact: the first layer has the kept features' rows only
    sets, params = together.compact_parameters(3)
    assert params[0][0].shape == (genomes[3].sum(), 16)
    assert np.array_equal(sets[0], np.flatnonzero(genomes[3]))


def test_largest_heads_train_first_and_results_keep_the_genomes_order(split, monkeypatch):
    import evoprune_sklearn._engines._lbfgs as lbfgs
    from evoprune_sklearn._parallel import deterministic_arithmetic

    X, y, X_val, _ = split
    config = _config(hidden_layer_sizes=(16,), max_iter=10)
    genomes = make_genomes(4, N_FEATURES, seed=3)
    genomes[1] = True  # the largest head, given second
    seen = []
    real = lbfgs._lbfgs_fit

    def recording(params, Xk, *args):
        seen.append(Xk.shape[1])
        return real(params, Xk, *args)

    monkeypatch.setattr(lbfgs, "_lbfgs_fit", recording)
    with deterministic_arithmetic(1):  # one thread: the training order is seen
        heads = train_heads(genomes, X, y, config)
    assert seen == sorted(seen, reverse=True) and seen[0] == N_FEATURES
    for i, genome in enumerate(genomes):
        sets, _ = heads.compact_parameters(i)
        np.testing.assert_array_equal(sets[0], np.flatnonzero(genome))
        alone = train_heads(genomes[[i]], X, y, config)
        assert torch.equal(alone.logits(X_val)[0], heads.logits(X_val)[i])


def test_max_iter_caps_the_iterations(split):
    X, y, _, _ = split
    genomes = make_genomes(3, N_FEATURES, seed=10)
    short = train_heads(genomes, X, y, _config(hidden_layer_sizes=(16,), max_iter=3))
    full = train_heads(genomes, X, y, _config(hidden_layer_sizes=(16,), max_iter=100))
    assert np.all(short.epochs <= 3) and np.all(full.epochs > 3)
    assert np.all([s[-1] > f[-1] for s, f in zip(short.train_loss, full.train_loss)])


@pytest.mark.parametrize("weighted", [False, True])
def test_input_preconditioner_is_the_loss_curvature_diagonal(weighted):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(50, 4)) * [1.0, 10.0, 0.1, 3.0]).astype(np.float32)
    w = rng.uniform(0.5, 2.0, 50) if weighted else np.ones(50)
    alpha, n = 2.0, w.sum()
    mean, scale = input_preconditioner(
        torch.as_tensor(X), torch.as_tensor(w, dtype=torch.float32) if weighted else None,
        alpha, n)
    p = w / w.sum()
    mean_ref = p @ X
    var_ref = p @ (X - mean_ref) ** 2
    np.testing.assert_allclose(mean.numpy(), mean_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scale.numpy(), np.sqrt(var_ref / 4 + alpha / n), rtol=1e-5)


def test_linear_heads_reach_the_stacked_engines_optimum(split):
    # The change of variables leaves the optimum where it is: the per-head
    # engine on a linear head (which train_heads sends to the stacked
    # engine) finds the same heads.
    X, y, X_val, _ = split
    config = _config(hidden_layer_sizes=())
    genomes = make_genomes(3, N_FEATURES, seed=11)
    ours = _train_lbfgs(genomes, X, y, config)
    stacked = train_heads(genomes, X, y, config)
    np.testing.assert_allclose(torch.softmax(ours.logits(X_val), -1),
                               torch.softmax(stacked.logits(X_val), -1), atol=5e-3)


def test_estimator_trains_hidden_lbfgs_heads_with_this_engine(blobs_small, engine_calls):
    X, y = blobs_small
    params = dict(backbone=None, solver="lbfgs", hidden_layer_sizes=(8,), pop_size=4,
                  n_evaluations=8, random_state=0)
    clf = EvoPruneClassifier(max_iter=100, **params).fit(X, y)
    assert engine_calls["lbfgs"] >= 8
    assert sum(engine_calls.values()) == engine_calls["lbfgs"]
    # max_iter matters: fewer iterations, fewer evaluations, a higher loss
    short = EvoPruneClassifier(max_iter=2, **params).fit(X, y)
    assert len(short.baseline_.train_loss) < len(clf.baseline_.train_loss)
    assert short.baseline_.train_loss[-1] > clf.baseline_.train_loss[-1]
