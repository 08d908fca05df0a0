"""Fixtures of the objective tests: small image and feature fits."""

import numpy as np
import pytest
from sklearn.datasets import make_classification

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._backbones import get_backbone
from evoprune_sklearn._engines import TrainingConfig, train_heads
from evoprune_sklearn._images import Images
from evoprune_sklearn.datasets import load_digits_images
from evoprune_sklearn.objectives import ObjectiveContext

from ._shared import N_CANDIDATES, SMALL, noise_images


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every objective test module runs on one torch thread (root conftest)."""


@pytest.fixture(scope="session")
def image_context():
    """The context of a small image fit, and a generation of trained heads."""
    X, y = load_digits_images(size=32, n_per_class=6)
    backbone = get_backbone("efficientnet_lite0", "DEFAULT", 32)
    features = backbone.extract(X)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, val = np.sort(order[:40]), np.sort(order[40:])
    config = TrainingConfig("features", features.shape[1], (), 10, max_iter=20,
                            init_seed=1, shuffle_seed=2)
    context = ObjectiveContext(
        features[train], y[train], features[val], y[val], 10,
        train_index=train, val_index=val, images=Images(X),
        backbone=backbone, seed=3, config=config,
    )
    genomes = rng.random((N_CANDIDATES, features.shape[1])) < [[0.05], [0.3], [0.6], [1.0]]
    heads = train_heads(genomes, context.X_train, context.y_train, config)
    return context, heads


@pytest.fixture(scope="session")
def features():
    return make_classification(n_samples=120, n_features=10, n_informative=5,
                               n_classes=3, random_state=0)


@pytest.fixture(scope="session")
def fitted(digits):
    """A three-objective search on digits with uniform-noise OoD images."""
    X, y = digits
    # refit=False: members keep the heads their objectives were measured on
    clf = EvoPruneClassifier(image_size=32, refit=False, **SMALL)
    return clf.fit(X, y, X_ood=noise_images(40, 24))
