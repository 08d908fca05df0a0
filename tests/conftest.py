import matplotlib
import numpy as np
import pytest
import torch

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


class TinyNet(torch.nn.Module):
    """A small conv net: (n, 3, 16, 16) normalised images -> 8 pooled features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU())
        self.pool = torch.nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(self.conv(x)).flatten(1)


@pytest.fixture(scope="session")
def digit_images():
    """120 digits (12 per class) as 32x32 RGB uint8 images."""
    from evoprune_sklearn.datasets import load_digits_images

    return load_digits_images(size=32, n_per_class=12)


@pytest.fixture(scope="session")
def digits():
    """200 digits (20 per class) as 32x32 RGB uint8 images (the OoD tests)."""
    from evoprune_sklearn.datasets import load_digits_images

    return load_digits_images(size=32, n_per_class=20)


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


@pytest.fixture(scope="session")
def ood_fit():
    """``(clf, X, y)``: a two-objective feature fit for the OoD scores and the
    robustness report. X is shifted into the positive orthant, so that -X
    differs in direction too (kNN reads unit-length features: a direction,
    not a magnitude)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=150, n_features=12, n_informative=8,
                               n_classes=3, shift=6.0, random_state=0)
    clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,),
                             objectives=("accuracy", "complexity"), pop_size=6,
                             n_evaluations=18, random_state=0).fit(X, y)
    return clf, X, y


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the module: tiny heads and 32-px images are
    faster on one thread, and much faster when other processes share the
    cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


def _chosen_by_definition(front, rule):
    """The member each documented rule names, computed from the table alone
    (pandas, not the package's selection code): the independent check."""
    frame = front.to_frame().reset_index(drop=True)[["accuracy", "complexity"]
                                                   + (["robustness"] if "robustness"
                                                      in front.objective_names else [])]
    n_validation = front.n_validation
    acc = frame["accuracy"]
    if rule == "accuracy":
        return frame.sort_values(["accuracy", "complexity"], ascending=[False, True],
                                 kind="stable").index[0]
    if rule == "complexity":
        return frame.sort_values(["complexity", "accuracy"], ascending=[True, False],
                                 kind="stable").index[0]
    worse = frame.copy()
    for column in ("accuracy", "robustness"):  # every column now "lower is better"
        if column in worse:
            worse[column] = worse[column].max() - worse[column]
    if rule == "knee":
        se = np.sqrt(acc.max() * (1 - acc.max()) / n_validation)
        worse = worse[acc >= acc.max() - se - 1e-12].drop(columns="accuracy")
    scaled = (worse - worse.min()) / (worse.max() - worse.min()).replace(0, 1)
    return (scaled**2).sum(axis=1).idxmin()


@pytest.fixture(scope="session")
def chosen_by_definition():
    """``chosen_by_definition(front, rule)``: the index each selection string
    documents, computed independently of :mod:`evoprune_sklearn.selection`."""
    return _chosen_by_definition


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


class HeavyWork:
    """Counts what costs in a fit: backbones built and heads trained (the
    dense baseline's and the search's). A fit refused "before any heavy
    work" leaves both at zero; checking the estimator's attributes instead
    cannot tell, since a failed fit restores them."""

    def __init__(self, monkeypatch):
        import evoprune_sklearn._classifier as classifier_module

        self.backbones = self.heads = 0
        build = classifier_module.get_backbone

        def counted_backbone(*args, **kwargs):
            self.backbones += 1
            return build(*args, **kwargs)

        monkeypatch.setattr(classifier_module, "get_backbone", counted_backbone)
        for module in (classifier_module, search_module):
            def counted_train(genomes, *args, _train=module.train_heads, **kwargs):
                self.heads += len(genomes)
                return _train(genomes, *args, **kwargs)

            monkeypatch.setattr(module, "train_heads", counted_train)

    @property
    def none(self):
        return self.backbones == 0 and self.heads == 0


@pytest.fixture
def heavy_work(monkeypatch):
    """A :class:`HeavyWork` counter active for this test."""
    return HeavyWork(monkeypatch)


@pytest.fixture
def count_training(monkeypatch):
    """``count_training(fail_on_call=None)``: a :class:`CountTraining` that
    replaces the search's training for this test."""
    return lambda fail_on_call=None: CountTraining(monkeypatch, fail_on_call)
