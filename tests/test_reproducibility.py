"""Same seed, same front, at a realistic size, whatever the parallel setting.

1,000 samples x 1,280 features (EfficientNet-Lite0's width, the README's
setting): large enough that matrix products and reductions split their sums
differently with the number of threads, which is what used to change the
front with ``n_jobs``, the joblib backend and ``torch.set_num_threads``.
The fronts are compared bit for bit: genomes, objective values and the
heads' parameters (refitted for the linear head; as the search trained
them, in workers with n_jobs=2, for the hidden layer).
"""

import numpy as np
import pytest
import torch

from evoprune_sklearn import EvoPruneClassifier

N_SAMPLES, N_FEATURES, N_CLASSES = 1000, 1280, 10

# The default linear head (stacked L-BFGS) and a hidden layer (per-head
# torch L-BFGS, whose dot products MKL splits by thread count).
SETTINGS = {
    "linear": dict(max_iter=20, pop_size=8, n_evaluations=16),
    "hidden": dict(hidden_layer_sizes=(8,), max_iter=15, pop_size=6, n_evaluations=12,
                   refit=False),
}
# The reference runs with this many torch threads, n_jobs=None.
THREADS = 2


def _features():
    """Backbone-like features: non-negative, sparse, low rank plus class means."""
    rng = np.random.default_rng(0)
    y = np.arange(N_SAMPLES) % N_CLASSES
    means = rng.gamma(0.6, 0.5, size=(N_CLASSES, N_FEATURES))
    latent = rng.standard_normal((N_SAMPLES, 24)) @ rng.standard_normal((24, N_FEATURES))
    X = np.maximum(means[y] + 0.15 * latent - 0.3, 0.0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def data():
    return _features()


def _fit(data, setting, **kw):
    X, y = data
    clf = EvoPruneClassifier(backbone=None, random_state=0, **SETTINGS[setting], **kw)
    return clf.fit(X, y)


def _front(clf):
    members = [*clf.pareto_front_, clf.baseline_]
    return [
        (m.genome.tobytes(), tuple(m.objectives.values()),
         [(w.numpy().tobytes(), b.numpy().tobytes()) for w, b in m.params])
        for m in members
    ]


def _fit_with_threads(data, setting, threads, **kw):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        clf = _fit(data, setting, **kw)
        # The user's setting survives the fit.
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    return clf


@pytest.fixture(scope="module")
def reference(data):
    return {setting: _front(_fit_with_threads(data, setting, THREADS))
            for setting in SETTINGS}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("threads", [1, 4])
def test_same_front_for_any_torch_threads(data, reference, setting, threads):
    assert _front(_fit_with_threads(data, setting, threads)) == reference[setting]


@pytest.mark.parametrize("setting, n_jobs", [("linear", 1), ("linear", 2), ("hidden", 2)])
def test_same_front_for_any_n_jobs(data, reference, setting, n_jobs):
    # n_jobs=2: loky worker processes, each with its share of the threads.
    assert _front(_fit(data, setting, n_jobs=n_jobs)) == reference[setting]


def test_same_front_with_the_threading_backend(data, reference):
    import joblib

    before = torch.get_num_threads()
    with joblib.parallel_config(backend="threading"):
        front = _front(_fit(data, "hidden", n_jobs=2))
    assert front == reference["hidden"]
    assert torch.get_num_threads() == before


def test_same_front_on_a_dask_cluster(data, reference):
    distributed = pytest.importorskip(
        "distributed",
        reason="dask.distributed is the [dask] extra (make install and CI install it)",
    )
    import joblib

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
    ) as cluster, distributed.Client(cluster):
        with joblib.parallel_config(backend="dask"):
            front = _front(_fit(data, "linear", n_jobs=2))
    assert front == reference["linear"]


def test_features_do_not_depend_on_torch_threads():
    # A last, small batch (131 = 2 x 64 + 3) is where the backbone's
    # convolutions split their sums by thread count when threads share one
    # batch.
    from evoprune_sklearn import get_backbone
    from evoprune_sklearn.datasets import load_digits_images

    images = load_digits_images(size=32)[0][:131]
    backbone = get_backbone("efficientnet_lite0", image_size=64)
    before = torch.get_num_threads()
    features = []
    try:
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            features.append(backbone.extract(images))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    assert all(np.array_equal(features[0], f) for f in features[1:])
