"""
====================
Explaining with SHAP
====================

Which backbone features does a pruned network rely on, and which pixels of
an image drive its prediction? :meth:`~evoprune_sklearn.EvoPruneClassifier.explain`
returns a :class:`shap.Explanation`, so shap's own plots draw it: a beeswarm
of the genes, an image plot of the pixels. ``method="pruning"`` asks a
different question, what the network would lose if a gene were pruned, and
shap's permutation explainer answers it.
"""

# %%
# Fit
# ---
import matplotlib.pyplot as plt
import numpy as np
import shap
from sklearn.model_selection import train_test_split

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn.datasets import load_digits_images

X, y = load_digits_images(size=32, n_per_class=80)  # 800 digits keep the build fast
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
clf = EvoPruneClassifier(
    image_size=32,
    hidden_layer_sizes=(32,),
    objectives=("accuracy", "complexity"),
    pop_size=10,
    n_evaluations=20,
    random_state=0,
).fit(X_train, y_train)
member = clf.pareto_front_[clf.best_index_]
print(f"selected member reads {member.n_active} of {member.genome.size} features")
print("gene names:", clf.gene_names_[:3], "...")

# %%
# Explain eight test digits
# -------------------------
# Each sample's explained quantity is the log-probability of its predicted
# class. By default the values are expected gradients (what
# ``shap.GradientExplainer`` computes) against a small stratified background
# of training images kept at fit time; ``random_state`` makes them
# reproducible. Rows are digits, columns genes, named by ``gene_names_``.
exp = clf.explain(X_test[:8], random_state=0)
print(exp)
print("values:", exp.values.shape, " pixels:", exp.pixels.values.shape)

# %%
# Genes: shap's beeswarm
# ----------------------
# One dot per explained digit and gene, coloured by the feature's value.
# Features the member pruned have value zero everywhere and end up in the
# "other features" row.
shap.plots.beeswarm(exp, max_display=12, show=False)

# %%
# Pixels: shap's image plot
# -------------------------
# ``exp.pixels`` is a :class:`shap.Explanation` of per-pixel values at the
# images' own resolution, channels last, holding the images as its ``data``:
# exactly what :func:`shap.image_plot` takes. Red pixels raise the predicted
# class's log-probability, blue ones lower it.
shap.image_plot(exp.pixels[:4], show=False)

# %%
# The same in one figure: :class:`~evoprune_sklearn.plotting.ExplanationDisplay`
# overlays smoothed heatmaps on the digits and ranks the top genes, with how
# often each is kept across the whole front.
from evoprune_sklearn.plotting import ExplanationDisplay

disp = ExplanationDisplay.from_explanation(exp, n_images=8, n_cols=4)

# %%
# Importance and frequency
# ------------------------
# ``gene_importance`` is the mean absolute value of each feature over the
# explained images; pruned features get exactly zero. ``gene_frequency`` is
# how often a feature is kept across the front, the papers' notion of an
# influential feature. ``combined_score`` multiplies the (normalised) two, and
# ``to_frame()`` lists all three by gene name.
print("pruned features with non-zero importance:",
      int(np.count_nonzero(exp.gene_importance[~member.genome])))
exp.to_frame().head(8)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
on = member.genome
ax.scatter(exp.gene_frequency[on], exp.gene_importance[on], s=10, alpha=0.5,
           label="features kept by the member")
ax.scatter(exp.gene_frequency[exp.top_genes_combined],
           exp.gene_importance[exp.top_genes_combined], s=60, facecolors="none",
           edgecolors="tab:red", label="top by combined score")
ax.set_xlabel("fraction of front members keeping the feature")
ax.set_ylabel("mean |SHAP| on these images")
ax.legend(fontsize="small")
ax.grid(alpha=0.3)

# %%
# Pruning next to gradient
# ------------------------
# The gradient method compares each digit with *typical training digits*: a
# feature that is as high here as everywhere gets no credit, however much
# the network uses it. ``method="pruning"`` compares with the *pruned*
# network: shap's permutation explainer switches genes off exactly as pruning
# does (on cached backbone features, so a few thousand head evaluations per
# digit) and reports what removing each gene would cost. Its values add up
# exactly to the log-probability minus that of the member with every feature
# pruned.
exp_pruning = clf.explain(X_test[:8], method="pruning", pixels=False, random_state=0)

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
shap.plots.bar(exp, max_display=8, ax=axes[0], show=False)
axes[0].set_title('method="gradient"')
shap.plots.bar(exp_pruning, max_display=8, ax=axes[1], show=False)
axes[1].set_title('method="pruning"')

# %%
# How much do the two rankings agree? Both give zero to every pruned
# feature; among the kept ones they share some of the top genes but not all:
# features that are large in every digit matter to pruning, not to the
# gradient.
top_gradient = set(exp.top_genes)
top_pruning = set(exp_pruning.top_genes)
print(f"top-10 genes in common: {len(top_gradient & top_pruning)}")
rho = np.corrcoef(exp.gene_importance[on], exp_pruning.gene_importance[on])[0, 1]
print(f"correlation of the importances over kept genes: {rho:.2f}")
logp = np.log(clf.predict_proba(X_test[:8])).max(axis=1)
gap = np.abs(exp_pruning.values.sum(axis=1) + exp_pruning.base_values - logp).max()
print(f"pruning values + base value = log-probability, up to {gap:.1e}")

# %%
# A waterfall of the first digit: from the fully pruned member (the base
# value) to the member's prediction, gene by gene.
shap.plots.waterfall(exp_pruning[0], max_display=10, show=False)

# %%
# Explaining the ensemble
# -----------------------
# ``member="front"`` explains the soft vote of the whole front (the log of
# the members' mean probability) instead of one member. Gene values only
# (``pixels=False``) are much cheaper than pixel maps.
exp_ensemble = clf.explain(X_test[:8], member="front", pixels=False, random_state=0)
print("features with non-zero importance, selected member:",
      int(np.count_nonzero(exp.gene_importance)),
      " ensemble:", int(np.count_nonzero(exp_ensemble.gene_importance)))

plt.show()
