"""Ensembles of Pareto-front members: member choice, voting and OoD scoring.

The front holds heads pruned in different ways; their errors are partly
independent, so a vote of several members can beat the best one (the papers'
percentile-window ensembles). Everything here works on backbone features that
the caller computed once: each member only runs its small head.

Member choice (``members=``, and the estimator's ``ensemble=``)
    The one scheme for "which members" (also used by ``explain``):
    ``"front"`` (every member), an int (that index), a list of ints (those
    indices), ``("top", k)`` or ``("top", k, objective)`` (the ``k`` best
    members in an objective, accuracy by default: ``front.top(k)``), or
    ``("window", objective, lo, hi)`` (a percentile window over the front:
    ``front.window(objective, lo, hi)``).

Voting (``voting=``)
    ``"soft"``: mean of the members' class probabilities, then argmax.
    ``"hard"``: each member votes for its argmax class; the class with most
    votes wins. Ties, in this order: the tied class with the larger mean
    probability, then the lowest class index. So the result is deterministic
    and never depends on member order.
"""

import numbers

import numpy as np
import torch

from ._front import check_window
from .objectives import odin_scores as _ood_odin_scores
from .objectives._detectors import (
    FEATURE_SCORES,
    LOGIT_SCORES,
    FeatureBank,
    feature_mask,
    logit_ood_scores,
)

__all__ = [
    "DEFAULT_MEMBERS",
    "DEFAULT_VOTING",
    "PAPER_WINDOWS",
    "check_members_spec",
    "resolve_members",
    "vote",
    "member_logits",
    "odin_scores",
    "ensemble_ood_score",
    "OOD_METHODS",
    "DEFAULT_OOD_METHOD",
    "check_ood_method",
    "ood_reference",
    "score_ood",
]

#: Most training-fold samples kept for the feature-space OoD detectors.
MAX_REFERENCE = 4096

#: The ways of naming members, for error messages.
_SPELLINGS = ("'front', an int index, a list of indices, ('top', k), "
              "('top', k, objective) or ('window', objective, lo, hi)")

#: Default of ``members=``: the 3 most accurate members, ``("top", 3)``. Chosen with
#: ``benchmarks/bench_ensemble.py`` as the ensemble with the best mean accuracy
#: on each fit's own validation fold (never the test split) over 5 seeds:
#: top-3 soft 0.693, window 50-100 soft 0.688, top-5 soft 0.686, whole front
#: soft 0.673 / hard 0.648; windows of the paper are often empty on fronts of
#: 4-13 members. Averaging the front's sparsest members dilutes the vote.
DEFAULT_MEMBERS = ("top", 3)
#: Default of ``voting=``, chosen by the same measurement (soft beat or tied
#: hard for every member choice).
DEFAULT_VOTING = "soft"

#: Values of ``method=`` of ``ensemble_ood_score``: scores from the members'
#: logits, then feature-space detectors on the features the members read.
OOD_METHODS = LOGIT_SCORES + FEATURE_SCORES
#: Default of ``method=``: chosen with ``benchmarks/bench_ensemble.py`` by
#: OoD-detection AUROC on each fit's validation fold against the built-in
#: synthetic OoD set (never the test split); see the ensembles page.
DEFAULT_OOD_METHOD = "knn"

#: The accuracy-percentile windows of the MO-EvoPruneDeepTL paper.
PAPER_WINDOWS = tuple(
    ("window", "accuracy", lo, hi)
    for lo, hi in ((50, 60), (60, 70), (70, 80), (75, 85), (80, 90), (85, 95))
)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _kind(members):
    """``"front"``, ``"index"``, ``"top"``, ``"window"`` or ``"indices"``."""
    if isinstance(members, str):
        return "front" if members == "front" else None
    if _is_int(members):
        return "index"
    if isinstance(members, tuple) and members and isinstance(members[0], str):
        return members[0] if members[0] in ("top", "window") else "old"
    if isinstance(members, (list, tuple, np.ndarray)):
        return "indices"
    return None


def check_members_spec(members, objective_names, name="members"):
    """Check a member choice as far as it can be checked without a front.

    Everything :func:`resolve_members` refuses is refused here too, except
    what depends on the fitted front (an index past its end, a percentile
    window holding no member), so a bad choice fails before any heavy work.

    Parameters
    ----------
    members : "front", int, list of int, ("top", k[, objective]) or \
            ("window", objective, lo, hi)
        See :func:`resolve_members`.
    objective_names : sequence of str
        Objectives a ``"top"`` or ``"window"`` choice may name.
    name : str, default="members"
        Parameter name used in error messages.

    Returns
    -------
    members : the same value
    """
    kind = _kind(members)
    if kind is None:
        if isinstance(members, str):
            raise ValueError(f"{name}={members!r} is not understood; use {_SPELLINGS}.")
        raise TypeError(
            f"{name} must be {_SPELLINGS}; got {type(members).__name__} {members!r}."
        )
    if kind == "index":
        if members < 0:
            raise ValueError(f"{name}={members}: member indices are >= 0.")
    elif kind == "old":
        hint = ""
        if len(members) == 3 and members[0] in objective_names:
            hint = f" A percentile window is now written ('window', {members[0]!r}, " \
                   f"{members[1]!r}, {members[2]!r})."
        raise ValueError(f"{name}={members!r} is not understood; use {_SPELLINGS}.{hint}")
    elif kind == "top":
        if len(members) not in (2, 3):
            raise ValueError(
                f"{name}={members!r}: write ('top', k) or ('top', k, objective)."
            )
        if not _is_int(members[1]) or members[1] < 1:
            raise ValueError(f"{name}={members!r}: the number of members must be an int >= 1.")
        if len(members) == 3 and members[2] not in objective_names:
            raise ValueError(
                f"{name}={members!r} names objective {members[2]!r}, but the "
                f"objectives are {list(objective_names)}."
            )
    elif kind == "window":
        if len(members) != 4:
            raise ValueError(
                f"{name}={members!r}: write ('window', objective, lo, hi)."
            )
        check_window(*members[1:], objective_names, name=f"{name} window")
    elif kind == "indices":
        idx = np.asarray(members)
        if idx.ndim != 1 or idx.size == 0:
            raise ValueError(
                f"{name} as indices must be a non-empty 1-D sequence, got {members!r}."
            )
        if idx.dtype.kind not in "iu" and not all(_is_int(i) for i in members):
            raise TypeError(f"{name} as indices must hold ints, got {members!r}.")
        idx = idx.astype(int)
        if (idx < 0).any():
            raise ValueError(
                f"{name} holds index {int(idx[idx < 0][0])}; member indices are >= 0."
            )
        if len(np.unique(idx)) != len(idx):
            raise ValueError(f"{name} holds duplicate indices: {idx.tolist()}.")
    return members


def resolve_members(front, members, name="members"):
    """Indices of the front members a choice names.

    Parameters
    ----------
    front : ParetoFront
        The fitted front (``clf.pareto_front_``).
    members : "front", int, list of int, ("top", k[, objective]) or \
            ("window", objective, lo, hi)
        - ``"front"``: every member.
        - an int: that index.
        - a sequence of ints: those members, in that order.
        - ``("top", k)``, ``("top", k, objective)``: the ``k`` best members
          in ``objective`` (accuracy by default), in front order
          (:meth:`ParetoFront.top`); all members when the front has fewer.
        - ``("window", objective, lo, hi)``: the members whose value of
          ``objective`` lies between the ``lo``-th and ``hi``-th percentiles
          of that objective over the front (:meth:`ParetoFront.window`). A
          window holding no member raises a ValueError.
    name : str, default="members"
        Parameter name used in error messages.

    Returns
    -------
    indices : ndarray of int
        Positions in ``front``, at least one.

    Examples
    --------
    >>> from evoprune_sklearn import Member, ParetoFront
    >>> from evoprune_sklearn._ensemble import resolve_members
    >>> front = ParetoFront(("accuracy", "complexity"), (True, False), members=[
    ...     Member([1, 1], {"accuracy": a, "complexity": c})
    ...     for a, c in [(0.9, 1.0), (0.8, 0.5), (0.7, 0.2), (0.6, 0.1)]])
    >>> resolve_members(front, ("top", 2)).tolist(), resolve_members(front, 2).tolist()
    ([0, 1], [2])
    >>> resolve_members(front, ("window", "accuracy", 50, 100)).tolist()
    [0, 1]
    """
    check_members_spec(members, front.objective_names, name)
    n = len(front)
    if n == 0:
        raise ValueError("The Pareto front is empty; there is no member to use.")
    kind = _kind(members)
    if kind == "front":
        return np.arange(n)
    if kind == "top":
        return front.top(members[1], *members[2:])
    if kind == "window":
        try:
            return front.window(*members[1:])
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    idx = np.atleast_1d(np.asarray(members).astype(int))
    if (idx >= n).any():
        raise ValueError(
            f"{name} holds index {int(idx[idx >= n][0])}, but the Pareto front has "
            f"{n} member(s) (valid indices 0..{n - 1})."
        )
    return idx


def vote(probas, voting="soft"):
    """Combine member probabilities into class indices.

    Parameters
    ----------
    probas : array-like of shape (n_members, n_samples, n_classes)
        Class probabilities of every member.
    voting : {"soft", "hard"}, default="soft"
        ``"soft"``: argmax of the mean probability (exact ties: lowest class
        index). ``"hard"``: majority of the members' argmax classes; a tie
        between classes goes to the one with the larger mean probability,
        then to the lowest class index.

    Returns
    -------
    labels : ndarray of int, shape (n_samples,)
        Winning class index of every sample.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._ensemble import vote
    >>> P = np.array([[[0.6, 0.4]], [[0.6, 0.4]], [[0.0, 1.0]]])
    >>> vote(P, "hard").tolist(), vote(P, "soft").tolist()
    ([0], [1])
    """
    P = np.asarray(probas, dtype=np.float64)
    if P.ndim != 3 or P.shape[0] == 0:
        raise ValueError(
            "probas must have shape (n_members, n_samples, n_classes) with at "
            f"least one member, got shape {P.shape}."
        )
    mean = P.mean(axis=0)
    if voting == "soft":
        return np.argmax(mean, axis=1)
    if voting != "hard":
        raise ValueError(f"voting must be 'soft' or 'hard', got {voting!r}.")
    n_classes = P.shape[2]
    picks = np.argmax(P, axis=2)  # (n_members, n_samples)
    counts = np.zeros((P.shape[1], n_classes), dtype=np.int64)
    for member_picks in picks:
        np.add.at(counts, (np.arange(P.shape[1]), member_picks), 1)
    tied = counts == counts.max(axis=1, keepdims=True)
    # Among the most-voted classes only, the larger mean probability wins;
    # np.argmax then takes the lowest index on an exact tie.
    return np.argmax(np.where(tied, mean, -np.inf), axis=1)


def member_logits(front, indices, features, device="cpu"):
    """Logits of the chosen members on shared features.

    Parameters
    ----------
    front : ParetoFront
    indices : sequence of int
    features : ndarray of shape (n_samples, n_features)
        Backbone features, computed once for all members.
    device : str, default="cpu"

    Returns
    -------
    logits : torch.Tensor of shape (n_members, n_samples, n_classes), float64
    """
    X = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)
    return torch.stack([front[int(i)].logits(X, device).double().cpu() for i in indices])


def odin_scores(logits, temperature=1000.0):
    """ODIN score without input perturbation: ``max softmax(logits / T)``.

    Higher means more in-distribution. Computed in float64: at ``T = 1000``
    the softmax is nearly uniform and float32 would erase the ranking.

    Parameters
    ----------
    logits : array-like or torch.Tensor of shape (..., n_classes)
    temperature : float, default=1000.0

    Returns
    -------
    scores : ndarray of shape (...)

    Examples
    --------
    >>> from evoprune_sklearn._ensemble import odin_scores
    >>> s = odin_scores([[4.0, 0.0], [1.0, 1.0]], temperature=1.0)
    >>> bool(s[0] > s[1]), float(s[1])
    (True, 0.5)
    """
    if not isinstance(temperature, numbers.Real) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}.")
    # the robustness objective's own scorer: one definition of the score
    return _ood_odin_scores(logits, temperature)


def ensemble_ood_score(logits, method="odin", temperature=None):
    """Ensemble OoD score from the members' logits.

    Parameters
    ----------
    logits : array-like of shape (n_members, n_samples, n_classes)
    method : {"msp", "energy", "entropy", "mutual_info", "odin"}, default="odin"
        See :func:`evoprune_sklearn.objectives.logit_ood_scores`.
    temperature : float, default=None
        Temperature of ``"odin"`` (None: 1000) and ``"energy"`` (None: 1).

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Higher means more in-distribution.

    Examples
    --------
    >>> from evoprune_sklearn._ensemble import ensemble_ood_score
    >>> z = [[[4.0, 0.0], [0.0, 4.0]], [[4.0, 0.0], [4.0, 0.0]]]
    >>> s = ensemble_ood_score(z, "mutual_info")   # the members disagree on sample 1
    >>> bool(s[0] > s[1])
    True
    """
    if method in FEATURE_SCORES:
        raise ValueError(
            f"method={method!r} scores features, not logits; use "
            "EvoPruneClassifier.ensemble_ood_score."
        )
    if temperature is None:
        temperature = 1000.0 if method == "odin" else 1.0
    return logit_ood_scores(logits, method, temperature)


def check_ood_method(method, temperature=None, k=10):
    """Refuse a bad ``method``, ``temperature`` or ``k`` of an OoD score.

    Parameters
    ----------
    method : str
    temperature : float or None, default=None
    k : int, default=10
    """
    if not isinstance(method, str) or method not in OOD_METHODS:
        raise ValueError(f"method must be one of {list(OOD_METHODS)}, got {method!r}.")
    if temperature is not None and (
        not isinstance(temperature, numbers.Real) or isinstance(temperature, bool)
        or not temperature > 0
    ):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}.")
    if not _is_int(k) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}.")


def ood_reference(features, labels, index, seed, max_samples=MAX_REFERENCE):
    """The in-distribution features kept for the feature-space detectors.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    labels : ndarray of shape (n_samples,)
        Encoded labels.
    index : ndarray of int
        Rows of the training fold.
    seed : int
        Draws the rows kept when there are more than ``max_samples``.
    max_samples : int, default=4096

    Returns
    -------
    reference : dict
        ``{"features": float32 array, "labels": int64 array}``.
    """
    index = np.asarray(index)
    if len(index) > max_samples:
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(index, size=max_samples, replace=False))
    return {"features": np.asarray(features[index], dtype=np.float32),
            "labels": np.asarray(labels[index], dtype=np.int64)}


def score_ood(front, indices, features, method, *, reference=None, temperature=None,
              k=10, device="cpu"):
    """OoD scores of some front members on shared features.

    Parameters
    ----------
    front : ParetoFront
    indices : sequence of int
        The members (one for a single member).
    features : ndarray of shape (n_samples, n_features)
        Backbone features.
    method : str
        One of :data:`OOD_METHODS`.
    reference : dict, default=None
        Made by :func:`ood_reference`; needed by the feature-space methods.
    temperature : float, default=None
    k : int, default=10
    device : str, default="cpu"

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Higher means more in-distribution.
    """
    if method in FEATURE_SCORES:
        if reference is None:
            raise ValueError(
                f"method={method!r} needs the training features kept by fit; this "
                "estimator has none (it was fitted by an older version): refit it."
            )
        mask = np.zeros(front[int(indices[0])].config.n_features, dtype=bool)
        for i in indices:
            mask |= feature_mask(front[int(i)].genome, front[int(i)].config)
        bank = FeatureBank(reference["features"], reference["labels"])
        return bank.score(features, method, mask, k)
    logits = member_logits(front, indices, features, device)
    return ensemble_ood_score(logits, method, temperature)
