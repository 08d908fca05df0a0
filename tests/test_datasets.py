"""Bundled digits and class-per-folder image folders."""

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from evoprune_sklearn.datasets import ImageFolderArray, load_digits_images, load_image_folder


def test_digits_images():
    X, y = load_digits_images(size=24)
    assert X.shape == (1797, 24, 24, 3) and X.dtype == np.uint8
    assert np.array_equal(X[..., 0], X[..., 2])
    assert X.max() > 200 and X.min() == 0
    Xs, ys = load_digits_images(size=8, n_per_class=5)
    assert Xs.shape == (50, 8, 8, 3) and np.bincount(ys).tolist() == [5] * 10


def _write_folder(root, sizes=((10, 12), (10, 12))):
    for label, color in (("cat", 30), ("dog", 220)):
        (root / label).mkdir(parents=True)
        for i, size in enumerate(sizes):
            arr = np.full((*size, 3), color, dtype=np.uint8)
            Image.fromarray(arr).save(root / label / f"{i}.png")


def test_image_folder_round_trip(tmp_path):
    _write_folder(tmp_path)
    X, y = load_image_folder(tmp_path, size=16)
    assert X.shape == (4, 16, 16, 3)
    assert list(y) == ["cat", "cat", "dog", "dog"]
    assert X[0].mean() < 50 and X[-1].mean() > 200


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(ValueError, match="no class subfolders"):
        load_image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        load_image_folder(tmp_path)
    (tmp_path / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ValueError, match="Cannot read image file .*broken.jpg"):
        load_image_folder(tmp_path)


def test_mixed_sizes_need_resizing(tmp_path):
    _write_folder(tmp_path, sizes=((10, 12), (14, 9)))
    with pytest.raises(ValueError, match="different sizes"):
        load_image_folder(tmp_path, size=None)
    assert load_image_folder(tmp_path, size=8)[0].shape == (4, 8, 8, 3)


def test_folder_data_fits(tmp_path, make_tiny):
    _write_folder(tmp_path, sizes=[(12, 12)] * 6)
    X, y = load_image_folder(tmp_path, size=16)
    # 7 training images: the default penalty (alpha=1, LogisticRegression's
    # C=1) would dominate a 16-unit hidden layer's loss; use a lighter one.
    clf = make_tiny(image_size=32, validation_fraction=0.34, alpha=0.1).fit(X, y)
    assert set(clf.classes_) == {"cat", "dog"}
    assert clf.score(X, y) == 1.0


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


def test_every_documented_image_extension_is_read_and_fitted(tmp_path, make_tiny):
    from evoprune_sklearn.datasets import IMAGE_EXTENSIONS

    for label, color in (("cat", 30), ("dog", 220)):
        (tmp_path / label).mkdir()
        for i, ext in enumerate(IMAGE_EXTENSIONS + (".PNG",)):  # any case
            arr = np.full((12, 12, 3), color, dtype=np.uint8)
            arr[i % 12] = 255 - color  # distinct images
            Image.fromarray(arr).save(tmp_path / label / f"{i}{ext}")
        (tmp_path / label / "notes.txt").write_text("not an image")
    X, y = load_image_folder(tmp_path, size=16)
    assert len(X) == 2 * (len(IMAGE_EXTENSIONS) + 1)  # every extension, no .txt
    clf = make_tiny(image_size=32, objectives=("accuracy", "complexity")).fit(X, y)
    assert set(clf.predict(X)) <= {"cat", "dog"}
    assert clf.score(X, y) == 1.0


def test_lazy_folder_matches_eager_and_streams_in_batches(
    tmp_path, make_tiny, monkeypatch, front_key
):
    root = _image_folder(tmp_path, 40)  # more images than one batch of 64
    X_eager, y_eager = load_image_folder(root, size=32)
    X_lazy, y_lazy = load_image_folder(root, size=32, lazy=True)
    assert isinstance(X_lazy, ImageFolderArray)
    assert X_lazy.shape == X_eager.shape and len(X_lazy) == 80
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
    assert max(requested) <= 64 < len(X_lazy)  # never the whole folder at once
    eager = make_tiny(**settings).fit(X_eager, y_eager)
    assert front_key(lazy) == front_key(eager)
    proba = eager.predict_proba(X_eager)
    np.testing.assert_array_equal(lazy.predict_proba(X_lazy), proba)
    # an image estimator survives pickling with identical predictions
    loaded = pickle.loads(pickle.dumps(eager))
    np.testing.assert_array_equal(loaded.predict_proba(X_eager), proba)
