"""SHAP explanations of pruned heads: which genes and which image regions matter.

Every explanation explains one number per sample: the **log-probability of
the target class** (the predicted class unless told otherwise). Log-probability
is additive like a logit, but invariant to the softmax's free shift, and it
composes for an ensemble as the log of the members' mean probability (the
ensemble's soft vote).

Two kinds of attribution come out of one call:

* **Gene importances.** SHAP values of every gene, by expected gradients
  over a background sample: exactly what ``shap.GradientExplainer`` computes
  (same estimator, same random draws for a seed; the tests compare the two),
  but vectorised over samples, draws and target classes, which makes it tens
  of times faster than shap's one-sample-at-a-time loop on small heads. With the
  ``"features"`` encoding a gene is a head input (a backbone feature); with the
  ``"neurons"`` encoding it is a hidden neuron, explained through its
  activation. A gene switched off in the member feeds nothing forward (its
  input is multiplied by zero, or its activation is zero for every sample and
  background), so its SHAP value is exactly zero.
* **Pixel attributions** (image input only). Expected gradients through the
  whole differentiable path ``image (own resolution) -> resize -> backbone ->
  head``, summed over colour channels, so the map has the input image's own
  resolution with no upsampling. The alternative, ``pixel_method=
  "feature_map"``, spreads each backbone feature's SHAP value over the
  backbone's last convolutional map in proportion to the feature's
  activation there and upsamples the map. It costs one forward pass instead
  of dozens of forward + backward passes, but the last map is the input size
  divided by 32 (1x1 at 32 px, 7x7 at 224 px), so it cannot localise on
  small images; ``benchmarks/bench_explain.py`` measures both, and
  ``"gradient"`` is the default because it localises where the other
  cannot.
"""

import numbers

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._images import to_unit_tensor

__all__ = ["Background", "Explanation", "explain", "plot_explanation", "sample_background"]

#: Training samples kept at fit time as the SHAP background (stratified).
BACKGROUND_SIZE = 64
#: Expected-gradients samples per explained sample for gene importances.
GENE_NSAMPLES = 200
#: Expected-gradients samples per explained sample for pixel attributions.
PIXEL_NSAMPLES = 48
_GENE_CHUNK = 8192
_PIXEL_CHUNK_PIXELS = 64 * 64 * 64  # backbone-input pixels per gradient batch


# ---------------------------------------------------------------- background
class Background:
    """The reference sample SHAP compares each explained sample against.

    Parameters
    ----------
    features : ndarray of shape (n_background, n_features), float32
        Backbone features (or the raw features when ``backbone=None``).
    images : ndarray of shape (n_background, H, W, 3), uint8, or None
        The same samples as RGB images at their own resolution; None for
        feature input.
    labels : ndarray of int or None
        Encoded labels of the samples, when known.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._explain import Background
    >>> Background(np.zeros((4, 3), dtype=np.float32)).nbytes
    48
    """

    def __init__(self, features, images=None, labels=None):
        self.features = np.asarray(features, dtype=np.float32)
        self.images = images
        self.labels = labels

    def __len__(self):
        return len(self.features)

    @property
    def nbytes(self):
        """Memory held, in bytes."""
        n = self.features.nbytes
        if self.images is not None:
            n += self.images.nbytes
        return int(n)

    def unit_images(self):
        """Images as a float32 ``(n, 3, H, W)`` tensor in ``[0, 1]``."""
        return torch.from_numpy(np.moveaxis(self.images, -1, 1).astype(np.float32) / 255.0)

    def __repr__(self):
        kind = "images+features" if self.images is not None else "features"
        return f"Background({len(self)} samples, {kind}, {self.nbytes / 1e6:.2f} MB)"


def _stratified_subset(labels, size, seed):
    n = len(labels)
    if n <= size:
        return np.arange(n)
    from sklearn.model_selection import train_test_split

    try:
        chosen, _ = train_test_split(
            np.arange(n), train_size=size, stratify=labels, random_state=seed
        )
    except ValueError:  # more classes than slots, or singleton classes
        chosen = np.random.RandomState(seed).choice(n, size, replace=False)
    return np.sort(chosen)


def sample_background(features, labels, index, seed, images=None, spec=None,
                      size=BACKGROUND_SIZE):
    """Keep a small stratified sample of the training data for :meth:`explain`.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Features of all fitted samples.
    labels : ndarray of int, shape (n_samples,)
        Encoded labels of all fitted samples.
    index : ndarray of int
        Indices the sample is drawn from (the training fold).
    seed : int
        Seed of the draw.
    images : ndarray or None, default=None
        The fitted images, in the layout ``spec`` describes.
    spec : ImageSpec or None, default=None
    size : int, default=BACKGROUND_SIZE
        Samples kept: at most ``size * (n_features * 4 + H * W * 3)`` bytes.

    Returns
    -------
    background : Background

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._explain import sample_background
    >>> y = np.repeat([0, 1], 50)
    >>> bg = sample_background(np.zeros((100, 2)), y, np.arange(100), seed=0, size=10)
    >>> np.bincount(bg.labels).tolist()
    [5, 5]
    """
    index = np.asarray(index)
    chosen = index[_stratified_subset(labels[index], size, seed)]
    kept_images = None
    if images is not None:
        unit = to_unit_tensor(images[chosen], spec)
        kept_images = np.ascontiguousarray(
            (unit * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        )
    return Background(features[chosen], kept_images, np.asarray(labels)[chosen])


# --------------------------------------------------------------- explanation
class Explanation:
    """What :meth:`EvoPruneClassifier.explain` found.

    Attributes
    ----------
    shap_values : ndarray of shape (n_explained, n_genes)
        Signed SHAP value of every gene for every explained sample, on the
        target class's log-probability.
    gene_importance : ndarray of shape (n_genes,)
        Mean absolute SHAP value of each gene over the explained samples;
        exactly zero for genes switched off in the explained member(s).
    top_genes : ndarray of int, shape (n_top,)
        The ``n_top`` genes of highest importance, most important first.
    gene_frequency : ndarray of shape (n_genes,)
        Fraction of Pareto-front members in which each gene is on (the
        paper's notion of an influential gene).
    combined_score : ndarray of shape (n_genes,)
        ``gene_importance / gene_importance.max() * gene_frequency``: high
        only for genes that matter to this prediction *and* survive pruning
        across the front; zero for genes off in the explained member.
    top_genes_combined : ndarray of int, shape (n_top,)
        The ``n_top`` genes of highest ``combined_score`` (ties: importance).
    target : ndarray of shape (n_explained,)
        The class explained for each sample (a label from ``classes``).
    predicted : ndarray of shape (n_explained,)
        The class the explained model predicts for each sample.
    expected_value : ndarray of shape (n_explained,)
        Mean target log-probability over the background; SHAP values of a
        sample sum approximately to its log-probability minus this value
        (for two hidden layers with ``"neurons"``, per layer).
    sample_index : ndarray of int, shape (n_explained,)
        Rows of the ``X`` passed to ``explain`` that were explained.
    member : int, list of int or "ensemble"
        Which front member(s) were explained.
    classes : ndarray
        The classifier's classes.
    pixel_method : str or None
        How pixel attributions were computed; None when they were not.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> X, y = make_classification(n_samples=100, n_features=8, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
    ...                          n_evaluations=8, random_state=0).fit(X, y)
    >>> exp = clf.explain(X[:5], n_top=3, random_state=0)
    >>> exp.gene_importance.shape, exp.top_genes.shape
    ((8,), (3,))
    """

    def __init__(self, *, shap_values, gene_frequency, target, predicted,
                 expected_value, sample_index, member, classes, n_top,
                 pixel_attributions=None, pixel_method=None, pixel_error=None):
        self.shap_values = shap_values
        self.gene_importance = np.abs(shap_values).mean(axis=0)
        self.gene_frequency = gene_frequency
        peak = self.gene_importance.max()
        scaled = self.gene_importance / peak if peak > 0 else self.gene_importance
        self.combined_score = scaled * gene_frequency
        n_top = min(int(n_top), len(self.gene_importance))
        # stable sorts so equal scores keep gene order: the ranking is deterministic
        self.top_genes = np.argsort(-self.gene_importance, kind="stable")[:n_top]
        self.top_genes_combined = np.lexsort(
            (-self.gene_importance, -self.combined_score)
        )[:n_top]
        self.target = target
        self.predicted = predicted
        self.expected_value = expected_value
        self.sample_index = sample_index
        self.member = member
        self.classes = classes
        self.pixel_method = pixel_method
        self._pixel_attributions = pixel_attributions
        self._pixel_error = pixel_error

    @property
    def pixel_attributions(self):
        """ndarray of shape (n_explained, H, W): per-pixel attributions.

        Signed contributions to the target class's log-probability at the
        input images' own resolution. Raises ValueError when there are none
        (feature input, or ``pixels=False``).
        """
        if self._pixel_attributions is None:
            raise ValueError(self._pixel_error)
        return self._pixel_attributions

    @property
    def has_pixel_attributions(self):
        """Whether :attr:`pixel_attributions` is available."""
        return self._pixel_attributions is not None

    def to_frame(self):
        """All genes with their importance, frequency and combined score.

        Returns
        -------
        frame : DataFrame
            Indexed by gene, sorted by decreasing combined score (ties:
            importance).
        """
        import pandas as pd

        order = np.lexsort((-self.gene_importance, -self.combined_score))
        frame = pd.DataFrame({
            "importance": self.gene_importance,
            "frequency": self.gene_frequency,
            "combined_score": self.combined_score,
        })
        frame.index.name = "gene"
        return frame.iloc[order]

    def __repr__(self):
        pix = f", pixels={self.pixel_method}" if self.has_pixel_attributions else ""
        return (f"Explanation({len(self.sample_index)} samples, member={self.member!r}, "
                f"top_genes={self.top_genes[:5].tolist()}{pix})")


# ------------------------------------------------------------------- models
class _LogProba(nn.Module):
    """``(n, ...) -> (n, n_classes)`` log-probabilities of one head or a soft vote.

    Heads map features to logits; several heads are combined as the log of
    their mean probability. ``body`` turns the input into the heads' input
    (nothing for features; resize + backbone for images).
    """

    def __init__(self, heads, body=None):
        super().__init__()
        self.heads = nn.ModuleList(heads)
        self.body = body

    def forward(self, x):
        if self.body is not None:
            x = self.body(x)
        logp = torch.stack([torch.log_softmax(h(x), dim=1) for h in self.heads])
        return torch.logsumexp(logp, dim=0) - np.log(len(self.heads))


class _HeadTail(nn.Module):
    """The part of a MaskedHead after hidden layer ``start - 1``: activation -> logits."""

    def __init__(self, head, start):
        super().__init__()
        self.head = head
        self.start = start

    def forward(self, h):
        head = self.head
        for i in range(self.start, head.n_hidden):
            h = torch.relu(head.layers[i](h)) * head.neuron_mask(i)
        return head.layers[-1](h)


def _activation(head, X, layer):
    """Masked activation of hidden ``layer`` for features ``X``."""
    with torch.no_grad():
        h = X.to(head.layers[0].weight.dtype) * head.feature_mask
        for i in range(layer + 1):
            h = torch.relu(head.layers[i](h)) * head.neuron_mask(i)
    return h


class _ImageBody(nn.Module):
    """``[0, 1]`` images at their own size -> backbone features, differentiably."""

    def __init__(self, backbone):
        super().__init__()
        self.size = backbone.input_size
        self.features = backbone.unit_image_model()

    def forward(self, x):
        if tuple(x.shape[-2:]) != (self.size, self.size):
            down = x.shape[-2] > self.size or x.shape[-1] > self.size
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                              align_corners=False, antialias=down)
        return self.features(x)


# ---------------------------------------------------------------- expected gradients
def _draws(n_rows, n_background, nsamples, seed):
    """Background index and interpolation point of every expected-gradients sample.

    The same sequence ``shap.GradientExplainer.shap_values(rseed=seed)`` draws
    (one ``choice`` then one ``uniform`` per sample, row after row), from a
    private generator instead of numpy's global one.
    """
    rs = np.random.RandomState(seed)
    index = np.empty((n_rows, nsamples), dtype=np.int64)
    t = np.empty((n_rows, nsamples), dtype=np.float32)
    for j in range(n_rows):
        for k in range(nsamples):
            index[j, k] = rs.choice(n_background)
            t[j, k] = rs.uniform()
    return index, t


def _expected_gradients(model, background, X, targets, nsamples, seed, chunk):
    """SHAP values by expected gradients, of output ``targets[j]`` for row ``j``.

    Computes what ``shap.GradientExplainer(model, background)`` computes with
    ``shap_values(X, nsamples, rseed=seed)`` (tests check they agree), but
    every (sample, draw) pair of every class goes through the model in
    batches of ``chunk`` instead of one sample and one class at a time:
    ``phi_j = mean_k grad f_c(b_k + t_k (x_j - b_k)) * (x_j - b_k)``.

    Returns
    -------
    values : ndarray of shape X.shape, float64
    """
    n = len(X)
    values = torch.zeros(tuple(X.shape), dtype=torch.float64)
    if n == 0:
        return values.numpy()
    model.eval()
    index, t = _draws(n, len(background), nsamples, seed)
    rows = np.repeat(np.arange(n), nsamples)
    index, t = index.reshape(-1), t.reshape(-1)
    targets = torch.as_tensor(np.asarray(targets, dtype=np.int64), device=X.device)
    shape = (-1,) + (1,) * (X.dim() - 1)
    for start in range(0, len(rows), chunk):
        r = torch.as_tensor(rows[start : start + chunk], device=X.device)
        b = background[torch.as_tensor(index[start : start + chunk], device=X.device)]
        tt = torch.as_tensor(t[start : start + chunk], device=X.device).reshape(shape)
        delta = X[r] - b
        point = (tt * X[r] + (1 - tt) * b).detach().requires_grad_(True)
        logp = model(point)
        picked = logp.gather(1, targets[r][:, None]).sum()
        (grad,) = torch.autograd.grad(picked, point)
        values.index_add_(0, r.cpu(), (grad * delta).double().cpu())
    return (values / nsamples).numpy()


def _gene_shap(clf, heads, feats, bg_feats, targets, nsamples, seed):
    """SHAP values per gene, shape (n, n_genes)."""
    cfg = clf._config
    if cfg.encoding == "features":
        return _expected_gradients(_LogProba(heads), bg_feats, feats, targets,
                                   nsamples, seed, chunk=_GENE_CHUNK)
    # neurons: each hidden layer's genes are explained through its activations
    per_member = []
    for head in heads:
        blocks = []
        for layer in range(head.n_hidden):
            blocks.append(_expected_gradients(
                _LogProba([_HeadTail(head, layer + 1)]),
                _activation(head, bg_feats, layer), _activation(head, feats, layer),
                targets, nsamples, seed, chunk=_GENE_CHUNK,
            ))
        per_member.append(np.concatenate(blocks, axis=1))
    # an ensemble's heads share no neurons: average the members' values
    return np.mean(per_member, axis=0)


# ------------------------------------------------------------- feature maps
def _last_conv_map(backbone, images):
    """The backbone's last convolutional map ``(n, K, h, w)`` of unit images."""
    from ._backbones import _LiteFeatures

    size = backbone.input_size
    x = images
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear",
                          align_corners=False, antialias=x.shape[-1] > size)
    x = backbone.normalize(x)
    module = backbone.module
    with torch.no_grad():
        if isinstance(module, _LiteFeatures):
            return module.model.extract_features(x)
        pools = [m for m in module.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
        if not pools:
            raise ValueError(
                f"pixel_method='feature_map' needs a backbone that ends in an "
                f"adaptive average pool; {backbone.name!r} does not expose one. "
                "Use pixel_method='gradient'."
            )
        captured = {}
        handle = pools[-1].register_forward_hook(
            lambda m, inp, out: captured.setdefault("map", inp[0])
        )
        try:
            module(x)
        finally:
            handle.remove()
        return captured["map"]


def _feature_map_attributions(backbone, images, feature_shap, size):
    """Spread each feature's SHAP value over its map, then upsample to ``size``."""
    fmap = _last_conv_map(backbone, images).float()
    total = fmap.sum(dim=(2, 3), keepdim=True)
    # a feature absent from the image (all-zero map) can still carry SHAP value
    # (its absence matters); it has no location, so it is spread evenly
    nonzero = total.abs() > 1e-12
    even = torch.full_like(fmap, 1.0 / (fmap.shape[-2] * fmap.shape[-1]))
    share = torch.where(nonzero, fmap / torch.where(nonzero, total, torch.ones_like(total)),
                        even)
    phi = torch.as_tensor(feature_shap, dtype=torch.float32)[:, :, None, None]
    heat = (share * phi).sum(dim=1, keepdim=True)
    cells = heat.shape[-2] * heat.shape[-1]
    heat = F.interpolate(heat, size=size, mode="bilinear", align_corners=False)
    # upsampling multiplies the total by the area ratio; undo it so the map
    # still sums to the features' total contribution
    return heat[:, 0].numpy().astype(np.float64) * cells / (size[0] * size[1])


# ------------------------------------------------------------------ explain
def _resolve_member(clf, member):
    front = clf.pareto_front_
    if member is None:
        return clf.best_index_, [clf.best_index_]
    if isinstance(member, str):
        if member != "ensemble":
            raise ValueError(
                f"member must be None, an int index into the Pareto front, a list "
                f"of indices or 'ensemble', got {member!r}."
            )
        return "ensemble", list(range(len(front)))
    if isinstance(member, numbers.Integral) and not isinstance(member, bool):
        idx = [int(member)]
    elif isinstance(member, (list, tuple, np.ndarray)) and len(member) > 0 and all(
        isinstance(m, numbers.Integral) and not isinstance(m, bool) for m in member
    ):
        idx = [int(m) for m in member]
    else:
        raise ValueError(
            f"member must be None, an int index into the Pareto front, a list of "
            f"indices or 'ensemble', got {member!r}."
        )
    bad = [i for i in idx if not 0 <= i < len(front)]
    if bad:
        raise ValueError(
            f"member index {bad[0]} is out of range: the Pareto front has "
            f"{len(front)} member(s)."
        )
    return (idx[0] if isinstance(member, numbers.Integral) else idx), idx


def _check_int(value, name, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def explain(clf, X, *, member=None, n_top=10, background=None, max_samples=64,
            target=None, pixels=None, pixel_method="gradient", random_state=None):
    """Implementation of :meth:`EvoPruneClassifier.explain` (see there)."""
    from sklearn.utils import check_random_state

    n_top = _check_int(n_top, "n_top", 1)
    max_samples = _check_int(max_samples, "max_samples", 1)
    if pixel_method not in ("gradient", "feature_map"):
        raise ValueError(
            f"pixel_method must be 'gradient' or 'feature_map', got {pixel_method!r}."
        )
    if pixels not in (None, True, False):
        raise ValueError(f"pixels must be None, True or False, got {pixels!r}.")
    images_in = clf.backbone_ is not None
    if pixels and not images_in:
        raise ValueError(
            "Pixel attributions need image input, but this classifier was fitted "
            "with backbone=None on a feature matrix; only gene importances can be "
            "explained. Pass pixels=None or False."
        )
    want_pixels = images_in if pixels is None else bool(pixels)
    label, indices = _resolve_member(clf, member)

    Xv, _ = clf._validate_input(X, reset=False)
    n = len(Xv[0]) if images_in else len(Xv)
    rng = check_random_state(random_state)
    if n > max_samples:
        rows = np.sort(rng.choice(n, max_samples, replace=False))
    else:
        rows = np.arange(n)
    seed = int(rng.randint(0, 2**31 - 1))

    if target is not None:
        target_arr = np.asarray(target)
        if target_arr.ndim == 0:
            target_arr = np.repeat(target_arr, n)
        if target_arr.ndim != 1 or len(target_arr) != n:
            raise ValueError(
                f"target must be one class label or one per sample of X ({n}), "
                f"got shape {target_arr.shape}."
            )
        unknown = sorted(set(target_arr.tolist()) - set(clf.classes_.tolist()), key=str)
        if unknown:
            raise ValueError(
                f"target holds label(s) {unknown} not among the classes "
                f"{clf.classes_.tolist()}."
            )
        target_arr = target_arr[rows]

    if background is None:
        bg = getattr(clf, "background_", None)
        if bg is None:
            raise ValueError(
                "This classifier holds no background sample (it was fitted by an "
                "older version); pass background= explicitly."
            )
    else:
        bgv, _ = clf._validate_input(background, reset=False)
        bg_feats = clf._features(bgv)
        bg_images = None
        if images_in:
            unit = to_unit_tensor(bgv[0], bgv[1])
            bg_images = np.ascontiguousarray(
                (unit * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            )
        bg = Background(bg_feats, bg_images)

    if images_in:
        X_sel, spec = Xv[0][rows], Xv[1]
        feats = clf._features((X_sel, spec))
    else:
        feats = np.asarray(Xv, dtype=np.float32)[rows]
    device = clf._device
    heads = [clf.pareto_front_[i].net.module_.eval() for i in indices]
    feats_t = torch.as_tensor(feats, device=device)
    bg_t = torch.as_tensor(bg.features, device=device)
    combo = _LogProba(heads)
    with torch.no_grad():
        logp = combo(feats_t).cpu().numpy()
        bg_logp = combo(bg_t).cpu().numpy().mean(axis=0)
    pred_enc = logp.argmax(axis=1)
    if target is None:
        target_enc = pred_enc
    else:
        target_enc = np.searchsorted(clf.classes_, target_arr)

    shap_values = _gene_shap(clf, heads, feats_t, bg_t, target_enc, GENE_NSAMPLES, seed)
    genomes = np.array([m.genome for m in clf.pareto_front_])
    frequency = genomes.mean(axis=0)

    pix, pix_error = None, None
    if want_pixels:
        unit = to_unit_tensor(X_sel, spec).to(device)
        if pixel_method == "gradient":
            clf.backbone_.to(device)
            model = _LogProba(heads, body=_ImageBody(clf.backbone_))
            side = clf.backbone_.input_size
            values = _expected_gradients(
                model, bg.unit_images().to(device), unit, target_enc, PIXEL_NSAMPLES, seed,
                chunk=max(1, _PIXEL_CHUNK_PIXELS // (side * side)),
            )
            pix = values.sum(axis=1)
        else:
            feature_shap = shap_values
            if clf._config.encoding != "features":
                feature_shap = _expected_gradients(
                    _LogProba(heads), bg_t, feats_t, target_enc, GENE_NSAMPLES, seed,
                    chunk=_GENE_CHUNK,
                )
            pix = _feature_map_attributions(
                clf.backbone_, unit, feature_shap, (spec.height, spec.width)
            )
    elif images_in:
        pix_error = "Pixel attributions were not computed: explain() was called with pixels=False."
    else:
        pix_error = (
            "Pixel attributions need image input, but this classifier was fitted with "
            "backbone=None on a feature matrix; only gene importances are available."
        )

    return Explanation(
        shap_values=shap_values,
        gene_frequency=frequency,
        target=clf.classes_[target_enc],
        predicted=clf.classes_[pred_enc],
        expected_value=bg_logp[target_enc],
        sample_index=rows,
        member=label,
        classes=clf.classes_,
        n_top=n_top,
        pixel_attributions=pix,
        pixel_method=pixel_method if pix is not None else None,
        pixel_error=pix_error,
    )


# ----------------------------------------------------------------- plotting
def plot_explanation(explanation, images=None, *, n_images=8, n_cols=4, smooth=1.0,
                     figsize=None):
    """Heatmaps of pixel attributions over the images, and the top genes.

    Parameters
    ----------
    explanation : Explanation
        What :meth:`EvoPruneClassifier.explain` returned.
    images : array-like, default=None
        The ``X`` passed to ``explain`` (rows are picked with
        ``explanation.sample_index``) or exactly the explained images. Not
        needed when there are no pixel attributions.
    n_images : int, default=8
        Images shown (the first explained ones).
    n_cols : int, default=4
        Columns of the image grid.
    smooth : float, default=1.0
        Standard deviation, in pixels, of a Gaussian blur applied to the
        attributions before drawing (display only): expected gradients are
        speckled at the pixel level, and the blur shows the regions they
        concentrate in. 0 draws them raw.
    figsize : tuple of float, default=None
        Figure size in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Red marks pixels that raise the target class's log-probability,
        blue pixels that lower it; opacity grows with magnitude. The bar
        chart ranks the top genes by mean |SHAP| and prints how often each
        is on across the Pareto front.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.plotting import plot_explanation
    >>> X, y = make_classification(n_samples=100, n_features=8, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
    ...                          n_evaluations=8, random_state=0).fit(X, y)
    >>> fig = plot_explanation(clf.explain(X[:5], n_top=3, random_state=0))
    >>> len(fig.axes)
    1
    """
    from matplotlib import colormaps, colors
    from matplotlib.figure import Figure

    from ._images import image_spec

    if not isinstance(explanation, Explanation):
        raise TypeError(
            f"explanation must be an Explanation, got {type(explanation).__name__}."
        )
    n_images = _check_int(n_images, "n_images", 1)
    n_cols = _check_int(n_cols, "n_cols", 1)
    if not isinstance(smooth, numbers.Real) or smooth < 0:
        raise ValueError(f"smooth must be a non-negative number, got {smooth!r}.")
    show_pixels = explanation.has_pixel_attributions
    if show_pixels and images is None:
        raise ValueError(
            "images are required to draw pixel attributions: pass the X given to "
            "explain()."
        )
    if show_pixels:
        images = np.asarray(images)
        spec = image_spec(images, name="images")
        rows = explanation.sample_index
        if len(images) != len(rows):
            if len(images) <= rows.max():
                raise ValueError(
                    f"images holds {len(images)} images, but the explanation refers "
                    f"to row {rows.max()}; pass the X given to explain()."
                )
            images = images[rows]
        attributions = explanation.pixel_attributions
        if (spec.height, spec.width) != attributions.shape[1:]:
            raise ValueError(
                f"images are {spec.height}x{spec.width} pixels but the attributions "
                f"are {attributions.shape[1]}x{attributions.shape[2]}."
            )
        shown = min(n_images, len(images))
        unit = to_unit_tensor(images[:shown], spec).permute(0, 2, 3, 1).numpy()
        n_cols = min(n_cols, shown)
        n_rows = int(np.ceil(shown / n_cols))
    top = explanation.top_genes
    if figsize is None:
        figsize = (2.2 * n_cols + 4.5, max(2.4 * n_rows, 3.5)) if show_pixels else (5, 0.35 * len(top) + 1.5)
    fig = Figure(figsize=figsize, layout="constrained")
    if show_pixels:
        left, right = fig.subfigures(1, 2, width_ratios=[2.2 * n_cols, 4.5])
        cmap = colormaps["bwr"]
        for k in range(shown):
            ax = left.add_subplot(n_rows, n_cols, k + 1)
            gray = unit[k].mean(axis=-1)
            # a dimmed image keeps the overlay readable on bright strokes
            ax.imshow(gray, cmap="gray", vmin=-0.6, vmax=1.4)
            a = attributions[k]
            if smooth > 0:
                from scipy.ndimage import gaussian_filter

                a = gaussian_filter(a, sigma=float(smooth))
            vmax = float(np.percentile(np.abs(a), 99.5)) or 1.0
            rgba = cmap(colors.Normalize(-vmax, vmax)(a))
            rgba[..., 3] = np.clip(np.abs(a) / vmax, 0, 1) * 0.85
            ax.imshow(rgba)
            title = f"class {explanation.target[k]}"
            if explanation.predicted[k] != explanation.target[k]:
                title += f" (pred {explanation.predicted[k]})"
            ax.set_title(title, fontsize="small")
            ax.set_xticks([])
            ax.set_yticks([])
        left.suptitle("SHAP pixel attributions (red: for the class)", fontsize="medium")
        bar_parent = right
    else:
        bar_parent = fig
    ax = bar_parent.add_subplot(1, 1, 1)
    imp = explanation.gene_importance[top]
    freq = explanation.gene_frequency[top]
    pos = np.arange(len(top))[::-1]
    ax.barh(pos, imp, color="tab:orange")
    ax.set_yticks(pos, [f"gene {g}" for g in top], fontsize="small")
    for p, v, f in zip(pos, imp, freq):
        ax.text(v, p, f" {f:.0%}", va="center", fontsize="x-small")
    ax.set_xlabel("mean |SHAP| (log-probability)")
    ax.set_title(f"top {len(top)} genes\n(% of front members keeping each)",
                 fontsize="medium")
    ax.margins(x=0.2)
    return fig
