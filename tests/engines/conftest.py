"""Fixtures of the engine tests."""

import numpy as np
import pytest

from evoprune_sklearn._engines._base import _ENGINES

from ._helpers import make_data


@pytest.fixture(scope="module")
def split():
    X, y = make_data(300, seed=0)
    return X[:200], y[:200], X[200:], y[200:]


@pytest.fixture
def engine_calls(monkeypatch):
    """Counts the genomes each registered engine trains (a spy on ``train``)."""
    calls = {name: 0 for name in _ENGINES}
    for name, engine in _ENGINES.items():
        def spy(genomes, X, y, config, sample_weight=None, _name=name, _train=engine.train):
            calls[_name] += len(genomes)
            return _train(genomes, X, y, config, sample_weight)

        monkeypatch.setattr(engine, "train", spy)
    return calls


@pytest.fixture(scope="module")
def blobs_small():
    """A learnable feature matrix small enough for a fit in about a second."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=160, n_features=24, n_informative=8,
                               n_classes=3, random_state=0)
    return X.astype(np.float32), y
