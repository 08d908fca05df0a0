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
from sklearn.utils import check_random_state

from ._background import Background
from ._ensemble import resolve_members
from ._front import gene_frequencies
from ._gradients import (
    LogProba,
    feature_map_attributions,
    gene_data,
    gradient_gene_values,
    pixel_gradients,
)

__all__ = [
    "METHODS", "PIXEL_METHODS", "background_from", "check_explain_options",
    "check_int", "check_target", "explain", "resolve_member", "sample_rows",
]

METHODS = ("gradient", "pruning")
PIXEL_METHODS = ("gradient", "feature_map")


# ------------------------------------------------------------------ inputs
def resolve_member(member, front, best_index):
    """``member=`` of ``explain`` -> ``(label, indices)`` into ``front``.

    ``member`` is None (the selected member), an int index, or any choice of
    several members ``ensemble_predict`` takes (``"front"``, a list of
    indices, ``("top", k)``, ``("window", objective, lo, hi)``).
    ``best_index`` is a callable giving the selected member, asked only when
    ``member`` is None (selecting may raise for a bad ``selection``).
    """
    if member is None:
        best = best_index()
        return best, [best]
    if isinstance(member, str) and member == "ensemble":
        raise ValueError(
            "member='ensemble' is now spelled member='front' (every member's "
            "soft vote)."
        )
    try:
        idx = resolve_members(front, member, name="member")
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    idx = [int(i) for i in idx]
    if isinstance(member, numbers.Integral):
        return idx[0], idx
    return ("front" if isinstance(member, str) else idx), idx


def check_int(value, name, low=1):
    """``value`` as an int, or a ValueError naming ``name`` when it is not an int >= ``low``.

    Booleans are refused although Python counts them as integers.
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def check_explain_options(n_top, max_samples, method, pixel_method, pixels, images_in):
    """Validate the options of ``explain``; returns (n_top, max_samples, want_pixels)."""
    n_top = check_int(n_top, "n_top")
    max_samples = check_int(max_samples, "max_samples")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be 'gradient' or 'pruning', got {method!r}.")
    if not isinstance(pixel_method, str) or pixel_method not in PIXEL_METHODS:
        raise ValueError(
            f"pixel_method must be 'gradient' or 'feature_map', got {pixel_method!r}."
        )
    if pixels not in (None, True, False):
        raise ValueError(f"pixels must be None, True or False, got {pixels!r}.")
    if pixels and not images_in:
        raise ValueError(
            "Pixel attributions need image input, but this classifier was fitted "
            "with backbone=None on a feature matrix; only gene importances can be "
            "explained. Pass pixels=None or False."
        )
    return n_top, max_samples, images_in if pixels is None else bool(pixels)


def sample_rows(n, max_samples, random_state):
    """The explained rows (sorted, at most ``max_samples``) and the seed of the rest."""
    rng = check_random_state(random_state)
    rows = np.sort(rng.choice(n, max_samples, replace=False)) if n > max_samples \
        else np.arange(n)
    return rows, int(rng.randint(0, 2**31 - 1))


def check_target(classes, target, n, rows):
    """Encoded target class of each explained row."""
    target_arr = np.asarray(target)
    if target_arr.ndim == 0:
        target_arr = np.repeat(target_arr, n)
    if target_arr.ndim != 1 or len(target_arr) != n:
        raise ValueError(
            f"target must be one class label or one per sample of X ({n}), "
            f"got shape {target_arr.shape}."
        )
    unknown = sorted(set(target_arr.tolist()) - set(classes.tolist()), key=str)
    if unknown:
        raise ValueError(
            f"target holds label(s) {unknown} not among the classes "
            f"{classes.tolist()}."
        )
    return np.searchsorted(classes, target_arr[rows])


def background_from(features, images=None):
    """A :class:`Background` of a user's reference samples.

    Parameters
    ----------
    features : ndarray of shape (n, n_features)
        Their backbone features (or the features themselves).
    images : Images or None
        Their images, kept as uint8 for pixel attributions.
    """
    return Background(features, None if images is None else images.to_uint8())


def _channels_last(values, channels):
    """``(n, 3, H, W)`` backbone-input values -> ``(n, H, W, C)`` of the input.

    Grayscale input reaches the backbone as three equal channels, so its
    pixel's value is the sum over them (chain rule).
    """
    if channels == 1:
        values = values.sum(axis=1, keepdims=True)
    return np.moveaxis(values, 1, -1)


def _pixel_explanation(heads, backbone, images, bg, feats, gene_values, base,
                       targets, encoding, device, pixel_method, seed):
    """Pixel attributions as a ``shap.Explanation`` of ``(n, H, W, C)`` values and images."""
    import shap

    spec = images.spec
    unit = images.to_tensor().to(device)
    if pixel_method == "gradient":
        backbone.to(device)
        raw = pixel_gradients(heads, backbone, bg.unit_images().to(device), unit,
                              targets, seed)
    else:
        # per-feature values: the genes' own, or expected gradients of the
        # features when genes are neurons
        feature_values = gene_values if encoding == "features" else \
            gradient_gene_values(heads, feats, torch.as_tensor(bg.features, device=device),
                                 targets, "features", seed)
        heat = feature_map_attributions(
            backbone, unit, feature_values, (spec.height, spec.width)
        )
        # no colour resolution: split each pixel's value evenly over channels
        raw = np.repeat(heat[:, None] / 3.0, 3, axis=1)
    data = _channels_last(unit.cpu().numpy(), 3)[..., : spec.channels]
    return shap.Explanation(_channels_last(raw, spec.channels), base_values=base, data=data)


# ------------------------------------------------------------------ explain
def explain(heads, features, *, genomes, indices, label, classes, encoding, gene_names,
            rows, seed, target=None, background=None, images=None, backbone=None,
            device="cpu", want_pixels=False, n_top=10, pixel_method="gradient",
            method="gradient"):
    """Explain the explained rows; the work behind :meth:`EvoPruneClassifier.explain`.

    Parameters
    ----------
    heads : list of MaskedHead
        The explained members' heads (their soft vote when several).
    features : ndarray of shape (n_rows, n_features)
        Head inputs of the explained rows.
    genomes : ndarray of shape (n_members, n_genes)
        Every front member's genome (gene frequency, active genes).
    indices : list of int
        Front indices of ``heads``.
    label : int, list of int or "front"
        How the explained member(s) are named in the result.
    classes : ndarray
        Class labels.
    encoding : {"features", "neurons"}
    gene_names : list of str
    rows : ndarray of int
        Row indices of the explained samples in the caller's ``X``.
    seed : int
        Seeds the expected-gradients draws and permutations.
    target : ndarray of int or None
        Encoded class explained per row; the predicted one when None.
    background : Background or None
        Reference samples (needed for ``method="gradient"`` and pixels).
    images : Images or None
        The explained rows' images, for pixel attributions.
    backbone : Backbone or None
    device : str
    want_pixels : bool
    n_top : int
    pixel_method : {"gradient", "feature_map"}
    method : {"gradient", "pruning"}

    Returns
    -------
    explanation : Explanation
    """
    from ._explanation import Explanation  # imports shap (optional dependency)

    images_in = backbone is not None
    feats_t = torch.as_tensor(features, device=device)
    with torch.no_grad():
        logp = LogProba(heads)(feats_t).cpu().numpy()
    pred_enc = logp.argmax(axis=1)
    target_enc = pred_enc if target is None else target

    if method == "gradient":
        bg_t = torch.as_tensor(background.features, device=device)
        values = gradient_gene_values(heads, feats_t, bg_t, target_enc, encoding, seed)
        with torch.no_grad():
            base = LogProba(heads)(bg_t).cpu().numpy().mean(axis=0)[target_enc]
    else:
        # shap is an optional dependency, imported with the method that needs it
        from ._pruning_shap import pruning_gene_values

        active = genomes[indices].any(axis=0)
        values, base = pruning_gene_values(heads, feats_t, target_enc, encoding,
                                           active, seed)

    pix, pix_error = None, None
    if want_pixels:
        pix = _pixel_explanation(heads, backbone, images, background,
                                 feats_t, values, base, target_enc, encoding, device,
                                 pixel_method, seed)
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
        gene_names=gene_names,
        gene_frequency=gene_frequencies(genomes),
        target=classes[target_enc],
        predicted=classes[pred_enc],
        sample_index=rows,
        member=label,
        classes=classes,
        n_top=n_top,
        method=method,
        pixels=pix,
        pixel_method=pixel_method,
        pixel_error=pix_error,
    )
