"""Out-of-distribution detectors on logits and on features, and their objective.

Scores here follow one convention: **higher means more in-distribution**, so
``roc_auc_score(is_in_distribution, score)`` measures OoD detection.

On logits (one head, or several heads for an ensemble):

- ``"msp"``: the maximum softmax probability (Hendrycks & Gimpel 2017); for
  an ensemble, the maximum of the members' mean probability;
- ``"energy"``: ``T * logsumexp(logits / T)``, minus the free energy (Liu et
  al. 2020); for an ensemble, the members' mean;
- ``"entropy"``: minus the predictive entropy of the (mean) probability;
- ``"mutual_info"``: minus the mutual information between the prediction
  and the member, ``H(mean p) - mean H(p)``: how much the members disagree
  (Lakshminarayanan et al. 2017). Zero for a single head;
- ``"odin"``: the ODIN score ``max softmax(logits / T)`` without input
  perturbation (Liang et al. 2018); for an ensemble, the members' mean.

On features (the backbone features a head reads; a pruned feature gene
removes its column, so pruning changes the detector):

- ``"mahalanobis"``: minus the smallest squared Mahalanobis distance to a
  class mean, with one covariance shared by the classes (Lee et al. 2018),
  shrunk towards a scaled identity (Ledoit-Wolf) so that it is invertible
  with fewer samples than features;
- ``"knn"``: minus the distance to the ``k``-th nearest training sample, the
  features scaled to unit length (Sun et al. 2022).
"""

import numbers

import numpy as np
import torch
from scipy.linalg import solve_triangular
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.utils._param_validation import Interval, StrOptions

from .._ood import synthetic_ood_features, synthetic_ood_images, synthetic_ood_size
from ._base import Objective
from ._odin import ood_auroc, ood_auroc_rows

__all__ = [
    "LOGIT_SCORES",
    "FEATURE_SCORES",
    "logit_ood_scores",
    "FeatureBank",
    "OoD",
]

#: Scores computed from logits (``OoD(score=...)`` and ``ensemble_ood_score``).
LOGIT_SCORES = ("msp", "energy", "entropy", "mutual_info", "odin")
#: Scores computed from the features a head reads.
FEATURE_SCORES = ("mahalanobis", "knn")


def _entropy(p):
    return -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=-1)


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def logit_ood_scores(logits, method="msp", temperature=1.0):
    """OoD scores of one head or an ensemble from logits.

    Parameters
    ----------
    logits : array-like or torch.Tensor of shape (n_members, n_samples, n_classes)
        Logits of every member (one member for a single head).
    method : {"msp", "energy", "entropy", "mutual_info", "odin"}, default="msp"
        See the module docstring.
    temperature : float, default=1.0
        Temperature of ``"energy"`` and ``"odin"`` (the others use 1).

    Returns
    -------
    scores : ndarray of shape (n_samples,), float64
        Higher means more in-distribution.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn.objectives import logit_ood_scores
    >>> agree = np.array([[[5.0, 0.0]], [[5.0, 0.0]]])
    >>> disagree = np.array([[[5.0, 0.0]], [[0.0, 5.0]]])
    >>> float(logit_ood_scores(agree, "mutual_info")[0])
    0.0
    >>> bool(logit_ood_scores(disagree, "mutual_info")[0] < 0)
    True
    """
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().cpu().numpy()
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 3 or z.shape[0] == 0:
        raise ValueError(
            "logits must have shape (n_members, n_samples, n_classes) with at least "
            f"one member, got shape {z.shape}."
        )
    if not isinstance(temperature, numbers.Real) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}.")
    T = float(temperature)
    if method == "msp":
        return _softmax(z).mean(axis=0).max(axis=-1)
    if method == "energy":
        zt = z / T
        m = zt.max(axis=-1)
        return (T * (m + np.log(np.exp(zt - m[..., None]).sum(axis=-1)))).mean(axis=0)
    if method == "entropy":
        return -_entropy(_softmax(z).mean(axis=0))
    if method == "mutual_info":
        p = _softmax(z)
        # H(mean p) >= mean H(p) (concavity); clip float round-off below 0
        return 0.0 - np.maximum(_entropy(p.mean(axis=0)) - _entropy(p).mean(axis=0), 0.0)
    if method == "odin":
        return _softmax(z / T).max(axis=-1).mean(axis=0)
    raise ValueError(f"method must be one of {LOGIT_SCORES}, got {method!r}.")


def _unit_rows(X):
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norm, 1e-12)


class FeatureBank:
    """In-distribution reference features for the feature-space detectors.

    Holds training features and their encoded labels; :meth:`score` scores
    new features on the columns a mask keeps, so one bank serves every
    pruned head (its kept features) and every ensemble (the union of its
    members' kept features).

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        In-distribution features (the training fold).
    labels : ndarray of shape (n_samples,)
        Encoded class labels of ``features`` (``"mahalanobis"`` uses them).

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn.objectives import FeatureBank
    >>> rng = np.random.default_rng(0)
    >>> bank = FeatureBank(rng.normal(size=(60, 5)) + 3, np.arange(60) % 2)
    >>> s = bank.score(np.array([[3.0] * 5, [-30.0] * 5]), "mahalanobis")
    >>> bool(s[0] > s[1])
    True
    """

    def __init__(self, features, labels):
        self.features = np.asarray(features, dtype=np.float64)
        self.labels = np.asarray(labels)
        self._classes = np.unique(self.labels)
        self._means = np.stack([self.features[self.labels == c].mean(axis=0)
                                for c in self._classes])
        self._centred = (self.features
                         - self._means[np.searchsorted(self._classes, self.labels)])
        self._cov = None  # the shared covariance, when "mahalanobis" first needs it

    def _whitener(self, cols):
        """Cholesky factor of the shrunk shared covariance, and whitened means.

        The last one is kept: a candidate's in- and out-of-distribution
        samples are scored with the same columns one after the other.
        """
        key = cols.tobytes()
        if getattr(self, "_cached", (None,))[0] == key:
            return self._cached[1]
        if self._cov is None:
            self._cov = self._centred.T @ self._centred / len(self._centred)
        cov = self._cov[np.ix_(cols, cols)]
        shrink = ledoit_wolf_shrinkage(self._centred[:, cols], assume_centered=True)
        mu = np.trace(cov) / len(cols)
        cov = (1.0 - shrink) * cov + shrink * mu * np.eye(len(cols))
        cov += 1e-9 * max(mu, 1e-12) * np.eye(len(cols))
        chol = np.linalg.cholesky(cov)
        wm = solve_triangular(chol, self._means[:, cols].T, lower=True).T
        self._cached = (key, (chol, wm))
        return chol, wm

    def score(self, X, method="knn", mask=None, k=10):
        """Scores of new features; higher means more in-distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        method : {"mahalanobis", "knn"}, default="knn"
        mask : array-like of bool, shape (n_features,), default=None
            Columns to use (all when None).
        k : int, default=10
            Neighbour rank of ``"knn"`` (capped at the bank's size).

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        X = np.asarray(X, dtype=np.float64)
        cols = np.arange(X.shape[1]) if mask is None else np.flatnonzero(mask)
        if len(cols) == 0:  # a head that reads nothing cannot tell anything
            return np.zeros(len(X))
        if method == "knn":
            # unit length over the kept columns: the kept part renormalised
            bank = _unit_rows(self.features[:, cols])
            x = _unit_rows(X[:, cols])
            sim = x @ bank.T
            kk = min(int(k), bank.shape[0])
            kth = -np.partition(-sim, kk - 1, axis=1)[:, kk - 1]
            return 0.0 - np.sqrt(np.maximum(2.0 - 2.0 * kth, 0.0))
        if method == "mahalanobis":
            chol, wm = self._whitener(cols)
            # ||L^-1 (x - m)||^2 = ||L^-1 x||^2 - 2 (L^-1 x).(L^-1 m) + ||L^-1 m||^2
            wx = solve_triangular(chol, X[:, cols].T, lower=True).T
            d2 = ((wx**2).sum(1)[:, None] - 2.0 * wx @ wm.T + (wm**2).sum(1)[None, :])
            return 0.0 - d2.min(axis=1)
        raise ValueError(f"method must be one of {FEATURE_SCORES}, got {method!r}.")


def feature_mask(genome, config):
    """The backbone features a head with ``genome`` reads (bool mask)."""
    return config.head.masks(np.asarray(genome, dtype=bool))[0]


class OoD(Objective):
    """OoD-detection AUROC of a chosen detector (higher is better).

    Like :class:`ODIN`, the AUROC of a score separating the validation fold
    from out-of-distribution samples (``X_ood`` given to ``fit``, or the same
    synthetic set ODIN builds), but the score can be any of the detectors of
    :func:`logit_ood_scores` or a feature-space detector fitted on the
    training fold. The feature-space detectors read only the features a
    candidate keeps, so the search can keep the features that set OoD images
    apart. ``"ood"`` in ``objectives=`` means ``OoD()``, ``"knn"`` means
    ``OoD(score="knn")`` and ``"mahalanobis"`` ``OoD(score="mahalanobis")``.

    Parameters
    ----------
    score : {"knn", "mahalanobis", "msp", "energy", "odin"}, default="knn"
        The detector. ``"knn"`` (chosen by validation measurement, see the
        ensembles page of the user guide) and ``"mahalanobis"`` use the kept
        features; the others the candidate's logits.
    k : int, default=10
        Neighbour rank of ``"knn"``.
    temperature : float, default=1.0
        Temperature of ``"energy"`` and ``"odin"``.

    Attributes
    ----------
    n_ood_samples_ : int
        OoD samples scored against (given or synthetic), set by
        :meth:`prepare`.

    Notes
    -----
    With ``encoding="neurons"`` every candidate reads every feature, so the
    feature-space scores are the same for all candidates; use a logit score
    there. The feature-space scores cost one nearest-neighbour search (or one
    Cholesky factorisation of the kept features' covariance) per candidate.

    Examples
    --------
    >>> from evoprune_sklearn.objectives import OoD
    >>> OoD(score="mahalanobis")
    OoD(score='mahalanobis')
    >>> OoD().name
    'robustness'
    """

    name = "robustness"
    greater_is_better = True
    uses_ood = True

    _parameter_constraints = {
        "score": [StrOptions({"knn", "mahalanobis", "msp", "energy", "odin"})],
        "k": [Interval(numbers.Integral, 1, None, closed="left")],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(self, score="knn", k=10, temperature=1.0):
        self.score = score
        self.k = k
        self.temperature = temperature

    def prepare(self, context):
        """Build or extract the OoD set; fit the feature bank.

        Parameters
        ----------
        context : ObjectiveContext
        """
        self._validate_params()
        seed = int(context.seed)
        ood = context.X_ood
        n_default = synthetic_ood_size(len(context.y_val))
        if ood is None:
            if context.images is not None:
                train = context.images.take(context.train_index)
                ood = synthetic_ood_images(train, n_default, seed)[0]
                ood = context.backbone.extract(ood, device=context.device)
            else:
                ood = synthetic_ood_features(context.X_train, n_default, seed)[0]
        elif not isinstance(ood, np.ndarray):  # images
            ood = context.backbone.extract(ood, device=context.device)
        self.n_ood_samples_ = len(ood)
        self._out = np.asarray(ood, dtype=np.float32)
        self._bank = None
        if self.score in FEATURE_SCORES:
            self._bank = FeatureBank(context.X_train, context.y_train)

    def evaluate(self, heads, context):
        """OoD-detection AUROC of every candidate.

        Parameters
        ----------
        heads : TrainedHeads
        context : ObjectiveContext

        Returns
        -------
        values : ndarray of shape (n_candidates,)
        """
        if self._bank is None:
            z_in = heads.logits(context.X_val)
            z_out = heads.logits(self._out)
            if isinstance(z_in, torch.Tensor):
                z_in, z_out = z_in.detach().cpu().numpy(), z_out.detach().cpu().numpy()
            return ood_auroc_rows(
                [logit_ood_scores(a[None], self.score, self.temperature).ravel() for a in z_in],
                [logit_ood_scores(b[None], self.score, self.temperature).ravel() for b in z_out])
        values = []
        for genome in heads.genomes:
            mask = feature_mask(genome, heads.config)
            values.append(ood_auroc(
                self._bank.score(context.X_val, self.score, mask, self.k),
                self._bank.score(self._out, self.score, mask, self.k)))
        return np.array(values)
