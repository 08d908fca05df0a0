"""What the engines share (engines/_base.py): the settings, the loss, the
table that picks an engine, and refitting members."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import EvoPruneClassifier, Member
from evoprune_sklearn._engines import (
    DeferredRefit,
    Engine,
    TrainingConfig,
    get_engine,
    penalised_loss,
    refit_members,
    train_heads,
)
from evoprune_sklearn._engines._base import _select
from evoprune_sklearn._head import HeadSpec

from ._helpers import N_FEATURES, make_config, make_genomes


def test_config_exposes_the_head_spec():
    config = make_config(encoding="neurons", hidden_layer_sizes=(16, 4))
    assert config.head == HeadSpec("neurons", N_FEATURES, (16, 4), 3)
    assert config.head.n_genes == 20
    for (w, b), (w1, b1) in zip(config.initial_parameters(),
                                config.head.initial_parameters(config.init_seed)):
        assert torch.equal(w, w1) and torch.equal(b, b1)


def test_penalised_loss_is_weighted_cross_entropy_plus_l2():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 3))  # two candidates, five samples
    y = rng.integers(3, size=5)
    W = [rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 3, 3))]
    sw = rng.uniform(0.5, 1.5, 5)
    got = penalised_loss(torch.as_tensor(logits), torch.as_tensor(y),
                         [torch.as_tensor(w) for w in W], sample_weight=torch.as_tensor(sw),
                         alpha=0.3, n_samples=7.0)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -logp[:, np.arange(5), y]
    expected = (ce * sw).mean(-1) + 0.3 / 14.0 * sum((w**2).sum((-2, -1)) for w in W)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("option, solver, hidden, name", [
    ("batched", "adam", (16,), "adam"), ("batched", "adam", (), "adam"),
    ("batched", "lbfgs", (16,), "lbfgs"), ("batched", "lbfgs", (), "stacked_lbfgs"),
    ("skorch", "adam", (16,), "skorch"), ("skorch", "lbfgs", (), "skorch"),
])
def test_exactly_one_engine_serves_each_setting(option, solver, hidden, name):
    config = make_config(solver=solver, hidden_layer_sizes=hidden, engine=option)
    assert _select(option, config) is get_engine(name)
    assert isinstance(get_engine(name), Engine)


def test_the_engine_option_is_read_from_the_config(split, engine_calls):
    X, y, _, _ = split
    genomes = make_genomes(2, N_FEATURES, seed=0)
    train_heads(genomes, X, y, make_config(engine="skorch", max_epochs=1))
    assert engine_calls["skorch"] == 2 and engine_calls["adam"] == 0
    train_heads(genomes, X, y, make_config(engine="skorch", max_epochs=1), engine="batched")
    assert engine_calls["adam"] == 2


def test_unknown_engines_are_refused():
    with pytest.raises(ValueError, match="no engine 'nope'"):
        get_engine("nope")
    with pytest.raises(ValueError, match="matches 0 registered engines"):
        _select("nope", make_config())


def test_refit_members_retrains_each_genome_on_the_data(split):
    X, y, _, _ = split
    config = make_config(max_epochs=2)
    genomes = make_genomes(3, N_FEATURES, seed=5)
    members = [Member(g, {"accuracy": 0.5 + i / 10}) for i, g in enumerate(genomes)]
    refit = refit_members(members, X, y, config)
    direct = train_heads(genomes, X, y, config)
    for i, (old, new) in enumerate(zip(members, refit)):
        assert np.array_equal(new.genome, old.genome)
        assert new.objectives == old.objectives
        assert list(new.train_loss) == direct.train_loss[i]
        for (w, b), (w1, b1) in zip(new.params, direct.head_parameters(i)):
            assert torch.equal(w, w1) and torch.equal(b, b1)
    assert refit_members([], X, y, config) == []


@pytest.mark.parametrize("hidden, n_members, max_iter", [((), 40, 50), ((64,), 6, 10)])
def test_deferred_refit_retrains_each_member_once_and_as_refit_members_does(
        hidden, n_members, max_iter, monkeypatch):
    # A front's size and features: 1,500 rows of 1,280 features; 40 linear
    # heads are more than the stacked engine's slots, so the eager refit
    # reuses slots and the deferred one trains members in other slots.
    rng = np.random.default_rng(0)
    y = rng.integers(10, size=1500)
    X = np.maximum(rng.normal(size=(1500, 1280)) + 0.15 * rng.normal(size=(10, 1280))[y],
                   0.0).astype(np.float32)
    config = TrainingConfig(encoding="features", n_features=1280, hidden_layer_sizes=hidden,
                            n_classes=10, solver="lbfgs", alpha=1.0, max_iter=max_iter,
                            init_seed=7)
    genomes = make_genomes(n_members, 1280, seed=6)
    members = [Member(g, {"accuracy": i / 100}) for i, g in enumerate(genomes)]
    eager = refit_members(members, X, y, config)
    calls = []
    real = refit_members

    def counting(chosen, *args, **kwargs):
        calls.append(len(chosen))
        return real(chosen, *args, **kwargs)

    monkeypatch.setattr("evoprune_sklearn._engines._base.refit_members", counting)
    job = DeferredRefit(members, X, y, config)
    assert job.n_pending == n_members and calls == []
    first = job.members([2, 0])  # two, in another order; one alone; the rest together
    alone = job.members([5])
    again = job.members([0])
    rest = job.all_members()
    assert calls == [2, 1, n_members - 3] and job.n_pending == 0
    assert again[0] is first[1] and rest[2] is first[0] and rest[5] is alone[0]
    for new, old in zip(rest, eager):
        assert new.objectives == old.objectives and new.train_loss == old.train_loss
        for (w, b), (w1, b1) in zip(new.params, old.params):
            assert torch.equal(w, w1) and torch.equal(b, b1)  # bit for bit
    assert job._data is None  # the training rows are released


def test_estimator_config_carries_the_engine_option(blobs_small):
    X, y = blobs_small
    clf = EvoPruneClassifier(backbone=None, engine="skorch", solver="adam", max_epochs=1,
                             hidden_layer_sizes=(4,), pop_size=4, n_evaluations=4,
                             random_state=0).fit(X, y)
    assert isinstance(clf._config, TrainingConfig) and clf._config.engine == "skorch"
    assert clf._config.head.n_genes == X.shape[1] == clf.baseline_.genome.size
