"""Budgets, early stopping and callbacks: what stops a search, and who hears
about each generation."""

import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import evoprune_sklearn._classifier as classifier_module
import evoprune_sklearn._search as search_module
from evoprune_sklearn import EvoPruneClassifier, ParetoFront
from evoprune_sklearn._search import generations_without_improvement
from evoprune_sklearn.callbacks import (
    CSVLogger,
    SearchCallback,
    StopSearch,
    ThresholdStopping,
)


@pytest.fixture(scope="module")
def make_clf(small_params):
    """``make_clf(**params)``: small_params with 4 generations."""
    return lambda **kw: EvoPruneClassifier(**{**small_params, "n_evaluations": 24, **kw})


class Recorder(SearchCallback):
    """Keeps what it is told; stops at generation ``stop_at`` (None: never)."""

    def __init__(self, stop_at=None, raise_stop=False):
        self.stop_at = stop_at
        self.raise_stop = raise_stop

    def on_search_begin(self, estimator, history):
        self.begun = (estimator, len(history))
        self.records, self.fronts, self.ended = [], [], None

    def on_generation_end(self, record, front):
        self.records.append(record)
        self.fronts.append(front)
        if record["generation"] == self.stop_at:
            if self.raise_stop:
                raise StopSearch("enough")
            return True
        return None

    def on_search_end(self, history, stop_reason):
        self.ended = (len(history), stop_reason)


@pytest.fixture(scope="module")
def full(search_data, make_clf):
    X, y = search_data
    return make_clf().fit(X, y)


# ------------------------------------------------------------------ callbacks
def test_callbacks_hear_every_generation_with_its_record_and_front(
    full, search_data, front_key, make_clf
):
    X, y = search_data
    rec = Recorder()
    clf = make_clf(callbacks=[rec]).fit(X, y)
    assert front_key(clf) == front_key(full)  # watching changes nothing
    assert clf.stop_reason_ == "n_evaluations"
    assert rec.begun == (clf, 0)
    assert rec.records == clf.history_
    assert rec.ended == (4, "n_evaluations")
    for record, front in zip(rec.records, rec.fronts):
        assert isinstance(front, ParetoFront)
        assert len(front) == record["front_size"]
        best = max(m.objectives["accuracy"] for m in front)
        assert best == record["best_accuracy"]
        assert all(m.genome.size == 40 for m in front)
    # the callback's records are copies: changing them does not change history_
    rec.records[0]["generation"] = 99
    assert clf.history_[0]["generation"] == 0


@pytest.mark.parametrize("raise_stop", [False, True])
def test_a_callback_stops_the_search_and_is_named_as_the_reason(
    full, raise_stop, search_data, make_clf
):
    X, y = search_data
    rec, watcher = Recorder(stop_at=1, raise_stop=raise_stop), Recorder()
    clf = make_clf(callbacks=[("enough", rec), watcher]).fit(X, y)
    assert clf.stop_reason_ == "enough"
    assert clf.n_evaluations_ == 12 and len(clf.history_) == 2
    assert clf.history_ == [{**r, "seconds": s["seconds"]}
                            for r, s in zip(full.history_, clf.history_)]
    # every callback saw the last generation, also those after the one that stopped
    assert len(watcher.records) == 2 and watcher.ended == (2, "enough")
    assert set(clf.predict(X)) <= set(clf.classes_)


def test_a_plain_function_is_a_callback(search_data, make_clf):
    X, y = search_data
    seen = []

    def stop_after_two(record, front):
        seen.append(record["n_evaluations"])
        return record["generation"] >= 1

    clf = make_clf(callbacks=[stop_after_two]).fit(X, y)
    assert seen == [6, 12]
    assert clf.stop_reason_ == "stop_after_two"


def test_search_end_is_called_on_ctrl_c_and_on_errors(monkeypatch, search_data, make_clf):
    X, y = search_data
    train = search_module.train_heads
    calls = []

    def interrupted_in_third_generation(genomes, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return train(genomes, *args, **kwargs)

    monkeypatch.setattr(search_module, "train_heads", interrupted_in_third_generation)
    rec = Recorder()
    with pytest.warns(UserWarning, match="interrupted"):
        clf = make_clf(callbacks=[rec]).fit(X, y)
    assert rec.ended == (2, "interrupted") and clf.stop_reason_ == "interrupted"

    class Broken(Recorder):
        def on_generation_end(self, record, front):
            raise RuntimeError("a bug in a callback")

    broken = Broken()
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="a bug in a callback"):
        make_clf(callbacks=[broken]).fit(X, y)
    assert broken.ended == (1, "error")


# ----------------------------------------------------------------- built-ins
def test_csv_logger_writes_the_history_as_the_search_goes(tmp_path, search_data, make_clf):
    X, y = search_data
    path = tmp_path / "search.csv"
    path.write_text("stale rows of an earlier search\n")
    rows_seen = []

    def peek(record, front):  # the file is complete after every generation
        rows_seen.append(len(pd.read_csv(path)))

    clf = make_clf(n_evaluations=12, warm_start=True,
               callbacks=[CSVLogger(path), peek]).fit(X, y)
    log = pd.read_csv(path)
    assert rows_seen == [1, 2]
    assert list(log.columns) == list(clf.history_[0])
    np.testing.assert_allclose(log.to_numpy(float),
                               pd.DataFrame(clf.history_).to_numpy(float))
    # a continued search: the file holds the whole history_, not only the new rows
    clf.set_params(n_evaluations=24, callbacks=[CSVLogger(path, sep=";")]).fit(X, y)
    log = pd.read_csv(path, sep=";")
    assert len(log) == len(clf.history_) == 4
    assert log["n_evaluations"].tolist() == [6, 12, 18, 24]
    np.testing.assert_allclose(log["hypervolume"], [r["hypervolume"] for r in clf.history_])


def test_csv_logger_refuses_a_missing_folder(tmp_path, search_data, make_clf):
    X, y = search_data
    with pytest.raises(ValueError, match="CSVLogger path=.*does not exist"):
        make_clf(callbacks=[CSVLogger(tmp_path / "nowhere" / "log.csv")]).fit(X, y)


@pytest.mark.parametrize("metric, threshold, expected_generations", [
    ("best_accuracy", 0.0, 1),       # reached at once
    ("best_accuracy", 1.01, 4),      # never reached: the budget ends it
    ("generation", 2, 3),
    ("best_complexity", 1.0, 1),     # lower is better: <= 1.0 at once
])
def test_threshold_stopping(metric, threshold, expected_generations, search_data, make_clf):
    X, y = search_data
    clf = make_clf(callbacks=[ThresholdStopping(threshold, metric=metric)]).fit(X, y)
    assert len(clf.history_) == expected_generations
    expected = "ThresholdStopping" if expected_generations < 4 else "n_evaluations"
    assert clf.stop_reason_ == expected


def test_threshold_stopping_names_an_unknown_metric(search_data, make_clf):
    X, y = search_data
    with pytest.raises(ValueError, match="metric='f1'.*valid metrics are"):
        make_clf(callbacks=[ThresholdStopping(0.5, metric="f1")]).fit(X, y)


# ---------------------------------------------------------- budget, no change
def test_max_time_stops_between_generations(full, search_data, front_key, make_clf):
    X, y = search_data
    clf = make_clf(max_time=1e-6).fit(X, y)
    assert clf.stop_reason_ == "max_time"
    assert clf.n_evaluations_ == 6  # one generation always completes
    generous = make_clf(max_time=1e6).fit(X, y)
    assert generous.stop_reason_ == "n_evaluations"
    assert front_key(generous) == front_key(full)


def test_max_time_counts_from_the_start_of_fit(monkeypatch, search_data, make_clf):
    # Frozen clocks: fit starts at 0 s, and the search always reads 50 s, so
    # the search itself takes no time; only the time before it counts.
    X, y = search_data
    monkeypatch.setattr(classifier_module, "time", SimpleNamespace(perf_counter=lambda: 0.0))
    monkeypatch.setattr(search_module, "time", SimpleNamespace(perf_counter=lambda: 50.0))
    clf = make_clf(max_time=45.0).fit(X, y)
    assert clf.stop_reason_ == "max_time" and len(clf.history_) == 1
    clf = make_clf(max_time=55.0).fit(X, y)
    assert clf.stop_reason_ == "n_evaluations" and len(clf.history_) == 4


def test_n_iter_no_change_stops_when_the_hypervolume_stalls(full, search_data, make_clf):
    X, y = search_data
    # the generation at which the full run's hypervolume had stalled
    tol = 0.02
    counts = [generations_without_improvement(full.history_[:g + 1], 0, tol)
              for g in range(len(full.history_))]
    assert 1 in counts[:-1], counts  # the data must show a stall to test
    stop = counts.index(1)
    clf = make_clf(n_iter_no_change=1, hypervolume_tol=tol).fit(X, y)
    assert clf.stop_reason_ == "n_iter_no_change"
    assert len(clf.history_) == stop + 1
    assert clf.history_ == [{**r, "seconds": s["seconds"]}
                            for r, s in zip(full.history_, clf.history_)]
    # with a tolerance no gain can reach, patience decides alone
    clf = make_clf(n_iter_no_change=2, hypervolume_tol=1.0).fit(X, y)
    assert clf.stop_reason_ == "n_iter_no_change" and len(clf.history_) == 3


def test_the_budget_wins_when_several_criteria_meet(full, search_data, make_clf):
    X, y = search_data
    clf = make_clf(max_time=1e-6, callbacks=[ThresholdStopping(0.0)],
               n_evaluations=6).fit(X, y)
    assert clf.stop_reason_ == "n_evaluations"
    clf = make_clf(max_time=1e-6, callbacks=[ThresholdStopping(0.0)]).fit(X, y)
    assert clf.stop_reason_ == "max_time"


# -------------------------------------------------------------- sklearn API
def test_callbacks_survive_clone_and_grid_search(search_data, make_clf):
    X, y = search_data
    rec = Recorder()
    clf = make_clf(n_evaluations=12, callbacks=[("rec", rec), CSVLogger("x.csv")])
    twin = clone(clf)
    cloned = twin.get_params()["callbacks"]
    assert cloned[0][0] == "rec" and type(cloned[0][1]) is Recorder
    assert cloned[0][1] is not rec and cloned[1].get_params() == {"path": "x.csv", "sep": ","}

    search = GridSearchCV(
        make_clf(n_evaluations=12),
        {"callbacks": [[("rec", rec), ("stop", ThresholdStopping(0.0))], [("rec", rec)]]},
        cv=2, refit=True,
    ).fit(X, y)
    assert not hasattr(rec, "records")  # every fit called its own clone
    best = search.best_estimator_
    used = dict(best.callbacks)["rec"]
    assert used is not rec and used.records == best.history_
    stopped = search.cv_results_["params"][0]["callbacks"]
    assert stopped[1][0] == "stop"
    # the estimator with a callback pickles (callbacks hold no open file)
    loaded = pickle.loads(pickle.dumps(best))
    np.testing.assert_array_equal(loaded.predict(X), best.predict(X))


@pytest.mark.parametrize("params, error, match", [
    (dict(callbacks=CSVLogger("x.csv")), ValueError, "callbacks"),
    (dict(callbacks=[42]), TypeError, r"callbacks\[0\]=42 is neither a callback"),
    (dict(callbacks=[CSVLogger]), TypeError, "is the class CSVLogger; pass an instance"),
    (dict(callbacks=[CSVLogger("a"), CSVLogger("b")]), ValueError,
     r"several callbacks named \['CSVLogger'\]"),
    (dict(callbacks=[("max_time", CSVLogger("a"))]), ValueError, "reserved names"),
    (dict(max_time=0), ValueError, "max_time"),
    (dict(max_time="1h"), ValueError, "max_time"),
    (dict(n_iter_no_change=0), ValueError, "n_iter_no_change"),
    (dict(hypervolume_tol=-1e-3), ValueError, "hypervolume_tol"),
    (dict(warm_start="yes"), ValueError, "warm_start"),
])
def test_bad_search_control_parameters_are_refused_before_any_work(
    params, error, match, monkeypatch, search_data, make_clf, heavy_work
):
    X, y = search_data

    def heavy(*args, **kwargs):
        raise AssertionError("the search started")

    monkeypatch.setattr(classifier_module, "NSGA2Search", heavy)
    with pytest.raises(error, match=match):
        make_clf(**params).fit(X, y)
    assert heavy_work.none  # the dense baseline was not trained either
