"""EvoPruneClassifier inside scikit-learn's tools: clone, Pipeline, search, CV, pickle."""

import pickle

import joblib
import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from evoprune_sklearn.objectives import Adversarial


def test_clone_copies_parameters_not_fitted_state(blobs, make_tiny):
    X, y = blobs
    clf = make_tiny(backbone=None, pop_size=6).fit(X, y)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    assert not hasattr(twin, "pareto_front_")


def test_pipeline_with_function_transformer(blobs, make_tiny):
    X, y = blobs
    pipe = make_pipeline(FunctionTransformer(np.tanh), StandardScaler(),
                         make_tiny(backbone=None))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.8


def test_pipeline_on_images(digit_images, make_tiny):
    X, y = digit_images
    # a user's own preprocessing step before the estimator: horizontal flip
    pipe = make_pipeline(FunctionTransformer(lambda a: a[:, :, ::-1]),
                         make_tiny(image_size=32))
    pipe.fit(X, y)
    assert pipe.predict(X[:4]).shape == (4,)


def test_grid_search_over_pop_size_and_encoding(blobs, make_tiny):
    X, y = blobs
    grid = GridSearchCV(
        make_tiny(backbone=None, n_evaluations=8),
        {"pop_size": [4, 8], "encoding": ["features", "neurons"]},
        cv=2,
    )
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_estimator_.pop_size in (4, 8)
    assert grid.score(X, y) > 0.7


def test_grid_search_tunes_the_attack_budget_through_objectives(digit_images, make_tiny):
    # Objective settings are the objectives' own parameters: a grid over
    # `objectives` tries each budget; every fit works on a copy.
    X, y = digit_images
    budgets = [Adversarial(eps=e, subset=8) for e in (0.5 / 255, 2 / 255)]
    grid = GridSearchCV(
        make_tiny(image_size=32, pop_size=2, n_evaluations=2, refit=False),
        {"objectives": [("accuracy", "complexity", b) for b in budgets]},
        cv=2,
    )
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 2
    best = grid.best_estimator_
    assert best.objectives_[2].eps_ in (0.5 / 255, 2 / 255)
    assert best.objectives_[2].eps_ == best.objectives[2].eps
    assert not any(hasattr(b, "eps_") for b in budgets)  # never fitted in place
    tried = [p["objectives"][2].eps for p in grid.cv_results_["params"]]
    assert tried == [0.5 / 255, 2 / 255]


def test_cross_val_score(blobs, make_tiny):
    X, y = blobs
    scores = cross_val_score(make_tiny(backbone=None), X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() > 0.7


def test_pickle_and_joblib_round_trips(digit_images, make_tiny, tmp_path):
    X, y = digit_images
    clf = make_tiny(image_size=32).fit(X, y)
    expected = clf.predict_proba(X)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    path = tmp_path / "clf.joblib"
    joblib.dump(clf, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
