"""The Explanation object: its summaries recomputed by hand from the values."""

import numpy as np
import pytest
import shap

from evoprune_sklearn._explanation import Explanation

VALUES = np.array([[0.5, -2.0, 0.0, 1.0],
                   [-0.5, 1.0, 0.0, 1.0],
                   [1.5, 0.0, 0.0, -1.0]])
FREQUENCY = np.array([1.0, 0.25, 0.0, 0.5])


def _explanation(**kwargs):
    args = dict(gene_names=["a", "b", "c", "d"], gene_frequency=FREQUENCY,
                target=np.array([0, 1, 0]), predicted=np.array([0, 1, 1]),
                sample_index=np.array([4, 7, 9]), member=2, classes=np.array([0, 1]),
                n_top=2, method="gradient")
    args.update(kwargs)
    return Explanation(VALUES, np.array([-0.1, -0.2, -0.3]), VALUES * 2, **args)


def test_it_is_a_shap_explanation_of_genes():
    exp = _explanation()
    assert isinstance(exp, shap.Explanation) and exp.shape == (3, 4)
    assert exp.feature_names == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(exp.values, VALUES)
    assert isinstance(exp[0], shap.Explanation)  # slices are plain shap objects


def test_importance_and_combined_score_are_their_definitions():
    exp = _explanation()
    importance = np.array([2.5, 3.0, 0.0, 3.0]) / 3  # mean |value| per gene
    np.testing.assert_allclose(exp.gene_importance, importance)
    np.testing.assert_allclose(exp.combined_score, importance / importance.max() * FREQUENCY)
    # b and d tie on importance: the stable ranking keeps gene order
    np.testing.assert_array_equal(exp.top_genes, [1, 3])
    # combined: a (0.833 * 1.0) before d (1.0 * 0.5) before b (0.25)
    np.testing.assert_array_equal(exp.top_genes_combined, [0, 3])


def test_n_top_is_capped_by_the_genes():
    assert len(_explanation(n_top=10).top_genes) == 4


def test_all_zero_values_give_zero_scores():
    exp = Explanation(np.zeros((2, 3)), np.zeros(2), np.zeros((2, 3)), gene_names="xyz",
                      gene_frequency=np.ones(3), target=[0, 0], predicted=[0, 0],
                      sample_index=[0, 1], member=0, classes=[0], n_top=3, method="pruning")
    np.testing.assert_array_equal(exp.combined_score, np.zeros(3))
    np.testing.assert_array_equal(exp.top_genes, [0, 1, 2])


def test_to_frame_sorts_by_combined_score():
    frame = _explanation().to_frame()
    assert list(frame.index) == ["a", "d", "b", "c"]
    assert list(frame["gene_index"]) == [0, 3, 1, 2]
    np.testing.assert_allclose(frame.loc["b", "importance"], 1.0)
    np.testing.assert_allclose(frame.loc["d", "frequency"], 0.5)


def test_pixel_attributions_or_the_reason_there_are_none():
    exp = _explanation(pixel_error="fitted on features")
    assert not exp.has_pixel_attributions and exp.pixel_error == "fitted on features"
    with pytest.raises(ValueError, match="fitted on features"):
        exp.pixel_attributions
    pixels = shap.Explanation(np.ones((3, 2, 2, 1)), data=np.zeros((3, 2, 2, 1)))
    with_pixels = _explanation(pixels=pixels, pixel_method="gradient",
                               pixel_error="ignored")
    assert with_pixels.has_pixel_attributions and with_pixels.pixel_error is None
    assert with_pixels.pixel_attributions.shape == (3, 2, 2, 1)
    assert "pixels=gradient" in repr(with_pixels)
    assert with_pixels.pixel_method == "gradient" and exp.pixel_method is None


def test_repr_names_the_top_genes():
    text = repr(_explanation())
    assert "3 samples x 4 genes" in text and "top_genes=['b', 'd']" in text
