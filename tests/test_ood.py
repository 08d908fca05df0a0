"""OoD sets: the synthetic default and the checks of a given X_ood."""

import warnings

import numpy as np
import pytest
from objectives._shared import SMALL, features_data, noise_images
from sklearn.model_selection import GridSearchCV, cross_validate

from evoprune_sklearn import EvoPruneClassifier, OODSet
from evoprune_sklearn._images import Images
from evoprune_sklearn._ood import synthetic_ood_features, synthetic_ood_images, validate_ood
from evoprune_sklearn.objectives import ODIN

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_default_ood_set_is_synthetic_and_documented_size():
    X, y = features_data()
    clf = EvoPruneClassifier(backbone=None, **SMALL).fit(X, y)
    assert clf.n_ood_samples_ == len(clf._val_index)
    F, kinds = synthetic_ood_features(X, 9, random_state=0)
    assert F.shape == (9, X.shape[1]) and list(kinds).count("shuffled") == 3
    # the shuffled kind keeps every marginal: each value comes from X's column
    shuffled = F[kinds == "shuffled"]
    for j in range(X.shape[1]):
        assert np.isin(shuffled[:, j], X[:, j].astype(np.float32)).all()



@pytest.mark.parametrize("objective", ["odin", "ood"])
def test_synthetic_ood_set_is_capped_at_512(objective):
    """A large validation fold: at most 512 synthetic OoD samples (each one a
    backbone pass with images), whatever robustness objective uses them."""
    from sklearn.datasets import make_classification

    from evoprune_sklearn._ood import MAX_SYNTHETIC_OOD
    from evoprune_sklearn.objectives import OoD

    X, y = make_classification(n_samples=2200, n_features=8, n_informative=4,
                               random_state=0)
    robustness = ODIN() if objective == "odin" else OoD()
    clf = EvoPruneClassifier(backbone=None, objectives=("accuracy", "complexity", robustness),
                             validation_fraction=0.25, pop_size=4, n_evaluations=4,
                             random_state=0).fit(X, y)
    assert len(clf._val_index) == 550
    assert clf.n_ood_samples_ == MAX_SYNTHETIC_OOD == 512

def test_synthetic_ood_images_match_training_statistics(digits):
    X, _ = digits
    images, kinds = synthetic_ood_images(X, 30, random_state=0)
    assert images.shape == (30, 32, 32, 3) and images.dtype == np.uint8
    gaussian = images[kinds == "gaussian"] / 255.0
    assert abs(gaussian.mean() - (X / 255.0).mean()) < 0.05
    # shuffled images rearrange training images; none is left as it was
    shuffled = images[kinds == "shuffled"]
    assert not any(np.array_equal(s, x) for s in shuffled for x in X[:50])


# ------------------------------------------------------------------ X_ood input
@pytest.mark.parametrize(
    "X_ood, match",
    [
        (np.zeros((0, 32, 32, 3), dtype=np.uint8), "0 images"),
        (np.zeros((5, 32 * 32 * 3), dtype=np.uint8), "3 dimensions"),
        (np.zeros((5, 32, 32, 4), dtype=np.uint8), "channels"),
        (np.full((5, 32, 32, 3), 2.0), r"\[0, 1\]"),
    ],
)
def test_misshaped_image_ood_raises_before_work(digits, X_ood, match, heavy_work):
    X, y = digits
    clf = EvoPruneClassifier(image_size=32, **SMALL)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y, X_ood=X_ood)
    assert heavy_work.none


def test_the_heavy_work_counter_sees_a_fit(digits, heavy_work):
    X, y = digits
    EvoPruneClassifier(image_size=32, **SMALL).fit(X, y)
    assert heavy_work.backbones == 1 and heavy_work.heads >= SMALL["n_evaluations"]


@pytest.mark.parametrize(
    "X_ood, match",
    [
        (np.zeros((0, 12)), "0 samples"),
        (np.zeros(12), "2-D"),
        (np.zeros((5, 11)), "11 features"),
        (np.full((5, 12), np.nan), "NaN"),
    ],
)
def test_misshaped_feature_ood_raises(X_ood, match):
    X, y = features_data()
    with pytest.raises(ValueError, match=match):
        EvoPruneClassifier(backbone=None, **SMALL).fit(X, y, X_ood=X_ood)


def test_images_of_another_size_and_grayscale_are_accepted(digits):
    X, y = digits
    gray_ood = noise_images(12, 20)[..., 0]
    clf = EvoPruneClassifier(image_size=32, **dict(SMALL, pop_size=2, n_evaluations=2))
    clf.fit(X[::2], y[::2], X_ood=gray_ood)
    assert clf.n_ood_samples_ == 12


@pytest.mark.parametrize("search", ["cross_validate", "grid"])
def test_ood_set_is_not_sliced_by_cv_even_with_len_of_X(search):
    X, y = features_data()
    X_ood = OODSet(np.random.default_rng(2).normal(size=(len(X), X.shape[1])))
    est = EvoPruneClassifier(backbone=None, **dict(SMALL, n_evaluations=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the length warning must not fire
        if search == "cross_validate":
            out = cross_validate(est, X, y, cv=3, params={"X_ood": X_ood},
                                 return_estimator=True)
            fitted = out["estimator"]
        else:
            grid = GridSearchCV(est, {"objectives": [
                ("accuracy", "complexity", ODIN(temperature=t)) for t in (1.0, 1000.0)]},
                cv=2)
            grid.fit(X, y, X_ood=X_ood)
            fitted = [grid.best_estimator_]
            assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert all(e.n_ood_samples_ == len(X) for e in fitted)


def test_plain_ood_array_of_len_X_warns_that_cv_would_slice_it():
    X, y = features_data()
    X_ood = np.random.default_rng(2).normal(size=(len(X), X.shape[1]))
    with pytest.warns(UserWarning, match="OODSet"):
        EvoPruneClassifier(backbone=None, **dict(SMALL, n_evaluations=4)).fit(
            X, y, X_ood=X_ood)


# ------------------------------------------------------------ unit tests
@pytest.mark.parametrize("n", [1, 2, 3, 7, 30])
def test_synthetic_feature_kinds_split_the_size_evenly(n):
    X = np.random.default_rng(0).normal(loc=5.0, scale=2.0, size=(200, 4))
    F, kinds = synthetic_ood_features(X, n, random_state=1)
    assert F.shape == (n, 4) and F.dtype == np.float32
    counts = [int(np.sum(kinds == k)) for k in ("gaussian", "uniform", "shuffled")]
    assert sum(counts) == n and max(counts) - min(counts) <= 1
    assert counts == sorted(counts, reverse=True)  # the remainder goes to the first kinds


def test_synthetic_features_follow_the_training_statistics():
    X = np.random.default_rng(0).normal(loc=[5.0, -3.0], scale=[2.0, 0.5], size=(2000, 2))
    F, kinds = synthetic_ood_features(X, 3000, random_state=0)
    gaussian = F[kinds == "gaussian"]
    np.testing.assert_allclose(gaussian.mean(axis=0), X.mean(axis=0), atol=0.15)
    np.testing.assert_allclose(gaussian.std(axis=0), X.std(axis=0), rtol=0.1)
    uniform = F[kinds == "uniform"]
    assert (uniform >= X.min(axis=0) - 1e-5).all() and (uniform <= X.max(axis=0) + 1e-5).all()
    # the same seed draws the same set, another seed another
    np.testing.assert_array_equal(F, synthetic_ood_features(X, 3000, random_state=0)[0])
    assert not np.array_equal(F, synthetic_ood_features(X, 3000, random_state=1)[0])


@pytest.mark.parametrize("X_ood,error,match", [
    (np.zeros((4, 3)), ValueError, "3 features, but X has 5"),
    (np.zeros(5), ValueError, "2-D feature matrix"),
    (np.zeros((0, 5)), ValueError, "0 samples"),
    (np.array([["a"] * 5]), TypeError, "numeric"),
    (np.full((2, 5), np.inf), ValueError, "NaN or infinity"),
    (OODSet(None), ValueError, "OODSet wraps None"),
])
def test_validate_ood_names_what_is_wrong(X_ood, error, match):
    with pytest.raises(error, match=match):
        validate_ood(X_ood, image_input=False, n_features=5)


def test_validate_ood_returns_float32_features_or_images():
    out = validate_ood([[1, 2, 3]], image_input=False, n_features=3)
    assert out.dtype == np.float32 and out.shape == (1, 3)
    assert validate_ood(None, image_input=False) is None
    images = validate_ood(np.zeros((2, 8, 8, 3), dtype=np.uint8), image_input=True)
    assert isinstance(images, Images) and len(images) == 2
    with pytest.warns(UserWarning, match="ignored"):
        validate_ood(np.zeros((1, 3)), image_input=False, n_features=3, used=False)
