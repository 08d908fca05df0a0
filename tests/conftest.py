import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def digit_images():
    """120 digits (12 per class) as 32x32 RGB uint8 images."""
    from evoprune_sklearn.datasets import load_digits_images

    return load_digits_images(size=32, n_per_class=12)


@pytest.fixture(scope="session")
def blobs():
    """Learnable 3-class 2-D features."""
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=240, n_features=24, n_informative=8, n_classes=3,
        class_sep=2.0, random_state=0,
    )


def tiny(**kwargs):
    """Estimator settings small enough for unit tests."""
    from evoprune_sklearn import EvoPruneClassifier

    params = dict(hidden_layer_sizes=(16,), pop_size=4, n_evaluations=8,
                  lr=0.01, max_epochs=15, random_state=0)
    params.update(kwargs)
    return EvoPruneClassifier(**params)


@pytest.fixture
def make_tiny():
    return tiny
