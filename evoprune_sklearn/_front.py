"""The Pareto front: every non-dominated pruned head found by a search.

Both classes are immutable results. A :class:`Member` is a frozen record of
one head (genome, objective values, one copy of its weights, the class
labels); a :class:`ParetoFront` is a read-only sequence of members with the
objective matrix ``F`` in natural units. The search builds a new front after
every generation (:func:`merge_front`) instead of updating one.
"""

import dataclasses
import numbers
import types
from collections.abc import Sequence

import numpy as np
import torch

from ._engines._base import TrainingConfig, get_engine
from .selection import _minimized, get_rule

__all__ = ["Member", "ParetoFront", "gene_frequencies", "gene_names", "merge_front",
           "sorted_front"]


def _read_only(array):
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Member:
    """One pruned head on the Pareto front: a frozen record.

    Each parameter is kept as the attribute of the same name.

    Parameters
    ----------
    genome : array-like of bool, shape (n_genes,)
        Which genes are kept (True) or pruned (False).
    objectives : mapping of str to float
        Objective name to value, in natural units (accuracy and robustness:
        higher is better; complexity: lower is better).
    params : sequence of (weight, bias), default=None
        The trained head's parameters, full size with the pruned parts zero
        (``weight`` has shape ``(fan_in, fan_out)``): the only copy of the
        weights. None while a search has not trained the head.
    train_loss : sequence of float, default=()
        Training loss per epoch.
    classes : ndarray of shape (n_classes,), default=None
        The class labels :meth:`predict` returns (the estimator's
        ``classes_``).
    config : TrainingConfig, default=None
        How the head was trained; it fixes the head's architecture.

    Attributes
    ----------
    n_active : int
        Number of genes switched on.
    net : skorch.NeuralNetClassifier
        A fitted skorch classifier over backbone features, built **on
        demand** (on the CPU) from ``params`` each time it is read: it is
        not stored, so the weights exist once. Its ``predict`` returns class
        *indices*; :meth:`predict` returns labels.

    Examples
    --------
    >>> from evoprune_sklearn import Member
    >>> m = Member([1, 0, 1], {"accuracy": 0.9, "complexity": 0.5})
    >>> m.n_active, m.objectives["accuracy"]
    (2, 0.9)
    """

    genome: np.ndarray
    objectives: types.MappingProxyType
    params: tuple = None
    train_loss: tuple = ()
    classes: np.ndarray = None
    config: TrainingConfig = None

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "genome", _read_only(np.array(self.genome, dtype=bool).ravel()))
        set_(self, "objectives", types.MappingProxyType(
            {str(k): float(v) for k, v in dict(self.objectives).items()}))
        if self.params is not None:
            set_(self, "params", tuple((w, b) for w, b in self.params))
        set_(self, "train_loss", tuple(float(v) for v in self.train_loss))
        if self.classes is not None:
            set_(self, "classes", _read_only(np.array(self.classes)))

    # pickle (joblib workers, copy) cannot store a mappingproxy: a dict instead
    def __getstate__(self):
        state = dict(self.__dict__)
        state["objectives"] = dict(self.objectives)
        return state

    def __setstate__(self, state):
        state = dict(state)
        state["objectives"] = types.MappingProxyType(dict(state["objectives"]))
        for k, v in state.items():
            object.__setattr__(self, k, v)

    @property
    def n_active(self):
        """Number of genes switched on."""
        return int(self.genome.sum())

    def __repr__(self):
        vals = ", ".join(f"{k}={v:.3f}" for k, v in self.objectives.items())
        return f"Member({vals}, genes_on={self.n_active}/{self.genome.size})"

    # ---------------------------------------------------------------- the head
    def _check_head(self, what):
        if self.params is None or self.config is None:
            raise ValueError(
                f"{what} needs a trained head: this member has no "
                f"{'parameters' if self.params is None else 'training configuration'} "
                "(members of a fitted estimator's pareto_front_ have both)."
            )

    def logits(self, features, device="cpu"):
        """Logits of the head on backbone features.

        Computes what the masked head (:class:`MaskedHead`) computes, in
        float32, from the member's one copy of the weights.

        Parameters
        ----------
        features : array-like or Tensor of shape (n_samples, n_features)
            Backbone features (the estimator's ``extract_features``).
        device : str, default="cpu"
            Where to compute.

        Returns
        -------
        logits : torch.Tensor of shape (n_samples, n_classes), float32, on ``device``
        """
        self._check_head("logits")
        return self.config.head.logits(self.genome.copy(), self.params, features, device)

    def predict_proba(self, features, device="cpu"):
        """Class probabilities of the head on backbone features.

        Parameters
        ----------
        features : array-like of shape (n_samples, n_features)
            Backbone features (the estimator's ``extract_features``).
        device : str, default="cpu"
            Where to compute.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), float64
            Columns follow ``classes``.
        """
        logits = self.logits(features, device)
        return torch.softmax(logits, dim=-1).cpu().numpy().astype(np.float64)

    def predict(self, features, device="cpu"):
        """Class labels predicted by the head on backbone features.

        Parameters
        ----------
        features : array-like of shape (n_samples, n_features)
            Backbone features (the estimator's ``extract_features``).
        device : str, default="cpu"
            Where to compute.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes`` (class indices when the member has no
            ``classes``).
        """
        index = self.logits(features, device).argmax(dim=-1).cpu().numpy()
        return index if self.classes is None else self.classes[index]

    def module(self):
        """The head as a :class:`MaskedHead` (a new module, on the CPU, in eval mode).

        Returns
        -------
        head : MaskedHead
        """
        self._check_head("module")
        # init_seed: the initial draw uses a private generator, not torch's global one
        head = self.config.head.module(self.genome.copy(), self.params,
                                       init_seed=self.config.init_seed)
        return head.eval()

    @property
    def net(self):
        """A fitted skorch classifier for this head, built on demand (not stored)."""
        self._check_head("net")
        config = dataclasses.replace(self.config, device="cpu")
        # Through the engine table: the front does not depend on the trainer.
        return get_engine("skorch").wrap(self.genome.copy(), self.params, config,
                                         self.train_loss)


def _dominates(a, b):
    return np.all(a <= b) and np.any(a < b)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ParetoFront(Sequence):
    """The non-dominated members of a search: an immutable sequence.

    Indexing gives a :class:`Member` (a slice gives a smaller front). A
    fitted estimator's front is ordered by decreasing accuracy, then by the
    other objectives (lower complexity first). Nothing on it changes: a
    search builds a new front every generation.

    Parameters
    ----------
    objective_names : sequence of str
        The objectives, in the column order of :attr:`F`.
    greater_is_better : sequence of bool
        For each objective, whether larger values are better.
    members : sequence of Member, default=()
    gene_names : array-like of str, default=None
        One name per gene (the estimator's ``gene_names_``).
    n_validation : int, default=None
        Validation samples the accuracy was measured on (used by the
        one-standard-error rule of :class:`~evoprune_sklearn.selection.Knee`):
        the validation fold, or with the estimator's ``n_folds=k`` every training
        sample (each predicted once, out of fold).

    Attributes
    ----------
    F : ndarray of shape (n_members, n_objectives)
        Objective values in natural units (accuracy as accuracy,
        complexity as complexity), read-only.
    genomes : ndarray of bool, shape (n_members, n_genes)
        The members' genomes, read-only.

    Examples
    --------
    >>> from evoprune_sklearn import Member, ParetoFront
    >>> front = ParetoFront(("accuracy", "complexity"), (True, False), members=[
    ...     Member([1, 1, 0], {"accuracy": 0.9, "complexity": 0.6}),
    ...     Member([1, 0, 0], {"accuracy": 0.8, "complexity": 0.3})])
    >>> front.F.tolist()
    [[0.9, 0.6], [0.8, 0.3]]
    >>> front.top(1).tolist(), front.select("complexity")
    ([0], 1)
    """

    objective_names: tuple
    greater_is_better: tuple
    members: tuple = ()
    gene_names: np.ndarray = None
    n_validation: int = None

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "objective_names", tuple(str(n) for n in self.objective_names))
        set_(self, "greater_is_better", tuple(bool(g) for g in self.greater_is_better))
        if len(self.objective_names) != len(self.greater_is_better):
            raise ValueError(
                f"objective_names ({len(self.objective_names)}) and greater_is_better "
                f"({len(self.greater_is_better)}) must have the same length."
            )
        members = tuple(self.members)
        for m in members:
            if not isinstance(m, Member):
                raise TypeError(f"members must be Member objects, got {type(m).__name__}.")
            missing = set(self.objective_names) - set(m.objectives)
            if missing:
                raise ValueError(f"member {m!r} has no value for {sorted(missing)}.")
        set_(self, "members", members)
        if self.gene_names is not None:
            set_(self, "gene_names", _read_only(np.asarray(self.gene_names, dtype=object)))
        if self.n_validation is not None:
            set_(self, "n_validation", int(self.n_validation))

    # ------------------------------------------------------------- sequence
    def __len__(self):
        return len(self.members)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return dataclasses.replace(self, members=self.members[i])
        if isinstance(i, numbers.Integral) and not isinstance(i, bool):
            return self.members[int(i)]
        raise TypeError(
            f"ParetoFront indices must be integers or slices, not {type(i).__name__}."
        )

    def __iter__(self):
        return iter(self.members)

    def __repr__(self):
        return f"ParetoFront({len(self)} members, objectives={self.objective_names})"

    # --------------------------------------------------------------- arrays
    @property
    def F(self):
        """Objective values in natural units, shape (n_members, n_objectives)."""
        F = np.array([[m.objectives[n] for n in self.objective_names] for m in self.members],
                     dtype=float).reshape(len(self), len(self.objective_names))
        return _read_only(F)

    @property
    def genomes(self):
        """The members' genomes, shape (n_members, n_genes)."""
        if not self.members:
            return _read_only(np.zeros((0, 0), dtype=bool))
        return _read_only(np.array([m.genome for m in self.members], dtype=bool))

    def to_frame(self, genomes=False):
        """The front as a :class:`pandas.DataFrame`.

        Parameters
        ----------
        genomes : bool, default=False
            Also add one boolean column per gene (named by ``gene_names``,
            the estimator's ``gene_names_``): whether the member keeps it.

        Returns
        -------
        frame : DataFrame
            One row a member: one column per objective (``accuracy``,
            ``complexity``, ``robustness`` when used) plus ``n_genes_on``
            (then the genes, with ``genomes=True``).
        """
        import pandas as pd

        frame = pd.DataFrame(self.F, columns=list(self.objective_names))
        frame["n_genes_on"] = [m.n_active for m in self.members]
        if genomes and self.members:
            names = self.gene_names
            if names is None:
                names = [f"gene{k}" for k in range(self.members[0].genome.size)]
            genes = pd.DataFrame(self.genomes, columns=[str(n) for n in names])
            frame = pd.concat([frame, genes], axis=1)
        return frame

    # ------------------------------------------------------------- choosing
    def _column(self, objective, name):
        if objective not in self.objective_names:
            raise ValueError(
                f"{name} names objective {objective!r}, but the front's objectives "
                f"are {list(self.objective_names)}."
            )
        j = self.objective_names.index(objective)
        return self.F[:, j], self.greater_is_better[j]

    def top(self, k, by="accuracy"):
        """Indices of the ``k`` best members in one objective.

        Parameters
        ----------
        k : int
            How many (``>= 1``); every member when the front has fewer.
        by : str, default="accuracy"
            The objective; "best" follows its direction (highest accuracy,
            lowest complexity). Ties keep the front's order.

        Returns
        -------
        indices : ndarray of int
            In front order (ascending), so ``front.top(3)`` can be passed as
            ``members=`` to the estimator's ``ensemble_*`` methods.
        """
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}.")
        values, greater = self._column(by, "by")
        key = -values if greater else values
        return np.sort(np.argsort(key, kind="stable")[: min(int(k), len(self))])

    def window(self, objective, lo, hi):
        """Indices of the members inside a percentile window of one objective.

        The members whose value of ``objective`` lies between the ``lo``-th
        and ``hi``-th percentiles (linear interpolation, edges included) of
        that objective over the front, e.g. ``window("accuracy", 50, 60)``
        as in the MO-EvoPruneDeepTL paper.

        Parameters
        ----------
        objective : str
        lo, hi : float
            Percentiles in ``[0, 100]``, ``lo <= hi``.

        Returns
        -------
        indices : ndarray of int
            In front order; a window holding no member raises a ValueError.
        """
        check_window(objective, lo, hi, self.objective_names)
        if not len(self):
            raise ValueError("The Pareto front is empty; a window selects nothing.")
        values, _ = self._column(objective, "window")
        a, b = np.percentile(values, [lo, hi])
        # Percentiles interpolate; a tolerance keeps members sitting exactly
        # on an edge despite rounding.
        tol = 1e-12 * max(1.0, float(np.abs(values).max()))
        chosen = np.flatnonzero((values >= a - tol) & (values <= b + tol))
        if len(chosen) == 0:
            raise ValueError(
                f"window ({objective!r}, {lo}, {hi}) selects no member: the "
                f"{lo}th-{hi}th percentiles of {objective} over the front's "
                f"{len(self)} member(s) are [{a:.4g}, {b:.4g}] and no member lies "
                "there. Widen the window, or choose 'front' or ('top', k)."
            )
        return chosen

    def select(self, rule="knee"):
        """Index of the member a selection rule chooses.

        Parameters
        ----------
        rule : str, int or SelectionRule, default="knee"
            A name of :data:`evoprune_sklearn.selection.RULES` (the
            estimator's ``selection=`` values), an index, or a rule object
            of :mod:`evoprune_sklearn.selection`.

        Returns
        -------
        index : int
        """
        return get_rule(rule).select(self)


def check_window(objective, lo, hi, objective_names, name="window"):
    """Refuse a bad percentile window ``(objective, lo, hi)`` (ValueError)."""
    if objective not in objective_names:
        raise ValueError(
            f"{name} names objective {objective!r}, but the front's "
            f"objectives are {list(objective_names)}."
        )
    for side, q in (("lower", lo), ("upper", hi)):
        if not isinstance(q, numbers.Real) or isinstance(q, bool) or not 0 <= q <= 100:
            raise ValueError(
                f"{name} {side} percentile must be a number in [0, 100], got {q!r}."
            )
    if lo > hi:
        raise ValueError(
            f"{name} ({objective!r}, {lo}, {hi}) has lower percentile above the upper one."
        )


def merge_front(front, candidates):
    """A new front: ``front`` with ``candidates`` merged in, non-dominated only.

    A candidate equal in every objective to a member already kept is
    dropped, so a front never holds two indistinguishable heads. Members
    keep their order; new ones are appended.

    Parameters
    ----------
    front : ParetoFront
    candidates : iterable of Member

    Returns
    -------
    front : ParetoFront
    """
    members = list(front.members)
    sign = np.where(front.greater_is_better, -1.0, 1.0)

    def f(m):
        return np.array([m.objectives[n] for n in front.objective_names], dtype=float) * sign

    F = [f(m) for m in members]
    for cand in candidates:
        g = f(cand)
        if any(_dominates(h, g) or np.array_equal(h, g) for h in F):
            continue
        keep = [i for i, h in enumerate(F) if not _dominates(g, h)]
        members = [members[i] for i in keep] + [cand]
        F = [F[i] for i in keep] + [g]
    return dataclasses.replace(front, members=tuple(members))


def sorted_front(front):
    """A new front ordered by decreasing accuracy, then increasing complexity.

    Members are sorted on the objectives to minimise, column after column
    (the first objective first).
    """
    F = _minimized(front)
    if not len(F):
        return front
    order = np.lexsort(F.T[::-1])
    return dataclasses.replace(front, members=tuple(front.members[i] for i in order))


def gene_frequencies(genomes):
    """Fraction of the genomes with each gene on: the front's "influential" genes.

    Parameters
    ----------
    genomes : array-like of bool, shape (n_members, n_genes)

    Returns
    -------
    frequency : ndarray of float64, shape (n_genes,)
    """
    return np.asarray(genomes, dtype=bool).mean(axis=0)


def gene_names(encoding, hidden_layer_sizes, n_features, backbone=None,
               feature_names_in=None):
    """One readable name per gene.

    Features encoding: the input's own column names (``feature_names_in``)
    when ``backbone`` is None and they are known, ``"x<k>"`` (scikit-learn's
    convention) when they are not, ``"<backbone>:<k>"`` for backbone
    features. Neurons encoding: ``"layer<l>:<k>"``, neuron ``k`` of hidden
    layer ``l`` (both from 0).

    Returns
    -------
    names : ndarray of str objects, shape (n_genes,)

    Examples
    --------
    >>> from evoprune_sklearn._front import gene_names
    >>> gene_names("features", (8,), 3, backbone="resnet18").tolist()
    ['resnet18:0', 'resnet18:1', 'resnet18:2']
    >>> gene_names("neurons", (2, 1), 3).tolist()
    ['layer0:0', 'layer0:1', 'layer1:0']
    """
    if encoding == "neurons":
        names = [f"layer{layer}:{k}" for layer, size in enumerate(hidden_layer_sizes)
                 for k in range(int(size))]
    elif backbone is not None:
        names = [f"{backbone}:{k}" for k in range(int(n_features))]
    elif feature_names_in is not None:
        names = [str(n) for n in feature_names_in]
    else:
        names = [f"x{k}" for k in range(int(n_features))]
    return np.asarray(names, dtype=object)
