"""Bad input gets a clear error naming the problem, before any heavy work."""

import numpy as np
import pytest

from evoprune_sklearn import EvoPruneClassifier


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (20, 16, 16, 3), dtype=np.uint8), np.repeat([0, 1], 10)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"encoding": "connections"}, "encoding"),
        ({"pop_size": 1}, "pop_size"),
        ({"n_evaluations": 0}, "n_evaluations"),
        ({"pop_size": 10, "n_evaluations": 5}, "smaller than pop_size"),
        ({"validation_fraction": 1.5}, "validation_fraction"),
        ({"selection": "best"}, "selection"),
        ({"hidden_layer_sizes": (8, 8, 8)}, "one or two positive integers"),
        ({"hidden_layer_sizes": (0,)}, "one or two positive integers"),
        ({"objectives": ("accuracy", "speed")}, "Unknown objective"),
        ({"objectives": ("complexity",)}, "must include 'accuracy'"),
        ({"lr": -1.0}, "lr"),
        ({"device": "tpu"}, "device"),
        ({"backbone": "resnet51"}, "Unknown backbone 'resnet51'"),
        ({"backbone": 3}, "backbone"),
        ({"weights": "/no/such/file.pt"}, "does not exist"),
        ({"crossover_rate": 2}, "crossover_rate"),
    ],
)
def test_invalid_parameters(images, params, match):
    X, y = images
    with pytest.raises((ValueError, TypeError), match=match):
        EvoPruneClassifier(**params).fit(X, y)


def test_nan_and_range(images):
    X, y = images
    Xf = X.astype(np.float32) / 255
    Xf[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        EvoPruneClassifier().fit(Xf, y)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        EvoPruneClassifier().fit(X.astype(np.float32), y)
    Xn = np.random.default_rng(0).normal(size=(20, 5))
    Xn[3, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        EvoPruneClassifier(backbone=None).fit(Xn, y)


def test_wrong_dimensions(images):
    X, y = images
    with pytest.raises(ValueError, match="4 dimensions"):
        EvoPruneClassifier().fit(X.reshape(20, -1), y)
    with pytest.raises(ValueError, match="neither its last axis nor its second axis"):
        EvoPruneClassifier().fit(np.zeros((20, 5, 16, 16), np.uint8), y)
    with pytest.raises(ValueError, match="dim 4, while dim <= 2"):
        EvoPruneClassifier(backbone=None).fit(X, y)


def test_single_class_and_too_few_samples(images):
    X, y = images
    with pytest.raises(ValueError, match="at least 2 classes"):
        EvoPruneClassifier().fit(X, np.zeros(20))
    y_rare = y.copy()
    y_rare[0] = 2
    # A class seen once trains the heads but cannot be validated: a warning.
    with pytest.warns(UserWarning, match=r"\[2\] have 1 sample"):
        clf = EvoPruneClassifier(pop_size=4, n_evaluations=4, image_size=32).fit(X, y_rare)
    assert 2 in clf.classes_
    with pytest.raises(ValueError, match="validation_fraction=0.95 of 20 samples"):
        EvoPruneClassifier(validation_fraction=0.95).fit(X, y)


def test_predict_checks_image_shape(images, make_tiny):
    X, y = images
    with pytest.raises(ValueError, match="image_size=16 is too small"):
        make_tiny(image_size=16).fit(X, y)
    clf = make_tiny(image_size=32, pop_size=2, n_evaluations=2).fit(X, y)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(16, 16, 3\)"):
        clf.predict(np.zeros((2, 20, 20, 3), np.uint8))
    with pytest.raises(ValueError, match="fitted on images"):
        clf.predict(X[..., 0])  # grayscale where RGB was seen
    # the failed calls left the estimator intact
    assert clf.predict(X).shape == (20,)


def test_unfitted_estimator():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        EvoPruneClassifier().predict(np.zeros((1, 8, 8, 3), np.uint8))
