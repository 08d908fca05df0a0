"""The background sample of explanations: stratified, deterministic, bounded."""

import numpy as np
import torch

from evoprune_sklearn._background import BACKGROUND_SIZE, Background, sample_background
from evoprune_sklearn._images import Images

RNG = np.random.default_rng(0)
LABELS = np.repeat([0, 1, 2], [300, 60, 40])
FEATURES = RNG.normal(size=(len(LABELS), 5)).astype(np.float32)


def test_sample_is_stratified_and_drawn_from_the_index_only():
    index = np.arange(0, len(LABELS), 2)  # the training fold: even rows
    bg = sample_background(FEATURES, LABELS, index, seed=0, size=40)
    assert len(bg) == 40
    # class shares of the fold (150, 30, 20 of 200) kept to within one sample
    np.testing.assert_allclose(np.bincount(bg.labels), [30, 6, 4], atol=1)
    rows = [np.flatnonzero((FEATURES == f).all(axis=1))[0] for f in bg.features]
    assert all(r % 2 == 0 for r in rows)
    np.testing.assert_array_equal(LABELS[rows], bg.labels)


def test_sample_is_deterministic_and_depends_on_the_seed():
    index = np.arange(len(LABELS))
    a = sample_background(FEATURES, LABELS, index, seed=3)
    b = sample_background(FEATURES, LABELS, index, seed=3)
    c = sample_background(FEATURES, LABELS, index, seed=4)
    assert len(a) == BACKGROUND_SIZE
    np.testing.assert_array_equal(a.features, b.features)
    assert not np.array_equal(a.features, c.features)


def test_a_small_fold_is_kept_whole():
    index = np.array([5, 1, 300])
    bg = sample_background(FEATURES, LABELS, index, seed=0)
    np.testing.assert_array_equal(bg.features, FEATURES[index])


def test_more_classes_than_slots_still_gives_the_size():
    labels = np.arange(100)  # 100 singleton classes, 10 slots
    bg = sample_background(FEATURES[:100], labels, np.arange(100), seed=0, size=10)
    assert len(bg) == 10 and len(set(bg.labels.tolist())) == 10


def test_images_are_kept_as_uint8_at_their_own_resolution():
    images = RNG.integers(0, 256, size=(len(LABELS), 6, 7, 3), dtype=np.uint8)
    bg = sample_background(FEATURES, LABELS, np.arange(len(LABELS)), seed=0, size=8,
                           images=Images(images))
    assert bg.images.shape == (8, 6, 7, 3) and bg.images.dtype == np.uint8
    assert bg.nbytes == 8 * 5 * 4 + 8 * 6 * 7 * 3
    unit = bg.unit_images()
    assert unit.shape == (8, 3, 6, 7) and unit.dtype == torch.float32
    torch.testing.assert_close(unit[0, :, 2, 3],
                               torch.as_tensor(bg.images[0, 2, 3] / 255.0, dtype=torch.float32))
    assert "images+features" in repr(bg)


def test_feature_background_has_no_images():
    bg = Background(np.zeros((4, 3)))
    assert bg.features.dtype == np.float32 and bg.images is None and bg.nbytes == 48
    assert "features" in repr(bg)
