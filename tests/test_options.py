"""Every value of every enumerated option fits through the public estimator,
and the training recipe (refit, weights, solvers) does what users rely on."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression

from evoprune_sklearn import EvoPruneClassifier


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=160, n_features=12, n_informative=6,
                               n_classes=3, random_state=0)
    return X.astype(np.float32), y


OPTIONS = [
    ("engine", "batched"), ("engine", "skorch"),
    ("encoding", "features"), ("encoding", "neurons"),
    ("selection", "knee"), ("selection", "tradeoff"), ("selection", "accuracy"),
    ("selection", "complexity"), ("selection", 0),
    ("solver", "lbfgs"), ("solver", "adam"),
    ("refit", True), ("refit", False),
    ("class_weight", None), ("class_weight", "balanced"), ("class_weight", {0: 2.0}),
    ("hidden_layer_sizes", ()), ("hidden_layer_sizes", (8,)),
    ("hidden_layer_sizes", (8, 4)),
    ("objectives", ("accuracy", "complexity", "odin")),
    ("objectives", ("accuracy", "complexity", "robustness")),
    ("device", "cpu"), ("device", "auto"),
    ("n_folds", None), ("n_folds", 3),
    ("init", "informed"), ("init", "random"),
    ("mutation", "informed"), ("mutation", "bitflip"),
]


@pytest.mark.parametrize("name, value", OPTIONS, ids=[f"{n}={v}" for n, v in OPTIONS])
def test_every_option_value_fits_and_predicts(data, name, value, feature_params):
    X, y = data
    params = dict(feature_params, **{name: value})
    if name == "encoding" and value == "neurons" or name == "solver" and value == "adam":
        params.setdefault("hidden_layer_sizes", (8,))
    if name == "engine" and value == "skorch":
        params["hidden_layer_sizes"] = (8,)
    clf = EvoPruneClassifier(**params).fit(X, y)
    pred = clf.predict(X)
    assert pred.shape == (len(y),) and set(pred) <= set(clf.classes_)
    if name == "selection" and value == "complexity":
        # the smallest member: fewest genes, accuracy not promised
        sizes = [m.n_active for m in clf.pareto_front_]
        assert clf.pareto_front_[clf.best_index_].n_active == min(sizes)
    else:
        # three balanced classes: chance is 1/3. At this budget (8 genomes,
        # 43 validation samples) the knee may rightly pick a member with 1
        # of the 12 features (the informed first population holds the best
        # single feature): about 0.5 on the training data.
        assert clf.score(X, y) > 0.45


def test_neurons_encoding_needs_a_hidden_layer(data, feature_params):
    X, y = data
    with pytest.raises(ValueError, match="encoding='neurons'.*hidden_layer_sizes"):
        EvoPruneClassifier(encoding="neurons", hidden_layer_sizes=(), **feature_params).fit(X, y)


def test_linear_head_at_defaults_matches_logistic_regression(data, feature_params):
    # alpha=1 with a linear head is LogisticRegression(C=1)'s objective; the
    # refitted dense head is trained on the same data, so it predicts alike.
    X, y = data
    clf = EvoPruneClassifier(**feature_params).fit(X, y)
    lr = LogisticRegression(max_iter=5000).fit(X, y)
    agree = np.mean(clf.baseline_.net.predict(X) == lr.predict(X))
    assert agree >= 0.97


def test_refit_trains_members_on_the_validation_fold_too(data, feature_params):
    X, y = data
    kept = EvoPruneClassifier(**feature_params, refit=False).fit(X, y)
    refit = EvoPruneClassifier(**feature_params, refit=True).fit(X, y)
    # Same search (same fitness values), different final heads.
    np.testing.assert_array_equal(kept.pareto_front_.to_frame()["accuracy"],
                                  refit.pareto_front_.to_frame()["accuracy"])
    w_kept = kept.pareto_front_[0].params[0][0]
    w_refit = refit.pareto_front_[0].params[0][0]
    assert not np.allclose(w_kept, w_refit)
    # The refitted dense head fits the validation samples better.
    val = kept._val_index
    acc_kept = np.mean(kept.baseline_.net.predict(X[val]) == y[val])
    acc_refit = np.mean(refit.baseline_.net.predict(X[val]) == y[val])
    assert acc_refit >= acc_kept


def test_integer_sample_weight_is_repetition(data, feature_params):
    X, y = data
    w = np.random.default_rng(0).integers(0, 3, size=len(y))
    weighted = EvoPruneClassifier(**feature_params).fit(X, y, sample_weight=w)
    repeated = EvoPruneClassifier(**feature_params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X),
                               rtol=1e-5, atol=1e-6)


def test_sample_weight_changes_the_fit(data, feature_params):
    X, y = data
    w = np.where(y == 0, 10.0, 1.0)
    plain = EvoPruneClassifier(**feature_params).fit(X, y)
    heavy = EvoPruneClassifier(**feature_params).fit(X, y, sample_weight=w)
    # Weighting class 0 ten times makes the heads predict it more often.
    assert np.sum(heavy.predict(X) == 0) > np.sum(plain.predict(X) == 0)


def test_class_weight_balanced_equals_its_sample_weights(data, feature_params):
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = data
    X, y = X[:120], y[:120]
    a = EvoPruneClassifier(**feature_params, class_weight="balanced").fit(X, y)
    w = compute_sample_weight("balanced", y)
    b = EvoPruneClassifier(**feature_params).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_voting_classifier_passes_sample_weight(data, feature_params):
    X, y = data
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    vote = VotingClassifier(
        [("evo", EvoPruneClassifier(**feature_params)), ("lr", LogisticRegression(max_iter=2000))],
        voting="soft",
    ).fit(X, y, sample_weight=w)
    assert vote.score(X, y) > 0.5


@pytest.mark.parametrize("bad, message", [
    (-np.ones(160), "(?i)negative"),
    (np.zeros(160), "non-zero|sums to zero"),
    (np.ones(5), "shape|length|samples"),
])
def test_bad_sample_weight_is_refused(data, bad, message, feature_params):
    X, y = data
    with pytest.raises(ValueError, match=message):
        EvoPruneClassifier(**feature_params).fit(X, y, sample_weight=bad)


def test_duplicates_are_never_split_across_folds(data, feature_params):
    X, y = data
    Xd, yd = np.vstack([X, X[:40]]), np.concatenate([y, y[:40]])
    clf = EvoPruneClassifier(**feature_params).fit(Xd, yd)
    train = {X_row.tobytes() for X_row in Xd[clf._train_index]}
    val = {X_row.tobytes() for X_row in Xd[clf._val_index]}
    assert not train & val
