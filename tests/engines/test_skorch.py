"""The skorch engine (engines/_skorch.py): one skorch classifier per
candidate, the reference of the batched engines, and the wrapper that
gives a front member its ``net``."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._engines import make_skorch_net, penalised_loss, train_heads, wrap_in_skorch
from evoprune_sklearn._engines._skorch import HeadNet

from ._helpers import N_CLASSES, N_FEATURES, make_config, make_genomes


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_net_settings_follow_the_solver(solver):
    config = make_config(solver=solver, max_iter=33, max_epochs=4, batch_size=20, lr=0.01)
    net = make_skorch_net(np.ones(N_FEATURES, bool), config)
    assert isinstance(net, HeadNet)
    if solver == "lbfgs":  # one epoch of full-batch L-BFGS
        assert net.optimizer is torch.optim.LBFGS and net.optimizer__max_iter == 33
        assert net.max_epochs == 1 and net.batch_size == -1
    else:
        assert net.optimizer is torch.optim.Adam and net.lr == 0.01
        assert net.max_epochs == 4 and net.batch_size == 20


def test_the_net_starts_from_the_shared_initial_weights():
    # the same draw as every other engine, pruned rows zero
    config = make_config(hidden_layer_sizes=(), init_seed=3)
    genome = make_genomes(1, N_FEATURES, seed=0)[0]
    net = make_skorch_net(genome, config)
    net.initialize()
    (w0, b0), = config.initial_parameters()
    w = net.module_.layers[0].weight.detach().T
    assert torch.equal(w[genome], w0[genome]) and not w[~genome].any()
    assert torch.equal(net.module_.layers[0].bias.detach(), b0)


def test_sample_weighted_loss_is_the_penalised_loss(split):
    X, y, _, _ = split
    config = make_config(hidden_layer_sizes=(), alpha=0.5)
    net = make_skorch_net(np.ones(N_FEATURES, bool), config)
    net.initialize()
    net.penalty_ = (0.5, 200.0)
    w = np.linspace(0.5, 1.5, len(y)).astype(np.float32)
    logits = net.module_(torch.as_tensor(X))
    got = net.get_loss(logits, torch.as_tensor(y), X={"X": X, "sample_weight": w})
    expected = penalised_loss(logits, torch.as_tensor(y), [net.module_.layers[0].weight],
                              sample_weight=torch.as_tensor(w), alpha=0.5, n_samples=200.0)
    assert torch.equal(got, expected)


def test_wrapped_net_computes_the_trained_head(split):
    X, y, X_val, _ = split
    config = make_config(max_epochs=2)
    genomes = make_genomes(2, N_FEATURES, seed=1)
    heads = train_heads(genomes, X, y, config)
    net = wrap_in_skorch(genomes[1], heads.head_parameters(1), config, heads.train_loss[1])
    proba = net.predict_proba(X_val)
    torch.testing.assert_close(torch.as_tensor(proba),
                               torch.softmax(heads.logits(X_val)[1], -1), rtol=1e-5, atol=1e-6)
    assert list(net.history[:, "train_loss"]) == heads.train_loss[1]


def test_skorch_heads_store_full_and_compact_parameters(split):
    X, y, _, _ = split
    config = make_config(encoding="neurons", max_epochs=2)
    genomes = make_genomes(2, 16, seed=2)
    heads = train_heads(genomes, X, y, config, engine="skorch")
    sets, compact = heads.compact_parameters(0)
    assert np.array_equal(sets[1], np.flatnonzero(genomes[0]))
    assert compact[0][0].shape == (N_FEATURES, genomes[0].sum())
    assert compact[1][0].shape == (genomes[0].sum(), N_CLASSES)
    full = heads.head_parameters(0)
    assert torch.equal(full[1][0][sets[1]], compact[1][0])


def test_estimator_with_engine_skorch(blobs_small, engine_calls):
    # engine="skorch": every head of the fit goes through this engine, and
    # each member's net is a fitted skorch classifier computing the member.
    X, y = blobs_small
    clf = EvoPruneClassifier(backbone=None, engine="skorch", solver="adam", max_epochs=2,
                             hidden_layer_sizes=(8,), pop_size=4, n_evaluations=8,
                             random_state=0).fit(X, y)
    assert engine_calls["skorch"] >= 8
    assert sum(engine_calls.values()) == engine_calls["skorch"]
    member = clf.pareto_front_[0]
    np.testing.assert_allclose(member.net.predict_proba(X), member.predict_proba(X),
                               rtol=1e-5, atol=1e-6)
    assert len(member.net.history) == len(member.train_loss) <= 2
