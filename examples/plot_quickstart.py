"""
========================
Quickstart on the digits
========================

Fit :class:`~evoprune_sklearn.EvoPruneClassifier` on the bundled digits,
look at the Pareto front it found, and compare the selected pruned network
with the unpruned head on held-out test images.
"""

# %%
# Data
# ----
# :func:`~evoprune_sklearn.datasets.load_digits_images` turns scikit-learn's
# 1797 handwritten 8x8 digits into RGB images, so they can go through a real
# pretrained image backbone. We keep a quarter of them as a test set that the
# search never sees.
from sklearn.model_selection import train_test_split

from evoprune_sklearn.datasets import load_digits_images

X, y = load_digits_images(size=32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
print(X_train.shape, X_train.dtype, "->", len(set(y)), "classes")

# %%
# Fit
# ---
# The default backbone, EfficientNet-Lite0, ships with its ImageNet weights, so
# this runs offline. ``image_size=32`` keeps the images at their size (the
# backbone's native 224 px would cost 50 times more compute for no gain on
# these digits). The search budget is small so that the example runs in well
# under a minute; the defaults (population 30, 200 evaluations) find a better
# front. The head is the default one: linear, so every candidate is a
# logistic regression on the features its genome keeps, trained to
# convergence by full-batch L-BFGS (``hidden_layer_sizes=(512,)`` gives the
# papers' hidden layer).
from evoprune_sklearn import EvoPruneClassifier

clf = EvoPruneClassifier(
    image_size=32,
    pop_size=10,
    n_evaluations=40,
    random_state=0,
)
clf.fit(X_train, y_train)
print(f"backbone features: {clf.fit_time_['features']:.1f} s, "
      f"search: {clf.fit_time_['search']:.1f} s, "
      f"{clf.n_evaluations_} evaluations, {clf.n_trained_} heads trained")

# %%
# The Pareto front
# ----------------
# Every row is a pruned head that no other head beats on all objectives at
# once. By default there are three, all measured on the validation split:
# accuracy (higher is better); complexity, the fraction of the 1280 backbone
# features the head still reads (lower is better); and robustness, how well
# the head's confidence separates real digits from out-of-distribution images
# (an AUROC, higher is better; here against synthetic noise and
# patch-shuffled images, as no ``X_ood`` was given).
front = clf.pareto_front_.to_frame()
front

# %%
# ``predict`` uses one member, ``best_index_``, chosen by ``selection="knee"``:
# among the members whose validation accuracy is within one standard error of
# the best, the one closest to the ideal in the other objectives. The plot
# circles it in every pair of objectives.
from evoprune_sklearn.plotting import ParetoFrontDisplay

print("selected member:", clf.best_index_, clf.pareto_front_[clf.best_index_])
disp = ParetoFrontDisplay.from_estimator(clf)

# %%
# Test accuracy against the unpruned head
# ---------------------------------------
# ``baseline_`` is the dense head, every gene on, trained exactly as each
# candidate was (same training fold, initial weights, optimiser and early
# stopping) and scored on the same objectives: the baseline the paper compares
# pruned networks against. Its head, like every member's, takes backbone
# features, so we extract the test features once.
import numpy as np

features_test = clf.extract_features(X_test)
member = clf.pareto_front_[clf.best_index_]
dense = clf.baseline_
dense_accuracy = np.mean(dense.predict(features_test) == y_test)  # labels
print(f"selected member: test accuracy {clf.score(X_test, y_test):.3f}, "
      f"reading {member.n_active} of {member.genome.size} features")
print(f"unpruned head:   test accuracy {dense_accuracy:.3f}, "
      f"reading all {dense.genome.size} features")
print("validation objectives of the unpruned head:",
      {k: round(v, 3) for k, v in dense.objectives.items()})
