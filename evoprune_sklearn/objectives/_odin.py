"""The ODIN objective: out-of-distribution detection AUROC.

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
input perturbation is available (``epsilon > 0``), and every objective
value of a genome is computed together from the same trained head and cached
together.

Costs. With ``epsilon=0`` (the default) the score is computed from the
features extracted once per fit: the OoD samples go through the backbone once,
then each candidate costs two small head forward passes. With
``epsilon > 0`` and image input, every candidate needs one backward pass
through the frozen backbone and one more forward pass for up to
``subset`` validation images and as many OoD images (the first
forward pass of each batch is shared by all candidates of a generation).
"""

import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import Interval

from .._images import Images
from .._ood import synthetic_ood_features, synthetic_ood_images, synthetic_ood_size
from ._base import Objective, frozen_heads

__all__ = ["ODIN", "odin_scores", "ood_auroc", "perturbed_odin_scores"]


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
    >>> from evoprune_sklearn.objectives import odin_scores
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
    >>> from evoprune_sklearn.objectives import ood_auroc
    >>> ood_auroc([0.9, 0.8], [0.3, 0.85])
    0.75
    """
    scores_in = np.asarray(scores_in, dtype=np.float64).ravel()
    scores_out = np.asarray(scores_out, dtype=np.float64).ravel()
    truth = np.r_[np.ones(len(scores_in)), np.zeros(len(scores_out))]
    return float(roc_auc_score(truth, np.r_[scores_in, scores_out]))


def ood_auroc_rows(scores_in, scores_out):
    """:func:`ood_auroc` of every row: one score (a candidate) per row.

    One call of scikit-learn's multilabel AUROC (``average=None``), which
    scores each column as the binary AUROC does, with the inputs checked
    once rather than once per candidate: the same values.

    Parameters
    ----------
    scores_in : array-like of shape (n_scores, n_in)
    scores_out : array-like of shape (n_scores, n_out)

    Returns
    -------
    auroc : ndarray of shape (n_scores,)
    """
    scores_in = np.asarray(scores_in, dtype=np.float64)
    scores_out = np.asarray(scores_out, dtype=np.float64)
    if len(scores_in) == 0:
        return np.empty(0)
    truth = np.r_[np.ones(scores_in.shape[1]), np.zeros(scores_out.shape[1])]
    labels = np.repeat(truth[:, None], len(scores_in), axis=1)
    scores = np.concatenate([scores_in, scores_out], axis=1).T
    return np.atleast_1d(roc_auc_score(labels, scores, average=None)).astype(np.float64)


def perturbed_odin_scores(heads, inputs, temperature, epsilon, *, backbone=None,
                          batch_size=32, device="cpu"):
    """ODIN scores with input perturbation, for several heads at once.

    Parameters
    ----------
    heads : list of torch.nn.Module
        Feature -> logits modules.
    inputs : ndarray of features, or Images
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
        backbone.module.to(device)
        batches = inputs.batches(batch_size, size=backbone.input_size, device=device)
        n = len(inputs)
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


class ODIN(Objective):
    """OoD-detection AUROC of the ODIN score (higher is better).

    The AUROC of ``max softmax(logits / temperature)`` separating the
    validation fold from out-of-distribution samples: ``X_ood`` given to
    ``fit``, or a synthetic set as large as the validation fold (at most
    512 samples) built from the training fold (noise matched to the training images' per-channel
    statistics and patch-shuffled training images; the feature-space
    analogues with ``backbone=None``). ``"robustness"`` and ``"odin"`` in
    ``objectives=`` mean ``ODIN()``.

    Parameters
    ----------
    temperature : float, default=1000.0
        ODIN temperature ``T``; 1 gives the plain maximum-softmax baseline.
    epsilon : float, default=0.0
        Input perturbation ``x' = x - epsilon * sign(-grad log S_yhat(x; T))``
        in ``[0, 1]`` pixel units (feature units with ``backbone=None``).
        0 scores the cached features (temperature scaling only, two head
        forward passes per candidate); a positive value costs one backward
        and one extra forward pass of the backbone per candidate for up to
        ``subset`` validation and as many OoD images.
    subset : int or None, default=128
        With ``epsilon > 0`` and image input, at most this many validation
        images and as many OoD images (a fixed random subset drawn from the
        fit's ``random_state``) are scored; None uses them all. With
        ``epsilon=0`` every sample is used.

    Attributes
    ----------
    n_ood_samples_ : int
        OoD samples scored against (given or synthetic), set by
        :meth:`prepare`.

    Examples
    --------
    >>> from evoprune_sklearn.objectives import ODIN
    >>> ODIN(temperature=1.0)
    ODIN(temperature=1.0)
    >>> ODIN().name
    'robustness'
    """

    name = "robustness"
    greater_is_better = True
    uses_ood = True

    _parameter_constraints = {
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="left")],
        "subset": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    def __init__(self, temperature=1000.0, epsilon=0.0, subset=128):
        self.temperature = temperature
        self.epsilon = epsilon
        self.subset = subset

    @property
    def runs_backbone(self):
        """Whether :meth:`evaluate` runs the backbone (set by :meth:`prepare`)."""
        return getattr(self, "_backbone", None) is not None

    def prepare(self, context):
        """Build or extract the OoD set and draw the scored subsets.

        Parameters
        ----------
        context : ObjectiveContext
        """
        backbone = context.backbone
        images = context.images
        ood = context.X_ood
        seed = int(context.seed)
        rng = np.random.default_rng(seed)
        self._device = context.device
        self._backbone = None
        n_default = synthetic_ood_size(len(context.y_val))
        if ood is None:
            if images is not None:
                train = images.take(context.train_index)
                ood = Images(synthetic_ood_images(train, n_default, seed)[0], name="X_ood")
            else:
                ood = synthetic_ood_features(context.X_train, n_default, seed)[0]
        self.n_ood_samples_ = len(ood)
        if float(self.epsilon) == 0.0 or images is None:
            if isinstance(ood, Images):
                ood = backbone.extract(ood, device=self._device)
            self._in, self._out = None, ood
            return
        # Decoded once here: every generation perturbs the same images.
        self._in = images.load(self._subset(context.val_index, rng))
        self._out = ood.load(self._subset(np.arange(len(ood)), rng))
        self._backbone = backbone

    def _subset(self, index, rng):
        if self.subset is None or len(index) <= self.subset:
            return np.asarray(index)
        return np.sort(rng.choice(index, size=self.subset, replace=False))

    def evaluate(self, heads, context):
        """OoD-detection AUROC of every candidate.

        Parameters
        ----------
        heads : TrainedHeads
        context : ObjectiveContext

        Returns
        -------
        values : ndarray of shape (n_candidates,)
            In ``[0, 1]``; 0.5 is chance.
        """
        T = float(self.temperature)
        epsilon = float(self.epsilon)
        if self._in is None and epsilon == 0.0:
            s_in = odin_scores(heads.logits(context.X_val), T)
            s_out = odin_scores(heads.logits(self._out), T)
        else:
            modules = frozen_heads(heads, self._device)
            inputs_in = context.X_val if self._in is None else self._in
            kw = dict(backbone=self._backbone, device=self._device)
            s_in = perturbed_odin_scores(modules, inputs_in, T, epsilon, **kw)
            s_out = perturbed_odin_scores(modules, self._out, T, epsilon, **kw)
        return ood_auroc_rows(s_in, s_out)
