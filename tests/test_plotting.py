"""Figures of the front, the search and the genes (Agg backend, see conftest)."""

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from evoprune_sklearn._objectives import OBJECTIVES, Objective
from evoprune_sklearn.plotting import (
    gene_frequency,
    plot_convergence,
    plot_gene_frequency,
    plot_pareto_front,
)


class _Spread(Objective):
    """A cheap third objective: how far the kept genes spread (for 3-D plots)."""

    name = "spread"
    greater_is_better = True

    def evaluate(self, heads, data):
        g = np.asarray(heads.genomes, dtype=float)
        idx = np.arange(g.shape[1])
        return np.array([idx[row > 0].std() / len(idx) for row in g])


@pytest.fixture(scope="module")
def fitted(blobs):
    from conftest import tiny

    X, y = blobs
    return tiny(backbone=None, objectives=("accuracy", "complexity"), pop_size=6,
                n_evaluations=18).fit(X, y)


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


def test_pareto_front_two_objectives(fitted):
    fig = plot_pareto_front(fitted)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_xlabel().startswith("complexity") and ax.get_ylabel() == "accuracy"
    front, selected = ax.collections
    assert len(front.get_offsets()) == len(fitted.pareto_front_)
    sel = fitted.pareto_front_[fitted.best_index_].objectives
    np.testing.assert_allclose(selected.get_offsets()[0],
                               [sel["complexity"], sel["accuracy"]])
    fig.canvas.draw()  # renders without error


def test_pareto_front_three_objectives_adds_a_3d_panel(blobs, monkeypatch):
    from conftest import tiny

    monkeypatch.setitem(OBJECTIVES, "spread", _Spread)
    X, y = blobs
    clf = tiny(backbone=None, objectives=("accuracy", "complexity", "spread"),
               pop_size=6, n_evaluations=12).fit(X, y)
    fig = plot_pareto_front(clf)
    assert len(fig.axes) == 4  # three pairs + one 3-D view
    assert fig.axes[-1].name == "3d"
    fig.canvas.draw()


def test_convergence_shows_hypervolume_and_best_objectives(fitted):
    fig = plot_convergence(fitted)
    assert isinstance(fig, Figure)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["hypervolume", "best accuracy", "best complexity"]
    line = fig.axes[0].lines[0]
    np.testing.assert_array_equal(line.get_xdata(),
                                  [h["n_evaluations"] for h in fitted.history_])
    hv = np.asarray(line.get_ydata())
    # the front only improves, so its hypervolume never falls
    assert np.all(np.diff(hv) >= -1e-12) and 0 < hv[-1] <= 1
    fig.canvas.draw()


def test_gene_frequency(fitted):
    freq = gene_frequency(fitted)
    genomes = np.array([m.genome for m in fitted.pareto_front_])
    np.testing.assert_allclose(freq, genomes.mean(axis=0))
    fig = plot_gene_frequency(fitted, top=5)
    assert isinstance(fig, Figure)
    ax = fig.axes[1]
    by_height = dict(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())))
    top_gene = int(np.argmax(freq))
    assert by_height[max(by_height)] == f"feature {top_gene}"  # top bar: most frequent
    assert len(by_height) == 5
    fig.canvas.draw()
    with pytest.raises(ValueError, match="top must be"):
        plot_gene_frequency(fitted, top=0)


def test_plots_need_a_fitted_estimator(make_tiny):
    from sklearn.exceptions import NotFittedError

    for plot in (plot_pareto_front, plot_convergence, plot_gene_frequency):
        with pytest.raises(NotFittedError):
            plot(make_tiny(backbone=None))
