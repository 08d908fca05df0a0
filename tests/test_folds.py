"""The validation folds (_folds): the splitter itself, and k-fold fitness
(``n_folds=k``) through the estimator: every candidate is scored out of fold on the
whole training set, reproducibly, and bad values are refused up front."""

import numpy as np
import pytest

import evoprune_sklearn._classifier as classifier_module
import evoprune_sklearn._search as search_module
from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._folds import ValidationSplitter


@pytest.fixture(scope="module")
def cv3(small_params, search_data):
    X, y = search_data
    return EvoPruneClassifier(n_evaluations=12, n_folds=3, **small_params).fit(X, y)


def test_cv_fits_and_measures_accuracy_on_every_training_sample(cv3, search_data):
    X, y = search_data
    assert cv3.predict(X).shape == (len(y),)
    assert cv3.score(X, y) > 0.5
    # every training sample is validated once: the knee's standard error
    # counts them all, and accuracies are multiples of 1 / n_samples
    assert cv3.pareto_front_.n_validation == len(y)
    for m in [*cv3.pareto_front_, cv3.baseline_]:
        hits = m.objectives["accuracy"] * len(y)
        assert abs(hits - round(hits)) < 1e-6


def test_single_split_counts_only_its_validation_fold(small_params, search_data):
    X, y = search_data
    clf = EvoPruneClassifier(n_evaluations=6, n_folds=None, **small_params).fit(X, y)
    assert clf.pareto_front_.n_validation == len(clf._val_index) == 40


def test_same_random_state_gives_the_same_front(cv3, small_params, search_data, front_key):
    X, y = search_data
    again = EvoPruneClassifier(n_evaluations=12, n_folds=3, **small_params).fit(X, y)
    assert front_key(again) == front_key(cv3)
    assert again.baseline_.objectives == cv3.baseline_.objectives
    other = EvoPruneClassifier(n_evaluations=12, **{**small_params, "random_state": 1},
                               n_folds=3).fit(X, y)
    assert front_key(other) != front_key(cv3)


def test_fold_heads_never_see_their_validation_rows(monkeypatch, small_params, search_data):
    """Each head is scored only on rows it was not trained on, and the rows
    the folds score are every training sample once."""
    X, y = search_data
    rows = {r.tobytes(): i for i, r in enumerate(X.astype(np.float32))}

    def ids(A):
        return frozenset(rows[r.tobytes()] for r in np.asarray(A, dtype=np.float32))

    calls = []  # (rows trained on, rows scored on) of every training call
    train_heads = search_module.train_heads

    def spy(genomes, X_train, *args, **kwargs):
        heads = train_heads(genomes, X_train, *args, **kwargs)
        call = (ids(X_train), [], len(genomes))
        calls.append(call)
        logits = heads.logits

        def spy_logits(X_val):
            call[1].append(ids(X_val))
            return logits(X_val)

        heads.logits = spy_logits
        return heads

    monkeypatch.setattr(search_module, "train_heads", spy)
    monkeypatch.setattr(classifier_module, "train_heads", spy)  # the baseline
    EvoPruneClassifier(n_evaluations=6, n_folds=4, objectives=("accuracy", "complexity"),
                       **small_params).fit(X, y)
    # one generation of 6 genomes and the dense baseline (its first fold
    # trained before the search, for the informed operators): once per fold
    assert len(calls) == 2 * 4
    everything = frozenset(range(len(y)))
    for n_genomes in (6, 1):
        scored = []
        group = [c for c in calls if c[2] == n_genomes]
        assert len(group) == 4
        for trained, scored_on, _ in group:
            assert len(scored_on) == 1
            assert not trained & scored_on[0]
            assert trained | scored_on[0] == everything
            scored.append(scored_on[0])
        assert sum(map(len, scored)) == len(y) and frozenset().union(*scored) == everything


def test_memorised_training_rows_are_not_rewarded(small_params):
    """Random labels on one-hot sample identities: a head can learn its
    training rows by heart (refit=False keeps the first fold's head) but
    predicts held-out rows at chance, which is what n_folds measures."""
    rng = np.random.default_rng(0)
    n = 90
    X = np.eye(n) * 5 + rng.normal(0, 0.01, size=(n, n))
    y = rng.integers(0, 3, size=n)
    params = {**small_params, "hidden_layer_sizes": (), "alpha": 1e-4,
              "objectives": ("accuracy", "complexity")}
    clf = EvoPruneClassifier(n_evaluations=6, n_folds=3, refit=False, **params).fit(X, y)
    train = clf._train_index
    assert np.mean(clf.baseline_.predict(X[train]) == y[train]) > 0.9  # memorised
    assert clf.baseline_.objectives["accuracy"] < 0.6
    assert max(m.objectives["accuracy"] for m in clf.pareto_front_) < 0.6


@pytest.mark.parametrize("cv, match", [
    (1, "n_folds"), (0, "n_folds"), (-3, "n_folds"), (2.5, "n_folds"), ("3", "n_folds"),
    (True, "n_folds"),
    (100, "n_folds=100 folds need at least 100 samples"),
])
def test_bad_cv_is_refused_before_any_training(cv, match, heavy_work, small_params,
                                              search_data):
    X, y = search_data
    with pytest.raises(ValueError, match=match):
        EvoPruneClassifier(n_evaluations=6, n_folds=cv, **small_params).fit(X[:180], y[:180])
    assert heavy_work.none  # neither the dense baseline nor a search head was trained


def test_integer_sample_weight_is_repetition_with_cv(small_params, search_data):
    X, y = search_data
    w = np.random.default_rng(0).integers(0, 3, size=len(y))
    params = dict(small_params, n_evaluations=6, n_folds=3)
    weighted = EvoPruneClassifier(**params).fit(X, y, sample_weight=w)
    repeated = EvoPruneClassifier(**params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X),
                               rtol=1e-5, atol=1e-6)
    assert (weighted.pareto_front_[0].objectives["accuracy"]
            == pytest.approx(repeated.pareto_front_[0].objectives["accuracy"]))


def test_checkpoint_resume_keeps_the_folds(tmp_path, small_params, search_data, front_key):
    X, y = search_data
    params = dict(small_params, n_folds=3)
    whole = EvoPruneClassifier(n_evaluations=18, **params).fit(X, y)
    path = tmp_path / "cv.ckpt"
    EvoPruneClassifier(n_evaluations=12, checkpoint=path, **params).fit(X, y)
    resumed = EvoPruneClassifier(n_evaluations=18, checkpoint=path, **params).fit(X, y)
    assert front_key(resumed) == front_key(whole)
    np.testing.assert_array_equal(resumed.predict_proba(X), whole.predict_proba(X))


# ------------------------------------------------------- the splitter itself
def _labels():
    # 3 classes of 10, 6 and 1 samples, shuffled
    return np.random.default_rng(0).permutation(np.array(["a"] * 10 + ["b"] * 6 + ["c"]))


def test_holdout_split_is_stratified_train_test_split_of_the_rest():
    from sklearn.model_selection import train_test_split

    y = _labels()
    with pytest.warns(UserWarning, match=r"\['c'\] have 1 sample"):
        [(train, val)] = list(ValidationSplitter(0.25, random_state=7).split(None, y))
    alone = np.flatnonzero(y == "c")
    rest = np.flatnonzero(y != "c")
    tr, va = train_test_split(rest, test_size=4, stratify=y[rest], random_state=7)
    np.testing.assert_array_equal(train, np.sort(np.concatenate([tr, alone])))
    np.testing.assert_array_equal(val, np.sort(va))
    assert len(val) == 4 and set(y[val]) == {"a", "b"}  # ceil(0.25 * 16), stratified


def test_kfold_validation_parts_partition_the_samples_and_singletons_train():
    y = _labels()
    splitter = ValidationSplitter(n_folds=3, random_state=0)
    assert splitter.get_n_splits() == 3 and ValidationSplitter().get_n_splits() == 1
    with pytest.warns(UserWarning, match="1 sample"):
        folds = list(splitter.split(None, y))
    alone = np.flatnonzero(y == "c")
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals) == sorted(np.flatnonzero(y != "c"))
    for train, val in folds:
        assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
        assert not set(train) & set(val) and set(alone) <= set(train)
        assert len(set(train) | set(val)) == len(y)
        assert set(y[val]) == {"a", "b"}  # stratified: both classes in every fold


def test_the_split_depends_on_the_seed_and_on_nothing_else():
    y = _labels()
    with pytest.warns(UserWarning):
        a = list(ValidationSplitter(n_folds=2, random_state=1).split(np.zeros((17, 3)), y))
        b = list(ValidationSplitter(n_folds=2, random_state=1).split(None, y))
        c = list(ValidationSplitter(n_folds=2, random_state=2).split(None, y))
    assert all(np.array_equal(p, q) for f, g in zip(a, b) for p, q in zip(f, g))
    assert not all(np.array_equal(p, q) for f, g in zip(a, c) for p, q in zip(f, g))


@pytest.mark.parametrize("splitter, y, match", [
    (ValidationSplitter(), ["a", "b", "c"], "Every class has a single sample"),
    (ValidationSplitter(0.9), ["a"] * 3 + ["b"] * 3,
     "validation_fraction=0.9 of 6 samples leaves 6 validation and 0 training"),
    (ValidationSplitter(n_folds=4), ["a"] * 3 + ["b"] * 3,
     "n_folds=4 folds need at least 4 samples of some class"),
])
def test_splits_that_cannot_work_are_refused(splitter, y, match):
    with pytest.raises(ValueError, match=match):
        list(splitter.split(None, np.array(y)))


def test_the_estimator_uses_the_splitter_on_its_merged_samples(small_params, search_data):
    """The fitted folds are the splitter's, on the samples merge_samples
    keeps, with the split seed drawn first from random_state."""
    from evoprune_sklearn._weights import merge_samples

    X, y = search_data
    X, y = X[:120], np.where(np.arange(120) == 5, 7, y[:120])  # class 7: one sample
    with pytest.warns(UserWarning, match=r"\[7\] have 1 sample"):
        clf = EvoPruneClassifier(n_evaluations=6, **small_params).fit(X, y)
    y_enc = np.searchsorted(np.unique(y), y).astype(np.int64)  # as LabelEncoder
    used, _ = merge_samples(X.astype(np.float64), y_enc, np.ones(len(y)))
    seed = np.random.RandomState(small_params["random_state"]).randint(0, 2**31 - 1, size=4)[0]
    with pytest.warns(UserWarning):
        [(train, val)] = ValidationSplitter(random_state=int(seed)).split(None, y[used])
    np.testing.assert_array_equal(clf._train_index, used[train])
    np.testing.assert_array_equal(clf._val_index, used[val])
    assert 5 in clf._train_index
