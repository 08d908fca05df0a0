"""What :meth:`EvoPruneClassifier.explain` returns: a real ``shap.Explanation``.

Kept apart from the computation because it imports shap, which the package
only loads when an explanation is made or this class is asked for.
"""

import numpy as np
import shap

__all__ = ["Explanation"]


class Explanation(shap.Explanation):
    """Gene attributions of a pruned head, as a :class:`shap.Explanation`.

    Every shap plot that takes an Explanation takes this one:
    ``shap.plots.bar(exp)``, ``beeswarm(exp)``, ``heatmap(exp)``,
    ``waterfall(exp[0])``, ``scatter(exp[:, name])``. Rows are explained
    samples, columns genes (named by the estimator's ``gene_names_``).
    Slicing returns plain :class:`shap.Explanation` objects; the
    project-specific summaries below describe the whole set.

    What is explained is the **log-probability of the target class** of each
    sample (the predicted class unless ``target=`` said otherwise), so
    ``values[i].sum() + base_values[i]`` is (exactly for ``method="pruning"``,
    approximately for ``"gradient"``) that log-probability.

    Parameters
    ----------
    values : ndarray of shape (n_explained, n_genes)
        Signed attribution of every gene for every explained sample.
    base_values : ndarray of shape (n_explained,)
        What the values are measured from (see ``method``).
    data : ndarray of shape (n_explained, n_genes)
        The explained inputs of the genes: backbone features (``"features"``
        encoding) or hidden activations (``"neurons"``).
    gene_names : list of str
        One name per gene.
    gene_frequency : ndarray of shape (n_genes,)
        Fraction of Pareto-front members keeping each gene.
    target, predicted : ndarray of shape (n_explained,)
        Class explained and class predicted for each sample.
    sample_index : ndarray of int, shape (n_explained,)
        Rows of the ``X`` passed to ``explain`` that were explained.
    member : int, list of int or "front"
        Which front member(s) were explained.
    classes : ndarray
        The classifier's classes.
    n_top : int
        Length of the ``top_genes`` rankings.
    method : {"gradient", "pruning"}
        How the values were computed.
    pixels : shap.Explanation or None, default=None
        Pixel attributions (image input only).
    pixel_method : str or None, default=None
    pixel_error : str or None, default=None
        Why there are no pixel attributions, raised by ``pixel_attributions``.

    Attributes
    ----------
    values, base_values, data, feature_names
        shap's arrays; ``feature_names`` are the gene names. With
        ``method="gradient"`` the base value is the mean target
        log-probability over the background sample (expected gradients,
        ``shap.GradientExplainer``'s estimator); with ``method="pruning"`` it
        is the target log-probability of the member with every gene pruned
        (``shap.PermutationExplainer``). Genes switched off in the explained
        member(s) get exactly zero.
    gene_importance : ndarray of shape (n_genes,)
        Mean absolute value of each gene over the explained samples.
    top_genes : ndarray of int, shape (n_top,)
        Indices of the ``n_top`` most important genes, most important first.
    gene_frequency : ndarray of shape (n_genes,)
        Fraction of Pareto-front members in which each gene is on (the
        paper's notion of an influential gene).
    combined_score : ndarray of shape (n_genes,)
        ``gene_importance / gene_importance.max() * gene_frequency``: high
        only for genes that matter to these predictions *and* survive
        pruning across the front.
    top_genes_combined : ndarray of int, shape (n_top,)
        The ``n_top`` genes of highest ``combined_score`` (ties: importance).
    target, predicted, sample_index, member, classes, method, pixel_method
        As passed.
    pixel_error : str or None
        Why there are no pixel attributions (None when there are).
    pixels : shap.Explanation or None
        Pixel attributions with ``values`` and ``data`` of shape
        ``(n_explained, H, W, C)`` (channels last, ``C`` as in the input
        images; ``data`` the explained images in ``[0, 1]``): the layout
        ``shap.image_plot(exp.pixels)`` takes. None without image input or
        with ``pixels=False``.

    See Also
    --------
    EvoPruneClassifier.explain : Computes it.
    evoprune_sklearn.plotting.ExplanationDisplay : Heatmaps and top genes.

    Examples
    --------
    >>> import shap
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> X, y = make_classification(n_samples=100, n_features=8, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
    ...                          n_evaluations=8, random_state=0).fit(X, y)
    >>> exp = clf.explain(X[:5], n_top=3, random_state=0)
    >>> isinstance(exp, shap.Explanation), exp.shape
    (True, (5, 8))
    >>> exp.feature_names[:3]
    ['x0', 'x1', 'x2']
    >>> exp.top_genes.shape
    (3,)
    """

    def __init__(self, values, base_values, data, *, gene_names, gene_frequency, target,
                 predicted, sample_index, member, classes, n_top, method,
                 pixels=None, pixel_method=None, pixel_error=None):
        values = np.asarray(values, dtype=np.float64)
        super().__init__(values, base_values=np.asarray(base_values, dtype=np.float64),
                         data=np.asarray(data), feature_names=list(gene_names))
        self.gene_importance = np.abs(values).mean(axis=0)
        self.gene_frequency = np.asarray(gene_frequency, dtype=np.float64)
        peak = self.gene_importance.max() if self.gene_importance.size else 0.0
        scaled = self.gene_importance / peak if peak > 0 else self.gene_importance
        self.combined_score = scaled * self.gene_frequency
        n_top = min(int(n_top), len(self.gene_importance))
        # stable sorts so equal scores keep gene order: the ranking is deterministic
        self.top_genes = np.argsort(-self.gene_importance, kind="stable")[:n_top]
        self.top_genes_combined = np.lexsort(
            (-self.gene_importance, -self.combined_score)
        )[:n_top]
        self.target = np.asarray(target)
        self.predicted = np.asarray(predicted)
        self.sample_index = np.asarray(sample_index)
        self.member = member
        self.classes = classes
        self.method = method
        self.pixels = pixels
        self.pixel_method = pixel_method if pixels is not None else None
        self.pixel_error = None if pixels is not None else pixel_error

    @property
    def pixel_attributions(self):
        """ndarray of shape (n_explained, H, W, C): per-pixel attributions.

        ``pixels.values``: signed contributions to the target class's
        log-probability at the input images' own resolution, channels last
        (``C`` as in the input: 1 for grayscale, 3 for RGB), so that
        ``shap.image_plot(exp.pixel_attributions, images)`` draws them.
        Raises ValueError when there are none (feature input, or
        ``pixels=False``).
        """
        if self.pixels is None:
            raise ValueError(self.pixel_error)
        return self.pixels.values

    @property
    def has_pixel_attributions(self):
        """Whether :attr:`pixel_attributions` is available."""
        return self.pixels is not None

    def to_frame(self):
        """All genes with their importance, frequency and combined score.

        Returns
        -------
        frame : DataFrame
            Indexed by gene name, with the gene's position in the genome
            (``gene_index``), ``importance``, ``frequency`` and
            ``combined_score``; sorted by decreasing combined score (ties:
            importance).
        """
        import pandas as pd

        order = np.lexsort((-self.gene_importance, -self.combined_score))
        frame = pd.DataFrame({
            "gene_index": np.arange(len(self.gene_importance)),
            "importance": self.gene_importance,
            "frequency": self.gene_frequency,
            "combined_score": self.combined_score,
        }, index=pd.Index(list(self.feature_names), name="gene"))
        return frame.iloc[order]

    def __repr__(self):
        pix = f", pixels={self.pixel_method}" if self.has_pixel_attributions else ""
        names = np.asarray(self.feature_names, dtype=object)[self.top_genes[:3]].tolist()
        return (f"Explanation({len(self.sample_index)} samples x {self.shape[1]} genes, "
                f"method={self.method!r}, member={self.member!r}, top_genes={names}{pix})")
