"""SHAP explanations: shap.Explanation output, gene names, both methods, pixels."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import shap

from evoprune_sklearn import EvoPruneClassifier, Explanation
from evoprune_sklearn.plotting import ExplanationDisplay


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


FAST = dict(hidden_layer_sizes=(32,), pop_size=4, n_evaluations=8,
            objectives=("accuracy", "complexity"), random_state=0)


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
                             n_evaluations=12, objectives=("accuracy", "complexity"),
                             random_state=0)
    return clf.fit(X, labels), X, labels


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------- shap's own plots
def test_explanation_is_a_shap_explanation_with_gene_names(feature_model):
    clf, X, _ = feature_model
    exp = clf.explain(X[:12], random_state=0)
    assert isinstance(exp, shap.Explanation) and isinstance(exp, Explanation)
    assert exp.shape == (12, clf.n_genes_)
    assert exp.values.shape == exp.data.shape == (12, clf.n_genes_)
    assert exp.base_values.shape == (12,)
    assert list(exp.feature_names) == list(clf.gene_names_) == [f"x{k}" for k in range(24)]
    # data are the explained features themselves
    np.testing.assert_allclose(exp.data, X[exp.sample_index], rtol=1e-6)
    # slices are plain shap objects, addressable by gene name
    row = exp[0]
    assert type(row) is shap.Explanation and row.values.shape == (clf.n_genes_,)
    assert np.isscalar(row.base_values) or np.ndim(row.base_values) == 0
    np.testing.assert_array_equal(exp[:, "x3"].values, exp.values[:, 3])


@pytest.mark.parametrize("method", ["gradient", "pruning"])
def test_shap_plots_draw_the_explanation(feature_model, method):
    clf, X, _ = feature_model
    exp = clf.explain(X[:16], method=method, random_state=0)
    top = str(exp.feature_names[exp.top_genes[0]])

    shap.plots.bar(exp, max_display=6, show=False)
    labels = [t.get_text() for t in plt.gca().get_yticklabels()]
    assert top in labels
    plt.close("all")
    shap.plots.beeswarm(exp, max_display=6, show=False)
    labels = [t.get_text() for t in plt.gca().get_yticklabels()]
    assert top in labels
    plt.close("all")
    shap.plots.waterfall(exp[0], max_display=6, show=False)
    assert len(plt.gcf().axes) >= 1
    plt.close("all")
    shap.plots.heatmap(exp, max_display=6, show=False)
    plt.gcf().canvas.draw()


def test_image_plot_draws_pixel_attributions(quadrant_model, quadrant_explanation):
    _, X_test, _ = quadrant_model
    exp = quadrant_explanation
    pixels = exp.pixels
    assert isinstance(pixels, shap.Explanation)
    # grayscale input: one channel, channels last, as shap.image_plot wants
    assert pixels.values.shape == pixels.data.shape == (8, 32, 32, 1)
    np.testing.assert_allclose(pixels.data[..., 0], X_test[exp.sample_index] / 255.0,
                               atol=1e-6)
    shap.image_plot(pixels, show=False)
    fig = plt.gcf()
    assert len(fig.axes) == 8 * 2 + 1  # image and heatmap per row, one colorbar
    fig.canvas.draw()
    plt.close("all")
    # the arrays go in too, with the user's own images
    shap.image_plot(exp.pixel_attributions, X_test[exp.sample_index], show=False)
    assert len(plt.gcf().axes) == 8 * 2 + 1


# ----------------------------------------------------------------- pixels
def test_attribution_mass_lies_in_the_deciding_quadrant(quadrant_model, quadrant_explanation):
    clf, X_test, y_test = quadrant_model
    assert clf.score(X_test, y_test) > 0.8  # the model has learned the task
    A = np.abs(quadrant_explanation.pixel_attributions).sum(axis=-1)
    mass = A[:, :16, :16].sum(axis=(1, 2)) / A.sum(axis=(1, 2))
    # chance level for a quadrant is 25%
    assert mass.mean() > 0.5, mass


def test_pixel_attributions_have_the_input_resolution(quadrant_model, quadrant_explanation):
    clf, X_test, _ = quadrant_model
    exp = quadrant_explanation
    assert clf.backbone_.input_size == 64  # images were resized inside the model...
    assert exp.pixel_attributions.shape == (8, 32, 32, 1)  # ...but maps are 32x32
    assert np.isfinite(exp.pixel_attributions).all()
    assert exp.pixel_method == "gradient"
    # max_samples drew 8 distinct rows; default target is the prediction
    rows = exp.sample_index
    assert len(np.unique(rows)) == 8 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(exp.target, clf.predict(X_test[rows]))
    np.testing.assert_array_equal(exp.predicted, exp.target)
    # genes are the backbone's features, named after it
    assert exp.feature_names[:2] == ["efficientnet_lite0:0", "efficientnet_lite0:1"]


def test_rgb_images_keep_three_channels():
    X, y = quadrant_images(60, seed=2)
    rgb = np.stack([X, X // 2, X // 3], axis=-1)
    clf = EvoPruneClassifier(image_size=32, hidden_layer_sizes=(8,), pop_size=4,
                             n_evaluations=4, objectives=("accuracy", "complexity"),
                             random_state=0).fit(rgb, y)
    exp = clf.explain(rgb[:2], random_state=0)
    assert exp.pixel_attributions.shape == exp.pixels.data.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(exp.pixels.data, rgb[:2] / 255.0, atol=1e-6)


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
    np.testing.assert_array_equal(a.values, b.values)
    # shap seeds numpy's global generator; explain must not leak that
    assert np.array_equal(state[1], after[1]) and state[2] == after[2]


def test_feature_map_method_and_no_pixels(quadrant_model):
    clf, X_test, _ = quadrant_model
    exp = clf.explain(X_test[:3], pixel_method="feature_map", random_state=0)
    assert exp.pixel_attributions.shape == (3, 32, 32, 1)
    # the map redistributes the features' values: totals are kept
    np.testing.assert_allclose(exp.pixel_attributions.sum(axis=(1, 2, 3)),
                               exp.values.sum(axis=1), rtol=1e-3, atol=1e-6)
    exp = clf.explain(X_test[:3], pixels=False, random_state=0)
    assert not exp.has_pixel_attributions and exp.pixels is None
    with pytest.raises(ValueError, match="pixels=False"):
        exp.pixel_attributions


def test_pruning_is_affordable_on_backbone_features(quadrant_model):
    clf, X_test, _ = quadrant_model
    assert clf.n_genes_ == 1280
    exp = clf.explain(X_test[:2], method="pruning", pixels=False, random_state=0)
    genome = clf.pareto_front_[clf.best_index_].genome
    assert exp.values.shape == (2, 1280)
    assert np.all(exp.values[:, ~genome] == 0.0)
    logp = np.log(clf.predict_proba(X_test[exp.sample_index]))
    cls = np.searchsorted(clf.classes_, exp.target)
    np.testing.assert_allclose(exp.values.sum(axis=1) + exp.base_values,
                               logp[np.arange(2), cls], atol=1e-4)


# ----------------------------------------------------------- the display
def test_explanation_display_draws_images_and_top_genes(quadrant_explanation):
    exp = quadrant_explanation
    disp = ExplanationDisplay.from_explanation(exp, n_images=6, n_cols=3)
    assert plt.fignum_exists(disp.figure_.number)  # pyplot manages it
    assert len(disp.axes_) == 7 and len(disp.heatmaps_) == 6
    assert disp.ax_ is disp.axes_[-1]
    assert len(disp.bars_) == len(exp.top_genes) == 10
    labels = {t.get_text() for t in disp.ax_.get_yticklabels()}
    assert labels == {exp.feature_names[g] for g in exp.top_genes}
    disp.figure_.canvas.draw()
    # pixels only, into the user's own Axes
    fig, axes = plt.subplots(2, 2)
    disp = ExplanationDisplay.from_explanation(exp, kind="pixels", n_images=4, ax=axes)
    assert list(disp.axes_) == list(axes.ravel()) and disp.bars_ is None
    with pytest.raises(ValueError, match="array of 4 Axes"):
        ExplanationDisplay.from_explanation(exp, kind="pixels", n_images=4, ax=axes[0])
    with pytest.raises(TypeError, match="Explanation"):
        ExplanationDisplay("not an explanation")
    with pytest.raises(ValueError, match="kind"):
        ExplanationDisplay.from_explanation(exp, kind="maps")
    # two images and the gene bars: three Axes in a new figure
    disp = ExplanationDisplay.from_explanation(exp, n_images=2, n_cols=2)
    assert len(disp.figure_.axes) == 3


def test_explanation_display_from_estimator_into_one_axes(feature_model):
    clf, X, _ = feature_model
    fig, ax = plt.subplots()
    disp = ExplanationDisplay.from_estimator(
        clf, X[:8], n_top=4, ax=ax, explain_params=dict(method="pruning", random_state=0))
    assert disp.ax_ is ax and disp.figure_ is fig
    assert disp.explanation.method == "pruning" and len(disp.bars_) == 4
    with pytest.raises(ValueError, match="backbone=None"):
        ExplanationDisplay.from_explanation(disp.explanation, kind="pixels")


# ------------------------------------------------------------------ genes
def test_genes_switched_off_get_zero_importance(feature_model):
    clf, X, _ = feature_model
    member = clf.pareto_front_[clf.best_index_]
    assert 0 < member.n_active < clf.n_genes_
    exp = clf.explain(X[:30], random_state=0)
    assert np.all(exp.gene_importance[~member.genome] == 0.0)
    assert np.all(exp.values[:, ~member.genome] == 0.0)
    assert exp.gene_importance[member.genome].sum() > 0
    assert np.all(member.genome[exp.top_genes[exp.gene_importance[exp.top_genes] > 0]])
    assert np.all(exp.combined_score[~member.genome] == 0.0)
    # the ensemble uses every member: only genes off in all of them are zero
    ens = clf.explain(X[:30], member="front", random_state=0)
    off_everywhere = exp.gene_frequency == 0
    assert np.all(ens.gene_importance[off_everywhere] == 0.0)
    assert ens.member == "front"
    # every member choice of ensemble_predict names members here too
    top = clf.explain(X[:30], member=("top", 2), random_state=0)
    assert top.member == clf.pareto_front_.top(2).tolist()
    with pytest.raises(ValueError, match="spelled member='front'"):
        clf.explain(X[:30], member="ensemble")


def test_neurons_encoding_explains_named_hidden_neurons(blobs):
    X, y = blobs
    clf = EvoPruneClassifier(backbone=None, encoding="neurons", hidden_layer_sizes=(12, 8),
                             pop_size=6, n_evaluations=12,
                             objectives=("accuracy", "complexity"), random_state=0).fit(X, y)
    names = list(clf.gene_names_)
    assert names[:2] == ["layer0:0", "layer0:1"] and names[12] == "layer1:0"
    assert len(names) == 20
    genome = clf.pareto_front_[0].genome
    for method in ("gradient", "pruning"):
        exp = clf.explain(X[:20], member=0, method=method, random_state=0)
        assert exp.gene_importance.shape == (20,) and exp.feature_names == names
        assert np.all(exp.gene_importance[~genome] == 0.0)
        assert exp.gene_importance[genome].sum() > 0
        # data are the member's hidden activations: zero for pruned neurons
        assert np.all(exp.data[:, ~genome] == 0.0) and np.all(exp.data >= 0)
    # pruning values add up exactly to log p(x) - log p(everything pruned)
    logp = np.log(clf.pareto_front_[0].predict_proba(X[:20]))
    cls = np.searchsorted(clf.classes_, exp.target)
    np.testing.assert_allclose(exp.values.sum(axis=1) + exp.base_values,
                               logp[np.arange(20), cls], atol=1e-5)


def test_gene_names_come_from_dataframe_columns(blobs):
    import pandas as pd

    X, y = blobs
    frame = pd.DataFrame(X, columns=[f"f_{k}" for k in range(X.shape[1])])
    clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
                             n_evaluations=8, objectives=("accuracy", "complexity"),
                             random_state=0).fit(frame, y)
    assert list(clf.gene_names_) == list(frame.columns) == list(clf.feature_names_in_)
    exp = clf.explain(frame.iloc[:5], random_state=0)
    assert list(exp.feature_names) == list(frame.columns)
    assert set(exp.to_frame().index) == set(frame.columns)
    genomes = clf.pareto_front_.to_frame(genomes=True)
    assert list(genomes.columns[-X.shape[1]:]) == list(frame.columns)
    np.testing.assert_array_equal(genomes[list(frame.columns)].to_numpy(),
                                  [m.genome for m in clf.pareto_front_])


def test_rankings_frequency_and_frame(feature_model):
    clf, X, labels = feature_model
    exp = clf.explain(X, n_top=5, max_samples=40, random_state=0)
    assert exp.values.shape == (40, clf.n_genes_)
    assert exp.gene_importance.shape == exp.gene_frequency.shape == (clf.n_genes_,)
    np.testing.assert_allclose(exp.gene_importance, np.abs(exp.values).mean(axis=0))
    genomes = np.array([m.genome for m in clf.pareto_front_])
    np.testing.assert_allclose(exp.gene_frequency, genomes.mean(axis=0))
    imp = exp.gene_importance[exp.top_genes]
    assert len(exp.top_genes) == 5 and np.all(np.diff(imp) <= 0)
    assert imp[0] == exp.gene_importance.max()
    expected = exp.gene_importance / exp.gene_importance.max() * exp.gene_frequency
    np.testing.assert_allclose(exp.combined_score, expected)
    assert exp.top_genes_combined[0] == np.argmax(expected)
    frame = exp.to_frame()
    assert list(frame.columns) == ["gene_index", "importance", "frequency", "combined_score"]
    assert frame.index.name == "gene"
    assert frame.index[0] == f"x{exp.top_genes_combined[0]}"
    assert frame["gene_index"].iloc[0] == exp.top_genes_combined[0]
    assert set(exp.target) <= set(clf.classes_)
    np.testing.assert_array_equal(exp.target, clf.predict(X[exp.sample_index]))
    # max_samples drew a reproducible random subset
    again = clf.explain(X, n_top=5, max_samples=40, random_state=0)
    np.testing.assert_array_equal(exp.sample_index, again.sample_index)
    np.testing.assert_array_equal(exp.values, again.values)
    assert not np.array_equal(exp.sample_index, np.arange(40))


def test_gradient_values_add_up_to_the_log_probability(feature_model):
    clf, X, _ = feature_model
    # against one reference sample, expected gradients are integrated
    # gradients: the values add up to f(x) - f(reference)
    exp = clf.explain(X[:20], background=X[20:21], random_state=0)
    logp = np.log(clf.predict_proba(X[:21]))
    cls = np.searchsorted(clf.classes_, exp.target)
    gap = logp[np.arange(20), cls] - logp[20, cls]
    np.testing.assert_allclose(exp.base_values, logp[20, cls], rtol=1e-5, atol=1e-6)
    # 200 random interpolation points estimate the path integral to a few %
    err = np.abs(exp.values.sum(axis=1) - gap)
    assert err.mean() < 0.1 * np.abs(gap).mean() + 0.02, (err, gap)
    assert np.all(err < 0.25 * np.abs(gap) + 0.05), (err, gap)


def test_values_equal_shap_gradient_explainer(feature_model):
    import torch

    from evoprune_sklearn._gradients import LogProba, expected_gradients

    clf, X, _ = feature_model
    head = clf.pareto_front_[clf.best_index_].module()
    model = LogProba([head])
    bg = torch.as_tensor(clf.background_.features)
    x = torch.as_tensor(X[:6], dtype=torch.float32)

    class OneClass(torch.nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c

        def forward(self, v):
            return model(v)[:, self.c : self.c + 1]

    for c in (0, 2):
        ours = expected_gradients(model, bg, x, [c] * 6, 40, seed=7, chunk=50)
        theirs = shap.GradientExplainer(OneClass(c), bg).shap_values(x, nsamples=40, rseed=7)
        np.testing.assert_allclose(ours, np.asarray(theirs)[..., 0], rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- pruning
def test_pruning_values_are_shapley_values_of_pruning(feature_model):
    clf, X, _ = feature_model
    state = np.random.get_state()
    exp = clf.explain(X[:10], method="pruning", random_state=0)
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and state[2] == after[2]
    assert exp.method == "pruning"
    member = clf.pareto_front_[clf.best_index_]
    assert np.all(exp.values[:, ~member.genome] == 0.0)
    # the base value is the member with every gene pruned: it sees zeros
    logp = np.log(clf.predict_proba(np.vstack([X[:10], np.zeros((1, X.shape[1]))])))
    cls = np.searchsorted(clf.classes_, exp.target)
    np.testing.assert_allclose(exp.base_values, logp[10, cls], atol=1e-5)
    np.testing.assert_allclose(exp.values.sum(axis=1), logp[np.arange(10), cls] - logp[10, cls],
                               atol=1e-5)
    again = clf.explain(X[:10], method="pruning", random_state=0)
    np.testing.assert_array_equal(exp.values, again.values)
    other = clf.explain(X[:10], method="pruning", random_state=1)
    assert not np.array_equal(exp.values, other.values)  # other permutations


@pytest.mark.parametrize("encoding, hidden", [("features", (6,)), ("neurons", (5, 4))])
def test_the_masker_prunes_exactly_like_a_pruned_head(encoding, hidden):
    import torch

    from evoprune_sklearn import MaskedHead
    from evoprune_sklearn._head import HeadSpec
    from evoprune_sklearn._pruning_shap import PruningMasker, pruned_log_proba

    rng = np.random.RandomState(0)
    n_features = 7
    n_genes = n_features if encoding == "features" else sum(hidden)
    genome = rng.rand(n_genes) < 0.7
    spec = HeadSpec(encoding, n_features, hidden, 3)
    fmask, nmasks = spec.masks(genome)
    head = MaskedHead(n_features, hidden, 3, fmask, nmasks, init_seed=0).eval()
    x = rng.rand(n_features).astype(np.float32)
    masker = PruningMasker(genome)
    # shap's delta masking: start from nothing kept, then switch genes on
    order = rng.permutation(n_genes)
    deltas = np.concatenate([[2147483647], order])
    (rows, masks), varying = masker(deltas, x)
    assert rows.shape == (n_genes + 1, n_features) and varying.all()
    assert masks[0].sum() == 0 and np.all(masks[-1] == 1)
    assert np.all(masks[1:].sum(axis=1) == np.arange(1, n_genes + 1))
    with torch.no_grad():
        ours = pruned_log_proba([head], torch.as_tensor(np.array(rows)), torch.as_tensor(masks),
                                encoding)
        for mask, out in zip(masks, ours):
            kept = genome & mask.astype(bool)
            f2, n2 = spec.masks(kept)
            pruned = MaskedHead(n_features, hidden, 3, f2, n2, init_seed=0).eval()
            expected = torch.log_softmax(pruned(torch.as_tensor(x[None])), dim=1)[0]
            np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-6)
    assert np.array_equal(masker.invariants(x)[0], ~genome)


def test_gradient_and_pruning_differ_on_a_constant_feature(blobs):
    """A feature equal in every sample carries no gradient attribution (it never
    differs from the background) yet the head relies on it: pruning it costs."""
    X, y = blobs
    Xc = np.hstack([X, np.full((len(X), 1), 3.0)])
    # alpha=0: with an L2 penalty the optimum moves a constant feature's
    # weight into the (unpenalised) biases, and the head stops relying on it.
    # The papers' random search: the informed one ranks a constant feature
    # last and keeps no member with it, which this test needs.
    clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(16,), pop_size=6,
                             n_evaluations=12, alpha=0.0, init="random", mutation="bitflip",
                             objectives=("accuracy", "complexity"), random_state=0).fit(Xc, y)
    const = Xc.shape[1] - 1
    member = next(i for i, m in enumerate(clf.pareto_front_) if m.genome[const])
    grad = clf.explain(Xc[:20], member=member, random_state=0)
    prune = clf.explain(Xc[:20], member=member, method="pruning", random_state=0)
    assert np.all(grad.values[:, const] == 0.0)
    assert np.all(np.abs(prune.values[:, const]) > 1e-4)
    # the other genes are ranked by both methods
    assert grad.gene_importance.sum() > 0 and prune.gene_importance.sum() > 0


def test_explicit_target_and_background(feature_model):
    clf, X, labels = feature_model
    exp = clf.explain(X[:10], target="bee", random_state=0)
    assert np.all(exp.target == "bee")
    exp = clf.explain(X[:3], target=["ant", "bee", "cat"], random_state=0)
    assert exp.target.tolist() == ["ant", "bee", "cat"]
    own = clf.explain(X[:10], random_state=0)
    other = clf.explain(X[:10], background=X[labels == "ant"][:20], random_state=0)
    assert not np.allclose(own.base_values, other.base_values)
    pruned = clf.explain(X[:3], target=["ant", "bee", "cat"], method="pruning", random_state=0)
    assert pruned.target.tolist() == ["ant", "bee", "cat"]


def test_feature_input_has_no_pixel_maps(feature_model):
    clf, X, _ = feature_model
    with pytest.raises(ValueError, match="backbone=None"):
        clf.explain(X[:5], pixels=True)
    exp = clf.explain(X[:5], random_state=0)
    assert exp.pixels is None
    with pytest.raises(ValueError, match="backbone=None"):
        exp.pixel_attributions


@pytest.mark.parametrize("kwargs, match", [
    (dict(member=99), "Pareto front has"),
    (dict(member="best"), "not understood"),
    (dict(member=True), "member must be"),
    (dict(n_top=0), "n_top"),
    (dict(max_samples=0), "max_samples"),
    (dict(target="dog"), "not among the classes"),
    (dict(target=["ant", "bee"]), "one per sample"),
    (dict(pixel_method="gradcam"), "pixel_method"),
    (dict(method="kernel"), "method must be 'gradient' or 'pruning', got 'kernel'"),
])
def test_bad_arguments_raise_clear_errors(feature_model, kwargs, match):
    clf, X, _ = feature_model
    with pytest.raises(ValueError, match=match):
        clf.explain(X[:5], **kwargs)


def test_explain_needs_a_fitted_classifier():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        EvoPruneClassifier(backbone=None).explain(np.zeros((2, 3)))
