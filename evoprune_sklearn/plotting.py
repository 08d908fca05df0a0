"""Ready-made figures for a fitted :class:`EvoPruneClassifier`."""

import numpy as np

__all__ = ["plot_pareto_front"]


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def plot_pareto_front(clf, *, figsize=None):
    """Pairwise 2-D panels of the Pareto front, the selected member highlighted.

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
    >>> len(fig.axes) >= 1
    True
    """
    front = clf.pareto_front_
    names = front.objective_names
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    fig = _figure(figsize=figsize or (4.5 * len(pairs), 4), layout="constrained")
    values = {n: np.array([m.objectives[n] for m in front]) for n in names}
    for k, (a, b) in enumerate(pairs):
        ax = fig.add_subplot(1, len(pairs), k + 1)
        # complexity on x reads naturally: smaller networks to the left
        x, yname = (b, a) if b == "complexity" else (a, b)
        ax.scatter(values[x], values[yname], c="tab:blue", label="front member")
        sel = clf.best_index_
        ax.scatter(
            values[x][sel], values[yname][sel], s=160, facecolors="none",
            edgecolors="tab:red", linewidths=2, label="selected (predict)",
        )
        ax.set_xlabel(x + (" (fraction of genes on)" if x == "complexity" else ""))
        ax.set_ylabel(yname)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.suptitle(f"Pareto front: {len(front)} members")
    return fig
