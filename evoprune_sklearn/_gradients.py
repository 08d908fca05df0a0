"""Expected gradients (``shap.GradientExplainer``'s estimator), vectorised.

``expected_gradients`` computes exactly what ``shap.GradientExplainer``
computes (same estimator, same random draws for a seed; the tests compare the
two), but pushes every (sample, draw) pair of every class through the model
in large batches instead of one sample and one class at a time, which makes
it several times faster on small heads (``benchmarks/bench_explain.py``).

Gene values: with the ``"features"`` encoding a gene is a head input (a
backbone feature); with ``"neurons"`` it is a hidden neuron, explained
through its activation. A gene switched off in the member feeds nothing
forward (its input is multiplied by zero, or its activation is zero for
every sample and background), so its value is exactly zero.

Pixel values: expected gradients through the whole differentiable path
``image (own resolution) -> resize -> backbone -> head``, so the map has the
input image's own resolution with no upsampling. The alternative,
``feature_map_attributions``, spreads each backbone feature's value over the
backbone's last convolutional map in proportion to the feature's activation
there and upsamples the map: one forward pass instead of dozens of forward +
backward passes, but the last map is the input size divided by 32, so it
cannot localise on small images.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._head import head_forward
from ._images import resize_batch

__all__ = [
    "GENE_NSAMPLES", "PIXEL_NSAMPLES", "LogProba", "ImageBody", "expected_gradients",
    "gradient_gene_values", "gene_data", "pixel_gradients", "feature_map_attributions",
]

#: Expected-gradients samples per explained sample for gene values.
GENE_NSAMPLES = 200
#: Expected-gradients samples per explained sample for pixel attributions.
PIXEL_NSAMPLES = 48
_GENE_CHUNK = 8192
_PIXEL_CHUNK_PIXELS = 64 * 64 * 64  # backbone-input pixels per gradient batch


class LogProba(nn.Module):
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


class HeadTail(nn.Module):
    """The part of a MaskedHead after hidden layer ``start - 1``: activation -> logits."""

    def __init__(self, head, start):
        super().__init__()
        self.head = head
        self.start = start

    def forward(self, h):
        head = self.head
        return head_forward(h, head.layer_parameters()[self.start:],
                            unit_masks=head.unit_masks()[self.start:])


def activation(head, X, layer):
    """Masked activation of hidden ``layer`` for features ``X``."""
    with torch.no_grad():
        return head_forward(X.to(head.layers[0].weight.dtype),
                            head.layer_parameters()[:layer + 1], head.feature_mask,
                            head.unit_masks(), hidden=True)


class ImageBody(nn.Module):
    """``[0, 1]`` images at their own size -> backbone features, differentiably."""

    def __init__(self, backbone):
        super().__init__()
        self.size = backbone.input_size
        self.features = backbone.unit_image_model()

    def forward(self, x):
        return self.features(resize_batch(x, self.size))


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


def expected_gradients(model, background, X, targets, nsamples, seed, chunk):
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


def gradient_gene_values(heads, feats, bg_feats, targets, encoding, seed,
                         nsamples=GENE_NSAMPLES):
    """SHAP values per gene by expected gradients, shape (n, n_genes)."""
    if encoding == "features":
        return expected_gradients(LogProba(heads), bg_feats, feats, targets,
                                  nsamples, seed, chunk=_GENE_CHUNK)
    # neurons: each hidden layer's genes are explained through its activations
    per_member = []
    for head in heads:
        blocks = []
        for layer in range(head.n_hidden):
            blocks.append(expected_gradients(
                LogProba([HeadTail(head, layer + 1)]),
                activation(head, bg_feats, layer), activation(head, feats, layer),
                targets, nsamples, seed, chunk=_GENE_CHUNK,
            ))
        per_member.append(np.concatenate(blocks, axis=1))
    # an ensemble's heads share no neurons: average the members' values
    return np.mean(per_member, axis=0)


def gene_data(heads, feats, encoding):
    """What each gene holds for each sample: the values its SHAP values explain.

    Features encoding: the backbone features. Neurons encoding: the masked
    hidden activations, layer after layer (for several heads, their mean:
    gene ``k`` of two members are different neurons at the same position).

    Returns
    -------
    data : ndarray of shape (n_samples, n_genes), float64
    """
    if encoding == "features":
        return feats.detach().cpu().numpy().astype(np.float64)
    per_head = [
        np.concatenate([activation(head, feats, layer).cpu().numpy()
                        for layer in range(head.n_hidden)], axis=1)
        for head in heads
    ]
    return np.mean(per_head, axis=0).astype(np.float64)


def pixel_gradients(heads, backbone, background_images, images, targets, seed):
    """Expected-gradients pixel values, shape ``(n, 3, H, W)`` like ``images``."""
    model = LogProba(heads, body=ImageBody(backbone))
    side = backbone.input_size
    return expected_gradients(
        model, background_images, images, targets, PIXEL_NSAMPLES, seed,
        chunk=max(1, _PIXEL_CHUNK_PIXELS // (side * side)),
    )


# ------------------------------------------------------------- feature maps
def feature_map_attributions(backbone, images, feature_shap, size):
    """Spread each feature's SHAP value over its map, then upsample to ``size``.

    The map is the backbone's own ``feature_map`` hook (its spec's), so any
    registered or user backbone with a convolutional trunk works here.
    """
    fmap = backbone.last_conv_map(images).float()
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
