"""
================
Robustness modes
================

The third objective, ``"robustness"``, can measure two different things:
how well a network notices inputs from outside its classes (ODIN
out-of-distribution detection, with or without the input perturbation ε), or
how well it resists small adversarial changes to its inputs (FGSM and PGD
attacks). This example runs a search in each mode on the digits and compares
what the fronts look like and what each mode costs.
"""

# %%
# Data
# ----
# A smaller training set (60 images a class) keeps four searches quick.
import time

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn.datasets import load_digits_images

X, y = load_digits_images(size=32, n_per_class=60)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# Four searches
# -------------
# The same search budget and seed in every mode; only the meaning of
# ``robustness`` changes.
#
# - ``odin``, ε = 0: the AUROC of the temperature-scaled confidence
#   (T = 1000) separating validation digits from out-of-distribution images
#   (here the default synthetic set: noise and patch-shuffled digits).
#   Computed from cached features, so almost free.
# - ``odin``, ε = 0.002: the same after ODIN's input perturbation, which
#   needs a gradient through the backbone for every candidate.
# - ``fgsm``: accuracy on validation digits attacked with one signed-gradient
#   step of size ``attack_eps`` (here 4/255) in pixel space.
# - ``pgd``: accuracy under a 2-step projected gradient attack of the same
#   radius; stronger, and many times as expensive per image, so this
#   example scores it on only 8 validation images per candidate (a noisy
#   estimate; use more in real searches).
#
# ``robustness_subset=32`` bounds the images pushed through the backbone per
# candidate by the three expensive modes.
common = dict(
    image_size=32,
    hidden_layer_sizes=(32,),
    pop_size=6,
    n_evaluations=12,
    lr=1e-2,
    robustness_subset=32,
    random_state=0,
)
modes = {
    "odin, eps=0": dict(robustness="odin"),
    "odin, eps=0.002": dict(robustness="odin", odin_epsilon=0.002),
    "fgsm": dict(robustness="fgsm", attack_eps=4 / 255),
    "pgd": dict(robustness="pgd", attack_eps=4 / 255, attack_steps=2, robustness_subset=8),
}
fitted, rows = {}, []
for name, kw in modes.items():
    t0 = time.perf_counter()
    clf = EvoPruneClassifier(**{**common, **kw}).fit(X_train, y_train)
    fitted[name] = clf
    front = clf.pareto_front_.to_frame()
    rows.append({
        "mode": name,
        "search seconds": clf.fit_time_["search"],
        "seconds per evaluation": clf.fit_time_["search"] / clf.n_evaluations_,
        "front size": len(front),
        "robustness range": f"{front['robustness'].min():.2f} - {front['robustness'].max():.2f}",
        "test accuracy (selected)": clf.score(X_test, y_test),
    })
costs = pd.DataFrame(rows).set_index("mode")
costs

# %%
# The robustness of a member is not its accuracy
# ----------------------------------------------
# Each panel shows one mode's front in the accuracy-robustness plane, coloured
# by complexity. Members of similar accuracy can differ a lot in robustness:
# that is the trade-off the third objective lets you choose from. Note the
# different scales: ODIN values are AUROCs (0.5 is chance), FGSM and PGD
# values are accuracies under attack, and PGD's are at most FGSM's.
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), layout="constrained")
for ax, (name, clf) in zip(axes, fitted.items()):
    front = clf.pareto_front_.to_frame()
    points = ax.scatter(front["accuracy"], front["robustness"], c=front["complexity"],
                        cmap="viridis", vmin=0, vmax=1, s=40)
    best = clf.pareto_front_[clf.best_index_].objectives
    ax.scatter(best["accuracy"], best["robustness"], s=180, facecolors="none",
               edgecolors="tab:red", linewidths=2)
    ax.set_title(name)
    ax.set_xlabel("validation accuracy")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("robustness")
fig.colorbar(points, ax=axes, label="complexity", shrink=0.8)

# %%
# Choosing a mode
# ---------------
# - Deploying where unexpected inputs will arrive (other objects, blank or
#   broken frames): ``robustness="odin"``. Start with ``odin_epsilon=0``, it
#   costs nothing; pass your own out-of-distribution images as ``X_ood`` when
#   you have them, they matter more than ε.
# - Worried about small, deliberate or accidental input changes:
#   ``"fgsm"`` is the cheap proxy, ``"pgd"`` the honest measurement. Both need
#   image input (not ``backbone=None``).
# - The costs in the table scale with ``robustness_subset`` and, for PGD,
#   with ``attack_steps``; the search itself (training the heads) is the same
#   in every mode.
