"""Resumable searches (_checkpoint): a search killed or interrupted at any
point resumes to the front of one uninterrupted search, and a checkpoint
file is written atomically and loads without running code."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._checkpoint import SearchState, load_checkpoint
from evoprune_sklearn._search import NSGA2Search

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------ kill and resume
_CHILD = """
import json, sys, time
import evoprune_sklearn._checkpoint as ck
from sklearn.datasets import make_classification
from evoprune_sklearn import EvoPruneClassifier

settings, path = json.loads(sys.argv[1]), sys.argv[2]
record = ck.SearchState.record

def slow_record(self, result):
    record(self, result)
    time.sleep(0.4)  # leaves the parent time to kill mid-search

ck.SearchState.record = slow_record
X, y = make_classification(n_samples=200, n_features=40, n_informative=6,
                           n_classes=3, random_state=0)
EvoPruneClassifier(checkpoint=path, **settings).fit(X, y)
print("FINISHED")
"""


def _meta(path):
    """The search's part of a checkpoint file's metadata."""
    return load_checkpoint(path)["meta"]["search"]


def _generation(path):
    try:
        return _meta(path)["n_generations"]
    except (OSError, ValueError, RuntimeError, EOFError):
        return 0


def test_sigkill_mid_search_then_resume_gives_the_same_front(
    tmp_path, reference_search, monkeypatch, search_params, search_data, front_key, count_training
):
    path = str(tmp_path / "search.ckpt")
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen(
        [sys.executable, str(script), json.dumps(search_params), path],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while _generation(path) < 2:
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "child never wrote a checkpoint"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    stopped_at = _meta(path)["n_generations"]
    assert 2 <= stopped_at < 8

    counter = count_training()
    X, y = search_data
    resumed = EvoPruneClassifier(checkpoint=path, **search_params).fit(X, y)
    assert front_key(resumed) == front_key(reference_search)
    assert resumed.history_ == [
        {**r, "seconds": s["seconds"]} for r, s in zip(reference_search.history_, resumed.history_)
    ]
    # it really resumed: the generations before the kill were not re-run
    assert 0 < counter.genomes < reference_search.n_trained_
    np.testing.assert_array_equal(resumed.predict(X), reference_search.predict(X))


def test_fitting_again_with_a_finished_checkpoint_trains_nothing(
    tmp_path, reference_search, monkeypatch, search_params, search_data, front_key, count_training
):
    X, y = search_data
    path = tmp_path / "c.ckpt"
    first = EvoPruneClassifier(checkpoint=path, **search_params).fit(X, y)
    assert front_key(first) == front_key(reference_search)
    counter = count_training()
    # n_jobs, verbose and selection do not change the search: still resumable
    again = EvoPruneClassifier(checkpoint=path, **search_params).set_params(
        selection="accuracy", n_jobs=1).fit(X, y)
    assert counter.genomes == 0
    assert front_key(again) == front_key(reference_search)


def test_checkpoint_loads_without_unpickling_code(tmp_path, search_params, search_data):
    X, y = search_data
    path = tmp_path / "c.ckpt"
    EvoPruneClassifier(checkpoint=path, **{**search_params, "n_evaluations": 12}).fit(X, y)
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == "evoprune_sklearn.checkpoint"
    meta = json.loads(blob["meta"])["search"]
    assert meta["n_generations"] == 2 and meta["n_evaluations"] == 12
    assert len(blob["search"]["front_params"]) == len(meta["members"])


def test_a_checkpoint_of_another_format_version_is_refused(tmp_path, search_params,
                                                          search_data):
    X, y = search_data
    path = tmp_path / "c.ckpt"
    settings = {**search_params, "n_evaluations": 12}
    EvoPruneClassifier(checkpoint=path, **settings).fit(X, y)
    blob = torch.load(path, weights_only=True)
    torch.save({**blob, "format_version": 1}, path)
    with pytest.raises(ValueError, match="checkpoint format version 1; this version"):
        EvoPruneClassifier(checkpoint=path, **settings).fit(X, y)


def test_the_checkpoint_holds_the_search_results_state_dict(tmp_path, search_params,
                                                          search_data):
    """The file's search part is SearchResult.state_dict(): loading it gives
    the fitted search's front, history and counters."""
    from evoprune_sklearn._search import SearchResult

    X, y = search_data
    path = tmp_path / "c.ckpt"
    clf = EvoPruneClassifier(checkpoint=path, **{**search_params, "n_evaluations": 12})
    clf.fit(X, y)
    blob = load_checkpoint(path)
    result = SearchResult()
    result.load_state_dict({**blob["search"], "meta": blob["meta"]["search"]})
    assert result.n_evaluations == clf.n_evaluations_ == 12
    assert result.n_trained == clf.n_trained_ and result.n_generations == 2
    assert result.history == clf.history_ and result.stop_reason == "n_evaluations"
    assert sorted(m.genome.tobytes() for m in result.front) == sorted(
        m.genome.tobytes() for m in clf.pareto_front_)


def test_crash_while_writing_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch, search_params, search_data
):
    X, y = search_data
    path = tmp_path / "c.ckpt"
    settings = {**search_params, "n_evaluations": 12}
    EvoPruneClassifier(checkpoint=path, **settings).fit(X, y)
    before = path.read_bytes()

    def torn_write(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_write)
    with pytest.raises(OSError, match="disk full"):
        _fresh_search_writing_to(path, X, y)
    assert path.read_bytes() == before
    assert _meta(path)["n_generations"] == 2
    assert [f.name for f in tmp_path.iterdir()] == ["c.ckpt"]  # no temp left


def _fresh_search_writing_to(path, X, y):
    # A search writing over an existing checkpoint file.
    state = SearchState(str(path), {"version": "x", "parameters": {}, "data": "d"},
                        {}, folds=[(np.arange(3), np.arange(2))])
    from evoprune_sklearn._engines import TrainingConfig
    from evoprune_sklearn.objectives import Accuracy, Complexity, ObjectiveContext

    Xf = X.astype(np.float32)
    config = TrainingConfig("features", Xf.shape[1], (8,), 3, max_epochs=2)
    data = ObjectiveContext(Xf[:150], y[:150], Xf[150:], y[150:], 3, config=config)
    NSGA2Search(pop_size=4, n_evaluations=4).run(
        data, [Accuracy(), Complexity()], on_generation=state.record)


# -------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_leaves_a_fitted_estimator_and_an_intact_checkpoint(
    tmp_path, reference_search, monkeypatch, search_params, search_data, front_key, count_training
):
    X, y = search_data
    path = tmp_path / "c.ckpt"
    count_training(fail_on_call=4)  # Ctrl-C in generation 4
    clf = EvoPruneClassifier(checkpoint=path, **search_params)
    with pytest.warns(UserWarning, match="interrupted after generation 3"):
        clf.fit(X, y)
    assert len(clf.history_) == 3 and clf.n_evaluations_ == 18
    assert len(clf.pareto_front_) >= 1
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert clf.score(X, y) > 0.4  # 3 classes: better than chance
    assert torch.load(path, weights_only=True) is not None
    assert _meta(path)["n_generations"] == 3

    monkeypatch.undo()
    clf.fit(X, y)  # resumes
    assert front_key(clf) == front_key(reference_search)


def test_ctrl_c_before_any_generation_keeps_the_previous_fit(
    reference_search, monkeypatch, search_data, count_training
):
    X, y = search_data
    clf = pickle.loads(pickle.dumps(reference_search))
    before = clf.predict_proba(X)
    count_training(fail_on_call=1)
    with pytest.raises(KeyboardInterrupt):
        clf.set_params(n_evaluations=12).fit(X, y)
    assert clf.history_ == reference_search.history_
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def test_ctrl_c_in_the_first_generation_of_a_resumed_search_keeps_the_resumed_front(
    tmp_path, search_params, search_data, front_key, count_training
):
    X, y = search_data
    path = tmp_path / "c.ckpt"
    first = EvoPruneClassifier(checkpoint=path, **{**search_params, "n_evaluations": 12})
    first.fit(X, y)
    count_training(fail_on_call=1)
    clf = EvoPruneClassifier(checkpoint=path, **search_params)
    with pytest.warns(UserWarning, match="interrupted after generation 2"):
        clf.fit(X, y)
    assert clf.stop_reason_ == "interrupted" and clf.n_evaluations_ == 12
    assert front_key(clf) == front_key(first) and clf.history_ == first.history_
    assert _meta(path)["n_generations"] == 2  # the file is untouched
