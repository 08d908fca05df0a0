"""
================
Robustness modes
================

The third objective, the robustness of a head, can measure two different things:
how well a network notices inputs from outside its classes (ODIN
out-of-distribution detection, with or without the input perturbation ε), or
how well it resists small adversarial changes to its inputs (FGSM and PGD
attacks). This example runs a search in each mode on the digits and compares
what the fronts look like and what each mode costs.
"""

# %%
# Data
# ----
# A smaller training set (60 images a class) keeps five searches quick.
import pandas as pd
from sklearn.model_selection import train_test_split

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn.datasets import load_digits_images
from evoprune_sklearn.objectives import ODIN, Adversarial

X, y = load_digits_images(size=32, n_per_class=60)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# Four searches
# -------------
# The same search budget and seed in every mode; only the third objective
# changes: an :class:`~evoprune_sklearn.objectives.ODIN` or an
# :class:`~evoprune_sklearn.objectives.Adversarial` objective, each with its
# own settings (all named ``"robustness"`` on the front).
#
# - ``odin``, ε = 0: the AUROC of the temperature-scaled confidence
#   (T = 1000) separating validation digits from out-of-distribution images
#   (here the default synthetic set: noise and patch-shuffled digits).
#   Computed from cached features, so almost free.
# - ``odin``, ε = 0.002: the same after ODIN's input perturbation, which
#   needs a gradient through the backbone for every candidate.
# - ``fgsm``: accuracy on validation digits attacked with one signed-gradient
#   step in pixel space. The budget ε is calibrated once per fit
#   (``eps="auto"``, the default): the ε at which the dense head keeps
#   half its clean accuracy, so the candidates spread around there.
# - ``pgd``: accuracy under a 5-step projected gradient attack, at its own
#   calibrated ε (smaller than FGSM's: PGD is the stronger attack).
# - ``pgd, eps=8/255``: a fixed budget, the customary threat model of
#   adversarially *trained* networks. A frozen ImageNet backbone falls far
#   below it: every candidate scores 0, and the objective says nothing.
#
# ``subset=32`` bounds the images pushed through the backbone per
# candidate by the expensive modes (the default, 128, is what real searches
# should use; 32 keeps this page quick).
common = dict(
    image_size=32,
    hidden_layer_sizes=(32,),
    pop_size=6,
    n_evaluations=12,
    random_state=0,
)
modes = {
    "odin, eps=0": ODIN(subset=32),
    "odin, eps=0.002": ODIN(epsilon=0.002, subset=32),
    "fgsm": Adversarial("fgsm", subset=32),
    "pgd": Adversarial("pgd", subset=32),
    "pgd, eps=8/255": Adversarial("pgd", eps=8 / 255, subset=32),
}
fitted, rows = {}, []
for name, robustness in modes.items():
    clf = EvoPruneClassifier(objectives=("accuracy", "complexity", robustness), **common)
    clf.fit(X_train, y_train)
    fitted[name] = clf
    front = clf.pareto_front_.to_frame()
    eps = getattr(clf.objectives_[2], "eps_", None)  # the budget an attack used
    rows.append({
        "mode": name,
        "budget (x/255)": None if eps is None else round(eps * 255, 2),
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
# values are accuracies under attack, each at its own calibrated budget (so
# they sit around half the accuracy), except in the last panel: at 8/255 PGD
# leaves every member at 0.
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 5, figsize=(17, 3.6), layout="constrained")
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
# What each mode costs
# --------------------
# Head training is the same in every mode; what differs is the robustness
# objective, per candidate and per image of ``subset``:
#
# - ``odin`` with ε = 0: no backbone pass at all (two head passes on the
#   cached features). Practically free.
# - ``odin`` with ε > 0: one backward and one forward pass of the backbone,
#   for the validation images and as many OoD images.
# - ``fgsm``: one forward/backward pass and one forward pass; images the
#   candidate already gets wrong are skipped.
# - ``pgd``: up to ``steps`` (5) forward/backward passes and one
#   forward pass; an image leaves the attack as soon as it is misclassified,
#   which does not change the value. With a fixed 8/255 budget nearly every
#   image falls at once, which is why that row is cheap *and* useless.
# - ``eps="auto"`` adds, once per fit, six attacks of the dense head
#   to find the budget.
#
# The table above shows the seconds on the machine that built this page;
# ``benchmarks/bench_robustness.py`` measures the default settings (digits at
# 64 px, 128 images). At the backbone's own 224 px each image is about 12
# times the work of 64 px. Pass ``verbose=1`` to print the budget and a time
# estimate before the search starts.

# %%
# Choosing a mode
# ---------------
# - Deploying where unexpected inputs will arrive (other objects, blank or
#   broken frames): ``ODIN()`` (``"robustness"``). Start with ``epsilon=0``, it
#   costs nothing; pass your own out-of-distribution images as ``X_ood`` when
#   you have them, they matter more than ε.
# - Worried about small, deliberate or accidental input changes:
#   ``"fgsm"`` is the cheap proxy, ``"pgd"`` the honest measurement. Both need
#   image input (not ``backbone=None``) and torchattacks
#   (``pip install 'evoprune_sklearn[attacks]'``). Keep ``eps="auto"``
#   to rank candidates; set a number only for a stated threat model.
# - The costs in the table scale with ``subset`` and, for PGD,
#   with ``steps``; the search itself (training the heads) is the same
#   in every mode.
