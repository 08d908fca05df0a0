"""Sample and class weights: a weight w counts as w copies, identical samples merge."""

import numpy as np
import pytest

from evoprune_sklearn._weights import fit_weights, merge_samples

Y = np.array(["a", "a", "a", "b"])


def test_no_weights_are_ones():
    np.testing.assert_array_equal(fit_weights(None, None, Y), np.ones(4))


def test_sample_weight_times_balanced_class_weight():
    sample = np.array([1.0, 2.0, 3.0, 4.0])
    # "balanced": n_samples / (n_classes * count) = 4 / (2 * 3) for a, 4 / 2 for b
    expected = sample * np.array([2 / 3, 2 / 3, 2 / 3, 2.0])
    np.testing.assert_allclose(fit_weights(sample, "balanced", Y), expected)
    # a dict is keyed by the original labels
    np.testing.assert_allclose(fit_weights(sample, {"a": 1.0, "b": 10.0}, Y),
                               [1.0, 2.0, 3.0, 40.0])


def test_the_callers_weights_are_not_modified():
    sample = np.ones(4)
    fit_weights(sample, {"a": 1.0, "b": 3.0}, Y)
    np.testing.assert_array_equal(sample, np.ones(4))


@pytest.mark.parametrize("weights,match", [
    (np.zeros(4), "non-zero"),
    (np.array([1.0, np.inf, 1.0, 1.0]), "finite|infinity"),
    (np.array([1.0, -1.0, 1.0, 1.0]), "[Nn]egative"),
    (np.ones(3), "shape|length|samples"),
])
def test_bad_weights_are_refused(weights, match):
    with pytest.raises(ValueError, match=match):
        fit_weights(weights, None, Y)


def test_class_weights_that_zero_every_sample_are_refused():
    with pytest.raises(ValueError, match="sums to zero"):
        fit_weights(np.array([1.0, 1.0, 1.0, 0.0]), {"a": 0.0, "b": 1.0}, Y)


def test_identical_samples_merge_into_one_with_their_summed_weight():
    X = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [1.0, 2.0], [5.0, 6.0]])
    y = np.array([0, 1, 0, 1, 0])  # row 3 equals row 0 but has another label
    index, w = merge_samples(X, y, np.array([1.0, 1.0, 2.5, 1.0, 0.0]))
    merged = dict(zip(index.tolist(), w.tolist()))
    # rows 0 and 2 are one sample of weight 3.5; row 4 (weight 0) is dropped
    assert merged == {0: 3.5, 1: 1.0, 3: 1.0}


def test_merged_order_does_not_depend_on_the_order_of_X():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = rng.integers(0, 3, 30)
    w = rng.random(30) + 0.1
    index, weights = merge_samples(X, y, w)
    perm = rng.permutation(30)
    index_p, weights_p = merge_samples(X[perm], y[perm], w[perm])
    np.testing.assert_array_equal(X[index], X[perm][index_p])
    np.testing.assert_allclose(weights, weights_p)


def test_images_are_not_compared_only_zero_weights_dropped():
    X = np.zeros((3, 4, 4, 3), dtype=np.uint8)  # three identical images
    index, w = merge_samples(X, np.zeros(3), np.array([1.0, 0.0, 2.0]), can_index=False)
    np.testing.assert_array_equal(index, [0, 2])
    np.testing.assert_array_equal(w, [1.0, 2.0])
