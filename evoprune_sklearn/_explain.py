"""Explanations of pruned heads: which genes and which pixels matter.

Every explanation explains one number per sample: the **log-probability of
the target class** (the predicted class unless told otherwise). It is
additive like a logit, invariant to the softmax's free shift, and composes
for an ensemble as the log of the members' mean probability (the soft vote).

Gene values come from one of two methods:

* ``"gradient"``: expected gradients against a background sample of training
  data (``shap.GradientExplainer``'s estimator, vectorised in
  ``_gradients``). "Absent" means "as in a typical training sample".
* ``"pruning"``: Shapley values of the game "keep these genes, prune the
  others", computed by ``shap.PermutationExplainer`` with a masker that
  prunes (``_pruning_shap``). "Absent" means "pruned".

Pixel attributions (image input only) are expected gradients through
``resize -> backbone -> head`` (or the cheaper ``"feature_map"`` spread).
The result is an :class:`~evoprune_sklearn.Explanation`, a ``shap.Explanation``.
"""

import numbers

import numpy as np
import torch

from ._background import Background
from ._ensemble import resolve_members
from ._gradients import (
    LogProba,
    feature_map_attributions,
    gene_data,
    gradient_gene_values,
    pixel_gradients,
)
from ._images import to_unit_tensor

__all__ = ["METHODS", "PIXEL_METHODS", "explain"]

METHODS = ("gradient", "pruning")
PIXEL_METHODS = ("gradient", "feature_map")


# ------------------------------------------------------------------ members
def _resolve_member(clf, member):
    """``(label, indices)``: the ``member`` of the explanation and its front indices.

    ``member`` is None (the selected member), an int index, or any choice of
    several members ``ensemble_predict`` takes (``"front"``, a list of
    indices, ``("top", k)``, ``("window", objective, lo, hi)``).
    """
    if member is None:
        return clf.best_index_, [clf.best_index_]
    if isinstance(member, str) and member == "ensemble":
        raise ValueError(
            "member='ensemble' is now spelled member='front' (every member's "
            "soft vote)."
        )
    try:
        idx = resolve_members(clf.pareto_front_, member, name="member")
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    idx = [int(i) for i in idx]
    if isinstance(member, numbers.Integral):
        return idx[0], idx
    return ("front" if isinstance(member, str) else idx), idx


def _check_int(value, name, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def _check_target(clf, target, n, rows):
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
    return np.searchsorted(clf.classes_, target_arr[rows])


def _background(clf, background, images_in):
    if background is None:
        bg = getattr(clf, "background_", None)
        if bg is None:
            raise ValueError(
                "This classifier holds no background sample (it was fitted by an "
                "older version); pass background= explicitly."
            )
        return bg
    bgv, _ = clf._validate_input(background, reset=False)
    bg_images = None
    if images_in:
        unit = to_unit_tensor(bgv[0], bgv[1])
        bg_images = np.ascontiguousarray(
            (unit * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        )
    return Background(clf._features(bgv), bg_images)


def _channels_last(values, channels):
    """``(n, 3, H, W)`` backbone-input values -> ``(n, H, W, C)`` of the input.

    Grayscale input reaches the backbone as three equal channels, so its
    pixel's value is the sum over them (chain rule).
    """
    if channels == 1:
        values = values.sum(axis=1, keepdims=True)
    return np.moveaxis(values, 1, -1)


def gene_names(clf):
    """The estimator's gene names (``gene_names_``, or generic for old fits)."""
    names = getattr(clf, "gene_names_", None)
    if names is None:
        names = [f"gene{k}" for k in range(clf.n_genes_)]
    return [str(n) for n in names]


def _pixel_explanation(clf, heads, images, spec, bg, feats, gene_values, base, targets,
                       pixel_method, seed):
    """Pixel attributions as a ``shap.Explanation`` of ``(n, H, W, C)`` values and images."""
    import shap

    device = clf._device
    unit = to_unit_tensor(images, spec).to(device)
    if pixel_method == "gradient":
        clf.backbone_.to(device)
        raw = pixel_gradients(heads, clf.backbone_, bg.unit_images().to(device), unit,
                              targets, seed)
    else:
        # per-feature values: the genes' own, or expected gradients of the
        # features when genes are neurons
        feature_values = gene_values if clf._config.encoding == "features" else \
            gradient_gene_values(heads, feats, torch.as_tensor(bg.features, device=device),
                                 targets, "features", seed)
        heat = feature_map_attributions(
            clf.backbone_, unit, feature_values, (spec.height, spec.width)
        )
        # no colour resolution: split each pixel's value evenly over channels
        raw = np.repeat(heat[:, None] / 3.0, 3, axis=1)
    data = _channels_last(unit.cpu().numpy(), 3)[..., : spec.channels]
    return shap.Explanation(_channels_last(raw, spec.channels), base_values=base, data=data)


def explain(clf, X, *, member=None, n_top=10, background=None, max_samples=64,
            target=None, pixels=None, pixel_method="gradient", method="gradient",
            random_state=None):
    """Implementation of :meth:`EvoPruneClassifier.explain` (see there)."""
    from sklearn.utils import check_random_state

    from ._explanation import Explanation

    n_top = _check_int(n_top, "n_top", 1)
    max_samples = _check_int(max_samples, "max_samples", 1)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be 'gradient' or 'pruning', got {method!r}.")
    if not isinstance(pixel_method, str) or pixel_method not in PIXEL_METHODS:
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
    rows = np.sort(rng.choice(n, max_samples, replace=False)) if n > max_samples \
        else np.arange(n)
    seed = int(rng.randint(0, 2**31 - 1))
    target_enc = None if target is None else _check_target(clf, target, n, rows)
    bg = _background(clf, background, images_in) if (
        method == "gradient" or want_pixels) else None

    if images_in:
        X_sel, spec = Xv[0][rows], Xv[1]
        feats = clf._features((X_sel, spec))
    else:
        feats = np.asarray(Xv, dtype=np.float32)[rows]
    device = clf._device
    encoding = clf._config.encoding
    heads = [clf.pareto_front_[i].module().to(device) for i in indices]
    feats_t = torch.as_tensor(feats, device=device)
    with torch.no_grad():
        logp = LogProba(heads)(feats_t).cpu().numpy()
    pred_enc = logp.argmax(axis=1)
    if target_enc is None:
        target_enc = pred_enc

    genomes = np.array([m.genome for m in clf.pareto_front_])
    if method == "gradient":
        bg_t = torch.as_tensor(bg.features, device=device)
        values = gradient_gene_values(heads, feats_t, bg_t, target_enc, encoding, seed)
        with torch.no_grad():
            base = LogProba(heads)(bg_t).cpu().numpy().mean(axis=0)[target_enc]
    else:
        from ._pruning_shap import pruning_gene_values

        active = genomes[indices].any(axis=0)
        values, base = pruning_gene_values(heads, feats_t, target_enc, encoding,
                                           active, seed)

    pix, pix_error = None, None
    if want_pixels:
        pix = _pixel_explanation(clf, heads, X_sel, spec, bg, feats_t, values, base,
                                 target_enc, pixel_method, seed)
    elif images_in:
        pix_error = ("Pixel attributions were not computed: explain() was called with "
                     "pixels=False.")
    else:
        pix_error = (
            "Pixel attributions need image input, but this classifier was fitted with "
            "backbone=None on a feature matrix; only gene importances are available."
        )

    return Explanation(
        values, base, gene_data(heads, feats_t, encoding),
        gene_names=gene_names(clf),
        gene_frequency=genomes.mean(axis=0),
        target=clf.classes_[target_enc],
        predicted=clf.classes_[pred_enc],
        sample_index=rows,
        member=label,
        classes=clf.classes_,
        n_top=n_top,
        method=method,
        pixels=pix,
        pixel_method=pixel_method,
        pixel_error=pix_error,
    )
