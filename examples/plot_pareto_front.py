"""
========================
Reading the Pareto front
========================

A fit returns a front of pruned networks, not one network. This example
shows the ways to read it: the table, the front itself, the convergence of
the search, and which genes survive across the front.
"""

# %%
# A two-objective search
# ----------------------
# With ``objectives=("accuracy", "complexity")`` the front is a curve that is
# easy to read: every member is the most accurate head found at its size.
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
    n_evaluations=40,
    random_state=0,
).fit(X_train, y_train)

# %%
# The table
# ---------
# One row per member, ordered by decreasing validation accuracy. The
# ``complexity`` column is the fraction of genes (here, backbone features)
# kept, ``n_genes_on`` the same as a count.
frame = clf.pareto_front_.to_frame()
frame

# %%
# The front is an immutable sequence of members, with the objective values
# as a matrix in natural units (``F``) and the genomes stacked. Each member is
# a frozen record: its genome (which genes are on), its objective values and
# its trained head, whose ``predict`` takes backbone features and returns
# class labels.
front = clf.pareto_front_
print(front.objective_names, front.F.shape, front.genomes.shape)
member = front[0]
print(member)
print("genome:", member.genome[:16].astype(int), "...", member.genome.shape)
print("labels:", member.predict(clf.extract_features(X_test[:5])))

# %%
# The front
# ---------
# :class:`~evoprune_sklearn.plotting.ParetoFrontDisplay` draws the members;
# smaller networks are to the left. The steep part on the left is where
# pruning costs accuracy; the flat part on the right is where extra features
# buy nothing measurable. The red circle is the member ``predict`` uses.
# Like every Display of the package it draws into a new pyplot figure, or
# into the Axes you pass: here the front, next to the dense baseline's
# accuracy for reference.
import matplotlib.pyplot as plt

from evoprune_sklearn.plotting import ParetoFrontDisplay

fig, ax = plt.subplots(figsize=(6, 4))
disp = ParetoFrontDisplay.from_estimator(clf, ax=ax)
ax.axhline(clf.baseline_.objectives["accuracy"], color="gray", ls="--",
           label="dense head (all genes)")
ax.legend(fontsize="small")

# %%
# Did the search converge?
# ------------------------
# ``history_`` has one record per generation. The hypervolume is the part of
# the objective space the front dominates (measured from a fixed reference
# point: accuracy 0, complexity 1), so it only grows; curves still rising at
# the right edge mean that more ``n_evaluations`` would pay.
import pandas as pd

from evoprune_sklearn.plotting import ConvergenceDisplay

print(pd.DataFrame(clf.history_).round(3).to_string(index=False))
disp = ConvergenceDisplay.from_estimator(clf)

# %%
# Which genes survive?
# --------------------
# Genes switched on in nearly every member, whatever its size, are those the
# search could not prune without losing accuracy: the papers' "most
# influential" features. :func:`~evoprune_sklearn.plotting.gene_frequency`
# returns the fraction of members using each gene, and
# :class:`~evoprune_sklearn.plotting.GeneFrequencyDisplay` draws it with the
# genes named by ``gene_names_`` (``"<backbone>:<feature index>"``).
from evoprune_sklearn.plotting import GeneFrequencyDisplay, gene_frequency

freq = gene_frequency(clf)
print(f"{(freq == 1).sum()} of {freq.size} features are used by every member, "
      f"{(freq == 0).sum()} by none")
disp = GeneFrequencyDisplay.from_estimator(clf, n_top=10)

# %%
# ``to_frame(genomes=True)`` gives the same genomes as a table, one boolean
# column per gene.
genomes = clf.pareto_front_.to_frame(genomes=True)
genomes.iloc[:, :8]

# %%
# In a script, end with ``plt.show()``: every Display's figure belongs to
# pyplot.
plt.show()
