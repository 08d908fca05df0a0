"""Extraction near the limit: channels-last, bfloat16, the feature store
(``memory=``) and folder images decoded by worker threads."""

import os
import shutil
import warnings

import joblib
import numpy as np
import pytest
import torch
from conftest import TinyNet
from PIL import Image
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_validate

from evoprune_sklearn import BackboneSpec, EvoPruneClassifier, get_backbone
from evoprune_sklearn._backbones import _extractor
from evoprune_sklearn._backbones._api import _REGISTRY, register_backbone
from evoprune_sklearn._backbones._extractor import native_bf16
from evoprune_sklearn._feature_cache import CHUNK_ROWS, memory_directory
from evoprune_sklearn.datasets import ImageFolderArray, load_image_folder


class CountingNet(TinyNet):
    """The tests' small convolutional network, counting the images it is given."""

    images = 0

    def forward(self, x):
        CountingNet.images += x.shape[0]
        return super().forward(x)


def build_counting_net(weights):
    return CountingNet()


def spec():
    return BackboneSpec(module=CountingNet(), input_size=16, mean=(0.5,) * 3,
                        std=(0.25,) * 3)


def images(n=48, seed=0):
    """Red top-left quadrant = class 1, blue bottom-right = class 0."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 60, (n, 16, 16, 3), dtype=np.uint8)
    y = np.arange(n) % 2
    X[y == 1, :8, :8, 0] = 255
    X[y == 0, 8:, 8:, 2] = 255
    return X, y


FAST = dict(objectives=("accuracy", "complexity"), pop_size=4, n_evaluations=8,
            random_state=0)


def forwards(fn):
    """Images the backbone was given while ``fn`` ran (probe passes included)."""
    before = CountingNet.images
    out = fn()
    return CountingNet.images - before, out


# ------------------------------------------------------------ channels-last
@pytest.mark.parametrize("name", ["tiny", "efficientnet_lite0"])
def test_channels_last_features_equal_the_plain_forward(name):
    X, _ = images(8)
    backbone = get_backbone(spec() if name == "tiny" else name, image_size=32)
    with torch.inference_mode():
        plain = torch.from_numpy(X).permute(0, 3, 1, 2).float().div(255).contiguous()
        plain = torch.nn.functional.interpolate(plain, size=32, mode="bilinear",
                                                align_corners=False).clamp(0, 1)
        reference = backbone.module(backbone.normalize(plain)).numpy()
    features = backbone.extract(X)
    rel = np.abs(features - reference).max() / np.abs(reference).max()
    assert rel < 1e-4


# ---------------------------------------------------------------- precision
def test_precision_fp32_is_the_default_and_bad_values_are_refused():
    X, y = images()
    clf = EvoPruneClassifier(backbone=spec(), **FAST).fit(X, y)
    assert clf.precision == "fp32" and clf.backbone_.precision == "fp32"
    with pytest.raises(ValueError, match="precision"):
        EvoPruneClassifier(backbone=spec(), precision="fp16", **FAST).fit(X, y)


def test_bf16_is_refused_without_native_bfloat16(monkeypatch):
    X, y = images()
    monkeypatch.setattr(_extractor, "_cpu_bf16_flags", lambda: False)
    with pytest.raises(ValueError, match="precision='bf16' needs native bfloat16"):
        EvoPruneClassifier(backbone=spec(), precision="bf16", **FAST).fit(X, y)


@pytest.mark.skipif(not native_bf16("cpu"), reason="this CPU has no native bfloat16")
def test_bf16_features_are_close_and_the_fit_uses_them():
    X, y = images()
    fp32 = EvoPruneClassifier(backbone=spec(), **FAST).fit(X, y)
    bf16 = EvoPruneClassifier(backbone=spec(), precision="bf16", **FAST).fit(X, y)
    assert bf16.backbone_.precision == "bf16"
    a, b = fp32.extract_features(X), bf16.extract_features(X)
    assert a.dtype == b.dtype == np.float32
    rel = np.abs(a - b).max() / np.abs(a).max()
    assert 0 < rel < 0.05
    assert bf16.score(X, y) > 0.9


# ------------------------------------------------------------------- memory
@pytest.mark.parametrize("kind", ["path", "pathlike", "Memory"])
def test_memory_runs_the_backbone_once_per_image(kind, tmp_path):
    X, y = images()
    memory = {"path": str(tmp_path), "pathlike": tmp_path,
              "Memory": joblib.Memory(tmp_path, verbose=0)}[kind]
    n_first, first = forwards(
        lambda: EvoPruneClassifier(backbone=spec(), memory=memory, **FAST).fit(X, y))
    assert n_first == 1 + len(X)  # the probe pass, then every image once
    # another search on a subset: no image goes through the backbone again
    n_again, again = forwards(lambda: EvoPruneClassifier(
        backbone=spec(), memory=memory, **{**FAST, "random_state": 1}).fit(X[::3], y[::3]))
    assert n_again == 1
    n_plain, plain = forwards(lambda: EvoPruneClassifier(backbone=spec(), **FAST).fit(X, y))
    assert n_plain == 1 + len(X)
    # the same features, so the same front and predictions
    np.testing.assert_array_equal(first.extract_features(X), plain.extract_features(X))
    np.testing.assert_array_equal(first.predict_proba(X), plain.predict_proba(X))


def test_store_of_several_files_serves_any_subset_and_keeps_interrupted_work(tmp_path):
    # Past CHUNK_ROWS images, as users extract: the store is several files,
    # a subset is gathered across them, and an extraction stopped midway
    # keeps the chunks it finished.
    n_images = 2 * CHUNK_ROWS + 452
    X, _ = images(n_images)
    backbone = get_backbone(spec())
    plain = backbone.extract(X)
    n, first = forwards(lambda: backbone.extract(X, memory=str(tmp_path / "a")))
    assert n == n_images
    np.testing.assert_array_equal(first, plain)
    assert len(_entries(tmp_path / "a")) == 3
    subset = np.random.default_rng(0).permutation(n_images)[:CHUNK_ROWS + 100]
    n, again = forwards(lambda: backbone.extract(X[subset], memory=str(tmp_path / "a")))
    assert n == 0
    np.testing.assert_array_equal(again, plain[subset])

    # Batches of 8 run in windows of at most 64 (the threads): the window
    # holding image CHUNK_ROWS ends by CHUNK_ROWS + 504, before the stop.
    stop_at, seen = CHUNK_ROWS + 576, [0]

    def failing(x):
        if seen[0] >= stop_at:
            raise KeyboardInterrupt
        seen[0] += x.shape[0]
        return TinyNet.forward(backbone.module, x)

    backbone.module.forward = failing
    with pytest.raises(KeyboardInterrupt):
        backbone.extract(X, memory=str(tmp_path / "b"), batch_size=8)
    del backbone.module.forward
    assert len(_entries(tmp_path / "b")) == 1
    n, resumed = forwards(lambda: backbone.extract(X, memory=str(tmp_path / "b")))
    assert n == n_images - CHUNK_ROWS
    np.testing.assert_array_equal(resumed, plain)


def test_memory_none_and_memory_without_location_cache_nothing(tmp_path):
    X, y = images()
    for memory in (None, joblib.Memory(None, verbose=0)):
        for _ in range(2):
            n, _ = forwards(lambda m=memory: EvoPruneClassifier(
                backbone=spec(), memory=m, **FAST).fit(X, y))
            assert n == 1 + len(X)
    with pytest.raises((TypeError, ValueError), match="memory"):
        EvoPruneClassifier(backbone=spec(), memory=3, **FAST).fit(X, y)


def test_grid_search_extracts_each_image_once(tmp_path):
    X, y = images(60)
    grid = GridSearchCV(EvoPruneClassifier(backbone=spec(), memory=str(tmp_path), **FAST),
                        {"alpha": [0.1, 1.0]}, cv=3)
    n_fits = 2 * 3 + 1
    n, grid = forwards(lambda: grid.fit(X, y))
    assert n == len(X) + n_fits  # fits, scoring and the refit: each image once
    n, _ = forwards(lambda: GridSearchCV(EvoPruneClassifier(backbone=spec(), **FAST),
                                         {"alpha": [0.1, 1.0]}, cv=3).fit(X, y))
    assert n > 4 * len(X)


def test_cross_validate_with_ood_objective_reuses_ood_features(tmp_path):
    X, y = images(60)
    clf = EvoPruneClassifier(backbone=spec(), memory=joblib.Memory(tmp_path, verbose=0),
                             pop_size=4, n_evaluations=8, random_state=0)
    first, _ = forwards(lambda: cross_validate(clf, X, y, cv=3))
    # the same folds and random_state: the synthetic OoD images recur too
    again, _ = forwards(lambda: cross_validate(clone(clf), X, y, cv=3))
    assert again == 3 and first > len(X) + 3


def _entries(tmp_path):
    root = memory_directory(str(tmp_path))
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files
            if f.endswith(".npz")]


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign"])
def test_corrupt_or_foreign_entries_are_recomputed(damage, tmp_path):
    X, y = images()
    reference = EvoPruneClassifier(backbone=spec(), **FAST).fit(X, y)
    EvoPruneClassifier(backbone=spec(), memory=str(tmp_path), **FAST).fit(X, y)
    entry, = _entries(tmp_path)
    if damage == "truncate":
        with open(entry, "r+b") as f:
            f.truncate(os.path.getsize(entry) // 2)
    elif damage == "flip":  # a feature value changed, the zip still readable
        with np.load(entry) as data:
            parts = dict(data)
        parts["features"][3, 2] += 1.0
        with open(entry, "wb") as f:
            np.savez(f, **parts)
    else:  # a whole, valid file of another network, in this one's directory
        other = tmp_path / "other"
        EvoPruneClassifier(backbone=BackboneSpec(
            module=CountingNet(), input_size=12, mean=(0.5,) * 3, std=(0.25,) * 3),
            memory=str(other), **FAST).fit(X, y)
        foreign, = _entries(other)
        os.remove(entry)
        shutil.copy(foreign, entry)
    with pytest.warns(UserWarning, match="Ignoring feature cache file"):
        n, clf = forwards(lambda: EvoPruneClassifier(
            backbone=spec(), memory=str(tmp_path), **FAST).fit(X, y))
    assert n == 1 + len(X)
    np.testing.assert_array_equal(clf.predict_proba(X), reference.predict_proba(X))
    assert not os.path.exists(entry)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the recomputed entry is whole
        n, _ = forwards(lambda: EvoPruneClassifier(
            backbone=spec(), memory=str(tmp_path), **FAST).fit(X, y))
    assert n == 1


def test_memory_survives_clone_get_params_and_save_load(tmp_path):
    X, y = images()
    memory = joblib.Memory(tmp_path / "cache", verbose=0)
    try:
        register_backbone("counting_net_h23", BackboneSpec(
            builder=build_counting_net, input_size=16, mean=(0.5,) * 3, std=(0.25,) * 3))
        for value in (memory, str(tmp_path / "cache")):
            clf = EvoPruneClassifier(backbone="counting_net_h23", memory=value, **FAST)
            twin = clone(clf).get_params()["memory"]  # deep-copied, as for Pipeline
            assert twin == value if isinstance(value, str) else twin.location == value.location
            clf.fit(X, y)
            same = EvoPruneClassifier.load(clf.save(tmp_path / "m.safetensors"))
            loaded = same.memory
            if isinstance(value, str):
                assert loaded == value
            else:
                assert isinstance(loaded, joblib.Memory)
                assert os.fspath(loaded.location) == os.fspath(memory.location)
            n, proba = forwards(lambda s=same: s.predict_proba(X))
            assert n == 0  # served from the store
            np.testing.assert_array_equal(proba, clf.predict_proba(X))
            assert not hasattr(clf.backbone_, "_memory") or clf.backbone_._memory is None
    finally:
        _REGISTRY.pop("counting_net_h23", None)


# ------------------------------------------------------------ image folders
def _folder(root, n=12, bad=()):
    rng = np.random.default_rng(0)
    for i in range(n):
        label = "ab"[i % 2]
        os.makedirs(root / label, exist_ok=True)
        path = root / label / f"{i:03d}.jpg"
        if i in bad:
            path.write_bytes(b"\xff\xd8\xff not a jpeg")
        else:
            Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)).save(path)
    return root


def test_folder_decoding_does_not_depend_on_the_number_of_workers(tmp_path):
    root = _folder(tmp_path)
    arrays, features = [], []
    for workers in (1, 3):
        X, y = load_image_folder(root, size=16, lazy=True, n_workers=workers)
        assert X.n_workers == workers
        arrays.append(np.asarray(X))
        batches = [t.clone() for _, _, t in X.batches(5, size=16)]
        np.testing.assert_array_equal(torch.cat(batches).numpy(),
                                      X.load().to_tensor(16).numpy())
        clf = EvoPruneClassifier(backbone=spec(), **FAST).fit(X, y)
        features.append(clf.extract_features(X))
    np.testing.assert_array_equal(*arrays)
    np.testing.assert_array_equal(*features)
    eager, _ = load_image_folder(root, size=16, n_workers=2)
    np.testing.assert_array_equal(eager, arrays[0])


def test_unreadable_files_are_named_together(tmp_path):
    root = _folder(tmp_path, bad=(3, 8))
    for lazy in (False, True):
        with pytest.raises(ValueError, match=r"Cannot read image file .*008\.jpg.*003\.jpg"
                                             r".*2 of the 12 files"):
            load_image_folder(root, size=16, lazy=lazy)
    with pytest.raises(ValueError, match="n_workers"):
        ImageFolderArray([], 16, 16, 16, n_workers=0)


def test_lazy_folder_with_memory_is_not_decoded_again(tmp_path, monkeypatch):
    root = _folder(tmp_path / "data")
    X, y = load_image_folder(root, size=16, lazy=True)
    clf = EvoPruneClassifier(backbone=spec(), memory=str(tmp_path / "cache"), **FAST)
    features = clf.fit(X, y).extract_features(X)
    decoded = []
    original = ImageFolderArray._read
    monkeypatch.setattr(ImageFolderArray, "_read",
                        lambda self, i: decoded.append(i) or original(self, i))
    again = clone(clf).fit(X, y)
    # only the few images the fit keeps as its explanation background
    assert len(decoded) == len(again.background_.images) < len(X)
    decoded.clear()
    np.testing.assert_array_equal(again.extract_features(X), features)
    assert decoded == []


def test_memory_is_not_a_search_parameter(tmp_path):
    X, y = images()
    clf = EvoPruneClassifier(backbone=spec(), memory=str(tmp_path), **FAST).fit(X, y)
    # continuing the search without the store (or with another) is allowed
    clf.set_params(memory=None, warm_start=True, n_evaluations=12).fit(X, y)
    assert clf.n_evaluations_ == 12
    if native_bf16("cpu"):  # precision is one: other features, another problem
        with pytest.raises(ValueError, match="precision"):
            clf.set_params(precision="bf16").fit(X, y)


def test_an_unwritable_store_warns_and_the_fit_goes_on(tmp_path):
    X, y = images()
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")  # the store cannot be created under it
    with pytest.warns(UserWarning, match="Cannot write to the feature cache"):
        clf = EvoPruneClassifier(backbone=spec(), memory=str(blocker), **FAST).fit(X, y)
    with pytest.warns(UserWarning, match="Cannot write to the feature cache"):
        assert clf.score(X, y) > 0.9
