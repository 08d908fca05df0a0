"""SHAP explanations: gene importances, pixel attributions, their plot."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from evoprune_sklearn import EvoPruneClassifier, Explanation
from evoprune_sklearn.plotting import plot_explanation


def quadrant_images(n, *, size=32, square=8, seed=0):
    """Label 1 iff a bright filled square sits in the top-left quadrant.

    Every other quadrant holds, independently of the label and with
    probability 1/2, a distractor: a square outline of the same size and
    brightness. So the label depends on the top-left quadrant only, and
    bright square-shaped things appear elsewhere in both classes.
    """
    rng = np.random.RandomState(seed)
    X = np.zeros((n, size, size), dtype=np.uint8)
    y = np.arange(n) % 2
    h = size // 2
    for i in range(n):
        for q, (r0, c0) in enumerate([(0, 0), (0, h), (h, 0), (h, h)]):
            if (q == 0 and y[i] == 0) or (q > 0 and rng.rand() < 0.5):
                continue
            r = r0 + rng.randint(1, h - square)
            c = c0 + rng.randint(1, h - square)
            X[i, r : r + square, c : c + square] = 255
            if q > 0:
                X[i, r + 2 : r + square - 2, c + 2 : c + square - 2] = 0
    return X, y


FAST = dict(hidden_layer_sizes=(32,), pop_size=4, n_evaluations=8, lr=0.01,
            max_epochs=30, objectives=("accuracy", "complexity"), random_state=0)


@pytest.fixture(scope="module")
def quadrant_model():
    X, y = quadrant_images(320, seed=0)
    clf = EvoPruneClassifier(image_size=64, **FAST).fit(X, y)
    X_test, y_test = quadrant_images(40, seed=1)
    return clf, X_test, y_test


@pytest.fixture(scope="module")
def quadrant_explanation(quadrant_model):
    clf, X_test, _ = quadrant_model
    return clf.explain(X_test, max_samples=8, random_state=0)


@pytest.fixture(scope="module")
def feature_model():
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=240, n_features=24, n_informative=6,
                               n_classes=3, class_sep=2.0, random_state=0)
    labels = np.array(["ant", "bee", "cat"])[y]
    clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(16,), pop_size=6,
                             n_evaluations=12, lr=0.01, max_epochs=20,
                             objectives=("accuracy", "complexity"), random_state=0)
    return clf.fit(X, labels), X, labels


# ----------------------------------------------------------------- pixels
def test_attribution_mass_lies_in_the_deciding_quadrant(quadrant_model, quadrant_explanation):
    clf, X_test, y_test = quadrant_model
    assert clf.score(X_test, y_test) > 0.8  # the model has learned the task
    A = np.abs(quadrant_explanation.pixel_attributions)
    mass = A[:, :16, :16].sum(axis=(1, 2)) / A.sum(axis=(1, 2))
    # chance level for a quadrant is 25%
    assert mass.mean() > 0.5, mass


def test_pixel_attributions_have_the_input_resolution(quadrant_model, quadrant_explanation):
    clf, X_test, _ = quadrant_model
    exp = quadrant_explanation
    assert clf.backbone_.input_size == 64  # images were resized inside the model...
    assert exp.pixel_attributions.shape == (8, 32, 32)  # ...but maps are 32x32
    assert np.isfinite(exp.pixel_attributions).all()
    assert exp.pixel_method == "gradient"
    # max_samples drew 8 distinct rows; default target is the prediction
    rows = exp.sample_index
    assert len(np.unique(rows)) == 8 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(exp.target, clf.predict(X_test[rows]))
    np.testing.assert_array_equal(exp.predicted, exp.target)


def test_background_is_a_small_stratified_training_sample(quadrant_model):
    clf = quadrant_model[0]
    bg = clf.background_
    assert len(bg) == 64
    assert bg.images.shape == (64, 32, 32, 3) and bg.images.dtype == np.uint8
    assert bg.features.shape == (64, clf.n_genes_)
    # stratified, and drawn from the training fold only
    assert np.bincount(bg.labels).tolist() == [32, 32]
    assert bg.nbytes < 64 * (32 * 32 * 3 + 4 * clf.n_genes_) + 1


def test_pixel_explanations_are_reproducible(quadrant_model):
    clf, X_test, _ = quadrant_model
    state = np.random.get_state()
    a = clf.explain(X_test[:1], random_state=3)
    after = np.random.get_state()
    b = clf.explain(X_test[:1], random_state=3)
    np.testing.assert_array_equal(a.pixel_attributions, b.pixel_attributions)
    np.testing.assert_array_equal(a.shap_values, b.shap_values)
    # shap seeds numpy's global generator; explain must not leak that
    assert np.array_equal(state[1], after[1]) and state[2] == after[2]


def test_feature_map_method_and_no_pixels(quadrant_model):
    clf, X_test, _ = quadrant_model
    exp = clf.explain(X_test[:3], pixel_method="feature_map", random_state=0)
    assert exp.pixel_attributions.shape == (3, 32, 32)
    # the map redistributes the features' SHAP values: totals are kept
    np.testing.assert_allclose(exp.pixel_attributions.sum(axis=(1, 2)),
                               exp.shap_values.sum(axis=1), rtol=1e-3, atol=1e-6)
    exp = clf.explain(X_test[:3], pixels=False, random_state=0)
    assert not exp.has_pixel_attributions
    with pytest.raises(ValueError, match="pixels=False"):
        exp.pixel_attributions


def test_plot_explanation_draws_images_and_top_genes(quadrant_model, quadrant_explanation):
    _, X_test, _ = quadrant_model
    fig = plot_explanation(quadrant_explanation, X_test, n_images=6, n_cols=3)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 7  # six heatmaps and the gene bar chart
    bars = fig.axes[-1]
    assert len(bars.patches) == len(quadrant_explanation.top_genes) == 10
    # the explained rows themselves are accepted too
    fig = plot_explanation(quadrant_explanation, X_test[quadrant_explanation.sample_index])
    assert len(fig.axes) == 9
    with pytest.raises(ValueError, match="images are required"):
        plot_explanation(quadrant_explanation)
    with pytest.raises(ValueError, match="refers to row"):
        plot_explanation(quadrant_explanation, X_test[:5])
    with pytest.raises(TypeError, match="Explanation"):
        plot_explanation("not an explanation", X_test)


# ------------------------------------------------------------------ genes
def test_genes_switched_off_get_zero_importance(feature_model):
    clf, X, _ = feature_model
    member = clf.pareto_front_[clf.best_index_]
    assert 0 < member.n_active < clf.n_genes_
    exp = clf.explain(X[:30], random_state=0)
    assert np.all(exp.gene_importance[~member.genome] == 0.0)
    assert np.all(exp.shap_values[:, ~member.genome] == 0.0)
    assert exp.gene_importance[member.genome].sum() > 0
    assert np.all(member.genome[exp.top_genes[exp.gene_importance[exp.top_genes] > 0]])
    assert np.all(exp.combined_score[~member.genome] == 0.0)
    # the ensemble uses every member: only genes off in all of them are zero
    ens = clf.explain(X[:30], member="ensemble", random_state=0)
    off_everywhere = exp.gene_frequency == 0
    assert np.all(ens.gene_importance[off_everywhere] == 0.0)
    assert ens.member == "ensemble"


def test_neurons_encoding_explains_hidden_neurons(blobs):
    X, y = blobs
    clf = EvoPruneClassifier(backbone=None, encoding="neurons", hidden_layer_sizes=(12, 8),
                             pop_size=6, n_evaluations=12, lr=0.01, max_epochs=20,
                             objectives=("accuracy", "complexity"), random_state=0).fit(X, y)
    exp = clf.explain(X[:20], member=0, random_state=0)
    genome = clf.pareto_front_[0].genome
    assert exp.gene_importance.shape == (20,)
    assert np.all(exp.gene_importance[~genome] == 0.0)
    assert exp.gene_importance[genome].sum() > 0


def test_rankings_frequency_and_shapes(feature_model):
    clf, X, labels = feature_model
    exp = clf.explain(X, n_top=5, max_samples=40, random_state=0)
    assert isinstance(exp, Explanation)
    assert exp.shap_values.shape == (40, clf.n_genes_)
    assert exp.gene_importance.shape == exp.gene_frequency.shape == (clf.n_genes_,)
    np.testing.assert_allclose(exp.gene_importance, np.abs(exp.shap_values).mean(axis=0))
    genomes = np.array([m.genome for m in clf.pareto_front_])
    np.testing.assert_allclose(exp.gene_frequency, genomes.mean(axis=0))
    imp = exp.gene_importance[exp.top_genes]
    assert len(exp.top_genes) == 5 and np.all(np.diff(imp) <= 0)
    assert imp[0] == exp.gene_importance.max()
    expected = exp.gene_importance / exp.gene_importance.max() * exp.gene_frequency
    np.testing.assert_allclose(exp.combined_score, expected)
    assert exp.top_genes_combined[0] == np.argmax(expected)
    frame = exp.to_frame()
    assert list(frame.columns) == ["importance", "frequency", "combined_score"]
    assert frame.index[0] == exp.top_genes_combined[0]
    assert set(exp.target) <= set(clf.classes_)
    np.testing.assert_array_equal(exp.target, clf.predict(X[exp.sample_index]))
    # max_samples drew a reproducible random subset
    again = clf.explain(X, n_top=5, max_samples=40, random_state=0)
    np.testing.assert_array_equal(exp.sample_index, again.sample_index)
    np.testing.assert_array_equal(exp.shap_values, again.shap_values)
    assert not np.array_equal(exp.sample_index, np.arange(40))


def test_shap_values_add_up_to_the_log_probability(feature_model):
    clf, X, _ = feature_model
    # against one reference sample, expected gradients are integrated
    # gradients: the values add up to f(x) - f(reference)
    exp = clf.explain(X[:20], background=X[20:21], random_state=0)
    logp = np.log(clf.predict_proba(X[:21]))
    cls = np.searchsorted(clf.classes_, exp.target)
    gap = logp[np.arange(20), cls] - logp[20, cls]
    np.testing.assert_allclose(exp.expected_value, logp[20, cls], rtol=1e-5)
    # 200 random interpolation points estimate the path integral to a few %
    err = np.abs(exp.shap_values.sum(axis=1) - gap)
    assert err.mean() < 0.1 * np.abs(gap).mean() + 0.02, (err, gap)
    assert np.all(err < 0.25 * np.abs(gap) + 0.05), (err, gap)


def test_values_equal_shap_gradient_explainer(feature_model):
    import shap
    import torch

    from evoprune_sklearn._explain import _LogProba, _expected_gradients

    clf, X, _ = feature_model
    head = clf.pareto_front_[clf.best_index_].net.module_
    model = _LogProba([head])
    bg = torch.as_tensor(clf.background_.features)
    x = torch.as_tensor(X[:6], dtype=torch.float32)

    class OneClass(torch.nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c

        def forward(self, v):
            return model(v)[:, self.c : self.c + 1]

    for c in (0, 2):
        ours = _expected_gradients(model, bg, x, [c] * 6, 40, seed=7, chunk=50)
        theirs = shap.GradientExplainer(OneClass(c), bg).shap_values(x, nsamples=40, rseed=7)
        np.testing.assert_allclose(ours, np.asarray(theirs)[..., 0], rtol=1e-4, atol=1e-6)


def test_explicit_target_and_background(feature_model):
    clf, X, labels = feature_model
    exp = clf.explain(X[:10], target="bee", random_state=0)
    assert np.all(exp.target == "bee")
    exp = clf.explain(X[:3], target=["ant", "bee", "cat"], random_state=0)
    assert exp.target.tolist() == ["ant", "bee", "cat"]
    own = clf.explain(X[:10], random_state=0)
    other = clf.explain(X[:10], background=X[labels == "ant"][:20], random_state=0)
    assert not np.allclose(own.expected_value, other.expected_value)


def test_feature_input_has_no_pixel_maps(feature_model):
    clf, X, _ = feature_model
    with pytest.raises(ValueError, match="backbone=None"):
        clf.explain(X[:5], pixels=True)
    exp = clf.explain(X[:5], random_state=0)
    with pytest.raises(ValueError, match="backbone=None"):
        exp.pixel_attributions
    fig = plot_explanation(exp)
    assert len(fig.axes) == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(member=99), "out of range"),
    (dict(member="best"), "member must be"),
    (dict(member=True), "member must be"),
    (dict(n_top=0), "n_top"),
    (dict(max_samples=0), "max_samples"),
    (dict(target="dog"), "not among the classes"),
    (dict(target=["ant", "bee"]), "one per sample"),
    (dict(pixel_method="gradcam"), "pixel_method"),
])
def test_bad_arguments_raise_clear_errors(feature_model, kwargs, match):
    clf, X, _ = feature_model
    with pytest.raises(ValueError, match=match):
        clf.explain(X[:5], **kwargs)


def test_explain_needs_a_fitted_classifier():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        EvoPruneClassifier(backbone=None).explain(np.zeros((2, 3)))
