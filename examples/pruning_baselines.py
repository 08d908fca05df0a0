"""
============================================================
The front against the standard pruning baselines, per budget
============================================================

.. note::

   **This example is rendered, not executed** (its file name has no ``plot_``
   prefix): the L1 path and the searches take a few minutes on a two-core
   CPU. Run it yourself with ``python examples/pruning_baselines.py``.

Is a pruned head found by the evolutionary search better than what the
standard pruning methods give at the same size? At each fraction of genes,
this example compares the test accuracy of the Pareto front's members with

- the **L1 path**: the supports of an L1-penalised logistic regression path
  on the standardised features, the package's own head trained on each;
- **magnitude pruning**: the dense head's features ranked by weight norm
  (times the feature's standard deviation), the top ones kept and the head
  retrained;
- ``LogisticRegressionCV`` on all features, the strongest simple alternative;

for the default search (``init="informed", mutation="informed"``) and for the
papers' search (``init="random", mutation="bitflip"``). ``benchmarks/
bench_quality.py`` measures the same over seeds and datasets (see
:ref:`methodology_budgets`).
"""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import train_test_split

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn.__main__ import l1_path_supports
from evoprune_sklearn._engines import refit_members
from evoprune_sklearn._front import Member
from evoprune_sklearn._operators import gene_importance
from evoprune_sklearn.datasets import load_digits_images

# %%
# Backbone features once; every model below sees the same ones.
X, y = load_digits_images(size=32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0)
extractor = EvoPruneClassifier(image_size=64, n_evaluations=2, pop_size=2,
                               random_state=0).fit(X_train[:20], y_train[:20])
F_train = extractor.extract_features(X_train)
F_test = extractor.extract_features(X_test)

# %%
# The two searches, on the features (``backbone=None``).
fits = {
    "front (default search)": EvoPruneClassifier(backbone=None, random_state=0),
    "front (papers' search)": EvoPruneClassifier(backbone=None, init="random",
                                                 mutation="bitflip", random_state=0),
}
for clf in fits.values():
    clf.fit(F_train, y_train)
clf = fits["front (default search)"]
L = clf.n_genes_


def retrained_accuracy(genomes):
    """Test accuracy of the package's head trained on each genome."""
    y_enc = np.searchsorted(clf.classes_, y_train)
    members = refit_members([Member(g, {}) for g in genomes], F_train, y_enc,
                            clf._config)
    return [np.mean(dataclasses.replace(m, classes=clf.classes_, config=clf._config)
                    .predict(F_test) == y_test) for m in members]


# %%
# The L1 path (liblinear, one-vs-rest on standardised features, a feature
# kept when any class uses it; the helper the demo uses) and magnitude
# pruning of the dense head.
supports = l1_path_supports(F_train, y_train, n_cs=10, c_max=300.0)
importance = gene_importance(clf.baseline_.params, "features", F_train.std(axis=0))
order = np.argsort(-importance)
fractions = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75])
magnitude = [np.isin(np.arange(L), order[:int(f * L)]) for f in fractions]
lrcv = LogisticRegressionCV(max_iter=5000).fit(F_train, y_train).score(F_test, y_test)

# %%
# Test accuracy against the fraction of genes kept. The front's members
# were chosen on validation only; test accuracy is for reference.
fig, ax = plt.subplots(figsize=(7, 4.5))
for (name, fitted), marker in zip(fits.items(), ("o", "s")):
    front = fitted.pareto_front_
    ax.scatter([m.n_active / L for m in front],
               [np.mean(m.predict(F_test) == y_test) for m in front],
               marker=marker, alpha=0.7, label=name)
ax.plot([s.mean() for s in supports], retrained_accuracy(supports), "k^-",
        label="L1 path + head")
ax.plot(fractions, retrained_accuracy(magnitude), "v--", color="tab:red",
        label="magnitude pruning + retrained")
ax.axhline(lrcv, color="gray", ls=":", label="LogisticRegressionCV, all features")
ax.set(xscale="log", xlabel="fraction of genes kept", ylabel="test accuracy",
       ylim=(0.6, 1.0), title="digits, efficientnet_lite0 features at 64 px")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
plt.show()
