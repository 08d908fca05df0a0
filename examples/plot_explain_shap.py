"""
====================
Explaining with SHAP
====================

Which backbone features does a pruned network rely on, and which pixels of
an image drive its prediction? :meth:`~evoprune_sklearn.EvoPruneClassifier.explain`
answers both with SHAP (expected gradients) in one call.
"""

# %%
# Fit
# ---
import numpy as np
from sklearn.model_selection import train_test_split

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn.datasets import load_digits_images

X, y = load_digits_images(size=32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
clf = EvoPruneClassifier(
    image_size=32,
    hidden_layer_sizes=(32,),
    objectives=("accuracy", "complexity"),
    pop_size=10,
    n_evaluations=30,
    lr=1e-2,
    random_state=0,
).fit(X_train, y_train)
member = clf.pareto_front_[clf.best_index_]
print(f"selected member reads {member.n_active} of {member.genome.size} features")

# %%
# Explain eight test digits
# -------------------------
# Each sample's explained quantity is the log-probability of its predicted
# class. SHAP values are computed against a small stratified background of
# training images kept at fit time; ``random_state`` makes them reproducible.
exp = clf.explain(X_test[:8], random_state=0)
print("pixel attributions:", exp.pixel_attributions.shape)
print("predicted:", exp.predicted, " true:", y_test[exp.sample_index])

# %%
# Heatmaps
# --------
# Red pixels raise the predicted class's log-probability, blue ones lower it.
# The bar chart ranks the features the member relies on most for these
# images, with how often each is kept across the whole front.
from evoprune_sklearn.plotting import plot_explanation

fig = plot_explanation(exp, X_test)

# %%
# Genes: importance and frequency
# -------------------------------
# ``gene_importance`` is the mean absolute SHAP value of each feature over the
# explained images; pruned features get exactly zero. ``gene_frequency`` is
# how often a feature is kept across the front, the papers' notion of an
# influential feature. ``combined_score`` multiplies the (normalised) two:
# high only for features that matter here *and* survive pruning everywhere.
print("pruned features with non-zero importance:",
      int(np.count_nonzero(exp.gene_importance[~member.genome])))
print("top features by importance:         ", exp.top_genes)
print("top features by importance x frequency:", exp.top_genes_combined)

# %%
import matplotlib.pyplot as plt

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
fig.tight_layout()

# %%
# Explaining the ensemble
# -----------------------
# ``member="ensemble"`` explains the soft vote of the whole front (the log of
# the members' mean probability) instead of one member. Here we ask for gene
# importances only (``pixels=False``), which is much cheaper than pixel maps.
exp_ensemble = clf.explain(X_test[:8], member="ensemble", pixels=False, random_state=0)
print("features with non-zero importance, selected member:",
      int(np.count_nonzero(exp.gene_importance)),
      " ensemble:", int(np.count_nonzero(exp_ensemble.gene_importance)))
