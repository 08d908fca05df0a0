"""Out-of-distribution detection: the ODIN robustness objective.

The robustness of a pruned head is how well its confidence tells the data it
was trained for (the in-distribution validation fold) from data it was not
(out-of-distribution, OoD): the area under the ROC curve (AUROC) of the ODIN
score separating the two (Liang, Li & Srikant, "Enhancing the reliability of
out-of-distribution image detection in neural networks", ICLR 2018).

The ODIN score of an input ``x`` is ``max_c softmax(f(x') / T)_c``, where ``T``
is a temperature and ``x' = x - eps * sign(-grad_x log S_yhat(x; T))`` nudges
the input towards a higher score of its predicted class ``yhat``; that nudge
helps in-distribution inputs more than OoD ones. How the modes here differ from
the MO-EvoPruneDeepTL research code: that code used temperature scaling only
(``eps = 0``), scored on the test split, and reused stale robustness values for
duplicate genomes. Here fitness is measured on the validation fold only, the
input perturbation is available (``odin_epsilon > 0``), and every objective
value of a genome is computed together from the same trained head and cached
together.

Costs. With ``odin_epsilon=0`` (the default) the score is computed from the
features extracted once per fit: the OoD samples go through the backbone once,
then each candidate costs two small head forward passes. With
``odin_epsilon > 0`` and image input, every candidate needs one backward pass
through the frozen backbone and one more forward pass for up to
``robustness_subset`` validation images and as many OoD images (the first
forward pass of each batch is shared by all candidates of a generation).
"""

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ._images import image_spec, resize_batch, to_unit_tensor
from ._objectives import Objective

__all__ = [
    "OODSet",
    "odin_scores",
    "ood_auroc",
    "synthetic_ood_images",
    "synthetic_ood_features",
    "ODINRobustness",
    "make_robustness_objective",
]

#: Kinds of the default synthetic OoD set, in the order samples are made.
SYNTHETIC_KINDS = ("gaussian", "uniform", "shuffled")


class OODSet:
    """Out-of-distribution samples for ``fit``, safe from cross-validation slicing.

    scikit-learn's :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_val_score` and friends slice every
    fit parameter whose length equals the number of training samples, as if
    it were one value per sample. OoD samples are not aligned with ``X``, so
    when ``len(X_ood) == len(X)`` a plain array would silently be cut down to
    each training fold. An ``OODSet`` has no length, so scikit-learn passes it
    through whole; :meth:`EvoPruneClassifier.fit` unwraps it. Wrap ``X_ood``
    whenever it travels through a scikit-learn meta-estimator; a plain array
    is fine for a direct ``fit``.

    (A constructor parameter would also escape slicing, but it would make the
    data part of the estimator's parameters: copied by ``clone`` for every
    candidate of a grid search and printed in its ``repr``.)

    Parameters
    ----------
    X : array-like
        OoD images (any size, same formats as ``X`` in ``fit``) or, with
        ``backbone=None``, a 2-D feature matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn import OODSet
    >>> OODSet(np.zeros((5, 3)))
    OODSet(n_samples=5)
    """

    __slots__ = ("X",)

    def __init__(self, X):
        if isinstance(X, OODSet):
            X = X.X
        self.X = X

    def __repr__(self):
        n = getattr(self.X, "shape", (len(self.X),))[0]
        return f"OODSet(n_samples={n})"


def odin_scores(logits, temperature=1000.0):
    """ODIN confidence: the maximum softmax probability of ``logits / T``.

    Computed in float64: with ``T = 1000`` the probabilities differ from
    ``1 / n_classes`` by about ``1e-4``, below what float32 softmax resolves.
    ``temperature=1`` gives the plain maximum-softmax-probability baseline.

    Parameters
    ----------
    logits : array-like or torch.Tensor of shape (..., n_classes)
    temperature : float, default=1000.0

    Returns
    -------
    scores : ndarray of shape (...,)
        Higher means "more in-distribution".

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._ood import odin_scores
    >>> odin_scores(np.array([[2.0, 0.0], [0.0, 0.0]]), temperature=1).round(3)
    array([0.881, 0.5  ])
    """
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().cpu().numpy()
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    # max softmax = exp(0) / sum(exp(z)) once the maximum is shifted to 0
    return 1.0 / np.exp(z).sum(axis=-1)


def ood_auroc(scores_in, scores_out):
    """AUROC of a score separating in-distribution from OoD samples.

    Parameters
    ----------
    scores_in : array-like of shape (n_in,)
        Scores of in-distribution samples (should be high).
    scores_out : array-like of shape (n_out,)
        Scores of OoD samples (should be low).

    Returns
    -------
    auroc : float
        1 for perfect separation, 0.5 for chance.

    Examples
    --------
    >>> from evoprune_sklearn._ood import ood_auroc
    >>> ood_auroc([0.9, 0.8], [0.3, 0.85])
    0.75
    """
    from sklearn.metrics import roc_auc_score

    scores_in = np.asarray(scores_in, dtype=np.float64).ravel()
    scores_out = np.asarray(scores_out, dtype=np.float64).ravel()
    truth = np.r_[np.ones(len(scores_in)), np.zeros(len(scores_out))]
    return float(roc_auc_score(truth, np.r_[scores_in, scores_out]))


def _kind_counts(n_samples):
    base, extra = divmod(int(n_samples), len(SYNTHETIC_KINDS))
    return [base + (i < extra) for i in range(len(SYNTHETIC_KINDS))]


def synthetic_ood_images(X, spec, n_samples, random_state=0, n_patches=4):
    """The default OoD set for image input, built from the training images.

    In the spirit of the synthetic noise sets of the ODIN paper, three kinds
    in (nearly) equal numbers, all at the training images' size and channels:

    - ``"gaussian"``: i.i.d. pixels from a normal distribution with the
      per-channel mean and standard deviation of the training images;
    - ``"uniform"``: i.i.d. pixels uniform between the per-channel minimum
      and maximum of the training images;
    - ``"shuffled"``: training images cut into an ``n_patches x n_patches``
      grid whose patches are randomly permuted (local statistics kept, global
      structure destroyed; the hardest of the three).

    Parameters
    ----------
    X : ndarray
        Training images, in the layout described by ``spec``.
    spec : ImageSpec
    n_samples : int
        Total number of OoD images.
    random_state : int, default=0
    n_patches : int, default=4
        Grid size of the shuffled-patch images.

    Returns
    -------
    images : ndarray of shape (n_samples, H, W, C), uint8
    kinds : ndarray of str, shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._images import image_spec
    >>> from evoprune_sklearn._ood import synthetic_ood_images
    >>> X = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    >>> images, kinds = synthetic_ood_images(X, image_spec(X), 6)
    >>> images.shape, sorted(set(kinds.tolist()))
    ((6, 8, 8, 3), ['gaussian', 'shuffled', 'uniform'])
    """
    rng = np.random.default_rng(random_state)
    n_g, n_u, n_s = _kind_counts(n_samples)
    C, H, W = spec.channels, spec.height, spec.width
    pick = rng.choice(len(X), size=min(len(X), 512), replace=False)
    unit = to_unit_tensor(X[np.sort(pick)], spec)[:, :C].numpy()  # (n, C, H, W)
    mean = unit.mean(axis=(0, 2, 3))[None, :, None, None]
    std = unit.std(axis=(0, 2, 3))[None, :, None, None]
    lo = unit.min(axis=(0, 2, 3))[None, :, None, None]
    hi = unit.max(axis=(0, 2, 3))[None, :, None, None]
    gaussian = mean + std * rng.standard_normal((n_g, C, H, W))
    uniform = lo + (hi - lo) * rng.random((n_u, C, H, W))
    source = unit[rng.integers(0, len(unit), size=n_s)]
    shuffled = _shuffle_patches(source, min(n_patches, H, W), rng)
    images = np.concatenate([gaussian, uniform, shuffled]).clip(0.0, 1.0)
    images = np.round(np.moveaxis(images, 1, -1) * 255).astype(np.uint8)
    kinds = np.repeat(np.array(SYNTHETIC_KINDS), [n_g, n_u, n_s])
    return images, kinds


def _shuffle_patches(images, grid, rng):
    out = images.copy()
    n, _, H, W = images.shape
    ph, pw = H // grid, W // grid
    for i in range(n):
        patches = [
            images[i, :, r * ph : (r + 1) * ph, c * pw : (c + 1) * pw]
            for r in range(grid)
            for c in range(grid)
        ]
        for k, src in enumerate(rng.permutation(len(patches))):
            r, c = divmod(k, grid)
            out[i, :, r * ph : (r + 1) * ph, c * pw : (c + 1) * pw] = patches[src]
    return out


def synthetic_ood_features(X, n_samples, random_state=0):
    """The default OoD set for feature input (``backbone=None``).

    With precomputed features there are no pixels to corrupt, so OoD means
    "not from the joint distribution of the training features". Three kinds
    mirror the image default:

    - ``"gaussian"``: each feature drawn independently from a normal with
      that feature's training mean and standard deviation;
    - ``"uniform"``: each feature uniform between its training min and max;
    - ``"shuffled"``: each feature drawn from a *different* random training
      row, so every marginal is exact but the correlations between features
      (the structure a trained head relies on) are destroyed.

    Parameters
    ----------
    X : ndarray of shape (n_train, n_features)
        Training features.
    n_samples : int
    random_state : int, default=0

    Returns
    -------
    features : ndarray of shape (n_samples, n_features), float32
    kinds : ndarray of str, shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._ood import synthetic_ood_features
    >>> F, kinds = synthetic_ood_features(np.eye(4), 5)
    >>> F.shape, kinds.tolist()
    ((5, 4), ['gaussian', 'gaussian', 'uniform', 'uniform', 'shuffled'])
    """
    rng = np.random.default_rng(random_state)
    X = np.asarray(X, dtype=np.float64)
    n_g, n_u, n_s = _kind_counts(n_samples)
    n, d = X.shape
    gaussian = X.mean(axis=0) + X.std(axis=0) * rng.standard_normal((n_g, d))
    lo, hi = X.min(axis=0), X.max(axis=0)
    uniform = lo + (hi - lo) * rng.random((n_u, d))
    shuffled = X[rng.integers(0, n, size=(n_s, d)), np.arange(d)]
    features = np.concatenate([gaussian, uniform, shuffled]).astype(np.float32)
    kinds = np.repeat(np.array(SYNTHETIC_KINDS), [n_g, n_u, n_s])
    return features, kinds


def validate_ood(X_ood, *, image_input, n_features=None, n_samples=None, used=True):
    """Check ``X_ood`` as given to ``fit``, before any heavy work.

    Parameters
    ----------
    X_ood : array-like, OODSet or None
    image_input : bool
        Whether the estimator takes images (``backbone`` is not None).
    n_features : int, default=None
        Columns of ``X`` for feature input.
    n_samples : int, default=None
        Samples in ``X``; a plain ``X_ood`` of exactly that length may have
        been sliced by a cross-validation splitter, which earns a warning.
    used : bool, default=True
        Whether the ODIN objective will use it; a warning says when not.

    Returns
    -------
    X_ood : None, ndarray (features) or tuple (images, ImageSpec)
    """
    if X_ood is None:
        return None
    if not used:
        warnings.warn(
            "X_ood is ignored: it is used only by the 'robustness' objective "
            "with robustness='odin'.",
            UserWarning,
            stacklevel=3,
        )
    if isinstance(X_ood, OODSet):
        X_ood = X_ood.X
    elif n_samples is not None and getattr(X_ood, "__len__", None) and len(X_ood) == n_samples:
        warnings.warn(
            f"X_ood has as many samples as X ({n_samples}). If it was passed "
            "through GridSearchCV, cross_val_score or another scikit-learn "
            "meta-estimator, it has been sliced like X; wrap it as "
            "OODSet(X_ood) to pass it whole (and to silence this warning).",
            UserWarning,
            stacklevel=3,
        )
    if X_ood is None:
        raise ValueError("OODSet wraps None; pass an array of OoD samples.")
    if not isinstance(X_ood, np.ndarray):
        try:
            X_ood = np.asarray(X_ood)
        except Exception as exc:  # ragged nested lists and the like
            raise TypeError(
                f"X_ood must be an array of samples, got {type(X_ood).__name__}."
            ) from exc
    if image_input:
        return X_ood, image_spec(X_ood, name="X_ood")
    if X_ood.ndim != 2:
        raise ValueError(
            "With backbone=None, X_ood must be a 2-D feature matrix of shape "
            f"(n_ood, {n_features}) like X; got an array of shape {X_ood.shape}."
        )
    if X_ood.shape[0] == 0:
        raise ValueError("X_ood holds 0 samples; at least one is required.")
    if X_ood.shape[1] != n_features:
        raise ValueError(
            f"X_ood has {X_ood.shape[1]} features, but X has {n_features}; OoD "
            "samples must live in the same feature space."
        )
    if X_ood.dtype.kind not in "uifb":
        raise TypeError(f"X_ood must be numeric; got dtype {X_ood.dtype}.")
    X_ood = X_ood.astype(np.float32)
    if not np.all(np.isfinite(X_ood)):
        raise ValueError("X_ood contains NaN or infinity.")
    return X_ood


def check_robustness_args(estimator):
    """Reject robustness settings that cannot work, before any heavy work."""
    mode = estimator.robustness
    if mode in ("fgsm", "pgd") and estimator.backbone is None:
        raise ValueError(
            f"robustness={mode!r} attacks images through the backbone and needs "
            "backbone to be set; with backbone=None there are no pixels, and an "
            "attack_eps budget has no meaning for precomputed features. Use "
            "robustness='odin' for feature input."
        )
    if mode in ("fgsm", "pgd"):
        from ._adversarial import require_torchattacks

        require_torchattacks(mode)


def head_module(params, device="cpu"):
    """A frozen :class:`MaskedHead` computing a trained head from its parameters.

    Pruned rows and columns of ``params`` are zero, so no masks are needed.
    """
    from ._head import MaskedHead

    sizes = [w.shape[0] for w, _ in params] + [params[-1][0].shape[1]]
    head = MaskedHead(sizes[0], tuple(sizes[1:-1]), sizes[-1])
    head.load_parameters(params)
    head.requires_grad_(False)
    return head.eval().to(device)


def image_batches(X, spec, size, batch_size, device="cpu"):
    """Yield ``(start, stop, images)`` with ``[0, 1]`` tensors at ``size``."""
    for start in range(0, len(X), batch_size):
        stop = min(start + batch_size, len(X))
        images = resize_batch(to_unit_tensor(X[start:stop], spec), size)
        yield start, stop, images.to(device)


def perturbed_odin_scores(heads, inputs, temperature, epsilon, *, backbone=None,
                          batch_size=32, device="cpu"):
    """ODIN scores with input perturbation, for several heads at once.

    Parameters
    ----------
    heads : list of torch.nn.Module
        Feature -> logits modules.
    inputs : ndarray of features, or tuple (images, ImageSpec)
        Features are perturbed directly (``epsilon`` in feature units);
        images are perturbed in ``[0, 1]`` pixel space at the backbone's
        input size, clipped to ``[0, 1]``, and go through ``backbone``.
    temperature, epsilon : float
    backbone : Backbone, default=None
    batch_size : int, default=32
    device : str, default="cpu"

    Returns
    -------
    scores : ndarray of shape (n_heads, n_samples)
    """
    T = float(temperature)
    if backbone is None:
        X = torch.as_tensor(np.asarray(inputs, dtype=np.float32), device=device)
        batches = ((s, min(s + batch_size, len(X)), X[s : s + batch_size])
                   for s in range(0, len(X), batch_size))
        n = len(X)
        def trunk(x):
            return x
        clip = False
    else:
        X, spec = inputs
        backbone.module.to(device)
        batches = image_batches(X, spec, backbone.input_size, batch_size, device)
        n = len(X)
        def trunk(x):
            return backbone.module(backbone.normalize(x))
        clip = True
    out = np.empty((len(heads), n))
    for start, stop, x in batches:
        x = x.clone().requires_grad_(True)
        feats = trunk(x)  # one forward pass shared by every head's gradient
        for p, head in enumerate(heads):
            # x' = x - eps * sign(-grad log S_yhat(x; T)): raise the score of yhat
            log_s = F.log_softmax(head(feats) / T, dim=-1).max(dim=-1).values
            (grad,) = torch.autograd.grad(log_s.sum(), x, retain_graph=True)
            x_t = x.detach() + epsilon * grad.sign()
            if clip:
                x_t = x_t.clamp_(0.0, 1.0)
            with torch.no_grad():
                out[p, start:stop] = odin_scores(head(trunk(x_t)), T)
    return out


class ODINRobustness(Objective):
    """OoD-detection AUROC of the ODIN score (higher is better).

    Parameters
    ----------
    temperature : float, default=1000.0
    epsilon : float, default=0.0
        Input perturbation; 0 scores the cached features (cheap).
    subset : int or None, default=256
        With ``epsilon > 0`` and image input, at most this many validation
        images and this many OoD images are scored.
    """

    name = "robustness"
    greater_is_better = True

    def __init__(self, temperature=1000.0, epsilon=0.0, subset=256):
        self.temperature = float(temperature)
        self.epsilon = float(epsilon)
        self.subset = subset

    def prepare(self, data, estimator):
        backbone = getattr(estimator, "backbone_", None)
        images = getattr(data, "images", None)
        ood = getattr(data, "X_ood", None)
        seed = int(getattr(data, "seed", 0))
        rng = np.random.default_rng(seed)
        self._device = getattr(estimator, "_device", "cpu")
        self._backbone = None
        n_default = max(len(SYNTHETIC_KINDS), len(data.y_val))
        if ood is None:
            if images is not None:
                X, spec = images
                train = X[data.train_index]
                ood = synthetic_ood_images(train, spec, n_default, seed)[0]
                ood = (ood, image_spec(ood, name="X_ood"))
            else:
                ood = synthetic_ood_features(data.X_train, n_default, seed)[0]
        data.extras["n_ood_samples"] = len(ood[0] if isinstance(ood, tuple) else ood)
        if self.epsilon == 0.0 or images is None:
            if isinstance(ood, tuple):
                ood = backbone.extract(ood[0], ood[1], device=self._device)
            data.extras["ood_features"] = ood
            self._in, self._out = None, ood
            return
        X, spec = images
        val = data.val_index
        self._in = (X[self._subset(val, rng)], spec)
        self._out = (ood[0][self._subset(np.arange(len(ood[0])), rng)], ood[1])
        self._backbone = backbone

    def _subset(self, index, rng):
        if self.subset is None or len(index) <= self.subset:
            return np.asarray(index)
        return np.sort(rng.choice(index, size=self.subset, replace=False))

    def evaluate(self, heads, data):
        T = self.temperature
        if self._in is None and self.epsilon == 0.0:
            s_in = odin_scores(heads.logits(data.X_val), T)
            s_out = odin_scores(heads.logits(self._out), T)
        else:
            modules = [head_module(heads.head_parameters(i), self._device)
                       for i in range(len(heads))]
            inputs_in = data.X_val if self._in is None else self._in
            kw = dict(backbone=self._backbone, device=self._device)
            s_in = perturbed_odin_scores(modules, inputs_in, T, self.epsilon, **kw)
            s_out = perturbed_odin_scores(modules, self._out, T, self.epsilon, **kw)
        return np.array([ood_auroc(a, b) for a, b in zip(s_in, s_out)])


def make_robustness_objective(estimator):
    """The robustness objective configured by the estimator's parameters."""
    mode = getattr(estimator, "robustness", "odin")
    subset = getattr(estimator, "robustness_subset", 128)
    if mode == "odin":
        return ODINRobustness(
            temperature=getattr(estimator, "odin_temperature", 1000.0),
            epsilon=getattr(estimator, "odin_epsilon", 0.0),
            subset=subset,
        )
    from ._adversarial import AdversarialRobustness

    return AdversarialRobustness(
        mode,
        eps=getattr(estimator, "attack_eps", "auto"),
        steps=getattr(estimator, "attack_steps", 5),
        alpha=getattr(estimator, "attack_alpha", None),
        subset=subset,
        verbose=getattr(estimator, "verbose", 0),
    )

