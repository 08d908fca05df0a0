"""Rules that pick one member of a Pareto front (multi-criteria decision making).

A rule is a small object with one method, :meth:`SelectionRule.select`, that
takes a :class:`~evoprune_sklearn.ParetoFront` and returns the index of the
chosen member, as pymoo's decision-making classes (``pymoo.mcdm``) take a
front's objective matrix. The estimator's ``selection=`` strings name the
built-in rules (:data:`RULES`); ``selection=`` and
:meth:`ParetoFront.select <evoprune_sklearn.ParetoFront.select>` also take a
rule object, your own subclass included::

    class MostRobust(SelectionRule):
        def _select(self, front):
            return int(np.argmax(front.F[:, front.objective_names.index("robustness")]))

Rules see objective values in natural units (``front.F``: accuracy as
accuracy, complexity as complexity).
"""

import numbers

import numpy as np

__all__ = [
    "SelectionRule",
    "Knee",
    "MostAccurate",
    "Sparsest",
    "WithinBudget",
    "get_rule",
    "knee_index",
]


def _minimized(front):
    """``front.F`` with objectives to maximise negated (all to minimise)."""
    sign = np.where(np.asarray(front.greater_is_better, dtype=bool), -1.0, 1.0)
    return np.asarray(front.F, dtype=float) * sign


class SelectionRule:
    """Base class of the rules choosing one member of a front.

    Subclasses implement ``_select(front) -> int``; :meth:`select` checks that
    the front is not empty and that the result is a valid index.
    """

    def select(self, front):
        """Index of the chosen member.

        Parameters
        ----------
        front : ParetoFront
            A non-empty front.

        Returns
        -------
        index : int
        """
        if len(front) == 0:
            raise ValueError("The Pareto front is empty; there is no member to select.")
        index = self._select(front)
        if not isinstance(index, numbers.Integral) or not 0 <= index < len(front):
            raise ValueError(
                f"{type(self).__name__} returned {index!r}, not an index into a "
                f"front of {len(front)} member(s)."
            )
        return int(index)

    def _select(self, front):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class Knee(SelectionRule):
    """The knee: the member closest to the ideal point after rescaling.

    Each objective is rescaled to ``[0, 1]`` over the front (0 = the front's
    best value, 1 = its worst); the knee is the member at the smallest
    Euclidean distance from the ideal point. With ``one_standard_error=True``
    (the estimator's ``selection="knee"``) only members whose accuracy is
    within one binomial standard error of the best accuracy are eligible
    (Breiman's one-standard-error rule, using the front's
    ``n_validation``), and the knee is taken among them in the other
    objectives. ``one_standard_error=False`` is ``selection="tradeoff"``.

    Parameters
    ----------
    one_standard_error : bool, default=True
        Keep only members whose accuracy cannot be told apart from the best.
        Without ``n_validation`` on the front it has no effect.

    Examples
    --------
    >>> from evoprune_sklearn import Member, ParetoFront
    >>> from evoprune_sklearn.selection import Knee
    >>> front = ParetoFront(("accuracy", "complexity"), (True, False), members=[
    ...     Member([1, 1], {"accuracy": a, "complexity": c})
    ...     for a, c in [(0.95, 0.40), (0.94, 0.20), (0.80, 0.05)]], n_validation=100)
    >>> Knee().select(front), Knee(one_standard_error=False).select(front)
    (1, 1)
    """

    def __init__(self, one_standard_error=True):
        self.one_standard_error = one_standard_error

    def _select(self, front):
        F = _minimized(front)
        names = front.objective_names
        if self.one_standard_error and "accuracy" in names:
            return knee_index(F, accuracy_column=names.index("accuracy"),
                              n_validation=front.n_validation)
        return knee_index(F)


class MostAccurate(SelectionRule):
    """The most accurate member; ties go to the lowest complexity.

    Examples
    --------
    >>> from evoprune_sklearn import Member, ParetoFront
    >>> from evoprune_sklearn.selection import MostAccurate
    >>> front = ParetoFront(("accuracy", "complexity"), (True, False), members=[
    ...     Member([1, 1], {"accuracy": a, "complexity": c})
    ...     for a, c in [(0.8, 0.1), (0.9, 0.5)]])
    >>> MostAccurate().select(front)
    1
    """

    def _select(self, front):
        F = _minimized(front)
        names = front.objective_names
        acc = F[:, names.index("accuracy")]
        tie = F[:, names.index("complexity")] if "complexity" in names else np.zeros(len(F))
        return int(np.lexsort((tie, acc))[0])


class Sparsest(SelectionRule):
    """The member with the lowest complexity; ties go to the most accurate.

    Examples
    --------
    >>> from evoprune_sklearn import Member, ParetoFront
    >>> from evoprune_sklearn.selection import Sparsest
    >>> front = ParetoFront(("accuracy", "complexity"), (True, False), members=[
    ...     Member([1, 1], {"accuracy": a, "complexity": c})
    ...     for a, c in [(0.8, 0.1), (0.9, 0.5)]])
    >>> Sparsest().select(front)
    0
    """

    def _select(self, front):
        names = front.objective_names
        if "complexity" not in names:
            raise ValueError(
                "selection='complexity' needs 'complexity' among the objectives."
            )
        F = _minimized(front)
        comp = F[:, names.index("complexity")]
        return int(np.lexsort((F[:, names.index("accuracy")], comp))[0])


class WithinBudget(SelectionRule):
    """The best member that keeps at most ``max_genes`` genes.

    For a user with a size budget ("at most 20 % of the features"): only
    members whose genome keeps at most ``max_genes`` genes are eligible.
    Among them, with ``one_standard_error=True`` (the default), the member
    with the **most** genes among those whose validation accuracy is within
    one binomial standard error of the best eligible accuracy ``a``,

    .. math::

       \\text{acc}_i \\;\\ge\\; a - \\sqrt{a (1 - a) / n_\\text{validation}},

    ties going to the more accurate. The highest of many noisy validation
    accuracies belongs to the luckiest member, often a smaller one (the
    winner's curse); among members this validation set cannot tell apart,
    the larger one is the better bet, since within a budget accuracy grows
    with the genes a head keeps. ``one_standard_error=False`` takes the most
    accurate eligible member (ties: fewest genes). Without ``n_validation``
    on the front the two are the same.

    Parameters
    ----------
    max_genes : int or float
        An int ``>= 1``: a number of genes. A float in ``(0, 1]``: a fraction
        of the genome (``0.2``: at most 20 % of the genes).
    one_standard_error : bool, default=True
        Prefer more genes among the members whose accuracy cannot be told
        apart from the best eligible one.

    Raises
    ------
    ValueError
        From :meth:`select`, when no member keeps at most ``max_genes``
        genes, or the front has no ``"accuracy"`` objective.

    Examples
    --------
    >>> from evoprune_sklearn import Member, ParetoFront
    >>> from evoprune_sklearn.selection import WithinBudget
    >>> front = ParetoFront(("accuracy", "complexity"), (True, False), members=[
    ...     Member([1, 0, 0, 0], {"accuracy": 0.80, "complexity": 0.25}),
    ...     Member([1, 1, 0, 0], {"accuracy": 0.92, "complexity": 0.50}),
    ...     Member([1, 1, 1, 0], {"accuracy": 0.91, "complexity": 0.75}),
    ...     Member([1, 1, 1, 1], {"accuracy": 0.95, "complexity": 1.00}),
    ... ], n_validation=200)
    >>> WithinBudget(0.75).select(front)  # 0.91 is within 1 SE of 0.92
    2
    >>> WithinBudget(0.75, one_standard_error=False).select(front)
    1
    >>> WithinBudget(1).select(front)
    0
    """

    def __init__(self, max_genes, one_standard_error=True):
        if isinstance(max_genes, bool) or not isinstance(max_genes, numbers.Real):
            raise TypeError(
                f"max_genes must be an int (a number of genes) or a float in (0, 1] "
                f"(a fraction of the genome), got {max_genes!r}."
            )
        if isinstance(max_genes, numbers.Integral):
            if max_genes < 1:
                raise ValueError(
                    f"max_genes={max_genes}: a number of genes must be >= 1.")
            max_genes = int(max_genes)
        elif not 0.0 < max_genes <= 1.0:
            raise ValueError(
                f"max_genes={max_genes!r}: a fraction of the genome must be in (0, 1].")
        else:
            max_genes = float(max_genes)
        self.max_genes = max_genes
        self.one_standard_error = bool(one_standard_error)

    def limit(self, n_genes):
        """The largest number of genes a member may keep, of ``n_genes``.

        Parameters
        ----------
        n_genes : int
            Genome length.

        Returns
        -------
        limit : int
        """
        if isinstance(self.max_genes, int):
            return self.max_genes
        return int(np.floor(self.max_genes * n_genes + 1e-9))

    def _select(self, front):
        names = front.objective_names
        if "accuracy" not in names:
            raise ValueError(
                f"{self!r} needs 'accuracy' among the objectives, not {tuple(names)!r}.")
        sizes = np.array([m.n_active for m in front])
        limit = self.limit(front[0].genome.size)
        eligible = np.flatnonzero(sizes <= limit)
        if not len(eligible):
            raise ValueError(
                f"{self!r}: no member of the front keeps at most {limit} genes; the "
                f"smallest keeps {sizes.min()} of {front[0].genome.size}."
            )
        acc = np.asarray(front.F, dtype=float)[eligible, names.index("accuracy")]
        size = sizes[eligible]
        best = acc.max()
        if self.one_standard_error and front.n_validation:
            se = np.sqrt(best * (1 - best) / front.n_validation)
            close = acc >= best - se - 1e-12
            # most genes among the close ones; ties: the more accurate, then the first
            order = np.lexsort((-acc, -size, ~close))
        else:
            order = np.lexsort((size, -acc))
        return int(eligible[order[0]])


class _Index(SelectionRule):
    """A fixed index (the estimator's ``selection=<int>``)."""

    def __init__(self, index):
        self.index = index

    def _select(self, front):
        if self.index >= len(front):
            raise ValueError(
                f"selection={self.index} but the Pareto front has only "
                f"{len(front)} member(s)."
            )
        return int(self.index)


#: The estimator's ``selection=`` strings and the rules they name.
RULES = {
    "knee": lambda: Knee(one_standard_error=True),
    "tradeoff": lambda: Knee(one_standard_error=False),
    "accuracy": MostAccurate,
    "complexity": Sparsest,
}


def get_rule(selection):
    """The rule object for a ``selection=`` value.

    Parameters
    ----------
    selection : str, int or SelectionRule
        A name of :data:`RULES`, an index into the front (``>= 0``), or a
        rule (returned as it is).

    Returns
    -------
    rule : SelectionRule

    Examples
    --------
    >>> from evoprune_sklearn.selection import get_rule
    >>> get_rule("tradeoff")
    Knee(one_standard_error=False)
    """
    if isinstance(selection, SelectionRule):
        return selection
    if isinstance(selection, numbers.Integral) and not isinstance(selection, bool):
        if selection < 0:
            raise ValueError(f"selection={selection}: an index must be >= 0.")
        return _Index(int(selection))
    if isinstance(selection, str) and selection in RULES:
        return RULES[selection]()
    raise ValueError(
        f"selection must be one of {sorted(RULES)}, an int index or a "
        f"SelectionRule, got {selection!r}."
    )


def knee_index(F, accuracy_column=None, n_validation=None):
    """The knee of a front: the member closest to the ideal point.

    Each objective (as minimised) is rescaled to ``[0, 1]`` over the front
    (0 = the front's best value, 1 = its worst); the knee is the member with
    the smallest Euclidean distance to the ideal point ``(0, ..., 0)``: the
    best balanced trade-off, independent of the objectives' units. Ties go to
    the lower index.

    With ``accuracy_column`` and ``n_validation`` this becomes the
    accuracy-preserving knee: only members whose accuracy is within one
    binomial standard error ``sqrt(a (1 - a) / n_validation)`` of the best
    accuracy ``a`` are eligible (Breiman's one-standard-error rule: their
    accuracies cannot be told apart on this validation set), and among them
    the closest to the ideal point in the *other* objectives wins. With
    accuracy and complexity only, that is the sparsest eligible member.

    Parameters
    ----------
    F : ndarray of shape (n_members, n_objectives)
        Objective values to minimise (accuracy negated).
    accuracy_column : int, default=None
        Column of ``F`` holding the negated accuracy.
    n_validation : int, default=None
        Validation samples the accuracy was measured on.

    Returns
    -------
    index : int

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn.selection import knee_index
    >>> F = np.array([[-0.95, 0.40], [-0.94, 0.20], [-0.80, 0.05]])
    >>> knee_index(F)
    1
    >>> knee_index(F, accuracy_column=0, n_validation=100)
    1
    >>> knee_index(F, accuracy_column=0, n_validation=10000)  # 0.94 is worse
    0
    """
    F = np.asarray(F, dtype=float)
    if accuracy_column is not None and n_validation:
        acc = -F[:, accuracy_column]
        best = acc.max()
        se = np.sqrt(best * (1 - best) / n_validation)
        eligible = np.flatnonzero(acc >= best - se - 1e-12)
        others = [j for j in range(F.shape[1]) if j != accuracy_column]
        if not others:
            return int(eligible[np.argmax(acc[eligible])])
        return int(eligible[knee_index(F[np.ix_(eligible, others)])])
    lo, hi = F.min(axis=0), F.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    Z = (F - lo) / span
    return int(np.argmin(np.sqrt((Z**2).sum(axis=1))))
