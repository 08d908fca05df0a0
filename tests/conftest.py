import matplotlib
import pytest

import evoprune_sklearn._search as search_module
from evoprune_sklearn import EvoPruneClassifier

matplotlib.use("Agg")

# The one table of small settings tests use (EvoPruneClassifier parameters).
# "tiny": the quickest fit that still gives a front (make_tiny). "search":
# feature input of 40 genes (search_data) and generations of 6, so that
# every random draw shows in the front: a search that was continued,
# resumed or restored wrongly ends elsewhere (small_params).
SMALL_PARAMS = {
    "tiny": dict(hidden_layer_sizes=(16,), pop_size=4, n_evaluations=8, random_state=0),
    "search": dict(backbone=None, hidden_layer_sizes=(8,), pop_size=6, random_state=0),
    # feature input with the default (linear, L-BFGS) head: one quick fit
    # per option value (feature_params).
    "features": dict(backbone=None, pop_size=4, n_evaluations=8, random_state=0),
}


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


@pytest.fixture(scope="session")
def small_params():
    """The "search" settings of SMALL_PARAMS (a copy: tests may not change
    the table); add ``n_evaluations`` and what a test is about."""
    return dict(SMALL_PARAMS["search"])


@pytest.fixture(scope="session")
def feature_params():
    """The "features" settings of SMALL_PARAMS (a copy): the quickest fit
    on a feature matrix with the default training recipe."""
    return dict(SMALL_PARAMS["features"])


@pytest.fixture(scope="session")
def search_params(small_params):
    """small_params with 8 generations: enough for a front that depends on
    every random draw (a wrongly restored generator changes it), small
    enough for about a second a fit."""
    return {**small_params, "n_evaluations": 48}


@pytest.fixture(scope="session")
def reference_search(search_params, search_data):
    """One uninterrupted fit of search_params on search_data, without
    checkpoint: what a resumed or repeated search must reproduce."""
    X, y = search_data
    return EvoPruneClassifier(**search_params).fit(X, y)


@pytest.fixture(scope="session")
def search_data():
    """``(X, y)``: 200 samples of 40 features, 3 classes, for small_params."""
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=200, n_features=40, n_informative=6, n_classes=3, random_state=0
    )


def tiny(**kwargs):
    """Estimator settings small enough for unit tests."""
    return EvoPruneClassifier(**{**SMALL_PARAMS["tiny"], **kwargs})


@pytest.fixture(scope="session")
def make_tiny():
    return tiny


def _front_key(clf):
    """Genomes and objective values of the front, exactly."""
    return [(m.genome.tobytes(), tuple(sorted(m.objectives.items())))
            for m in clf.pareto_front_]


@pytest.fixture(scope="session")
def front_key():
    """``front_key(clf)``: the fitted front's genomes and objective values,
    to compare two fronts exactly."""
    return _front_key


class CountTraining:
    """Counts genomes trained in-process (``n_jobs=None``); raises Ctrl-C
    on call ``fail_on_call``."""

    def __init__(self, monkeypatch, fail_on_call=None):
        self.calls = self.genomes = 0
        self.fail_on_call = fail_on_call
        self._train = search_module.train_heads
        monkeypatch.setattr(search_module, "train_heads", self)

    def __call__(self, genomes, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt  # what Ctrl-C raises mid-training
        self.genomes += len(genomes)
        return self._train(genomes, *args, **kwargs)


@pytest.fixture
def count_training(monkeypatch):
    """``count_training(fail_on_call=None)``: a :class:`CountTraining` that
    replaces the search's training for this test."""
    return lambda fail_on_call=None: CountTraining(monkeypatch, fail_on_call)
