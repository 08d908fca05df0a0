"""The ``Images`` value type: one layout rule, one conversion, one resize."""

import numpy as np
import pytest
import torch
from PIL import Image

from evoprune_sklearn.datasets import ImageFolderArray, Images, load_image_folder


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (7, 12, 10, 3), dtype=np.uint8)


def test_layouts_give_the_same_tensor(rgb):
    last = Images(rgb)
    first = Images(np.ascontiguousarray(np.moveaxis(rgb, -1, 1)))
    unit = Images(rgb / 255.0)
    assert last.image_shape == first.image_shape == (12, 10, 3)
    expected = last.to_tensor()
    assert expected.shape == (7, 3, 12, 10) and expected.dtype == torch.float32
    torch.testing.assert_close(first.to_tensor(), expected)
    torch.testing.assert_close(unit.to_tensor(), expected)
    assert 0.0 <= float(expected.min()) and float(expected.max()) <= 1.0


def test_grayscale_becomes_three_equal_channels(rgb):
    gray = Images(rgb[..., 0])
    assert gray.image_shape == (12, 10, 1)
    t = gray.to_tensor()
    assert t.shape == (7, 3, 12, 10)
    torch.testing.assert_close(t[:, 0], t[:, 2])
    assert gray.to_uint8().shape == (7, 12, 10, 3)


def test_batches_match_one_tensor_and_resize_once(rgb):
    images = Images(rgb)
    whole = images.to_tensor(size=16)
    assert whole.shape == (7, 3, 16, 16)
    spans, parts = [], []
    for start, stop, batch in images.batches(3, size=16):
        spans.append((start, stop))
        parts.append(batch)
    assert spans == [(0, 3), (3, 6), (6, 7)]
    torch.testing.assert_close(torch.cat(parts), whole)
    torch.testing.assert_close(images.to_tensor(16, index=[1, 4]), whole[[1, 4]])


def test_uint8_round_trip(rgb):
    images = Images(rgb)
    np.testing.assert_array_equal(images.to_uint8(), rgb)
    np.testing.assert_array_equal(images.to_uint8([2, 5]), rgb[[2, 5]])
    np.testing.assert_array_equal(Images(rgb / 255.0).to_uint8(), rgb)


def test_take_and_of(rgb):
    images = Images(rgb)
    assert Images.of(images) is images
    part = images.take([0, 6])
    assert isinstance(part, Images) and len(part) == 2
    np.testing.assert_array_equal(part.rows(), rgb[[0, 6]])
    assert part.spec is images.spec


@pytest.mark.parametrize("bad, error, match", [
    (np.zeros((3, 8)), ValueError, "3 dimensions"),
    (np.zeros((2, 8, 8, 5)), ValueError, "1 or 3 channels"),
    (np.full((2, 8, 8), 2.0), ValueError, r"\[0, 1\]"),
    ([[1, 2]], TypeError, "numpy array"),
])
def test_bad_images_are_named(bad, error, match):
    with pytest.raises(error, match=match):
        Images(bad, name="X_ood")
    with pytest.raises(error, match="X_ood"):
        Images(bad, name="X_ood")


def test_folder_is_images_and_take_stays_lazy(tmp_path, monkeypatch):
    for label, value in (("a", 10), ("b", 200)):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.fromarray(np.full((6, 6, 3), value + i, np.uint8)).save(
                tmp_path / label / f"{i}.png")
    X, _ = load_image_folder(tmp_path, size=8, lazy=True)
    eager, _ = load_image_folder(tmp_path, size=8)
    assert isinstance(X, Images) and Images.of(X) is X
    assert X.image_shape == (8, 8, 3)

    decoded = []
    read = ImageFolderArray._read
    monkeypatch.setattr(ImageFolderArray, "_read",
                        lambda self, i: decoded.append(i) or read(self, i))
    part = X.take([4, 1])
    assert isinstance(part, ImageFolderArray) and decoded == []  # nothing decoded yet
    np.testing.assert_array_equal(part.to_uint8(), eager[[4, 1]])
    assert len(decoded) == 2
    loaded = X.load([0, 5])
    assert not isinstance(loaded, ImageFolderArray)
    np.testing.assert_array_equal(loaded.rows(), eager[[0, 5]])
    torch.testing.assert_close(X.to_tensor(index=[3]), Images(eager).to_tensor(index=[3]))
