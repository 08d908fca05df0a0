"""The Pareto front: every non-dominated pruned head found by a search."""

import numpy as np

__all__ = ["Member", "ParetoFront", "gene_names", "knee_index"]


class Member:
    """One pruned head on the Pareto front.

    Each parameter is kept as the attribute of the same name.

    Parameters
    ----------
    genome : ndarray of bool
        Which genes are kept (True) or pruned (False).
    objectives : dict
        Objective name to value (accuracy and robustness: higher is better;
        complexity: lower is better).
    params : list of (weight, bias), default=None
        The trained head's parameters (full size, pruned parts zero).
    train_loss : list of float, default=None
        Training loss per epoch.
    net : skorch.NeuralNetClassifier, default=None
        The fitted head over backbone features (``None`` while searching).
    """

    def __init__(self, genome, objectives, params=None, train_loss=None, net=None):
        self.genome = np.asarray(genome, dtype=bool)
        self.objectives = dict(objectives)
        self.params = params
        self.train_loss = list(train_loss or [])
        self.net = net

    @property
    def n_active(self):
        """Number of genes switched on."""
        return int(self.genome.sum())

    def __repr__(self):
        vals = ", ".join(f"{k}={v:.3f}" for k, v in self.objectives.items())
        return f"Member({vals}, genes_on={self.n_active}/{self.genome.size})"


def _dominates(a, b):
    return np.all(a <= b) and np.any(a < b)


class ParetoFront:
    """The non-dominated members of a search, in a stable order.

    Behaves like a read-only list of :class:`Member`. Members are ordered by
    decreasing accuracy (then increasing complexity) once the search ends.

    Parameters
    ----------
    objective_names : tuple of str
    greater_is_better : tuple of bool
    """

    def __init__(self, objective_names, greater_is_better):
        self.objective_names = tuple(objective_names)
        self.greater_is_better = tuple(greater_is_better)
        self.members = []
        #: One name per gene (the estimator's ``gene_names_``), set after fit.
        self.gene_names = None

    def __len__(self):
        return len(self.members)

    def __getitem__(self, i):
        return self.members[i]

    def __iter__(self):
        return iter(self.members)

    def __repr__(self):
        return f"ParetoFront({len(self)} members, objectives={self.objective_names})"

    def minimization_matrix(self, members=None):
        """Objective values as a matrix to minimise, shape (n_members, n_obj).

        Parameters
        ----------
        members : list of Member, default=None
            The members to tabulate; None for the front's own.

        Returns
        -------
        F : ndarray of shape (n_members, n_objectives)
            Objective values, negated where greater is better.
        """
        members = self.members if members is None else members
        F = np.array(
            [[m.objectives[n] for n in self.objective_names] for m in members],
            dtype=float,
        ).reshape(len(members), len(self.objective_names))
        sign = np.where(self.greater_is_better, -1.0, 1.0)
        return F * sign

    def update(self, candidates):
        """Merge candidates; keep only non-dominated ones.

        A candidate equal in every objective to a member already kept is
        dropped, so the front never holds two indistinguishable heads.

        Parameters
        ----------
        candidates : iterable of Member
            Newly evaluated members.

        Returns
        -------
        added : list of Member
            Candidates that joined the front.
        """
        added = []
        for cand in candidates:
            f = self.minimization_matrix([cand])[0]
            F = self.minimization_matrix()
            if len(F) and any(_dominates(g, f) or np.array_equal(g, f) for g in F):
                continue
            self.members = [m for m, g in zip(self.members, F) if not _dominates(f, g)]
            self.members.append(cand)
            added.append(cand)
        return added

    def sort(self):
        """Order members by decreasing accuracy, then increasing complexity."""
        F = self.minimization_matrix()
        if len(F):
            order = np.lexsort(F.T[::-1])
            self.members = [self.members[i] for i in order]

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

        rows = []
        for m in self.members:
            row = {n: m.objectives[n] for n in self.objective_names}
            row["n_genes_on"] = m.n_active
            rows.append(row)
        frame = pd.DataFrame(rows, columns=[*self.objective_names, "n_genes_on"])
        if genomes and self.members:
            names = self.gene_names
            if names is None:
                names = [f"gene{k}" for k in range(self.members[0].genome.size)]
            genes = pd.DataFrame(np.array([m.genome for m in self.members]),
                                 columns=[str(n) for n in names])
            frame = pd.concat([frame, genes], axis=1)
        return frame


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
    >>> from evoprune_sklearn._front import knee_index
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
