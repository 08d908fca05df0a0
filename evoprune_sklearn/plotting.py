"""Ready-made figures for a fitted :class:`EvoPruneClassifier`."""

import numpy as np

from ._explain import plot_explanation

__all__ = [
    "plot_pareto_front",
    "plot_convergence",
    "plot_gene_frequency",
    "gene_frequency",
    "plot_explanation",
]


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _check_fitted(clf):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(clf, "pareto_front_")


def _label(name):
    return name + (" (fraction of genes on)" if name == "complexity" else "")


def _axis_pair(a, b):
    # complexity on x reads naturally: smaller networks to the left
    return (b, a) if b == "complexity" else (a, b)


def plot_pareto_front(clf, *, figsize=None):
    """The Pareto front: pairwise 2-D panels, plus 3-D with three objectives.

    Every front member is a dot; the member :meth:`predict` uses
    (``clf.best_index_``) is circled in red. With three objectives a last
    panel shows the whole front in 3-D.

    Parameters
    ----------
    clf : EvoPruneClassifier
        A fitted estimator.
    figsize : tuple of float, default=None
        Figure size in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.plotting import plot_pareto_front
    >>> X, y = make_classification(n_samples=100, n_features=10, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
    ...                          n_evaluations=8, random_state=0).fit(X, y)
    >>> fig = plot_pareto_front(clf)
    >>> fig.axes[0].get_ylabel()
    'accuracy'
    """
    _check_fitted(clf)
    front = clf.pareto_front_
    names = front.objective_names
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    three_d = len(names) == 3
    n_panels = max(1, len(pairs)) + int(three_d)
    fig = _figure(figsize=figsize or (4.5 * n_panels, 4), layout="constrained")
    values = {n: np.array([m.objectives[n] for m in front]) for n in names}
    sel = clf.best_index_
    if not pairs:  # a single objective: its values per member
        ax = fig.add_subplot(1, 1, 1)
        ax.scatter(np.arange(len(front)), values[names[0]], c="tab:blue")
        ax.scatter([sel], [values[names[0]][sel]], s=160, facecolors="none",
                   edgecolors="tab:red", linewidths=2)
        ax.set_xlabel("member")
        ax.set_ylabel(names[0])
    for k, (a, b) in enumerate(pairs):
        ax = fig.add_subplot(1, n_panels, k + 1)
        x, yname = _axis_pair(a, b)
        ax.scatter(values[x], values[yname], c="tab:blue", label="front member")
        ax.scatter(
            values[x][sel], values[yname][sel], s=160, facecolors="none",
            edgecolors="tab:red", linewidths=2, label="selected (predict)",
        )
        ax.set_xlabel(_label(x))
        ax.set_ylabel(yname)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    if three_d:
        import mpl_toolkits.mplot3d  # noqa: F401  (registers the 3-D projection)

        ax = fig.add_subplot(1, n_panels, n_panels, projection="3d")
        x, y, z = names
        ax.scatter(values[x], values[y], values[z], c="tab:blue", depthshade=False)
        ax.scatter([values[x][sel]], [values[y][sel]], [values[z][sel]], s=160,
                   facecolors="none", edgecolors="tab:red", linewidths=2)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_zlabel(z)
    fig.suptitle(f"Pareto front: {len(front)} members")
    return fig


def plot_convergence(clf, *, figsize=None):
    """Hypervolume and best value of every objective over the evaluations.

    Read it to judge whether the search has converged: curves that still
    rise at the right edge mean more ``n_evaluations`` would pay. The
    hypervolume uses a fixed reference point (each objective's worst
    value; see ``history_``), so curves of different fits are comparable.

    Parameters
    ----------
    clf : EvoPruneClassifier
        A fitted estimator.
    figsize : tuple of float, default=None
        Figure size in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.plotting import plot_convergence
    >>> X, y = make_classification(n_samples=100, n_features=10, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
    ...                          n_evaluations=12, random_state=0).fit(X, y)
    >>> fig = plot_convergence(clf)
    >>> [ax.get_ylabel() for ax in fig.axes][:3]
    ['hypervolume', 'best accuracy', 'best complexity']
    """
    _check_fitted(clf)
    history = clf.history_
    names = clf.pareto_front_.objective_names
    evals = [h["n_evaluations"] for h in history]
    panels = (["hypervolume"] if history and "hypervolume" in history[0] else [])
    panels += [f"best_{n}" for n in names]
    fig = _figure(figsize=figsize or (3.8 * len(panels), 3.4), layout="constrained")
    for k, key in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        ax.plot(evals, [h[key] for h in history], marker="o", ms=3)
        ax.set_xlabel("evaluations")
        ax.set_ylabel(key.replace("best_", "best "))
        ax.grid(alpha=0.3)
    fig.suptitle("Search convergence")
    return fig


def gene_frequency(clf):
    """How often each gene is on across the Pareto front.

    Parameters
    ----------
    clf : EvoPruneClassifier
        A fitted estimator.

    Returns
    -------
    frequency : ndarray of shape (n_genes,)
        Fraction of front members with the gene switched on.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.plotting import gene_frequency
    >>> X, y = make_classification(n_samples=100, n_features=10, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
    ...                          n_evaluations=8, random_state=0).fit(X, y)
    >>> gene_frequency(clf).shape
    (10,)
    """
    _check_fitted(clf)
    return np.mean([m.genome for m in clf.pareto_front_], axis=0)


def plot_gene_frequency(clf, *, top=10, figsize=None):
    """How often each gene is on across the front: the "most influential" genes.

    Genes kept by nearly every member, whatever its size, are the ones the
    search could not prune without losing accuracy (the papers' most
    influential features or neurons). The left panel shows every gene in
    order (layer boundaries dashed for the neurons encoding with two
    layers), the ``top`` most frequent ones in red; the right panel ranks
    them.

    Parameters
    ----------
    clf : EvoPruneClassifier
        A fitted estimator.
    top : int, default=10
        Number of most frequent genes highlighted and ranked.
    figsize : tuple of float, default=None
        Figure size in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.plotting import plot_gene_frequency
    >>> X, y = make_classification(n_samples=100, n_features=10, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
    ...                          n_evaluations=8, random_state=0).fit(X, y)
    >>> fig = plot_gene_frequency(clf, top=3)
    >>> len(fig.axes)
    2
    """
    import numbers

    if not isinstance(top, numbers.Integral) or isinstance(top, bool) or top < 1:
        raise ValueError(f"top must be a positive int, got {top!r}.")
    freq = gene_frequency(clf)
    top = min(int(top), len(freq))
    best = np.argsort(-freq, kind="stable")[:top]
    encoding = getattr(clf, "encoding", "features")
    unit = "feature" if encoding == "features" else "neuron"
    fig = _figure(figsize=figsize or (11, 3.6), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    genes = np.arange(len(freq))
    ax.bar(genes, freq, width=1.0, color="tab:blue")
    ax.bar(best, freq[best], width=1.0, color="tab:red", label=f"top {top}")
    if encoding == "neurons" and len(clf.hidden_layer_sizes) > 1:
        for edge in np.cumsum(clf.hidden_layer_sizes)[:-1]:
            ax.axvline(edge - 0.5, color="k", ls="--", lw=1)
    ax.set_xlabel(f"gene ({unit} index)")
    ax.set_ylabel("fraction of front members with gene on")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="upper right", fontsize="small")
    ax = fig.add_subplot(1, 2, 2)
    ax.barh(np.arange(top)[::-1], freq[best], color="tab:red")
    ax.set_yticks(np.arange(top)[::-1], [f"{unit} {g}" for g in best])
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("fraction of front members")
    ax.set_title(f"{top} most frequent genes")
    fig.suptitle(f"Gene frequency across {len(clf.pareto_front_)} front members")
    return fig
