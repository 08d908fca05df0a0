"""save/load: safetensors + JSON, same predictions, refuses foreign or altered files."""

import dataclasses
import json
import pathlib
import pickle

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

import evoprune_sklearn._persistence as persistence_module
from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._persistence import FORMAT, _digest

# accuracy and complexity only where robustness is not the point
TWO = ("accuracy", "complexity")


@pytest.fixture(scope="module")
def feature_fit(blobs, make_tiny):
    X, y = blobs
    labels = np.array(["ant", "bee", "cat"])[y]  # string labels must survive
    clf = make_tiny(backbone=None, pop_size=6, n_evaluations=12).fit(X, labels)
    return clf, X


@pytest.fixture
def saved(feature_fit, tmp_path):
    clf, X = feature_fit
    path = tmp_path / "model.safetensors"
    clf.save(path)
    return clf, X, path


def _read(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}


def _forge(path, edit_doc=None, edit_arrays=None, fix_checksum=True):
    """Rewrite a saved file the way someone editing it by hand would."""
    from safetensors.numpy import save_file

    meta, arrays = _read(path)
    doc = json.loads(meta["evoprune"])
    if edit_doc:
        edit_doc(doc)
    if edit_arrays:
        edit_arrays(arrays)
    meta["evoprune"] = json.dumps(doc)
    if fix_checksum:
        meta["sha256"] = _digest(meta["evoprune"], arrays)
    save_file(arrays, str(path), metadata=meta)


# ------------------------------------------------------------ round trips
def test_loaded_estimator_predicts_exactly_the_same(saved):
    clf, X, path = saved
    same = EvoPruneClassifier.load(path)
    assert type(same) is EvoPruneClassifier
    assert same.get_params() == clf.get_params()
    np.testing.assert_array_equal(same.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(same.predict(X), clf.predict(X))
    assert same.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(same.classes_, clf.classes_)
    for members in ("front", 2):
        np.testing.assert_array_equal(same.ensemble_predict_proba(X, members=members),
                                      clf.ensemble_predict_proba(X, members=members))
    np.testing.assert_array_equal(same.ensemble_ood_score(X), clf.ensemble_ood_score(X))
    # the fitted state a user inspects is there, equal
    assert same.best_index_ == clf.best_index_
    assert same.history_ == clf.history_
    assert same.fit_time_ == clf.fit_time_
    assert same.pareto_front_.to_frame().equals(clf.pareto_front_.to_frame())
    for a, b in zip(same.pareto_front_, clf.pareto_front_):
        np.testing.assert_array_equal(a.genome, b.genome)
        assert a.objectives == b.objectives and a.train_loss == b.train_loss
    assert same.baseline_.objectives == clf.baseline_.objectives
    np.testing.assert_array_equal(same.background_.features, clf.background_.features)
    # and it works like the original: selection after load, export, score
    same.set_params(selection="complexity")
    clf_best = clf.get_params()["selection"]
    assert same.best_index_ == clf.set_params(selection="complexity").best_index_
    clf.set_params(selection=clf_best)
    head = same.export_model(head_only=True)
    assert head.summary()["n_parameters"] > 0


def test_every_fitted_attribute_is_saved(saved):
    """Generic: every attribute of the fitted estimator comes back."""
    clf, _, path = saved
    same = EvoPruneClassifier.load(path)
    params = clf.get_params(deep=False)
    expected = {k for k in vars(clf) if k not in params}
    assert {k for k in vars(same) if k not in params} == expected
    for k in expected:
        a, b = getattr(clf, k), getattr(same, k)
        assert type(a) is type(b), k
        if k == "objectives_":  # objects: compared by class, parameters, fitted state
            assert [(type(o), o.get_params(), vars(o)) for o in a] == [
                (type(o), o.get_params(), vars(o)) for o in b]
            continue
        if isinstance(a, (int, float, str, dict, list, tuple)) and not isinstance(a, bool):
            if not any(isinstance(v, (np.ndarray, torch.Tensor)) for v in (
                    a.values() if isinstance(a, dict) else [a])):
                assert a == b, k


def test_new_attributes_of_any_supported_type_round_trip(feature_fit, tmp_path, make_tiny):
    """What other features add later (names, reasons, records) is kept as is."""
    clf, X = feature_fit
    extra = {
        "stop_reason_": "n_evaluations",
        "gene_names_": np.array(["f0", "f1", "f2"]),
        "labels_object_": np.array(["a", 3, None], dtype=object),
        "weights_by_class_": {0: 1.5, "cat": np.float32(2.0), (1, 2): [np.int64(3)]},
        "not_a_number_": float("nan"),
        "infinities_": (float("inf"), -np.inf),
        "where_": pathlib.Path("/tmp/x"),
        "rng_": np.random.RandomState(7),
        "tensor_": torch.arange(6, dtype=torch.int16).reshape(2, 3),
        "empty_": np.zeros((0, 4), dtype=np.float64),
        "nested_": [{"generation": 1, "front": np.ones(3, dtype=bool)}],
    }
    copy = make_tiny(backbone=None, pop_size=6, n_evaluations=12)
    copy.__dict__.update({k: v for k, v in vars(clf).items()
                          if k not in copy.get_params()})
    copy.__dict__.update(extra)
    path = tmp_path / "extra.safetensors"
    copy.save(path)
    same = EvoPruneClassifier.load(path)
    assert same.stop_reason_ == "n_evaluations"
    np.testing.assert_array_equal(same.gene_names_, extra["gene_names_"])
    assert same.gene_names_.dtype == extra["gene_names_"].dtype
    assert same.labels_object_.dtype == object
    assert same.labels_object_.tolist() == ["a", 3, None]
    w = same.weights_by_class_
    assert w[0] == 1.5 and w["cat"] == 2.0 and type(w["cat"]) is np.float32
    assert w[(1, 2)] == [3] and type(w[(1, 2)][0]) is np.int64
    assert np.isnan(same.not_a_number_)
    assert same.infinities_ == (float("inf"), -np.inf)
    assert same.where_ == pathlib.Path("/tmp/x")
    assert same.rng_.randint(1000) == np.random.RandomState(7).randint(1000)
    assert torch.equal(same.tensor_, extra["tensor_"])
    assert same.empty_.shape == (0, 4)
    assert same.nested_[0]["generation"] == 1
    np.testing.assert_array_equal(same.nested_[0]["front"], np.ones(3, dtype=bool))
    np.testing.assert_array_equal(same.predict(X), clf.predict(X))


def test_unsupported_values_fail_loudly_naming_them(feature_fit, tmp_path):
    clf, _ = feature_fit
    path = tmp_path / "never.safetensors"
    clf.callback_state_ = object()
    try:
        with pytest.raises(TypeError, match="fitted attribute 'callback_state_'.*object"):
            clf.save(path)
    finally:
        del clf.callback_state_
    clf.history_.append({"logger": print})  # deep inside a record
    try:
        with pytest.raises(TypeError, match=r"fitted attribute 'history_'\[\d+\]\['logger'\]"):
            clf.save(path)
    finally:
        clf.history_.pop()
    old = clf.random_state
    clf.random_state = np.random.default_rng(0)  # a Generator, not a RandomState
    try:
        with pytest.raises(TypeError, match="parameter 'random_state'"):
            clf.save(path)
    finally:
        clf.random_state = old
    assert not path.exists()  # nothing half-written
    assert not list(tmp_path.iterdir())


def test_image_estimator_round_trip_rebuilds_the_backbone(digit_images, make_tiny, tmp_path):
    X, y = digit_images
    clf = make_tiny(image_size=32, objectives=TWO, pop_size=2, n_evaluations=2).fit(X, y)
    path = tmp_path / "images.safetensors"
    clf.save(path)
    same = EvoPruneClassifier.load(path)
    np.testing.assert_array_equal(same.predict_proba(X[:16]), clf.predict_proba(X[:16]))
    assert same.image_shape_ == clf.image_shape_
    assert same.backbone_.name == "efficientnet_lite0"
    assert same.backbone_.input_size == 32
    for p, q in zip(same.backbone_.module.parameters(), clf.backbone_.module.parameters()):
        assert torch.equal(p, q) and not p.requires_grad
    # the export of the loaded estimator computes what the original computes
    images = torch.as_tensor(np.moveaxis(X[:4], -1, 1).astype(np.float32) / 255)
    with torch.no_grad():
        torch.testing.assert_close(same.export_model()(images), clf.export_model()(images))


def test_gpu_model_loads_on_a_cpu_only_machine(feature_fit, tmp_path, make_tiny, monkeypatch):
    clf, X = feature_fit
    # a CPU-only machine wherever the test runs (it was skipped on GPU ones)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    copy = make_tiny(backbone=None, pop_size=6, n_evaluations=12, device="cuda")
    copy.__dict__.update({k: v for k, v in vars(clf).items() if k not in copy.get_params()})
    copy._config = dataclasses.replace(clf._config, device="cuda")  # the device, stored once
    path = tmp_path / "gpu.safetensors"
    copy.save(path)
    same = EvoPruneClassifier.load(path)
    assert same._device == "cpu" and same._config.device == "cpu"
    np.testing.assert_array_equal(same.predict_proba(X), clf.predict_proba(X))


# ---------------------------------------------------------- refused files
def test_missing_and_unfitted(make_tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file"):
        EvoPruneClassifier.load(tmp_path / "nothing.safetensors")
    with pytest.raises(NotFittedError):
        make_tiny(backbone=None).save(tmp_path / "x.safetensors")


class _Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_pickle_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match="cannot be read as safetensors"):
        EvoPruneClassifier.load(path)
    assert not marker.exists()
    (tmp_path / "junk").write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="not an evoprune_sklearn model file"):
        EvoPruneClassifier.load(tmp_path / "junk")


def test_a_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(ValueError, match="safetensors file but not an evoprune_sklearn"):
        EvoPruneClassifier.load(path)


def test_tampered_arrays_are_refused(saved):
    _, _, path = saved

    def flip(arrays):
        key = sorted(arrays)[0]
        a = arrays[key].copy()
        a.reshape(-1)[:1] = ~a.reshape(-1)[:1] if a.dtype == bool else a.reshape(-1)[:1] + 1
        arrays[key] = a

    _forge(path, edit_arrays=flip, fix_checksum=False)
    with pytest.raises(ValueError, match="modified or corrupted"):
        EvoPruneClassifier.load(path)


def test_tampered_bytes_are_refused(saved):
    _, _, path = saved
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # inside the last tensor's numbers
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="modified or corrupted"):
        EvoPruneClassifier.load(path)


def test_edited_metadata_is_refused(saved):
    _, _, path = saved

    def better_accuracy(doc):
        doc["attributes"]["n_trained_"] = 10**6

    _forge(path, edit_doc=better_accuracy, fix_checksum=False)
    with pytest.raises(ValueError, match="modified or corrupted"):
        EvoPruneClassifier.load(path)


@pytest.mark.parametrize("edit, match", [
    # even with a valid checksum, only the package's own classes are built
    (lambda d: d["attributes"].__setitem__(
        "evil_", {"$": "object", "class": "Popen", "v": {"$": "dict", "v": []}}),
     "unknown class 'Popen'"),
    (lambda d: d["attributes"].__setitem__("evil_", {"$": "pickle", "v": "gASV"}),
     "unknown type tag 'pickle'"),
    (lambda d: d["attributes"].__setitem__("evil_", {"$": "ndarray", "key": "nope"}),
     "array 'nope' is missing"),
    (lambda d: d["params"].__setitem__("exec_on_load", "import os"),
     r"parameter\(s\) \['exec_on_load'\]"),
    (lambda d: d.__setitem__("class", "LogisticRegression"),
     "holds a 'LogisticRegression'"),
    (lambda d: d.__setitem__("format_version", 99), "Upgrade evoprune_sklearn"),
])
def test_forged_files_with_a_valid_checksum_are_refused(saved, edit, match):
    _, _, path = saved
    _forge(path, edit_doc=edit)
    with pytest.raises(ValueError, match=match):
        EvoPruneClassifier.load(path)


def test_file_is_plain_safetensors_with_readable_metadata(saved):
    clf, _, path = saved
    meta, arrays = _read(path)
    assert meta["format"] == FORMAT
    doc = json.loads(meta["evoprune"])
    assert doc["class"] == "EvoPruneClassifier"
    assert doc["params"]["pop_size"] == clf.pop_size
    assert all(a.dtype.kind in "biuf" for a in arrays.values())


def test_save_replaces_atomically(saved, monkeypatch):
    clf, _, path = saved
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(persistence_module, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        clf.save(path)
    assert path.read_bytes() == before  # the previous file is whole
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp left


def test_search_callbacks_are_saved_as_parameters(feature_fit, tmp_path):
    """The package's callbacks come back by their parameters; a user's own
    callback class is code, so it is refused by name."""
    from evoprune_sklearn.callbacks import CSVLogger, SearchCallback, ThresholdStopping

    clf, X = feature_fit
    old = clf.callbacks
    path = tmp_path / "cb.safetensors"
    try:
        clf.set_params(callbacks=[CSVLogger(tmp_path / "log.csv", sep=";"),
                                  ThresholdStopping(0.9, metric="hypervolume")])
        clf.save(path)
        same = EvoPruneClassifier.load(path)
        logger, stopping = same.callbacks
        assert type(logger) is CSVLogger and logger.sep == ";"
        assert logger.path == tmp_path / "log.csv"
        assert type(stopping) is ThresholdStopping
        assert stopping.get_params() == {"threshold": 0.9, "metric": "hypervolume",
                                         "greater_is_better": None}

        class MyCallback(SearchCallback):
            def on_generation_end(self, record, front):
                pass

        clf.set_params(callbacks=[MyCallback()])
        with pytest.raises(TypeError, match=r"parameter 'callbacks'\[0\].*set_params"):
            clf.save(tmp_path / "mine.safetensors")
    finally:
        clf.set_params(callbacks=old)
