"""Ensembles of front members: member choice, voting and the ensemble OoD score."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import Member, ParetoFront
from evoprune_sklearn._ensemble import resolve_members, vote

# accuracy and complexity only: these tests are not about robustness
TWO = ("accuracy", "complexity")


# ------------------------------------------------------------------ voting
def test_soft_voting_averages_probabilities():
    P = np.array([
        [[0.6, 0.4, 0.0], [0.2, 0.3, 0.5]],
        [[0.6, 0.4, 0.0], [0.2, 0.5, 0.3]],
        [[0.0, 1.0, 0.0], [0.9, 0.1, 0.0]],
    ])
    # sample 0: mean (0.4, 0.6, 0) -> 1; sample 1: mean (0.433, 0.3, 0.267) -> 0
    assert vote(P, "soft").tolist() == [1, 0]


def test_hard_voting_is_a_majority_not_a_mean():
    P = np.array([[[0.6, 0.4]], [[0.6, 0.4]], [[0.0, 1.0]]])
    assert vote(P, "hard").tolist() == [0]  # two votes for 0 beat one confident 1
    assert vote(P, "soft").tolist() == [1]


def test_hard_vote_tie_goes_to_larger_mean_probability():
    # one vote each; class 1 has mean probability 0.65 > 0.35
    P = np.array([[[0.6, 0.4, 0.0]], [[0.1, 0.9, 0.0]]])
    assert vote(P, "hard").tolist() == [1]
    # the third class got no vote, so its probability cannot win the tie
    P = np.array([[[0.40, 0.0, 0.60]], [[0.0, 0.45, 0.55]], [[0.5, 0.5, 0.0]]])
    # votes: class 2, class 2, class 0 (argmax tie 0.5/0.5 -> lowest index)
    assert vote(P, "hard").tolist() == [2]
    P = np.array([[[0.5, 0.3, 0.2]], [[0.1, 0.3, 0.6]], [[0.1, 0.8, 0.1]]])
    # one vote each; means (0.233, 0.467, 0.3): class 1 wins the 3-way tie
    assert vote(P, "hard").tolist() == [1]


def test_exact_ties_go_to_the_lowest_class_index():
    P = np.array([[[0.6, 0.4]], [[0.4, 0.6]]])
    assert vote(P, "hard").tolist() == [0]
    assert vote(P, "soft").tolist() == [0]
    P = np.array([[[0.0, 0.5, 0.5]]])
    assert vote(P, "hard").tolist() == [1]


@pytest.mark.parametrize("voting", ["soft", "hard"])
def test_voting_does_not_depend_on_member_order(voting):
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(4), size=(5, 200))
    ref = vote(P, voting)
    for perm in [rng.permutation(5) for _ in range(5)]:
        np.testing.assert_array_equal(vote(P[perm], voting), ref)


def test_vote_rejects_bad_input():
    with pytest.raises(ValueError, match="voting must be"):
        vote(np.ones((1, 2, 2)) / 2, "majority")
    with pytest.raises(ValueError, match="n_members, n_samples, n_classes"):
        vote(np.ones((2, 2)), "soft")


# ------------------------------------------------------------ member choice
def _front(values):
    return ParetoFront(("accuracy", "complexity"), (True, False), members=[
        Member([True], {"accuracy": a, "complexity": c}) for a, c in values
    ])


# deliberately not in accuracy order
FRONT = [(0.80, 0.5), (0.95, 0.9), (0.70, 0.2), (0.90, 0.7), (0.60, 0.1)]


def test_front_takes_every_member():
    assert resolve_members(_front(FRONT), "front").tolist() == [0, 1, 2, 3, 4]


def test_top_k_is_by_validation_accuracy():
    front = _front(FRONT)
    assert resolve_members(front, ("top", 1)).tolist() == [1]
    assert resolve_members(front, ("top", 3)).tolist() == [0, 1, 3]
    assert resolve_members(front, ("top", 3)).tolist() == front.top(3).tolist()
    # documented: k larger than the front gives the whole front
    assert resolve_members(front, ("top", 50)).tolist() == [0, 1, 2, 3, 4]
    # another objective: lowest complexity is best
    assert resolve_members(front, ("top", 2, "complexity")).tolist() == [2, 4]
    with pytest.raises(ValueError, match=">= 1"):
        resolve_members(front, ("top", 0))


def test_an_int_is_always_an_index():
    front = _front(FRONT)
    assert resolve_members(front, 1).tolist() == [1]
    assert resolve_members(front, 3).tolist() == [3]
    assert resolve_members(front, np.int64(0)).tolist() == [0]
    with pytest.raises(ValueError, match="has 5 member"):
        resolve_members(front, 5)


def test_percentile_window_of_accuracy():
    front = _front(FRONT)
    # accuracies 0.6 .. 0.95; 50th pct 0.8, 100th 0.95
    assert resolve_members(front, ("window", "accuracy", 50, 100)).tolist() == [0, 1, 3]
    assert resolve_members(front, ("window", "accuracy", 0, 0)).tolist() == [4]
    assert resolve_members(front, ("window", "complexity", 0, 50)).tolist() == [0, 2, 4]
    assert front.window("complexity", 0, 50).tolist() == [0, 2, 4]


def test_window_with_no_member_raises_a_clear_error():
    # accuracies of two members: 0.6 and 0.9; 40th-60th pct = [0.72, 0.78]
    front = _front([(0.9, 0.5), (0.6, 0.1)])
    with pytest.raises(ValueError, match="selects no member.*Widen the window"):
        resolve_members(front, ("window", "accuracy", 40, 60))


@pytest.mark.parametrize("members, error, match", [
    (("window", "robustness", 50, 60), ValueError, "front's objectives are"),
    (("window", "accuracy", 60, 50), ValueError, "lower percentile above"),
    (("window", "accuracy", -5, 50), ValueError, r"in \[0, 100\]"),
    (("window", "accuracy", 50), ValueError, "write"),
    (("accuracy", 50, 60), ValueError, r"now written \('window', 'accuracy'"),
    (("top",), ValueError, "write"),
    (("top", 2, "robustness"), ValueError, "names objective"),
    (-1, ValueError, ">= 0"),
    ([0, 9], ValueError, "has 5 member"),
    ([1, 1], ValueError, "duplicate"),
    ([], ValueError, "non-empty"),
    ("all", ValueError, "not understood"),
    (True, TypeError, "members must be"),
    (2.5, TypeError, "members must be"),
    ([0.5, 1.0], TypeError, "ints"),
])
def test_bad_member_choices_raise(members, error, match):
    with pytest.raises(error, match=match):
        resolve_members(_front(FRONT), members)


# ------------------------------------------------------------- on a fit
@pytest.fixture(scope="module")
def fitted(blobs):
    from conftest import tiny

    X, y = blobs
    labels = np.array(["ant", "bee", "cat"])[y]  # labels of any type
    clf = tiny(backbone=None, objectives=TWO, pop_size=6, n_evaluations=18).fit(X, labels)
    return clf, X, labels


def test_ensemble_of_one_equals_that_member(fitted):
    clf, X, _ = fitted
    for i in range(len(clf.pareto_front_)):
        member = clf.pareto_front_[i]
        np.testing.assert_allclose(
            clf.ensemble_predict_proba(X, members=[i]), member.predict_proba(X), atol=1e-6
        )
        # an int is that index; the member predicts labels itself
        np.testing.assert_array_equal(clf.ensemble_predict(X, members=i), member.predict(X))
        assert set(member.predict(X)) <= set(clf.classes_)
    best = [clf.best_index_]
    np.testing.assert_allclose(clf.ensemble_predict_proba(X, members=best),
                               clf.predict_proba(X), atol=1e-6)
    for voting in ("soft", "hard"):
        np.testing.assert_array_equal(
            clf.ensemble_predict(X, members=best, voting=voting), clf.predict(X)
        )


def test_ensemble_predictions_are_labels_and_probabilities(fitted):
    clf, X, y = fitted
    assert len(clf.pareto_front_) >= 2
    proba = clf.ensemble_predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    for voting in ("soft", "hard"):
        pred = clf.ensemble_predict(X, voting=voting)
        assert set(pred) <= set(clf.classes_)
        assert np.mean(pred == y) > 0.6  # 3 separable classes: far above chance
    np.testing.assert_array_equal(
        clf.ensemble_predict(X, voting="soft"), clf.classes_[proba.argmax(axis=1)]
    )


def test_ensemble_ood_score_is_the_mean_member_odin_score(fitted):
    clf, X, _ = fitted
    members = [0, len(clf.pareto_front_) - 1]
    T = 1000.0
    expected = np.mean([
        torch.softmax(
            clf.pareto_front_[i].module()(torch.as_tensor(X, dtype=torch.float32))
            .double() / T, dim=1,
        ).max(dim=1).values.detach().numpy()
        for i in members
    ], axis=0)
    score = clf.ensemble_ood_score(X, members=members, method="odin", temperature=T)
    # odin's temperature defaults to 1000, the score before method= existed
    np.testing.assert_array_equal(
        clf.ensemble_ood_score(X, members=members, method="odin"), score)
    np.testing.assert_allclose(score, expected, rtol=1e-9, atol=1e-12)
    # far-off inputs look less in-distribution than the training data
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    far = rng.normal(0, 1, size=X.shape) * 0.05  # collapsed near the origin
    s_in, s_out = clf.ensemble_ood_score(X), clf.ensemble_ood_score(far)
    auroc = roc_auc_score(np.r_[np.ones(len(X)), np.zeros(len(far))], np.r_[s_in, s_out])
    assert auroc > 0.8


def test_bad_arguments_fail_before_any_work(fitted):
    clf, X, _ = fitted
    with pytest.raises(ValueError, match="voting must be"):
        clf.ensemble_predict(X, voting="majority")
    with pytest.raises(ValueError, match="temperature"):
        clf.ensemble_ood_score(X, temperature=0)
    with pytest.raises(ValueError, match="Pareto front has"):
        clf.ensemble_predict_proba(X, members=[len(clf.pareto_front_)])


def test_unfitted_estimator_raises(make_tiny):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make_tiny(backbone=None).ensemble_predict(np.zeros((2, 3)))


def test_backbone_runs_once_for_all_members(digit_images, make_tiny):
    X, y = digit_images
    clf = make_tiny(image_size=32, objectives=TWO, pop_size=3, n_evaluations=3).fit(X, y)
    before = clf.backbone_.n_images_forwarded
    clf.ensemble_predict(X[:30], members="front", voting="hard")
    assert clf.backbone_.n_images_forwarded - before == 30
    np.testing.assert_allclose(
        clf.ensemble_predict_proba(X[:30], members=[clf.best_index_]),
        clf.predict_proba(X[:30]), atol=1e-6,
    )


# --------------------------------------------- the ensemble as the predictor
ENSEMBLES = ["front", 1, ("top", 2), ("window", "accuracy", 50, 100), [0, 1]]


@pytest.mark.parametrize("ensemble", ENSEMBLES)
@pytest.mark.parametrize("voting", ["soft", "hard"])
def test_ensemble_parameter_makes_predict_the_ensemble(fitted, ensemble, voting):
    clf, X, y = fitted
    front, n_trained = clf.pareto_front_, clf.n_trained_
    try:
        clf.set_params(ensemble=ensemble, ensemble_voting=voting)  # after fit: no refit
        expected = clf.ensemble_predict(X, members=ensemble, voting=voting)
        np.testing.assert_array_equal(clf.predict(X), expected)
        assert clf.score(X, y) == pytest.approx(np.mean(expected == y))
        if voting == "soft":
            proba = clf.predict_proba(X)
            np.testing.assert_array_equal(proba, clf.ensemble_predict_proba(X, members=ensemble))
            np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], clf.predict(X))
        else:
            # a majority vote has no probabilities, as in VotingClassifier
            assert not hasattr(clf, "predict_proba")
            with pytest.raises(AttributeError, match="no attribute 'predict_proba'") as exc:
                clf.predict_proba(X)
            assert "ensemble_voting='hard'" in str(exc.value.__cause__)
    finally:
        clf.set_params(ensemble=None, ensemble_voting="soft")
    assert clf.pareto_front_ is front and clf.n_trained_ == n_trained


def test_default_predicts_with_the_selected_member_only(fitted):
    clf, X, _ = fitted
    assert clf.ensemble is None
    member = clf.pareto_front_[clf.best_index_]
    np.testing.assert_allclose(clf.predict_proba(X), member.predict_proba(X), atol=1e-6)
    # the whole front votes differently from the selected member somewhere
    # on this data, so the parameter really changes what predict returns
    try:
        clf.set_params(ensemble="front")
        assert not np.allclose(clf.predict_proba(X), member.predict_proba(X), atol=1e-3)
    finally:
        clf.set_params(ensemble=None)


def test_cross_val_score_scores_the_ensemble(blobs, make_tiny):
    from sklearn.model_selection import StratifiedKFold, cross_validate

    X, y = blobs
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    est = make_tiny(backbone=None, objectives=TWO, ensemble=("window", "accuracy", 50, 100),
                    ensemble_voting="hard")
    result = cross_validate(est, X, y, cv=cv, return_estimator=True)
    for (_, test), fitted_est, score in zip(cv.split(X, y), result["estimator"],
                                            result["test_score"]):
        voted = fitted_est.ensemble_predict(X[test], members=("window", "accuracy", 50, 100),
                                            voting="hard")
        assert score == pytest.approx(np.mean(voted == y[test]))


def test_grid_search_chooses_between_member_and_ensemble(blobs, make_tiny):
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X, y = blobs
    grid = {"ensemble": [None, "front"], "ensemble_voting": ["soft", "hard"]}
    search = GridSearchCV(make_tiny(backbone=None, objectives=TWO), grid, cv=2,
                          error_score="raise").fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.ensemble == search.best_params_["ensemble"]
    # the ensemble candidates were scored as ensembles: same folds, same
    # fronts (same random_state), so cross_val_score of one candidate agrees
    i = search.cv_results_["params"].index({"ensemble": "front", "ensemble_voting": "hard"})
    scores = cross_val_score(make_tiny(backbone=None, objectives=TWO, ensemble="front",
                                       ensemble_voting="hard"), X, y, cv=2)
    np.testing.assert_allclose(scores, [search.cv_results_[f"split{k}_test_score"][i]
                                        for k in range(2)])


@pytest.mark.parametrize("params, error, match", [
    ({"ensemble": "all"}, ValueError, "'ensemble' parameter"),
    ({"ensemble": -1}, ValueError, "'ensemble' parameter"),
    ({"ensemble": 2.5}, ValueError, "'ensemble' parameter"),
    ({"ensemble": ("window", "robustness", 50, 60)}, ValueError,
     "ensemble window names objective"),
    ({"ensemble": ("window", "accuracy", 60, 50)}, ValueError, "lower percentile above"),
    ({"ensemble": ("accuracy", 50, 60)}, ValueError, "now written"),
    ({"ensemble": ("top", 0)}, ValueError, ">= 1"),
    ({"ensemble": [1, 1]}, ValueError, "ensemble holds duplicate"),
    ({"ensemble": [-1]}, ValueError, "ensemble holds index -1"),
    ({"ensemble": ["a"]}, TypeError, "ensemble as indices must hold ints"),
    ({"ensemble": []}, ValueError, "non-empty"),
    ({"ensemble_voting": "majority"}, ValueError, "'ensemble_voting' parameter"),
])
def test_bad_ensemble_parameters_fail_before_fitting(
    blobs, make_tiny, params, error, match, heavy_work
):
    X, y = blobs
    est = make_tiny(backbone=None, objectives=TWO, **params)
    with pytest.raises(error, match=match):
        est.fit(X, y)
    assert heavy_work.none


def test_bad_ensemble_set_after_fit_fails_at_predict(fitted):
    clf, X, _ = fitted
    n = len(clf.pareto_front_)
    try:
        clf.set_params(ensemble=[0, n])
        with pytest.raises(ValueError, match=f"ensemble holds index {n}, but the Pareto"):
            clf.predict(X)
        clf.set_params(ensemble="everything")
        with pytest.raises(ValueError, match="'ensemble' parameter"):
            clf.predict(X)
        clf.set_params(ensemble="front", ensemble_voting="majority")
        with pytest.raises(ValueError, match="'ensemble_voting' parameter"):
            clf.predict(X)
    finally:
        clf.set_params(ensemble=None, ensemble_voting="soft")
