"""The objective registry: every registered objective keeps the contract; a user's
own objective from registration to a saved fit."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._fingerprint import search_parameters
from evoprune_sklearn.objectives import (
    ODIN,
    Accuracy,
    Adversarial,
    Complexity,
    Objective,
    _registry,
    get_objective,
    list_objectives,
    register_objective,
)

from ._shared import N_CANDIDATES, prepared


# ------------------------------------------------------------------ contract
@pytest.mark.parametrize("name", list_objectives())
def test_every_registered_objective_keeps_the_contract(image_context, name):
    context, heads = image_context
    search = context.without_raw_inputs()
    objective = prepared(name, context)
    assert isinstance(objective.name, str) and isinstance(objective.greater_is_better, bool)
    values = np.asarray(objective.evaluate(heads, search))
    assert values.shape == (N_CANDIDATES,)
    assert np.isfinite(values).all() and ((0 <= values) & (values <= 1)).all()
    # deterministic for a fixed seed: a fresh instance prepared alike agrees
    again = prepared(name, context).evaluate(heads, search)
    np.testing.assert_array_equal(values, again)
    # picklable once prepared (parallel workers receive it), and still exact
    copy = pickle.loads(pickle.dumps(objective))
    np.testing.assert_array_equal(copy.evaluate(heads, search), values)
    # what prepare learned for the user ends with "_"; settings are untouched
    params = objective.get_params(deep=False)
    public = [k for k in vars(objective) if not k.startswith("_") and k not in params]
    assert all(k.endswith("_") for k in public), public
    assert get_objective(name).get_params(deep=False) == {
        **params, **({"steps": 5} if isinstance(objective, Adversarial) else {})}


@pytest.mark.parametrize("name", list_objectives())
def test_every_registered_objective_clones_to_its_parameters(name):
    objective = get_objective(name)
    twin = clone(objective)
    assert twin is not objective and type(twin) is type(objective)
    assert twin.get_params() == objective.get_params()
    assert repr(twin).startswith(type(objective).__name__ + "(")


def test_builtin_aliases():
    assert type(get_objective("accuracy")) is Accuracy
    assert type(get_objective("complexity")) is Complexity
    assert get_objective("robustness").get_params() == ODIN().get_params()
    assert get_objective("odin").get_params() == ODIN().get_params()
    assert get_objective("fgsm").method == "fgsm"
    assert get_objective("pgd").method == "pgd"
    assert ODIN().get_params() == {"temperature": 1000.0, "epsilon": 0.0, "subset": 128}
    assert Adversarial().get_params() == {
        "method": "fgsm", "eps": "auto", "steps": 5, "alpha": None, "subset": 128,
        "early_exit": True, "batch_size": 128}


# ------------------------------------------------------------ the estimator


def test_save_and_load_round_trip_objective_instances(features, tmp_path, feature_params):
    X, y = features
    clf = EvoPruneClassifier(objectives=("accuracy", Complexity(), ODIN(temperature=10.0)),
                             **feature_params).fit(X, y)
    clf.save(tmp_path / "m.safetensors")
    same = EvoPruneClassifier.load(tmp_path / "m.safetensors")
    assert same.objectives[0] == "accuracy"
    assert type(same.objectives[2]) is ODIN and same.objectives[2].temperature == 10.0
    assert same.objectives_[2].n_ood_samples_ == clf.objectives_[2].n_ood_samples_
    np.testing.assert_array_equal(same.predict(X), clf.predict(X))
    # a refit from the loaded parameters finds the same front
    again = clone(same).fit(X, y)
    assert again.pareto_front_.to_frame().equals(clf.pareto_front_.to_frame())


class _Unregistered(Objective):
    name = "unregistered"

    def evaluate(self, heads, context):
        return np.zeros(len(heads))


def test_save_refuses_an_unregistered_objective_class(features, tmp_path, feature_params):
    X, y = features
    clf = EvoPruneClassifier(objectives=("accuracy", _Unregistered()), **feature_params).fit(X, y)
    with pytest.raises(TypeError, match="register_objective"):
        clf.save(tmp_path / "m.safetensors")


def test_checkpoint_fingerprint_holds_the_objectives_parameters():
    def params(*objectives):
        clf = EvoPruneClassifier(objectives=objectives)
        return search_parameters(clf.get_params(deep=False))["objectives"]

    default = params("accuracy", "complexity", "robustness")
    assert default == params(Accuracy(), "complexity", ODIN())
    assert default != params("accuracy", "complexity", ODIN(temperature=1.0))
    assert params("accuracy", Adversarial(eps=1 / 255)) != params(
        "accuracy", Adversarial(eps=2 / 255))


def test_a_checkpoint_of_other_objective_settings_is_refused(features, tmp_path, feature_params):
    X, y = features
    path = str(tmp_path / "c.ckpt")
    EvoPruneClassifier(checkpoint=path, **feature_params).fit(X, y)
    other = EvoPruneClassifier(
        checkpoint=path, objectives=("accuracy", "complexity", ODIN(temperature=1.0)),
        **feature_params)
    with pytest.raises(ValueError, match="other parameters"):
        other.fit(X, y)


# --------------------------------------------------- a user's own objective
class Spread(Objective):
    """How far apart the kept genes lie (higher is better), for the test."""

    name = "spread"
    greater_is_better = True

    def __init__(self, power=1.0):
        self.power = power

    def prepare(self, context):
        self.n_genes_ = context.X_train.shape[1]

    def evaluate(self, heads, context):
        genomes = np.asarray(heads.genomes, dtype=bool)
        idx = np.arange(genomes.shape[1]) / max(self.n_genes_ - 1, 1)
        spread = np.array([idx[g].std() if g.any() else 0.0 for g in genomes])
        return (2 * spread) ** self.power


@pytest.fixture
def spread_registered(monkeypatch):
    """Spread registered through the public register_objective, in a copy of
    the registry that the test's end throws away."""
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    register_objective("spread", Spread)


def test_a_custom_objective_is_registered_and_used_in_a_fit(
        features, tmp_path, spread_registered, feature_params):
    X, y = features
    assert "spread" in list_objectives()
    by_name = EvoPruneClassifier(objectives=("accuracy", "spread"), **feature_params).fit(X, y)
    frame = by_name.pareto_front_.to_frame()
    assert list(frame.columns[:2]) == ["accuracy", "spread"]
    assert frame["spread"].between(0, 1).all()
    assert "best_spread" in by_name.history_[-1]
    assert by_name.objectives_[1].n_genes_ == 10
    # as an instance with its own parameter, stored by save under its name
    clf = EvoPruneClassifier(objectives=("accuracy", Spread(power=2.0)), **feature_params).fit(X, y)
    np.testing.assert_allclose(
        clf.pareto_front_.to_frame()["spread"],
        [m.objectives["spread"] for m in clf.pareto_front_])
    clf.save(tmp_path / "m.safetensors")
    same = EvoPruneClassifier.load(tmp_path / "m.safetensors")
    assert type(same.objectives[1]) is Spread and same.objectives[1].power == 2.0


def test_register_objective_checks_its_arguments():
    with pytest.raises(TypeError, match="non-empty str"):
        register_objective("", Spread)
    with pytest.raises(TypeError, match="callable"):
        register_objective("spread", Spread())
