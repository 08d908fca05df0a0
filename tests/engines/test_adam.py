"""The batched Adam engine (engines/_adam.py): the same heads as one skorch
net per candidate, a genome's head independent of its company."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import EvoPruneClassifier, MaskedHead
from evoprune_sklearn._engines import train_heads
from evoprune_sklearn._engines._adam import _batch_orders, _padded

from ._helpers import N_CLASSES, N_FEATURES, accuracy, make_config, make_genomes


@pytest.mark.parametrize("encoding, n_genomes", [("features", 20), ("neurons", 8)])
def test_batched_engine_matches_skorch_reference(split, encoding, n_genomes):
    # Tolerance: both engines start from the same weights and see the same
    # batches, so they differ only by float rounding. A genome's validation
    # accuracy may differ by at most one validation sample, and the mean accuracy
    # of the genomes by at most 0.5 points.
    X, y, X_val, y_val = split
    config = make_config(encoding=encoding)
    length = N_FEATURES if encoding == "features" else 16
    genomes = make_genomes(n_genomes, length, seed=1)
    fast = train_heads(genomes, X, y, config)
    ref = train_heads(genomes, X, y, config, engine="skorch")
    acc_fast, acc_ref = accuracy(fast, X_val, y_val), accuracy(ref, X_val, y_val)
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
    config = make_config(max_epochs=10, patience=1, tol=0.2)
    genomes = make_genomes(6, N_FEATURES, seed=2)
    fast = train_heads(genomes, X, y, config)
    ref = train_heads(genomes, X, y, config, engine="skorch")
    np.testing.assert_array_equal(fast.epochs, ref.epochs)
    assert len(set(fast.epochs)) > 1 and fast.epochs.max() < 10
    # A stopped head is exactly the head trained for its epochs alone.
    i = int(np.argmin(fast.epochs))
    alone = train_heads(genomes[[i]], X, y, make_config(max_epochs=int(fast.epochs[i])))
    for (w, b), (w1, b1) in zip(fast.head_parameters(i), alone.head_parameters(0)):
        assert torch.equal(w, w1) and torch.equal(b, b1)


def test_evaluation_does_not_depend_on_the_generation(split):
    # What makes n_jobs and Dask give the front of n_jobs=1: a genome's head
    # is a function of the genome, whoever shares its generation.
    X, y, X_val, _ = split
    config = make_config()
    genomes = make_genomes(12, N_FEATURES, seed=3)
    together = train_heads(genomes, X, y, config).logits(X_val)
    order = [7, 2, 11]
    apart = train_heads(genomes[order], X, y, config).logits(X_val)
    for j, i in enumerate(order):
        assert torch.equal(apart[j], together[i])
    alone = train_heads(genomes[[5]], X, y, config).logits(X_val)
    assert torch.equal(alone[0], together[5])


def test_compact_parameters_rebuild_the_masked_head(split):
    X, y, X_val, _ = split
    config = make_config(max_epochs=3)
    genomes = make_genomes(4, N_FEATURES, seed=4)
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
    config = make_config(max_epochs=1)
    dense = np.ones((1, N_FEATURES), dtype=bool)
    sparse = dense.copy()
    sparse[0, N_FEATURES // 4 :] = False
    f_dense = train_heads(dense, X, y, config).flops
    f_sparse = train_heads(sparse, X, y, config).flops
    assert f_sparse < 0.5 * f_dense


def test_batch_orders_are_permutations_drawn_from_the_shuffle_seed():
    orders = _batch_orders(10, make_config(max_epochs=3, shuffle_seed=5))
    assert len(orders) == 3
    for order in orders:
        assert sorted(order.tolist()) == list(range(10))
    assert not torch.equal(orders[0], orders[1])  # a new order every epoch
    again = _batch_orders(10, make_config(max_epochs=3, shuffle_seed=5))
    other = _batch_orders(10, make_config(max_epochs=3, shuffle_seed=6))
    assert all(torch.equal(a, b) for a, b in zip(orders, again))
    assert not all(torch.equal(a, b) for a, b in zip(orders, other))


def test_candidates_are_grouped_by_padded_compact_size():
    # a bucket of 128 units, never wider than the layer, never empty
    assert _padded(1, 1280) == 128 and _padded(128, 1280) == 128
    assert _padded(129, 1280) == 256 and _padded(1200, 1280) == 1280
    assert _padded(0, 1280) == 1 and _padded(3, 10) == 10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_engine_matches_cpu(split):
    X, y, X_val, y_val = split
    genomes = make_genomes(6, N_FEATURES, seed=5)
    cpu = train_heads(genomes, X, y, make_config())
    gpu = train_heads(genomes, X, y, make_config(device="cuda"))
    assert gpu.groups[0].weights[0].is_cuda
    acc_cpu, acc_gpu = accuracy(cpu, X_val, y_val), accuracy(gpu, X_val, y_val)
    assert np.abs(acc_cpu - acc_gpu).max() <= 2.0 / len(y_val)


def test_estimator_trains_adam_heads_with_this_engine(blobs_small, engine_calls):
    # solver="adam": every head of the fit (dense baseline, search, refit)
    # goes through this engine, for at most max_epochs epochs.
    X, y = blobs_small
    params = dict(backbone=None, solver="adam", hidden_layer_sizes=(8,), pop_size=4,
                  n_evaluations=8, random_state=0, lr=0.05)
    clf = EvoPruneClassifier(max_epochs=3, **params).fit(X, y)
    assert engine_calls["adam"] >= 8 and sum(engine_calls.values()) == engine_calls["adam"]
    members = [clf.baseline_, *clf.pareto_front_]
    assert all(1 <= len(m.train_loss) <= 3 for m in members)
    longer = EvoPruneClassifier(max_epochs=6, **params).fit(X, y)
    assert 3 < len(longer.baseline_.train_loss) <= 6
