"""Ensembles of Pareto-front members: member choice, voting and OoD scoring.

The front holds heads pruned in different ways; their errors are partly
independent, so a vote of several members can beat the best one (the papers'
percentile-window ensembles). Everything here works on backbone features that
the caller computed once: each member only runs its small head.

Member choice (``members=``)
    ``"front"`` (every member), an int ``k`` (the ``k`` most accurate members
    on the validation fold), a percentile window ``(objective, lo, hi)`` over
    the front's values of one objective, or explicit indices.

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

from .objectives import odin_scores as _ood_odin_scores

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
]

#: Default of ``members=``: the 3 most accurate members. Chosen with
#: ``benchmarks/bench_ensemble.py`` as the ensemble with the best mean accuracy
#: on each fit's own validation fold (never the test split) over 5 seeds:
#: top-3 soft 0.693, window 50-100 soft 0.688, top-5 soft 0.686, whole front
#: soft 0.673 / hard 0.648; windows of the paper are often empty on fronts of
#: 4-13 members. Averaging the front's sparsest members dilutes the vote.
DEFAULT_MEMBERS = 3
#: Default of ``voting=``, chosen by the same measurement (soft beat or tied
#: hard for every member choice).
DEFAULT_VOTING = "soft"

#: The accuracy-percentile windows of the MO-EvoPruneDeepTL paper.
PAPER_WINDOWS = tuple(
    ("accuracy", lo, hi)
    for lo, hi in ((50, 60), (60, 70), (70, 80), (75, 85), (80, 90), (85, 95))
)


def _check_window(objective, lo, hi, objective_names, name):
    if objective not in objective_names:
        raise ValueError(
            f"{name} window names objective {objective!r}, but the front's "
            f"objectives are {list(objective_names)}."
        )
    for side, q in (("lower", lo), ("upper", hi)):
        if not isinstance(q, numbers.Real) or isinstance(q, bool) or not 0 <= q <= 100:
            raise ValueError(
                f"{name} window {side} percentile must be a number in [0, 100], "
                f"got {q!r}."
            )
    if lo > hi:
        raise ValueError(
            f"{name} window ({objective!r}, {lo}, {hi}) has lower percentile "
            "above the upper one."
        )


def _window_members(front, objective, lo, hi, name):
    values = np.array([m.objectives[objective] for m in front], dtype=float)
    a, b = np.percentile(values, [lo, hi])
    # Percentiles interpolate; a tolerance keeps members sitting exactly on
    # an edge despite rounding.
    tol = 1e-12 * max(1.0, float(np.abs(values).max()))
    chosen = np.flatnonzero((values >= a - tol) & (values <= b + tol))
    if len(chosen) == 0:
        raise ValueError(
            f"{name} window ({objective!r}, {lo}, {hi}) selects no member: the "
            f"{lo}th-{hi}th percentiles of {objective} over the front's "
            f"{len(front)} member(s) are [{a:.4g}, {b:.4g}] and no member lies "
            f"there. Widen the window, or use {name}='front' or an int k."
        )
    return chosen


def _is_window(members):
    return isinstance(members, tuple) and len(members) == 3 and isinstance(members[0], str)


def check_members_spec(members, objective_names, name="members"):
    """Check a member choice as far as it can be checked without a front.

    Everything :func:`resolve_members` refuses is refused here too, except
    what depends on the fitted front (an index past its end, a percentile
    window holding no member), so a bad choice fails before any heavy work.

    Parameters
    ----------
    members : "front", int, tuple (objective, lo, hi) or sequence of int
        See :func:`resolve_members`.
    objective_names : sequence of str
        Objectives a window may name.
    name : str, default="members"
        Parameter name used in error messages.

    Returns
    -------
    members : the same value
    """
    if isinstance(members, str):
        if members != "front":
            raise ValueError(
                f"{name}={members!r} is not understood; use 'front', an int k, "
                "a window like ('accuracy', 50, 60) or a list of member indices."
            )
        return members
    if isinstance(members, numbers.Integral) and not isinstance(members, bool):
        if members < 1:
            raise ValueError(f"{name}={members}: the number of members must be >= 1.")
        return members
    if _is_window(members):
        _check_window(*members, objective_names, name)
        return members
    if isinstance(members, (list, tuple, np.ndarray)):
        idx = np.asarray(members)
        if idx.ndim != 1 or idx.size == 0:
            raise ValueError(
                f"{name} as indices must be a non-empty 1-D sequence, got {members!r}."
            )
        if idx.dtype.kind not in "iu" and not all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in members
        ):
            raise TypeError(f"{name} as indices must hold ints, got {members!r}.")
        idx = idx.astype(int)
        if (idx < 0).any():
            raise ValueError(
                f"{name} holds index {int(idx[idx < 0][0])}; member indices are >= 0."
            )
        if len(np.unique(idx)) != len(idx):
            raise ValueError(f"{name} holds duplicate indices: {idx.tolist()}.")
        return members
    raise TypeError(
        f"{name} must be 'front', an int, a window (objective, lo, hi) or a list "
        f"of indices; got {type(members).__name__} {members!r}."
    )


def resolve_members(front, members, name="members"):
    """Indices of the front members an ensemble uses.

    Parameters
    ----------
    front : ParetoFront
        The fitted front (``clf.pareto_front_``).
    members : "front", int, tuple (objective, lo, hi) or sequence of int
        - ``"front"``: every member.
        - int ``k``: the ``k`` members with the highest validation accuracy
          (ties: the front's order, i.e. lower complexity first); all members
          when the front has fewer than ``k``.
        - ``(objective, lo, hi)``: the members whose value of ``objective``
          lies between the ``lo``-th and ``hi``-th percentiles (linear
          interpolation, edges included) of that objective over the front,
          e.g. ``("accuracy", 50, 60)`` as in the paper. A window holding no
          member raises a ValueError (no silent fallback).
        - a sequence of ints: those members, in that order.
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
    >>> front = ParetoFront(("accuracy", "complexity"), (True, False))
    >>> front.members = [Member([1, 1], {"accuracy": a, "complexity": c})
    ...                  for a, c in [(0.9, 1.0), (0.8, 0.5), (0.7, 0.2), (0.6, 0.1)]]
    >>> resolve_members(front, 2).tolist()
    [0, 1]
    >>> resolve_members(front, ("accuracy", 50, 100)).tolist()
    [0, 1]
    """
    check_members_spec(members, front.objective_names, name)
    n = len(front)
    if n == 0:
        raise ValueError("The Pareto front is empty; there is nothing to ensemble.")
    if isinstance(members, str):
        return np.arange(n)
    if isinstance(members, numbers.Integral):
        acc = np.array([m.objectives["accuracy"] for m in front], dtype=float)
        return np.sort(np.argsort(-acc, kind="stable")[: min(int(members), n)])
    if _is_window(members):
        return _window_members(front, *members, name)
    idx = np.asarray(members).astype(int)
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
    out = []
    with torch.no_grad():
        for i in indices:
            module = front[int(i)].net.module_
            out.append(module(X.to(next(module.parameters()).device)).double().cpu())
    return torch.stack(out)


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


def ensemble_ood_score(logits, temperature=1000.0):
    """Ensemble OoD score: the mean of the members' ODIN scores.

    Parameters
    ----------
    logits : array-like of shape (n_members, n_samples, n_classes)
    temperature : float, default=1000.0

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Higher means more in-distribution.
    """
    return odin_scores(logits, temperature).mean(axis=0)


def fitted_member_logits(clf, X, members, name="members"):
    """Validate ``members``, then compute features once and every logit.

    Parameters
    ----------
    clf : EvoPruneClassifier
        Fitted.
    X : array-like
        Images or features, as in ``clf.fit``.
    members : see :func:`resolve_members`
    name : str, default="members"
        Parameter name used in error messages.

    Returns
    -------
    logits : torch.Tensor of shape (n_members, n_samples, n_classes)
    """
    # Bad member choices fail before the (costly) backbone pass.
    indices = resolve_members(clf.pareto_front_, members, name)
    features = clf.extract_features(X)
    return member_logits(clf.pareto_front_, indices, features, clf._device)
