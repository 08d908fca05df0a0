"""Display objects of the front, the search and the genes (Agg backend, see conftest)."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from evoprune_sklearn.objectives import Objective
from evoprune_sklearn.plotting import (
    ConvergenceDisplay,
    GeneFrequencyDisplay,
    ParetoFrontDisplay,
    gene_frequency,
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


@pytest.fixture(scope="module")
def fitted_3(blobs):
    from conftest import tiny

    X, y = blobs
    return tiny(backbone=None, objectives=("accuracy", "complexity", _Spread()),
                pop_size=6, n_evaluations=12).fit(X, y)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


# ------------------------------------------------------------ pyplot and ax
@pytest.mark.parametrize("display", [ParetoFrontDisplay, ConvergenceDisplay,
                                     GeneFrequencyDisplay])
def test_figures_are_managed_by_pyplot(fitted, display):
    """A script ending in plt.show() shows them: pyplot knows every figure."""
    disp = display.from_estimator(fitted)
    assert isinstance(disp.figure_, Figure)
    assert plt.fignum_exists(disp.figure_.number)
    assert disp.ax_ is disp.axes_[0] and disp.bounding_ax_ is None
    assert all(a.figure is disp.figure_ for a in disp.axes_)
    disp.figure_.canvas.draw()


def test_pareto_front_draws_into_the_users_axes(fitted):
    fig, (left, right) = plt.subplots(1, 2)
    disp = ParetoFrontDisplay.from_estimator(fitted, ax=right)
    assert disp.ax_ is right and disp.figure_ is fig and len(fig.axes) == 2
    assert right.get_xlabel().startswith("complexity") and right.get_ylabel() == "accuracy"
    assert not left.collections  # nothing leaked into the other Axes
    (front,) = disp.scatters_
    (selected,) = disp.selected_
    assert front.axes is right
    assert len(front.get_offsets()) == len(fitted.pareto_front_)
    sel = fitted.pareto_front_[fitted.best_index_].objectives
    np.testing.assert_allclose(selected.get_offsets()[0], [sel["complexity"], sel["accuracy"]])
    fig.canvas.draw()


def test_pareto_front_draws_a_front_without_its_estimator(fitted):
    front = fitted.pareto_front_
    disp = ParetoFrontDisplay.from_front(front, selected="accuracy")
    assert disp.selected == front.select("accuracy")
    np.testing.assert_allclose(disp.scatters_[0].get_offsets(), front.F[:, ::-1])
    assert ParetoFrontDisplay.from_front(front).selected_ is None
    same = ParetoFrontDisplay.from_estimator(fitted)
    assert same.selected == fitted.best_index_
    plt.close("all")


def test_pareto_front_three_objectives_in_one_axes_or_an_array(fitted_3):
    disp = ParetoFrontDisplay.from_estimator(fitted_3)
    assert len(disp.axes_) == 4  # three pairs + one 3-D view
    assert disp.axes_[-1].name == "3d" and len(disp.scatters_) == 4
    disp.figure_.canvas.draw()
    # one Axes: the four panels are laid out inside it, as PartialDependenceDisplay does
    fig, ax = plt.subplots(figsize=(12, 3))
    disp = ParetoFrontDisplay.from_estimator(fitted_3, ax=ax)
    assert disp.bounding_ax_ is ax and not ax.axison
    assert len(disp.axes_) == 4 and all(a.figure is fig for a in disp.axes_)
    fig.canvas.draw()
    # an array of Axes: used as given
    fig, axes = plt.subplots(1, 3)
    disp = ParetoFrontDisplay.from_estimator(fitted_3, ax=axes, three_d=False)
    assert list(disp.axes_) == list(axes)
    with pytest.raises(ValueError, match="array of 4 Axes"):
        ParetoFrontDisplay.from_estimator(fitted_3, ax=axes)
    fig, axes = plt.subplots(1, 4)
    with pytest.raises(ValueError, match="projection='3d'"):
        ParetoFrontDisplay.from_estimator(fitted_3, ax=axes)
    # a single pair into one Axes
    fig, ax = plt.subplots()
    disp = ParetoFrontDisplay.from_estimator(fitted_3, objectives=["spread", "accuracy"], ax=ax)
    assert disp.ax_ is ax and ax.get_xlabel() == "spread"


def test_pareto_display_from_values_and_bad_arguments(fitted):
    disp = ParetoFrontDisplay({"accuracy": [0.9, 0.8], "complexity": [0.5, 0.1]}, selected=1)
    disp.plot()
    np.testing.assert_allclose(disp.selected_[0].get_offsets()[0], [0.1, 0.8])
    with pytest.raises(ValueError, match="objectives must name"):
        disp.plot(objectives=["robustness"])
    with pytest.raises(ValueError, match="three_d=True"):
        disp.plot(three_d=True)


def test_convergence_shows_hypervolume_and_best_objectives(fitted):
    disp = ConvergenceDisplay.from_estimator(fitted)
    labels = [a.get_ylabel() for a in disp.axes_]
    assert labels == ["hypervolume", "best accuracy", "best complexity"]
    line = disp.lines_[0]
    np.testing.assert_array_equal(line.get_xdata(),
                                  [h["n_evaluations"] for h in fitted.history_])
    hv = np.asarray(line.get_ydata())
    # the front only improves, so its hypervolume never falls
    assert np.all(np.diff(hv) >= -1e-12) and 0 < hv[-1] <= 1
    fig, ax = plt.subplots()
    disp = ConvergenceDisplay.from_estimator(fitted, metrics=["hypervolume"], ax=ax)
    assert disp.ax_ is ax and len(disp.lines_) == 1
    with pytest.raises(ValueError, match="metrics must name"):
        ConvergenceDisplay.from_estimator(fitted, metrics=["loss"])


def test_gene_frequency_display_ranks_named_genes(fitted):
    freq = gene_frequency(fitted)
    genomes = np.array([m.genome for m in fitted.pareto_front_])
    np.testing.assert_allclose(freq, genomes.mean(axis=0))
    disp = GeneFrequencyDisplay.from_estimator(fitted, n_top=5)
    assert len(disp.bars_) == len(freq) and len(disp.top_bars_) == 5
    ranking = disp.axes_[1]
    by_height = dict(zip(ranking.get_yticks(), (t.get_text() for t in ranking.get_yticklabels())))
    top_gene = int(np.argmax(freq))
    assert by_height[max(by_height)] == fitted.gene_names_[top_gene] == f"x{top_gene}"
    assert len(by_height) == 5 and disp.top_genes_[0] == top_gene
    fig, ax = plt.subplots()
    disp = GeneFrequencyDisplay.from_estimator(fitted, kind="top", n_top=3, ax=ax)
    assert disp.ax_ is ax and disp.bars_ is None and len(disp.ranking_bars_) == 3
    with pytest.raises(ValueError, match="kind"):
        GeneFrequencyDisplay.from_estimator(fitted, kind="some")
    with pytest.raises(ValueError, match="n_top"):
        GeneFrequencyDisplay.from_estimator(fitted, n_top=0)


def test_displays_need_a_fitted_estimator(make_tiny):
    from sklearn.exceptions import NotFittedError

    for display in (ParetoFrontDisplay, ConvergenceDisplay, GeneFrequencyDisplay):
        with pytest.raises(NotFittedError):
            display.from_estimator(make_tiny(backbone=None))
    with pytest.raises(NotFittedError):
        gene_frequency(make_tiny(backbone=None))
