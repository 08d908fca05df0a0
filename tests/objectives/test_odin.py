"""The ODIN objective: OoD detection by the temperature-scaled maximum softmax."""

import sys

import numpy as np
import pytest
import torch

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn.objectives import ODIN, odin_scores, ood_auroc
from evoprune_sklearn.objectives._odin import ood_auroc_rows

from ._shared import SMALL, features_data


# ----------------------------------------------------------------------- ODIN
def test_trained_member_separates_digits_from_noise(fitted):
    front = fitted.pareto_front_
    assert "robustness" in front.to_frame().columns
    assert "best_robustness" in fitted.history_[-1]
    # the most accurate member tells digits from noise images
    assert front[0].objectives["accuracy"] > 0.6
    assert front[0].objectives["robustness"] > 0.85  # chance is 0.5
    assert fitted.n_ood_samples_ == 40


@pytest.mark.parametrize("n_scores", [0, 1, 7])
def test_ood_auroc_rows_equals_ood_auroc_of_each_row(n_scores):
    # The objectives score a generation's candidates in one call: each value
    # is exactly the one ood_auroc gives that candidate alone (ties too).
    rng = np.random.default_rng(0)
    s_in = rng.random((n_scores, 60)).round(2)
    s_out = rng.random((n_scores, 45)).round(2) * 0.8
    rows = ood_auroc_rows(s_in, s_out)
    assert rows.shape == (n_scores,)
    assert [float(v) for v in rows] == [ood_auroc(a, b) for a, b in zip(s_in, s_out)]


def test_temperature_one_is_the_max_softmax_baseline():
    X, y = features_data()
    X_ood = np.random.default_rng(1).normal(size=(50, X.shape[1])) * 3
    clf = EvoPruneClassifier(backbone=None, refit=False, **SMALL,
                             objectives=("accuracy", "complexity", ODIN(temperature=1.0)))
    clf.fit(X, y, X_ood=X_ood)
    X_val = X[clf._val_index].astype(np.float32)
    for member in clf.pareto_front_:
        with torch.no_grad():
            logit_in = member.module()(torch.as_tensor(X_val)).double()
            logit_out = member.module()(torch.as_tensor(X_ood, dtype=torch.float32)).double()
        msp_in = torch.softmax(logit_in, dim=1).max(dim=1).values.numpy()
        msp_out = torch.softmax(logit_out, dim=1).max(dim=1).values.numpy()
        expected = ood_auroc(msp_in, msp_out)
        assert member.objectives["robustness"] == pytest.approx(expected, abs=1e-9)


def test_odin_scores_shrink_towards_uniform_with_temperature():
    logits = np.array([[4.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert odin_scores(logits, 1.0)[0] == pytest.approx(np.exp(4) / (np.exp(4) + np.e + 1))
    hot = odin_scores(logits, 1000.0)
    # still ordered by confidence although both are within 1e-3 of 1/3
    assert hot[0] > hot[1] == pytest.approx(1 / 3)
    assert hot[0] - 1 / 3 < 1e-3


def test_input_perturbation_changes_scores_and_is_deterministic():
    X, y = features_data()
    kw = dict(backbone=None, **dict(SMALL, n_evaluations=4))
    def odin(epsilon):
        return EvoPruneClassifier(objectives=("accuracy", "complexity", ODIN(epsilon=epsilon)),
                                  **kw)

    plain = odin(0.0).fit(X, y)
    a = odin(0.05).fit(X, y)
    b = odin(0.05).fit(X, y)
    ra = a.pareto_front_.to_frame()["robustness"].to_numpy()
    assert np.array_equal(ra, b.pareto_front_.to_frame()["robustness"].to_numpy())
    assert not np.allclose(ra, plain.pareto_front_.to_frame()["robustness"].to_numpy())


def test_ood_ignored_without_odin_warns():
    X, y = features_data()
    clf = EvoPruneClassifier(backbone=None, objectives=("accuracy", "complexity"),
                             **dict(SMALL, n_evaluations=4))
    with pytest.warns(UserWarning, match="ignored"):
        clf.fit(X, y, X_ood=np.zeros((3, X.shape[1])))
    assert clf.n_ood_samples_ is None
    assert "robustness" not in clf.pareto_front_.to_frame().columns


def test_odin_needs_no_torchattacks(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchattacks", None)
    X, y = features_data()
    clf = EvoPruneClassifier(backbone=None, **dict(SMALL, n_evaluations=4)).fit(X, y)
    assert "robustness" in clf.pareto_front_.to_frame().columns
