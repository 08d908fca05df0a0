"""Continuing a search: warm_start=True and a checkpoint with a larger budget."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

import evoprune_sklearn._classifier as classifier_module
from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._backbones import Backbone
from evoprune_sklearn.callbacks import ThresholdStopping


def records(clf):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in clf.history_]


@pytest.fixture(scope="module")
def uninterrupted(small_params, search_data):
    """One search of 24 evaluations (4 generations), never stopped."""
    X, y = search_data
    return EvoPruneClassifier(n_evaluations=24, **small_params).fit(X, y)


def test_warm_start_continues_to_the_uninterrupted_front(
    uninterrupted, monkeypatch, small_params, search_data, front_key, count_training
):
    X, y = search_data
    clf = EvoPruneClassifier(n_evaluations=12, warm_start=True, **small_params).fit(X, y)
    assert clf.n_evaluations_ == 12 and len(clf.history_) == 2
    first_trained = clf.n_trained_

    counter = count_training()
    clf.set_params(n_evaluations=24).fit(X, y)
    assert front_key(clf) == front_key(uninterrupted)
    assert records(clf) == records(uninterrupted)
    assert clf.n_evaluations_ == 24 and clf.stop_reason_ == "n_evaluations"
    # the cache was kept: only genomes never seen before were trained
    assert counter.genomes == uninterrupted.n_trained_ - first_trained
    assert clf.n_trained_ == uninterrupted.n_trained_
    np.testing.assert_array_equal(clf.predict_proba(X), uninterrupted.predict_proba(X))


def test_the_search_state_survives_pickling(uninterrupted, small_params, search_data, front_key):
    X, y = search_data
    clf = EvoPruneClassifier(n_evaluations=12, **small_params).fit(X, y)
    # warm_start may be switched on after the first fit
    loaded = pickle.loads(pickle.dumps(clf))
    loaded.set_params(warm_start=True, n_evaluations=24).fit(X, y)
    assert front_key(loaded) == front_key(uninterrupted)


def test_checkpoint_refit_with_a_larger_budget_continues(uninterrupted, tmp_path,
                                                          monkeypatch, small_params, search_data,
                                                          front_key, count_training):
    X, y = search_data
    path = tmp_path / "search.ckpt"
    EvoPruneClassifier(n_evaluations=12, checkpoint=path, **small_params).fit(X, y)
    counter = count_training()
    # a fresh estimator, as in a new Python session: only the file is shared
    clf = EvoPruneClassifier(n_evaluations=24, checkpoint=path, **small_params).fit(X, y)
    assert front_key(clf) == front_key(uninterrupted)
    assert records(clf) == records(uninterrupted)
    assert 0 < counter.genomes < uninterrupted.n_trained_


def test_continuing_after_an_early_stop_gives_the_uninterrupted_front(
    uninterrupted, small_params, search_data, front_key
):
    # a stop criterion ends the search between generations: on a boundary
    X, y = search_data
    clf = EvoPruneClassifier(
        n_evaluations=24, warm_start=True, **small_params,
        callbacks=[ThresholdStopping(1, metric="generation")],
    ).fit(X, y)
    assert clf.stop_reason_ == "ThresholdStopping" and clf.n_evaluations_ == 12
    clf.set_params(callbacks=None).fit(X, y)
    assert front_key(clf) == front_key(uninterrupted)


def test_continuing_from_a_cut_generation_is_a_valid_but_other_search(small_params, search_data):
    # 15 = 2.5 generations: the third generation was cut to 3 genomes and
    # NSGA-II's survival saw only those; the continuation goes on from there.
    X, y = search_data
    cut = EvoPruneClassifier(n_evaluations=15, warm_start=True, **small_params).fit(X, y)
    before = records(cut)
    assert [r["n_evaluations"] for r in before] == [6, 12, 15]
    cut.set_params(n_evaluations=24).fit(X, y)
    assert records(cut)[:3] == before
    assert [r["n_evaluations"] for r in cut.history_] == [6, 12, 15, 21, 24]
    front = cut.pareto_front_
    F = front.F * np.where(front.greater_is_better, -1.0, 1.0)  # all to minimise
    dominated = [(np.all(F[j] <= F[i]) and np.any(F[j] < F[i]))
                 for i in range(len(F)) for j in range(len(F))]
    assert not any(dominated)


def test_without_warm_start_each_fit_starts_anew(
    uninterrupted, small_params, search_data, front_key
):
    X, y = search_data
    clf = EvoPruneClassifier(n_evaluations=12, **small_params).fit(X, y)
    clf.set_params(n_evaluations=24).fit(X, y)
    assert front_key(clf) == front_key(uninterrupted)
    assert len(clf.history_) == 4
    clf.fit(X, y)  # the same budget again: a new search, not zero new work
    assert front_key(clf) == front_key(uninterrupted) and len(clf.history_) == 4
    # warm_start on an unfitted estimator, or on a clone, is a first fit
    fresh = clone(clf).set_params(warm_start=True).fit(X, y)
    assert front_key(fresh) == front_key(uninterrupted)
    assert records(fresh) == records(uninterrupted)


@pytest.fixture(scope="module")
def fitted12(small_params, search_data):
    X, y = search_data
    return EvoPruneClassifier(n_evaluations=12, warm_start=True, **small_params).fit(X, y)


@pytest.mark.parametrize("change, match", [
    (dict(X=lambda X: X + 1.0), "other training data"),
    (dict(y=lambda y: (y + 1) % 3), "other training data"),
    (dict(encoding="neurons"), r"encoding='features' there, 'neurons' here"),
    (dict(hidden_layer_sizes=(16,)), "hidden_layer_sizes"),
    (dict(alpha=0.5), r"alpha=1.0 there, 0.5 here"),
    (dict(pop_size=8, n_evaluations=24), "pop_size=6 there, 8 here"),
    (dict(objectives=("accuracy", "complexity")), "objectives"),
    (dict(n_folds=3), "n_folds=None there, 3 here"),
    (dict(n_evaluations=6), "n_evaluations=6 is smaller than the 12 evaluations"),
])
def test_warm_start_refuses_what_would_make_continuing_meaningless(
    fitted12, change, match, monkeypatch, search_data, heavy_work
):
    X, y = search_data
    change = dict(change)
    X = change.pop("X", lambda X: X)(X)
    y = change.pop("y", lambda y: y)(y)
    clf = pickle.loads(pickle.dumps(fitted12))
    before = clf.predict_proba(X)

    def heavy(*args, **kwargs):
        raise AssertionError("heavy work started before the refusal")

    monkeypatch.setattr(classifier_module, "NSGA2Search", heavy)
    monkeypatch.setattr(Backbone, "extract", heavy)
    with pytest.raises(ValueError, match=match) as info:
        clf.set_params(**{"n_evaluations": 24, **change}).fit(X, y)
    if "smaller" not in match:
        assert "warm_start=False" in str(info.value)
    assert heavy_work.none  # nor was the dense baseline retrained
    # the refused fit left the previous one untouched
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    assert clf.n_evaluations_ == 12


def test_warm_start_refuses_other_sample_weights(small_params, search_data):
    X, y = search_data
    w = np.where(y == 0, 2.0, 1.0)
    clf = EvoPruneClassifier(n_evaluations=6, warm_start=True, **small_params)
    clf.fit(X, y, sample_weight=w)
    with pytest.raises(ValueError, match="other training data"):
        clf.set_params(n_evaluations=12).fit(X, y)  # unweighted now
    clf.fit(X, y, sample_weight=w.copy())  # the same weights: continues
    assert clf.n_evaluations_ == 12 and len(clf.history_) == 2


def test_what_may_change_when_continuing(uninterrupted, small_params, search_data, front_key):
    # n_jobs, verbose, selection, the budget and the stop criteria do not
    # change where the search goes
    X, y = search_data
    clf = EvoPruneClassifier(n_evaluations=12, warm_start=True, **small_params).fit(X, y)
    clf.set_params(n_evaluations=24, selection="accuracy", verbose=0,
                   max_time=1e6, n_iter_no_change=50, hypervolume_tol=0.0).fit(X, y)
    assert front_key(clf) == front_key(uninterrupted)


def test_warm_start_after_ctrl_c_resumes(
    uninterrupted, monkeypatch, small_params, search_data, front_key, count_training
):
    X, y = search_data
    count_training(fail_on_call=3)  # Ctrl-C in the third generation
    clf = EvoPruneClassifier(n_evaluations=24, warm_start=True, **small_params)
    with pytest.warns(UserWarning, match="warm_start=True to resume"):
        clf.fit(X, y)
    assert clf.stop_reason_ == "interrupted" and clf.n_evaluations_ == 12
    monkeypatch.undo()
    clf.fit(X, y)
    assert front_key(clf) == front_key(uninterrupted)
    assert clf.stop_reason_ == "n_evaluations"


def test_an_estimator_without_search_state_warns_and_starts_anew(fitted12, search_data):
    X, y = search_data
    clf = pickle.loads(pickle.dumps(fitted12))
    del clf._search_state  # e.g. restored by a format that keeps no search state
    with pytest.warns(UserWarning, match="holds no search state"):
        clf.set_params(n_evaluations=12).fit(X, y)
    assert records(clf) == records(fitted12)


def test_a_search_state_of_an_older_format_warns_and_starts_anew(fitted12, search_data):
    X, y = search_data
    clf = pickle.loads(pickle.dumps(fitted12))
    clf._search_state = {**clf._search_state, "format_version": 1}
    with pytest.warns(UserWarning, match="format of an older version"):
        clf.set_params(n_evaluations=12).fit(X, y)
    assert records(clf) == records(fitted12)


# ---------------------------------------------------- stopping and resuming
# tol=1: no generation after the first counts as an improvement, so
# n_iter_no_change=3 stops after the fourth generation (24 evaluations).
NO_CHANGE = dict(n_iter_no_change=3, hypervolume_tol=1.0, n_evaluations=60)


def test_a_killed_search_resumed_stops_where_the_uninterrupted_one_does(
    uninterrupted, tmp_path, monkeypatch, small_params, search_data, front_key, count_training
):
    X, y = search_data
    clf = EvoPruneClassifier(**small_params, **NO_CHANGE).fit(X, y)
    assert clf.stop_reason_ == "n_iter_no_change" and clf.n_evaluations_ == 24
    assert front_key(clf) == front_key(uninterrupted)

    path = tmp_path / "c.ckpt"
    count_training(fail_on_call=4)  # Ctrl-C after 3 generations
    with pytest.warns(UserWarning, match="interrupted after generation 3"):
        EvoPruneClassifier(checkpoint=path, **small_params, **NO_CHANGE).fit(X, y)
    monkeypatch.undo()
    # the resumed fit counts the generations before the interrupt too
    resumed = EvoPruneClassifier(checkpoint=path, **small_params, **NO_CHANGE).fit(X, y)
    assert resumed.stop_reason_ == "n_iter_no_change"
    assert resumed.n_evaluations_ == 24
    assert front_key(resumed) == front_key(uninterrupted)

    # continuing the stopped search is a new run: it gets its own 3 generations
    resumed.fit(X, y)
    assert resumed.stop_reason_ == "n_iter_no_change"
    assert resumed.n_evaluations_ == 42
