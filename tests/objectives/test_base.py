"""The Objective base class and the context objectives read."""

import pytest

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn.objectives import (
    ODIN,
    Accuracy,
    Complexity,
)
from evoprune_sklearn.objectives._base import fitted_copy

from ._shared import prepared


def test_objectives_are_configured_by_set_params():
    odin = ODIN().set_params(temperature=1.0, epsilon=0.01)
    assert (odin.temperature, odin.epsilon) == (1.0, 0.01)
    with pytest.raises(ValueError, match="Invalid parameter 'eps'"):
        odin.set_params(eps=1.0)


def test_prepare_never_reads_an_estimator(image_context):
    # Everything comes from the context: a prepared objective holds no
    # reference to an EvoPruneClassifier.
    context, heads = image_context
    objective = prepared("fgsm", context)
    assert not any(isinstance(v, EvoPruneClassifier) for v in vars(objective).values())
    assert 0 < objective.eps_ < 32 / 255 and len(objective.calibration_) == 6


# ------------------------------------------------------------ the estimator


def test_fitted_copy_keeps_what_was_learned_and_drops_the_search_state(image_context):
    # What fit keeps in objectives_: the user's fitted attributes, not the
    # backbone and validation tensors prepare set up for the search.
    context, _ = image_context
    objective = prepared("fgsm", context)
    assert objective.runs_backbone  # the search gives it torch's threads
    kept = fitted_copy(objective)
    assert kept is not objective and kept.get_params() == objective.get_params()
    assert kept.eps_ == objective.eps_
    assert list(kept.calibration_) == list(objective.calibration_)
    assert not any(k.startswith("_") and not k.startswith("__") for k in vars(kept))
    assert not kept.runs_backbone
    assert not Accuracy().runs_backbone and not ODIN().runs_backbone


def test_names_and_instances_give_the_same_front(features, feature_params):
    X, y = features
    by_name = EvoPruneClassifier(**feature_params).fit(X, y)
    user = ODIN()
    by_instance = EvoPruneClassifier(
        objectives=(Accuracy(), "complexity", user), **feature_params).fit(X, y)
    assert by_name.pareto_front_.to_frame().equals(by_instance.pareto_front_.to_frame())
    assert [type(o) for o in by_instance.objectives_] == [Accuracy, Complexity, ODIN]
    assert by_instance.objectives_[2] is not user and not hasattr(user, "n_ood_samples_")
    assert by_instance.objectives_[2].n_ood_samples_ == by_instance.n_ood_samples_
    # the fitted copies keep what they learned, not what they prepared
    assert not any(k.startswith("_") and k != "_sklearn_version"
                   for k in vars(by_instance.objectives_[2]))
