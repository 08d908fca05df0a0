"""Figures of a fitted :class:`EvoPruneClassifier`, as scikit-learn Display objects.

Each Display is built with ``from_estimator(clf, ..., ax=None)`` (or from
precomputed values with its constructor) and draws with ``plot(ax=None)``.
Without ``ax`` the figure is created through :mod:`matplotlib.pyplot`, so
``plt.show()`` shows it and notebooks and Sphinx-Gallery display it. With
``ax`` the display draws into your own Axes: one Axes (a view of several
panels is laid out inside its area, as
:class:`~sklearn.inspection.PartialDependenceDisplay` does) or an array of
as many Axes as the view has panels.

After ``plot`` every Display holds ``figure_``, ``ax_`` (the first panel),
``axes_`` (every panel, an ndarray), ``bounding_ax_`` (the Axes a view of
several panels was laid out in, or None) and its named artists.
"""

import numbers

import numpy as np

from ._explain import check_int
from ._front import gene_frequencies
from .robustness import robustness_report

__all__ = [
    "ParetoFrontDisplay",
    "ConvergenceDisplay",
    "GeneFrequencyDisplay",
    "ExplanationDisplay",
    "RobustnessDisplay",
    "gene_frequency",
]


# --------------------------------------------------------------------- panels
def _check_fitted(clf):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(clf, "pareto_front_")


def _layout_axes(ax, slots, shape, figsize):
    """The Axes of a view of several panels.

    Parameters
    ----------
    ax : None, Axes or array-like of Axes
        None: a new pyplot figure of ``figsize``. One Axes: the panels are
        laid out inside its area (it is switched off and kept as the
        bounding Axes); with a single panel it is drawn into directly.
        Array-like: one Axes per slot, used as given.
    slots : list of (rows, cols, projection)
        Grid position (slices or ints) and projection (None or "3d") of
        every panel.
    shape : (n_rows, n_cols)
        The grid the slots index.

    Returns
    -------
    figure, axes (ndarray of Axes, one per slot), bounding_ax (Axes or None)
    """
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is None:
        fig = plt.figure(figsize=figsize, layout="constrained")
        grid = fig.add_gridspec(*shape)
        axes = [fig.add_subplot(grid[r, c], projection=p) for r, c, p in slots]
        return fig, _as_array(axes), None
    if isinstance(ax, Axes):
        fig = ax.figure
        if len(slots) == 1 and (slots[0][2] is None) == (ax.name != "3d"):
            return fig, _as_array([ax]), None
        spec = ax.get_subplotspec()
        ax.set_axis_off()
        if spec is not None:
            grid = spec.subgridspec(*shape)
            axes = [fig.add_subplot(grid[r, c], projection=p) for r, c, p in slots]
        else:  # an Axes placed by hand: split its rectangle
            box = ax.get_position()
            n_rows, n_cols = shape
            w, h = box.width / n_cols, box.height / n_rows
            axes = []
            for r, c, p in slots:
                r0, r1 = _span(r, n_rows)
                c0, c1 = _span(c, n_cols)
                rect = [box.x0 + c0 * w, box.y1 - r1 * h, (c1 - c0) * w, (r1 - r0) * h]
                axes.append(fig.add_axes(rect, projection=p))
        return fig, _as_array(axes), ax
    axes = np.asarray(ax, dtype=object).ravel()
    if len(axes) != len(slots) or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(
            f"ax must be None, one matplotlib Axes or an array of {len(slots)} Axes "
            f"(one per panel of this view), got {len(axes)} object(s)."
        )
    for a, (_, _, p) in zip(axes, slots):
        if p == "3d" and a.name != "3d":
            raise ValueError(
                "The last panel of this view is 3-D: create its Axes with "
                "projection='3d', or draw without the 3-D panel (three_d=False)."
            )
    return axes[0].figure, axes, None


def _span(index, n):
    if isinstance(index, slice):
        start, stop, _ = index.indices(n)
        return start, stop
    return index, index + 1


def _as_array(items):
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


class _Display:
    """Attributes shared by every Display once it has drawn."""

    def _set_axes(self, fig, axes, bounding_ax):
        self.figure_ = fig
        self.axes_ = axes
        self.ax_ = axes[0]
        self.bounding_ax_ = bounding_ax


# ---------------------------------------------------------------- Pareto front
def _axis_label(name):
    return name + (" (fraction of genes on)" if name == "complexity" else "")


def _axis_pair(a, b):
    # complexity on x reads naturally: smaller networks to the left
    return (b, a) if b == "complexity" else (a, b)


class ParetoFrontDisplay(_Display):
    """The Pareto front: one 2-D panel per pair of objectives, and 3-D with three.

    Every front member is a dot; the member :meth:`~EvoPruneClassifier.predict`
    uses is circled in red.

    Parameters
    ----------
    objectives : dict of str to array-like of shape (n_members,)
        Objective values of every member, in the order to draw them.
    selected : int or None, default=None
        Index of the member to circle.

    Attributes
    ----------
    scatters_ : ndarray of PathCollection
        The members, one collection per panel.
    selected_ : ndarray of PathCollection or None
        The circled member, one per panel.
    ax_, axes_, figure_, bounding_ax_
        Where it was drawn (see :mod:`evoprune_sklearn.plotting`).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.plotting import ParetoFrontDisplay
    >>> X, y = make_classification(n_samples=100, n_features=10, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
    ...                          n_evaluations=8, objectives=("accuracy", "complexity"),
    ...                          random_state=0).fit(X, y)
    >>> fig, ax = plt.subplots()
    >>> disp = ParetoFrontDisplay.from_estimator(clf, ax=ax)
    >>> disp.ax_ is ax, ax.get_ylabel()
    (True, 'accuracy')
    """

    def __init__(self, objectives, *, selected=None):
        self.objectives = {k: np.asarray(v, dtype=float) for k, v in objectives.items()}
        self.selected = selected

    @classmethod
    def from_estimator(cls, estimator, *, objectives=None, three_d=None, ax=None):
        """Draw the front of a fitted estimator.

        Parameters
        ----------
        estimator : EvoPruneClassifier
            A fitted estimator.
        objectives : list of str, default=None
            The objectives to draw, every pair of them (all when None).
        three_d : bool, default=None
            Add a 3-D panel of three objectives (default: when exactly three
            are drawn).
        ax : matplotlib Axes or array-like of Axes, default=None
            Where to draw; see :mod:`evoprune_sklearn.plotting`.

        Returns
        -------
        display : ParetoFrontDisplay
        """
        _check_fitted(estimator)
        return cls.from_front(estimator.pareto_front_, selected=estimator.best_index_,
                              objectives=objectives, three_d=three_d, ax=ax)

    @classmethod
    def from_front(cls, front, *, selected=None, objectives=None, three_d=None, ax=None):
        """Draw a :class:`~evoprune_sklearn.ParetoFront` (no estimator needed).

        Parameters
        ----------
        front : ParetoFront
            E.g. ``clf.pareto_front_``, or a front a callback received.
        selected : int, str or SelectionRule, default=None
            The member to circle: an index, or a rule ``front.select`` takes
            (``"knee"``, ...); none when None.
        objectives : list of str, default=None
            The objectives to draw, every pair of them (all when None).
        three_d : bool, default=None
            Add a 3-D panel of three objectives (default: when exactly three
            are drawn).
        ax : matplotlib Axes or array-like of Axes, default=None
            Where to draw; see :mod:`evoprune_sklearn.plotting`.

        Returns
        -------
        display : ParetoFrontDisplay
        """
        values = {n: front.F[:, j] for j, n in enumerate(front.objective_names)}
        if selected is not None:
            selected = front.select(selected)
        disp = cls(values, selected=selected)
        return disp.plot(ax=ax, objectives=objectives, three_d=three_d)

    def plot(self, ax=None, *, objectives=None, three_d=None):
        """Draw the panels.

        Parameters
        ----------
        ax : matplotlib Axes or array-like of Axes, default=None
            Where to draw; see :mod:`evoprune_sklearn.plotting`.
        objectives : list of str, default=None
            The objectives to draw (all when None).
        three_d : bool, default=None
            Add a 3-D panel (default: when exactly three objectives are drawn).

        Returns
        -------
        display : ParetoFrontDisplay
        """
        names = list(self.objectives) if objectives is None else list(objectives)
        unknown = [n for n in names if n not in self.objectives]
        if unknown or not names:
            raise ValueError(
                f"objectives must name some of {list(self.objectives)}, got {objectives!r}."
            )
        if three_d is None:
            three_d = len(names) == 3
        elif three_d and len(names) != 3:
            raise ValueError(
                f"three_d=True needs exactly three objectives, got {len(names)}: {names}."
            )
        pairs = [_axis_pair(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
        n_panels = max(1, len(pairs)) + int(three_d)
        slots = [(0, k, None) for k in range(max(1, len(pairs)))]
        if three_d:
            slots.append((0, n_panels - 1, "3d"))
        fig, axes, bounding = _layout_axes(ax, slots, (1, n_panels), (4.5 * n_panels, 4))
        sel = self.selected
        circle = dict(s=160, facecolors="none", edgecolors="tab:red", linewidths=2)
        scatters, selected = [], []
        if not pairs:  # a single objective: its value per member
            v = self.objectives[names[0]]
            a = axes[0]
            scatters.append(a.scatter(np.arange(len(v)), v, c="tab:blue"))
            if sel is not None:
                selected.append(a.scatter([sel], [v[sel]], **circle))
            a.set_xlabel("member")
            a.set_ylabel(names[0])
        for a, (x, y) in zip(axes, pairs):
            vx, vy = self.objectives[x], self.objectives[y]
            scatters.append(a.scatter(vx, vy, c="tab:blue", label="front member"))
            if sel is not None:
                selected.append(a.scatter([vx[sel]], [vy[sel]], label="selected (predict)",
                                          **circle))
            a.set_xlabel(_axis_label(x))
            a.set_ylabel(y)
            a.grid(alpha=0.3)
            a.legend(loc="best", fontsize="small")
        if three_d:
            a = axes[-1]
            x, y, z = names
            v = [self.objectives[n] for n in names]
            scatters.append(a.scatter(*v, c="tab:blue", depthshade=False))
            if sel is not None:
                selected.append(a.scatter(*[[c[sel]] for c in v], **circle))
            a.set_xlabel(x)
            a.set_ylabel(y)
            a.set_zlabel(z)
        n_members = len(next(iter(self.objectives.values())))
        title = f"Pareto front: {n_members} members"
        if bounding is not None:
            bounding.set_title(title)
        elif ax is None and len(axes) > 1:
            fig.suptitle(title)
        else:
            axes[0].set_title(title)
        self.scatters_ = _as_array(scatters)
        self.selected_ = _as_array(selected) if sel is not None else None
        self._set_axes(fig, axes, bounding)
        return self


# ------------------------------------------------------------------ convergence
class ConvergenceDisplay(_Display):
    """Hypervolume and best value of every objective over the evaluations.

    Curves that still rise at the right edge mean more ``n_evaluations``
    would pay. The hypervolume uses a fixed reference point (each
    objective's worst value; see ``history_``), so curves of different fits
    are comparable.

    Parameters
    ----------
    n_evaluations : array-like of shape (n_generations,)
        Evaluations done at the end of each generation.
    metrics : dict of str to array-like of shape (n_generations,)
        Values to draw, one panel each (``"hypervolume"``, ``"best_<objective>"``).

    Attributes
    ----------
    lines_ : ndarray of Line2D
        One curve per panel.
    ax_, axes_, figure_, bounding_ax_
        Where it was drawn (see :mod:`evoprune_sklearn.plotting`).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.plotting import ConvergenceDisplay
    >>> X, y = make_classification(n_samples=100, n_features=10, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
    ...                          n_evaluations=12, random_state=0).fit(X, y)
    >>> disp = ConvergenceDisplay.from_estimator(clf)
    >>> [a.get_ylabel() for a in disp.axes_][:3]
    ['hypervolume', 'best accuracy', 'best complexity']
    """

    def __init__(self, n_evaluations, metrics):
        self.n_evaluations = np.asarray(n_evaluations)
        self.metrics = {k: np.asarray(v, dtype=float) for k, v in metrics.items()}

    @classmethod
    def from_estimator(cls, estimator, *, metrics=None, ax=None):
        """Draw the convergence of a fitted estimator's search.

        Parameters
        ----------
        estimator : EvoPruneClassifier
            A fitted estimator.
        metrics : list of str, default=None
            Panels to draw, among ``"hypervolume"`` and ``"best_<objective>"``
            (all when None).
        ax : matplotlib Axes or array-like of Axes, default=None
            Where to draw; see :mod:`evoprune_sklearn.plotting`.

        Returns
        -------
        display : ConvergenceDisplay
        """
        _check_fitted(estimator)
        history = estimator.history_
        names = estimator.pareto_front_.objective_names
        keys = (["hypervolume"] if history and "hypervolume" in history[0] else [])
        keys += [f"best_{n}" for n in names]
        disp = cls([h["n_evaluations"] for h in history],
                   {k: [h[k] for h in history] for k in keys})
        return disp.plot(ax=ax, metrics=metrics)

    def plot(self, ax=None, *, metrics=None):
        """Draw one panel per metric.

        Parameters
        ----------
        ax : matplotlib Axes or array-like of Axes, default=None
            Where to draw; see :mod:`evoprune_sklearn.plotting`.
        metrics : list of str, default=None
            Panels to draw (all when None).

        Returns
        -------
        display : ConvergenceDisplay
        """
        keys = list(self.metrics) if metrics is None else list(metrics)
        unknown = [k for k in keys if k not in self.metrics]
        if unknown or not keys:
            raise ValueError(f"metrics must name some of {list(self.metrics)}, got {metrics!r}.")
        slots = [(0, k, None) for k in range(len(keys))]
        fig, axes, bounding = _layout_axes(ax, slots, (1, len(keys)), (3.8 * len(keys), 3.4))
        lines = []
        for a, key in zip(axes, keys):
            (line,) = a.plot(self.n_evaluations, self.metrics[key], marker="o", ms=3)
            lines.append(line)
            a.set_xlabel("evaluations")
            a.set_ylabel(key.replace("best_", "best "))
            a.grid(alpha=0.3)
        if ax is None and len(keys) > 1:
            fig.suptitle("Search convergence")
        self.lines_ = _as_array(lines)
        self._set_axes(fig, axes, bounding)
        return self


# --------------------------------------------------------------- gene frequency
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
    return gene_frequencies(clf.pareto_front_.genomes)


def _gene_names(clf):
    names = getattr(clf, "gene_names_", None)
    if names is None:
        names = [f"gene{k}" for k in range(clf.n_genes_)]
    return [str(n) for n in names]


class GeneFrequencyDisplay(_Display):
    """How often each gene is on across the front: the "most influential" genes.

    Genes kept by nearly every member, whatever its size, are the ones the
    search could not prune without losing accuracy (the papers' most
    influential features or neurons). The ``"all"`` panel shows every gene
    in order (layer boundaries dashed for two layers of neurons), the
    ``n_top`` most frequent ones in red; the ``"top"`` panel ranks them by
    name.

    Parameters
    ----------
    frequency : array-like of shape (n_genes,)
        Fraction of front members keeping each gene.
    gene_names : list of str, default=None
        One name per gene; ``"gene<k>"`` when None.
    layer_sizes : tuple of int, default=None
        Hidden layer sizes when genes are neurons of several layers (their
        boundaries are drawn).
    n_members : int, default=None
        Front size, for the title.

    Attributes
    ----------
    bars_ : BarContainer or None
        Every gene (``"all"`` panel).
    top_bars_ : BarContainer or None
        The ``n_top`` most frequent genes, highlighted in the ``"all"`` panel.
    ranking_bars_ : BarContainer or None
        The ranking (``"top"`` panel).
    top_genes_ : ndarray of int
        The ``n_top`` most frequent genes, most frequent first.
    ax_, axes_, figure_, bounding_ax_
        Where it was drawn (see :mod:`evoprune_sklearn.plotting`).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.plotting import GeneFrequencyDisplay
    >>> X, y = make_classification(n_samples=100, n_features=10, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
    ...                          n_evaluations=8, random_state=0).fit(X, y)
    >>> disp = GeneFrequencyDisplay.from_estimator(clf, n_top=3)
    >>> len(disp.axes_), len(disp.ranking_bars_)
    (2, 3)
    """

    def __init__(self, frequency, *, gene_names=None, layer_sizes=None, n_members=None):
        self.frequency = np.asarray(frequency, dtype=float)
        self.gene_names = ([f"gene{k}" for k in range(len(self.frequency))]
                           if gene_names is None else [str(n) for n in gene_names])
        self.layer_sizes = layer_sizes
        self.n_members = n_members

    @classmethod
    def from_estimator(cls, estimator, *, kind="both", n_top=10, ax=None):
        """Draw the gene frequency of a fitted estimator's front.

        Parameters
        ----------
        estimator : EvoPruneClassifier
            A fitted estimator.
        kind : {"both", "all", "top"}, default="both"
            ``"all"``: every gene; ``"top"``: the ``n_top`` ranking; both
            side by side.
        n_top : int, default=10
            Genes highlighted and ranked.
        ax : matplotlib Axes or array-like of Axes, default=None
            Where to draw; see :mod:`evoprune_sklearn.plotting`.

        Returns
        -------
        display : GeneFrequencyDisplay
        """
        freq = gene_frequency(estimator)
        layers = None
        if estimator.get_params(deep=False).get("encoding") == "neurons":
            layers = tuple(int(h) for h in estimator.hidden_layer_sizes)
        disp = cls(freq, gene_names=_gene_names(estimator), layer_sizes=layers,
                   n_members=len(estimator.pareto_front_))
        return disp.plot(ax=ax, kind=kind, n_top=n_top)

    def plot(self, ax=None, *, kind="both", n_top=10):
        """Draw the panels.

        Parameters
        ----------
        ax : matplotlib Axes or array-like of Axes, default=None
            Where to draw; see :mod:`evoprune_sklearn.plotting`.
        kind : {"both", "all", "top"}, default="both"
            Which panels.
        n_top : int, default=10
            Genes highlighted and ranked.

        Returns
        -------
        display : GeneFrequencyDisplay
        """
        if kind not in ("both", "all", "top"):
            raise ValueError(f"kind must be 'both', 'all' or 'top', got {kind!r}.")
        n_top = min(check_int(n_top, "n_top"), len(self.frequency))
        freq = self.frequency
        best = np.argsort(-freq, kind="stable")[:n_top]
        panels = ["all", "top"] if kind == "both" else [kind]
        slots = [(0, k, None) for k in range(len(panels))]
        fig, axes, bounding = _layout_axes(ax, slots, (1, len(panels)),
                                           (5.5 * len(panels), 3.6))
        self.bars_ = self.top_bars_ = self.ranking_bars_ = None
        for a, panel in zip(axes, panels):
            if panel == "all":
                genes = np.arange(len(freq))
                self.bars_ = a.bar(genes, freq, width=1.0, color="tab:blue")
                self.top_bars_ = a.bar(best, freq[best], width=1.0, color="tab:red",
                                       label=f"top {n_top}")
                if self.layer_sizes and len(self.layer_sizes) > 1:
                    for edge in np.cumsum(self.layer_sizes)[:-1]:
                        a.axvline(edge - 0.5, color="k", ls="--", lw=1)
                a.set_xlabel("gene (position in the genome)")
                a.set_ylabel("fraction of front members with gene on")
                a.set_ylim(0, 1.05)
                a.legend(loc="upper right", fontsize="small")
            else:
                pos = np.arange(n_top)[::-1]
                self.ranking_bars_ = a.barh(pos, freq[best], color="tab:red")
                a.set_yticks(pos, [self.gene_names[g] for g in best], fontsize="small")
                a.set_xlim(0, 1.05)
                a.set_xlabel("fraction of front members")
                a.set_title(f"{n_top} most frequent genes")
        if ax is None and self.n_members is not None:
            fig.suptitle(f"Gene frequency across {self.n_members} front members")
        self.top_genes_ = best
        self._set_axes(fig, axes, bounding)
        return self


# ------------------------------------------------------------------ explanations
class ExplanationDisplay(_Display):
    """Pixel heatmaps over the explained images, and the top genes.

    Red marks pixels that raise the target class's log-probability, blue
    pixels that lower it; opacity grows with magnitude. The bar chart ranks
    the top genes by mean absolute value and prints how often each is on
    across the Pareto front. For shap's own views pass the explanation to
    ``shap.plots.*`` or ``shap.image_plot(explanation.pixels)``.

    Parameters
    ----------
    explanation : Explanation
        What :meth:`EvoPruneClassifier.explain` returned.

    Attributes
    ----------
    heatmaps_ : ndarray of AxesImage or None
        The attribution overlay of every image panel.
    bars_ : BarContainer or None
        The top genes.
    ax_, axes_, figure_, bounding_ax_
        Where it was drawn (see :mod:`evoprune_sklearn.plotting`). ``axes_``
        holds the image panels, then the gene panel; ``ax_`` is the gene
        panel when there is one, otherwise the first image.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.plotting import ExplanationDisplay
    >>> X, y = make_classification(n_samples=100, n_features=8, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
    ...                          n_evaluations=8, random_state=0).fit(X, y)
    >>> disp = ExplanationDisplay.from_estimator(clf, X[:5], n_top=3)
    >>> [t.get_text() for t in disp.ax_.get_yticklabels()][0] in clf.gene_names_
    True
    """

    def __init__(self, explanation):
        from ._explanation import Explanation

        if not isinstance(explanation, Explanation):
            raise TypeError(
                "explanation must be an evoprune_sklearn Explanation (what "
                f"EvoPruneClassifier.explain returns), got {type(explanation).__name__}."
            )
        self.explanation = explanation

    @classmethod
    def from_estimator(cls, estimator, X, *, kind="both", n_images=8, n_cols=4, n_top=10,
                       smooth=1.0, ax=None, explain_params=None):
        """Explain ``X`` with ``estimator.explain`` and draw the result.

        Parameters
        ----------
        estimator : EvoPruneClassifier
            A fitted estimator.
        X : array-like
            Images or features to explain, as in ``fit``.
        kind, n_images, n_cols
            See :meth:`plot`.
        n_top : int, default=10
            Genes ranked.
        smooth, ax
            See :meth:`plot`.
        explain_params : dict, default=None
            More arguments of :meth:`EvoPruneClassifier.explain` (``member``,
            ``method``, ``random_state``, ...).

        Returns
        -------
        display : ExplanationDisplay
        """
        _check_fitted(estimator)
        params = dict(explain_params or {})
        params.setdefault("n_top", n_top)
        explanation = estimator.explain(X, **params)
        return cls(explanation).plot(ax=ax, kind=kind, n_images=n_images, n_cols=n_cols,
                                     smooth=smooth)

    @classmethod
    def from_explanation(cls, explanation, *, kind="both", n_images=8, n_cols=4,
                         smooth=1.0, ax=None):
        """Draw an explanation already computed.

        Parameters
        ----------
        explanation : Explanation
            What :meth:`EvoPruneClassifier.explain` returned.
        kind, n_images, n_cols, smooth, ax
            See :meth:`plot`.

        Returns
        -------
        display : ExplanationDisplay
        """
        return cls(explanation).plot(ax=ax, kind=kind, n_images=n_images, n_cols=n_cols,
                                     smooth=smooth)

    def plot(self, ax=None, *, kind="both", n_images=8, n_cols=4, smooth=1.0):
        """Draw heatmaps and/or the top genes.

        Parameters
        ----------
        ax : matplotlib Axes or array-like of Axes, default=None
            Where to draw; see :mod:`evoprune_sklearn.plotting`. An array
            holds one Axes per image, then one for the genes.
        kind : {"both", "pixels", "genes"}, default="both"
            ``"both"`` draws only the genes when there are no pixel
            attributions.
        n_images : int, default=8
            Images shown (the first explained ones).
        n_cols : int, default=4
            Columns of the image grid.
        smooth : float, default=1.0
            Standard deviation, in pixels, of a Gaussian blur applied to the
            attributions before drawing (display only): expected gradients
            are speckled at the pixel level, and the blur shows the regions
            they concentrate in. 0 draws them raw.

        Returns
        -------
        display : ExplanationDisplay
        """
        from matplotlib import colormaps, colors

        if kind not in ("both", "pixels", "genes"):
            raise ValueError(f"kind must be 'both', 'pixels' or 'genes', got {kind!r}.")
        n_images = check_int(n_images, "n_images")
        n_cols = check_int(n_cols, "n_cols")
        if not isinstance(smooth, numbers.Real) or isinstance(smooth, bool) or smooth < 0:
            raise ValueError(f"smooth must be a non-negative number, got {smooth!r}.")
        exp = self.explanation
        if kind == "pixels" and not exp.has_pixel_attributions:
            raise ValueError(f"kind='pixels' cannot be drawn: {exp.pixel_error}")
        show_pixels = kind != "genes" and exp.has_pixel_attributions
        show_genes = kind != "pixels"
        shown = min(n_images, len(exp.sample_index)) if show_pixels else 0
        n_cols = min(n_cols, shown) if shown else 0
        n_rows = int(np.ceil(shown / n_cols)) if shown else 1
        slots = [(k // n_cols, k % n_cols, None) for k in range(shown)]
        bar_cols = 2 if show_pixels else 1
        if show_genes:
            slots.append((slice(None), slice(n_cols, n_cols + bar_cols), None))
        shape = (n_rows, n_cols + (bar_cols if show_genes else 0))
        figsize = ((2.2 * n_cols + (4.5 if show_genes else 0), max(2.4 * n_rows, 3.5))
                   if show_pixels else (5, 0.35 * len(exp.top_genes) + 1.5))
        fig, axes, bounding = _layout_axes(ax, slots, shape, figsize)

        heatmaps = []
        if show_pixels:
            values = exp.pixels.values.sum(axis=-1)
            images = exp.pixels.data
            cmap = colormaps["bwr"]
            for k in range(shown):
                a = axes[k]
                # a dimmed image keeps the overlay readable on bright strokes
                a.imshow(images[k].mean(axis=-1), cmap="gray", vmin=-0.6, vmax=1.4)
                v = values[k]
                if smooth > 0:
                    from scipy.ndimage import gaussian_filter

                    v = gaussian_filter(v, sigma=float(smooth))
                vmax = float(np.percentile(np.abs(v), 99.5)) or 1.0
                rgba = cmap(colors.Normalize(-vmax, vmax)(v))
                rgba[..., 3] = np.clip(np.abs(v) / vmax, 0, 1) * 0.85
                heatmaps.append(a.imshow(rgba))
                title = f"class {exp.target[k]}"
                if exp.predicted[k] != exp.target[k]:
                    title += f" (pred {exp.predicted[k]})"
                a.set_title(title, fontsize="small")
                a.set_xticks([])
                a.set_yticks([])
        self.heatmaps_ = _as_array(heatmaps) if show_pixels else None
        self.bars_ = None
        if show_genes:
            a = axes[-1]
            top = exp.top_genes
            imp = exp.gene_importance[top]
            freq = exp.gene_frequency[top]
            pos = np.arange(len(top))[::-1]
            self.bars_ = a.barh(pos, imp, color="tab:orange")
            names = np.asarray(exp.feature_names, dtype=object)[top]
            a.set_yticks(pos, [str(n) for n in names], fontsize="small")
            for p, v, f in zip(pos, imp, freq):
                a.text(v, p, f" {f:.0%}", va="center", fontsize="x-small")
            a.set_xlabel(f"mean |SHAP value| (log-probability, {exp.method})")
            a.set_title(f"top {len(top)} genes\n(% of front members keeping each)",
                        fontsize="medium")
            a.margins(x=0.2)
        self._set_axes(fig, axes, bounding)
        # ax_ is the gene panel when there is one (the last of axes_)
        self.ax_ = axes[-1]
        return self


# ------------------------------------------------------------------ robustness
#: Report columns drawn by RobustnessDisplay, with their axis labels.
_ROBUSTNESS_METRICS = {
    "accuracy": "test accuracy",
    "auroc_near": "OoD AUROC, near",
    "auroc_far": "OoD AUROC, far",
    "fgsm": "accuracy under FGSM",
    "pgd": "accuracy under PGD",
    "fgsm_transfer": "under FGSM (transfer)",
    "pgd_transfer": "under PGD (transfer)",
}
_KIND_COLORS = {"member": "tab:blue", "ensemble": "tab:red", "baseline": "tab:gray"}


class RobustnessDisplay(_Display):
    """Members, ensembles and a baseline side by side: accuracy, OoD, attacks.

    One panel per measure of :func:`~evoprune_sklearn.robustness.robustness_report`
    (those it filled), one horizontal bar per model, coloured by kind
    (members blue, ensembles red, the logistic-regression baseline grey).

    Parameters
    ----------
    report : pandas.DataFrame
        What :func:`~evoprune_sklearn.robustness.robustness_report` returned.

    Attributes
    ----------
    bars_ : ndarray of BarContainer
        The bars of every panel.
    ax_, axes_, figure_, bounding_ax_
        Where it was drawn (see :mod:`evoprune_sklearn.plotting`).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.plotting import RobustnessDisplay
    >>> X, y = make_classification(n_samples=150, n_features=10, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, pop_size=4, n_evaluations=8,
    ...                          random_state=0).fit(X[:100], y[:100])
    >>> disp = RobustnessDisplay.from_estimator(clf, X[100:], y[100:], X_far=X[100:] * 9)
    >>> [a.get_xlabel() for a in disp.axes_]
    ['test accuracy', 'OoD AUROC, far']
    """

    def __init__(self, report):
        import pandas as pd

        if not isinstance(report, pd.DataFrame) or "kind" not in report:
            raise TypeError(
                "report must be the DataFrame robustness_report returns, got "
                f"{type(report).__name__}."
            )
        self.report = report

    @classmethod
    def from_estimator(cls, estimator, X, y, *, X_near=None, X_far=None, metrics=None,
                       ax=None, report_params=None):
        """Measure with :func:`~evoprune_sklearn.robustness.robustness_report` and draw.

        Parameters
        ----------
        estimator : EvoPruneClassifier
            A fitted estimator.
        X, y : array-like
            Held-out in-distribution data.
        X_near, X_far : array-like, default=None
            Near and far OoD samples.
        metrics : list of str, default=None
            Report columns to draw (those filled when None).
        ax : matplotlib Axes or array-like of Axes, default=None
            Where to draw; see :mod:`evoprune_sklearn.plotting`.
        report_params : dict, default=None
            More arguments of ``robustness_report`` (``members``,
            ``ensembles``, ``attacks``, ``eps``, ...).

        Returns
        -------
        display : RobustnessDisplay
        """
        _check_fitted(estimator)
        report = robustness_report(estimator, X, y, X_near=X_near, X_far=X_far,
                                   **(report_params or {}))
        return cls(report).plot(ax=ax, metrics=metrics)

    def plot(self, ax=None, *, metrics=None):
        """Draw one panel per measure.

        Parameters
        ----------
        ax : matplotlib Axes or array-like of Axes, default=None
            Where to draw; see :mod:`evoprune_sklearn.plotting`.
        metrics : list of str, default=None
            Report columns to draw, among ``"accuracy"``, ``"auroc_near"``,
            ``"auroc_far"``, ``"fgsm"``, ``"pgd"``, ``"fgsm_transfer"`` and
            ``"pgd_transfer"`` (those with values when None).

        Returns
        -------
        display : RobustnessDisplay
        """
        report = self.report
        if metrics is None:
            keys = [k for k in _ROBUSTNESS_METRICS
                    if k in report and report[k].notna().any()]
        else:
            keys = list(metrics)
            bad = [k for k in keys if k not in _ROBUSTNESS_METRICS or k not in report]
            if bad or not keys:
                raise ValueError(
                    f"metrics must name some of {list(_ROBUSTNESS_METRICS)}, got {metrics!r}."
                )
        slots = [(0, k, None) for k in range(len(keys))]
        height = 0.9 + 0.32 * len(report)
        fig, axes, bounding = _layout_axes(ax, slots, (1, len(keys)),
                                           (2.7 * len(keys) + 1.5, height))
        names = [str(n) for n in report.index]
        colors = [_KIND_COLORS.get(k, "tab:green") for k in report["kind"]]
        ypos = np.arange(len(names))[::-1]
        bars = []
        for j, (a, key) in enumerate(zip(axes, keys)):
            values = report[key].to_numpy(dtype=float)
            bars.append(a.barh(ypos, np.nan_to_num(values), color=colors))
            a.set_xlabel(_ROBUSTNESS_METRICS[key])
            a.set_yticks(ypos, names if j == 0 else [""] * len(names))
            a.set_xlim(0.5 if key.startswith("auroc") else 0.0, 1.0)
            a.grid(axis="x", alpha=0.3)
        self.bars_ = _as_array(bars)
        self._set_axes(fig, axes, bounding)
        return self
