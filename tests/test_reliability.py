"""Reliability a user relies on: resumable searches, reproducible fronts,
safe persistence, and memory that does not grow with the image count."""

import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

import evoprune_sklearn._search as search_module
from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._checkpoint import SearchState, load_checkpoint
from evoprune_sklearn.datasets import ImageFolderArray, load_image_folder
from evoprune_sklearn.objectives import Accuracy, Complexity, ObjectiveContext

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 40 genes and 8 generations: enough for a front that depends on every
# random draw (a wrongly restored generator changes it), small enough for
# about a second a fit.
SETTINGS = dict(
    backbone=None, hidden_layer_sizes=(8,), pop_size=6,
    max_epochs=5, lr=0.01, random_state=0, n_evaluations=48,
)


def _data():
    return make_classification(
        n_samples=200, n_features=40, n_informative=6, n_classes=3, random_state=0
    )


def front_key(clf):
    """Genomes and objective values of the front, exactly."""
    return [(m.genome.tobytes(), tuple(sorted(m.objectives.items())))
            for m in clf.pareto_front_]


@pytest.fixture(scope="module")
def reference():
    """An uninterrupted fit without checkpoint."""
    X, y = _data()
    return EvoPruneClassifier(**SETTINGS).fit(X, y)


class _CountTraining:
    """Counts genomes trained (in-process, n_jobs=None)."""

    def __init__(self, monkeypatch, fail_on_call=None):
        self.calls = 0
        self.genomes = 0
        self.fail_on_call = fail_on_call
        self._train = search_module.train_heads
        monkeypatch.setattr(search_module, "train_heads", self)

    def __call__(self, genomes, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt  # what Ctrl-C raises mid-training
        self.genomes += len(genomes)
        return self._train(genomes, *args, **kwargs)


# ------------------------------------------------------------ kill and resume
_CHILD = """
import json, sys, time
import evoprune_sklearn._checkpoint as ck
from sklearn.datasets import make_classification
from evoprune_sklearn import EvoPruneClassifier

settings, path = json.loads(sys.argv[1]), sys.argv[2]
save = ck.SearchState.save

def slow_save(self, *args, **kwargs):
    save(self, *args, **kwargs)
    time.sleep(0.4)  # leaves the parent time to kill mid-search

ck.SearchState.save = slow_save
X, y = make_classification(n_samples=200, n_features=40, n_informative=6,
                           n_classes=3, random_state=0)
EvoPruneClassifier(checkpoint=path, **settings).fit(X, y)
print("FINISHED")
"""


def _generation(path):
    try:
        return load_checkpoint(path)["meta"]["generation"]
    except (OSError, ValueError, RuntimeError, EOFError):
        return 0


def test_sigkill_mid_search_then_resume_gives_the_same_front(
    tmp_path, reference, monkeypatch
):
    path = str(tmp_path / "search.ckpt")
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen(
        [sys.executable, str(script), json.dumps(SETTINGS), path],
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
    stopped_at = load_checkpoint(path)["meta"]["generation"]
    assert 2 <= stopped_at < 8

    counter = _CountTraining(monkeypatch)
    X, y = _data()
    resumed = EvoPruneClassifier(checkpoint=path, **SETTINGS).fit(X, y)
    assert front_key(resumed) == front_key(reference)
    assert resumed.history_ == [
        {**r, "seconds": s["seconds"]} for r, s in zip(reference.history_, resumed.history_)
    ]
    # it really resumed: the generations before the kill were not re-run
    assert 0 < counter.genomes < reference.n_trained_
    np.testing.assert_array_equal(resumed.predict(X), reference.predict(X))


def test_fitting_again_with_a_finished_checkpoint_trains_nothing(
    tmp_path, reference, monkeypatch
):
    X, y = _data()
    path = tmp_path / "c.ckpt"
    first = EvoPruneClassifier(checkpoint=path, **SETTINGS).fit(X, y)
    assert front_key(first) == front_key(reference)
    counter = _CountTraining(monkeypatch)
    # n_jobs, verbose and selection do not change the search: still resumable
    again = EvoPruneClassifier(checkpoint=path, **SETTINGS).set_params(
        selection="accuracy", n_jobs=1).fit(X, y)
    assert counter.genomes == 0
    assert front_key(again) == front_key(reference)


def test_checkpoint_loads_without_unpickling_code(tmp_path):
    X, y = _data()
    path = tmp_path / "c.ckpt"
    EvoPruneClassifier(checkpoint=path, **{**SETTINGS, "n_evaluations": 12}).fit(X, y)
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == "evoprune_sklearn.checkpoint"
    meta = json.loads(blob["meta"])
    assert meta["generation"] == 2 and meta["done"] == 12
    assert len(blob["front_params"]) == len(meta["front"])


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    X, y = _data()
    path = tmp_path / "c.ckpt"
    settings = {**SETTINGS, "n_evaluations": 12}
    EvoPruneClassifier(checkpoint=path, **settings).fit(X, y)
    before = path.read_bytes()

    def torn_write(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_write)
    with pytest.raises(OSError, match="disk full"):
        _fresh_search_writing_to(path, X, y)
    assert path.read_bytes() == before
    assert load_checkpoint(path)["meta"]["generation"] == 2
    assert [f.name for f in tmp_path.iterdir()] == ["c.ckpt"]  # no temp left


def _fresh_search_writing_to(path, X, y):
    # A search writing over an existing checkpoint file.
    state = SearchState(str(path), {"version": "x", "parameters": {}, "data": "d"},
                        {}, split=(np.arange(3), np.arange(2)))
    from evoprune_sklearn._engine import TrainingConfig

    Xf = X.astype(np.float32)
    data = ObjectiveContext(Xf[:150], y[:150], Xf[150:], y[150:], 3)
    config = TrainingConfig("features", Xf.shape[1], (8,), 3, max_epochs=2)
    search_module.run_search(data, config, [Accuracy(), Complexity()],
                             pop_size=4, n_evaluations=4, state=state)


# -------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_leaves_a_fitted_estimator_and_an_intact_checkpoint(
    tmp_path, reference, monkeypatch
):
    X, y = _data()
    path = tmp_path / "c.ckpt"
    _CountTraining(monkeypatch, fail_on_call=4)  # Ctrl-C in generation 4
    clf = EvoPruneClassifier(checkpoint=path, **SETTINGS)
    with pytest.warns(UserWarning, match="interrupted after generation 3"):
        clf.fit(X, y)
    assert len(clf.history_) == 3 and clf.n_evaluations_ == 18
    assert len(clf.pareto_front_) >= 1
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert clf.score(X, y) > 0.4  # 3 classes: better than chance
    assert torch.load(path, weights_only=True) is not None
    assert load_checkpoint(path)["meta"]["generation"] == 3

    monkeypatch.undo()
    clf.fit(X, y)  # resumes
    assert front_key(clf) == front_key(reference)


def test_ctrl_c_before_any_generation_keeps_the_previous_fit(reference, monkeypatch):
    X, y = _data()
    clf = pickle.loads(pickle.dumps(reference))
    before = clf.predict_proba(X)
    _CountTraining(monkeypatch, fail_on_call=1)
    with pytest.raises(KeyboardInterrupt):
        clf.set_params(n_evaluations=12).fit(X, y)
    assert clf.history_ == reference.history_
    np.testing.assert_array_equal(clf.predict_proba(X), before)


# --------------------------------------------------------------- determinism
def test_same_random_state_gives_the_same_front(reference):
    X, y = _data()
    again = EvoPruneClassifier(**SETTINGS).fit(X, y)
    assert front_key(again) == front_key(reference)
    other = EvoPruneClassifier(**{**SETTINGS, "random_state": 1,
                                  "n_evaluations": 12}).fit(X, y)
    assert front_key(other) != front_key(reference)


def test_same_front_with_two_workers(reference):
    X, y = _data()
    settings = {**SETTINGS, "n_evaluations": 24}
    one = EvoPruneClassifier(**settings).fit(X, y)
    two_a = EvoPruneClassifier(n_jobs=2, **settings).fit(X, y)
    two_b = EvoPruneClassifier(n_jobs=2, **settings).fit(X, y)
    assert front_key(two_a) == front_key(two_b)
    # heads are pure functions of their genomes, whichever worker trains them
    assert front_key(two_a) == front_key(one)


# --------------------------------------------------------------- persistence
def test_pickle_and_joblib_round_trips_predict_identically(reference, tmp_path):
    X, _ = _data()
    proba = reference.predict_proba(X)
    for loaded in (
        pickle.loads(pickle.dumps(reference)),
        joblib.load(joblib.dump(reference, tmp_path / "clf.joblib")[0]),
    ):
        np.testing.assert_array_equal(loaded.predict_proba(X), proba)
        np.testing.assert_array_equal(loaded.predict(X), reference.predict(X))
        assert front_key(loaded) == front_key(reference)


def test_gpu_fitted_estimator_unpickles_on_a_cpu_only_machine(reference, monkeypatch):
    # Simulated: mark everything as fitted on CUDA, then unpickle while CUDA
    # is unavailable (CI has no GPU).
    X, y = _data()
    clf = pickle.loads(pickle.dumps(reference))
    proba = clf.predict_proba(X)
    clf._device = "cuda"
    clf._config = dataclasses.replace(clf._config, device="cuda")
    for member in clf.pareto_front_:
        member.net.device = "cuda"
    blob = pickle.dumps(clf)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch says it maps to the CPU
        loaded = pickle.loads(blob)
    assert loaded._device == "cpu" and loaded._config.device == "cpu"
    assert all(str(m.net.device) == "cpu" for m in loaded.pareto_front_)
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)


# ------------------------------------------------------------- lazy folders
def _image_folder(root, n_per_class, size=40):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        os.makedirs(root / label, exist_ok=True)
        for i in range(n_per_class):
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            if label == "b":
                img[: size // 2] = 255  # a learnable difference
            Image.fromarray(img).save(root / label / f"{i:03d}.png")
    return root


def test_lazy_folder_matches_eager_and_streams_in_batches(tmp_path, make_tiny, monkeypatch):
    root = _image_folder(tmp_path, 20)
    X_eager, y_eager = load_image_folder(root, size=32)
    X_lazy, y_lazy = load_image_folder(root, size=32, lazy=True)
    assert isinstance(X_lazy, ImageFolderArray)
    assert X_lazy.shape == X_eager.shape and len(X_lazy) == 40
    np.testing.assert_array_equal(np.asarray(X_lazy), X_eager)
    np.testing.assert_array_equal(X_lazy[[3, 30]], X_eager[[3, 30]])
    np.testing.assert_array_equal(y_lazy, y_eager)

    requested = []
    getitem = ImageFolderArray.__getitem__

    def spy(self, key):
        out = getitem(self, key)
        requested.append(len(out) if out.ndim == 4 else 1)
        return out

    monkeypatch.setattr(ImageFolderArray, "__getitem__", spy)
    settings = dict(image_size=32, objectives=("accuracy", "complexity"),
                    pop_size=4, n_evaluations=4)
    lazy = make_tiny(**settings).fit(X_lazy, y_lazy)
    assert max(requested) <= 64  # never the whole folder at once
    eager = make_tiny(**settings).fit(X_eager, y_eager)
    assert front_key(lazy) == front_key(eager)
    proba = eager.predict_proba(X_eager)
    np.testing.assert_array_equal(lazy.predict_proba(X_lazy), proba)
    # an image estimator survives pickling with identical predictions
    loaded = pickle.loads(pickle.dumps(eager))
    np.testing.assert_array_equal(loaded.predict_proba(X_eager), proba)
