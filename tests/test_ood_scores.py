"""Ensemble OoD scores, feature-space detectors, the OoD objective and the
robustness report."""

import numpy as np
import pytest
import torch
from scipy.special import logsumexp, softmax
from sklearn.metrics import roc_auc_score

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._ensemble import DEFAULT_OOD_METHOD, OOD_METHODS
from evoprune_sklearn.objectives import (
    FeatureBank,
    OoD,
    get_objective,
    logit_ood_scores,
    odin_scores,
)

TWO = ("accuracy", "complexity")


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


# ------------------------------------------------------- through the estimator
@pytest.fixture(scope="module")
def fitted():
    from sklearn.datasets import make_classification

    # shifted into the positive orthant, so that -X differs in direction too
    # (kNN reads unit-length features: a direction, not a magnitude)
    X, y = make_classification(n_samples=150, n_features=12, n_informative=8,
                               n_classes=3, shift=6.0, random_state=0)
    clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), objectives=TWO,
                             pop_size=6, n_evaluations=18,
                             random_state=0).fit(X, y)
    return clf, X, y


@pytest.mark.parametrize("method", OOD_METHODS)
def test_every_method_through_the_estimator(fitted, method):
    clf, X, _ = fitted
    s = clf.ensemble_ood_score(X, members="front", method=method)
    assert s.shape == (len(X),) and np.all(np.isfinite(s))
    proba = clf.ensemble_predict_proba(X, members="front")
    if method == "msp":
        np.testing.assert_allclose(s, proba.max(1), rtol=1e-5)
    elif method == "entropy":
        np.testing.assert_allclose(s, (proba * np.log(proba)).sum(1), rtol=1e-4, atol=1e-6)
    elif method == "mutual_info":
        assert np.all(s <= 0)
        one = clf.ensemble_ood_score(X, members=0, method=method)
        np.testing.assert_allclose(one, 0.0, atol=1e-9)
    elif method == "energy":
        logits = clf.pareto_front_[0].logits(X).double().numpy()
        np.testing.assert_allclose(clf.ensemble_ood_score(X, members=0, method=method),
                                   logsumexp(logits, axis=1), rtol=1e-6)
    elif method in ("knn", "mahalanobis"):
        # far-away inputs score lower than the data
        far = -X
        s_far = clf.ensemble_ood_score(far, members="front", method=method)
        auroc = roc_auc_score(np.r_[np.ones(len(X)), np.zeros(len(far))], np.r_[s, s_far])
        assert auroc > 0.95


def test_default_method_is_knn(fitted):
    clf, X, _ = fitted
    assert DEFAULT_OOD_METHOD == "knn"
    np.testing.assert_array_equal(clf.ensemble_ood_score(X),
                                  clf.ensemble_ood_score(X, method="knn"))


def test_knn_k_and_member_choice_matter(fitted):
    clf, X, _ = fitted
    a = clf.ensemble_ood_score(X, members="front", k=1)
    b = clf.ensemble_ood_score(X, members="front", k=20)
    assert not np.allclose(a, b)


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "bogus"}, "method must be one of"),
    ({"method": "energy", "temperature": -1}, "temperature"),
    ({"k": 0}, "k must be"),
    ({"members": [99]}, "Pareto front has"),
])
def test_bad_options_are_refused(fitted, kwargs, match):
    clf, X, _ = fitted
    with pytest.raises(ValueError, match=match):
        clf.ensemble_ood_score(X, **kwargs)


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
                           config=type("C", (), {"encoding": "features", "n_features": 6,
                                                 "hidden_layer_sizes": ()})())
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


# ------------------------------------------------------------------ report
def test_report_on_features(fitted):
    from evoprune_sklearn.robustness import COLUMNS, robustness_report

    clf, X, y = fitted
    report = robustness_report(clf, X, y, X_far=-X, ensembles=["front"])
    assert list(report.columns) == list(COLUMNS)
    assert report.loc["logistic regression", "kind"] == "baseline"
    assert report.loc["ensemble front", "n_members"] == len(clf.pareto_front_)
    ours = report[report["kind"] != "baseline"]
    assert ours["auroc_far"].between(0.9, 1.0).all()
    assert 0 <= report.loc["logistic regression", "auroc_far"] <= 1
    assert report["auroc_near"].isna().all()
    assert report["fgsm"].isna().all()  # no pixels to attack with feature input
    assert report.attrs["eps"] is None
    member = report.index[0]
    i = int(member.split()[1])
    expected = np.mean(clf.ensemble_predict(X, members=i) == y)
    assert report.loc[member, "accuracy"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="attacks"):
        robustness_report(clf, X, y, attacks=("cw",))
    with pytest.raises(ValueError, match="eps"):
        robustness_report(clf, X, y, eps=-1.0)


@pytest.fixture(scope="module")
def image_fit():
    from evoprune_sklearn.datasets import load_digits_images

    X, y = load_digits_images(size=32, n_per_class=8)
    X, y = X[y < 3], y[y < 3]
    clf = EvoPruneClassifier(image_size=32, objectives=TWO, pop_size=4, n_evaluations=8,
                             random_state=0).fit(X[::2], y[::2])
    return clf, X[1::2], y[1::2]


@pytest.mark.parametrize("eps", ["auto", 2 / 255])
def test_report_attacks_images(image_fit, eps):
    pytest.importorskip("torchattacks")
    from evoprune_sklearn.robustness import robustness_report

    clf, X, y = image_fit
    report = robustness_report(clf, X, y, X_near=255 - X, members=("top", 2),
                               ensembles=[("top", 2)], eps=eps, n_attack=4)
    cols = ["fgsm", "pgd", "fgsm_transfer", "pgd_transfer"]
    assert report[cols].notna().all().all()
    assert report[cols].apply(lambda c: c.between(0, 1)).all().all()
    if eps != "auto":
        assert report.attrs["eps"] == eps
    # the transfer source attacked by its own crafted images: white-box FGSM
    src = report.attrs["transfer_source"]
    assert report.loc[src, "fgsm_transfer"] == report.loc[src, "fgsm"]
    fgsm_only = robustness_report(clf, X, y, members=0, ensembles=[], attacks=("fgsm",),
                                  eps=eps, n_attack=4, baseline=False)
    assert fgsm_only["pgd"].isna().all() and fgsm_only["fgsm"].notna().all()


def test_averaged_logits_is_the_mean():
    from evoprune_sklearn.robustness import AveragedLogits

    heads = [torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)]
    x = torch.randn(4, 3)
    net = AveragedLogits(None, heads)
    torch.testing.assert_close(net(x), (heads[0](x) + heads[1](x)) / 2)


def test_display(fitted):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evoprune_sklearn.plotting import RobustnessDisplay

    clf, X, y = fitted
    disp = RobustnessDisplay.from_estimator(clf, X, y, X_near=X * 1.5, X_far=-X)
    assert [a.get_xlabel() for a in disp.axes_] == [
        "test accuracy", "OoD AUROC, near", "OoD AUROC, far"]
    assert len(disp.bars_[0]) == len(disp.report)
    fig, ax = plt.subplots()
    disp.plot(ax=ax, metrics=["accuracy"])
    assert disp.ax_ is ax
    with pytest.raises(ValueError, match="metrics"):
        disp.plot(metrics=["speed"])
    with pytest.raises(TypeError, match="DataFrame"):
        RobustnessDisplay([1, 2])
    plt.close("all")
