"""
===============================
In a Pipeline with GridSearchCV
===============================

:class:`~evoprune_sklearn.EvoPruneClassifier` is a scikit-learn estimator:
it can be the last step of a :class:`~sklearn.pipeline.Pipeline`, be cloned,
cross-validated and tuned with :class:`~sklearn.model_selection.GridSearchCV`.
Here a pipeline turns scikit-learn's raw digit rows into images, and a grid
search picks the genome encoding by cross-validation.
"""

# %%
# A pipeline from rows of pixels to a pruned network
# --------------------------------------------------
# ``load_digits`` gives each 8x8 image as a row of 64 values in [0, 16].
# A :class:`~sklearn.preprocessing.FunctionTransformer` reshapes the rows
# into grayscale images in [0, 1]; the classifier upsamples them to
# ``image_size`` and replicates the channel for the backbone.
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from evoprune_sklearn import EvoPruneClassifier


def rows_to_images(rows):
    return (np.asarray(rows, dtype=np.float32) / 16.0).reshape(-1, 8, 8)


X, y = load_digits(return_X_y=True)
keep = np.concatenate([np.flatnonzero(y == c)[:40] for c in range(10)])
X_train, X_test, y_train, y_test = train_test_split(
    X[keep], y[keep], test_size=0.25, stratify=y[keep], random_state=0
)
pipe = Pipeline([
    ("to_images", FunctionTransformer(rows_to_images)),
    ("evoprune", EvoPruneClassifier(
        image_size=32, hidden_layer_sizes=(32,), pop_size=6, n_evaluations=12,
        random_state=0,
    )),
])
pipe

# %%
# Tuning with cross-validation
# ----------------------------
# Parameters of the classifier are addressed as ``evoprune__<name>``. Here
# the search compares the two genome encodings: one gene per backbone feature,
# or one gene per hidden neuron. Each candidate is fitted on two folds, and
# every inner ``fit`` carves its own validation split out of its training
# fold, so the outer folds play the role of test data for the choice. (Five
# searches in all, with the refit: keep grids small, each point is a whole
# evolutionary search.)
#
# Out-of-distribution images for the robustness objective are a fit
# parameter. Wrap them in :class:`~evoprune_sklearn.OODSet`: scikit-learn
# slices every fit parameter as long as ``X`` per fold, as if it held one
# value per sample, and an ``OODSet`` is passed through whole. They do not go
# through the pipeline's transformer, so they are images already (any size:
# the classifier resizes them, but with the digits' single channel); here
# grayscale patches of the photos that ship with scikit-learn.
from sklearn.datasets import load_sample_images
from sklearn.feature_extraction.image import extract_patches_2d
from sklearn.model_selection import GridSearchCV

from evoprune_sklearn import OODSet

X_ood = np.concatenate([
    extract_patches_2d(photo.mean(axis=2)[::8, ::8] / 255, (16, 16), max_patches=40,
                       random_state=0)
    for photo in load_sample_images().images
])  # grayscale like the digits, floats in [0, 1]
search = GridSearchCV(
    pipe,
    param_grid={"evoprune__encoding": ["features", "neurons"]},
    cv=2,
)
search.fit(X_train, y_train, evoprune__X_ood=OODSet(X_ood))
print("best parameters:", search.best_params_)

# %%
import pandas as pd

results = pd.DataFrame(search.cv_results_)
results[["param_evoprune__encoding", "mean_test_score", "std_test_score",
         "mean_fit_time"]]

# %%
# The refitted pipeline
# ---------------------
# ``best_estimator_`` is the pipeline refitted on all training rows with the
# best parameters; it predicts from raw rows like any scikit-learn model.
best = search.best_estimator_
clf = best.named_steps["evoprune"]
member = clf.pareto_front_[clf.best_index_]
print(f"test accuracy {best.score(X_test, y_test):.3f} with "
      f"{member.n_active}/{member.genome.size} genes on "
      f"({clf.encoding!r} encoding)")
