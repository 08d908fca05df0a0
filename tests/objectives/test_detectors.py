"""OoD detectors: the logit scores, the feature bank and the OoD objective."""

import numpy as np
import pytest
from scipy.special import logsumexp, softmax

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._head import HeadSpec
from evoprune_sklearn.objectives import (
    FeatureBank,
    OoD,
    get_objective,
    logit_ood_scores,
    odin_scores,
)


# --------------------------------------------------------- score functions
def test_mutual_information_is_zero_when_members_agree():
    z = np.random.default_rng(0).normal(size=(1, 20, 4))
    same = np.repeat(z, 3, axis=0)
    np.testing.assert_allclose(logit_ood_scores(same, "mutual_info"), 0.0, atol=1e-12)
    # a single head has no disagreement either
    np.testing.assert_allclose(logit_ood_scores(z, "mutual_info"), 0.0, atol=1e-12)
    # confident members that disagree: log 2 nats of mutual information
    split = np.array([[[30.0, 0.0]], [[0.0, 30.0]]])
    np.testing.assert_allclose(logit_ood_scores(split, "mutual_info"), -np.log(2), atol=1e-9)


def test_logit_scores_match_their_definitions():
    z = np.random.default_rng(1).normal(size=(3, 7, 5)) * 3
    p = softmax(z, axis=-1)
    mean = p.mean(axis=0)
    np.testing.assert_allclose(logit_ood_scores(z, "msp"), mean.max(-1))
    entropy = -(mean * np.log(mean)).sum(-1)
    np.testing.assert_allclose(logit_ood_scores(z, "entropy"), -entropy)
    np.testing.assert_allclose(logit_ood_scores(z, "energy", 2.0),
                               (2.0 * logsumexp(z / 2.0, axis=-1)).mean(0))
    np.testing.assert_allclose(logit_ood_scores(z, "odin", 1000.0),
                               odin_scores(z, 1000.0).mean(0))
    mi = entropy - (-(p * np.log(p)).sum(-1)).mean(0)
    np.testing.assert_allclose(logit_ood_scores(z, "mutual_info"), -mi, atol=1e-12)


def test_logit_scores_refuse_bad_input():
    with pytest.raises(ValueError, match="method must be one of"):
        logit_ood_scores(np.zeros((1, 2, 2)), "knn")
    with pytest.raises(ValueError, match="shape"):
        logit_ood_scores(np.zeros((2, 2)), "msp")
    with pytest.raises(ValueError, match="temperature"):
        logit_ood_scores(np.zeros((1, 2, 2)), "energy", temperature=0)


@pytest.mark.parametrize("method", ["knn", "mahalanobis"])
def test_feature_detectors_flag_far_away_points(method):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 4
    y = np.repeat(np.arange(3), 40)
    X = centres[y] + rng.normal(size=(120, 8))
    bank = FeatureBank(X, y)
    near = centres[[0, 1, 2]] + 0.1
    far = rng.normal(size=(3, 8)) * 4 + 40 * np.sign(rng.normal(size=(3, 8)))
    s_in, s_out = bank.score(near, method), bank.score(far, method)
    assert s_in.min() > s_out.max()
    # a mask restricts the detector to the columns kept: the far points'
    # coordinates outside the mask no longer count
    mask = np.zeros(8, dtype=bool)
    mask[:2] = True
    far_outside = near.copy()
    far_outside[:, 2:] = 1e3
    np.testing.assert_allclose(bank.score(far_outside, method, mask),
                               bank.score(near, method, mask))
    # a head that reads nothing cannot tell anything
    np.testing.assert_array_equal(bank.score(far, method, np.zeros(8, bool)), 0.0)


def test_knn_rank_k():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    bank = FeatureBank(X, np.array([0, 1, 0]))
    # the point itself is its nearest neighbour at distance 0
    assert bank.score(X[:1], "knn", k=1)[0] == pytest.approx(0.0, abs=1e-7)
    assert bank.score(X[:1], "knn", k=2)[0] < 0


# --------------------------------------------------------------- objective
def test_registered_names():
    assert get_objective("ood") == OoD() or repr(get_objective("ood")) == "OoD()"
    assert get_objective("knn").score == "knn"
    assert get_objective("mahalanobis").score == "mahalanobis"


@pytest.mark.parametrize("score", ["knn", "mahalanobis", "msp", "energy", "odin"])
def test_ood_objective_through_the_estimator(score):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=120, n_features=10, shift=5.0, random_state=0)
    clf = EvoPruneClassifier(
        backbone=None, objectives=("accuracy", "complexity", OoD(score=score)),
        pop_size=4, n_evaluations=8, random_state=0,
    ).fit(X, y)
    values = clf.pareto_front_.to_frame()["robustness"].to_numpy()
    assert np.all((values >= 0) & (values <= 1))
    assert clf.n_ood_samples_ > 0
    if score in ("knn", "mahalanobis"):
        # a given OoD set far from the data is told apart perfectly
        far = -X[:60]  # another direction and far away
        clf2 = EvoPruneClassifier(
            backbone=None, objectives=("accuracy", "complexity", OoD(score=score)),
            pop_size=4, n_evaluations=8, random_state=0,
        ).fit(X, y, X_ood=far)
        assert clf2.pareto_front_.to_frame()["robustness"].min() > 0.9


@pytest.mark.parametrize("score", ["knn", "mahalanobis"])
def test_ood_objective_feature_score_depends_on_kept_features(score):
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(200, 6))) + 1.0
    y = (X[:, 0] > 1.7).astype(int)
    X_ood = np.abs(rng.normal(size=(100, 6))) + 1.0
    X_ood[:, 5] = -8.0  # only feature 5 tells the OoD set apart
    from evoprune_sklearn.objectives import ObjectiveContext

    obj = OoD(score=score)
    ctx = ObjectiveContext(X[:150], y[:150], X[150:], y[150:], n_classes=2, X_ood=X_ood,
                           config=type("C", (), {"head": HeadSpec("features", 6, (), 2)})())
    obj.prepare(ctx)

    class Heads:
        genomes = np.array([[1, 1, 1, 1, 1, 0], [1, 0, 0, 0, 0, 1]], dtype=bool)
        config = ctx.config

    values = obj.evaluate(Heads(), ctx)
    assert values[1] > 0.95 and values[0] < 0.7


def test_ood_objective_bad_score_fails_before_fit():
    with pytest.raises(ValueError, match="score"):
        EvoPruneClassifier(backbone=None, objectives=("accuracy", OoD(score="bogus"))).fit(
            np.zeros((20, 3)), np.arange(20) % 2)
