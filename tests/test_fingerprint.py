"""Fingerprints: the same search gets the same key; any change of data or of a
parameter that shapes the search gets another, and is refused by name."""

import numpy as np
import pytest

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._fingerprint import (
    check_fingerprint,
    data_fingerprint,
    search_fingerprint,
    search_parameters,
)
from evoprune_sklearn._images import Images
from evoprune_sklearn._version import __version__
from evoprune_sklearn.objectives import ODIN

RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 5)).astype(np.float32)
Y = np.arange(20) % 3
W = np.linspace(0.5, 1.5, 20)


def test_same_data_gives_the_same_key():
    assert data_fingerprint(X, Y, W, None) == data_fingerprint(X.copy(), list(Y), W.copy(), None)
    # images are identified by their pixels, whether wrapped or not
    images = RNG.integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    assert data_fingerprint(Images(images)) == data_fingerprint(images.copy())


@pytest.mark.parametrize("position", [0, 7, X.nbytes - 1])
def test_any_changed_byte_changes_the_key(position):
    other = X.copy()
    other.view(np.uint8).reshape(-1)[position] ^= 1  # one bit of one byte
    assert data_fingerprint(other, Y) != data_fingerprint(X, Y)


def test_a_changed_label_weight_or_shape_changes_the_key():
    base = data_fingerprint(X, Y, W)
    labels = Y.copy()
    labels[-1] = (labels[-1] + 1) % 3
    weights = W.copy()
    weights[3] += 1e-9
    assert data_fingerprint(X, labels, W) != base
    assert data_fingerprint(X, Y, weights) != base
    assert data_fingerprint(X.reshape(20, 5, 1), Y, W) != base  # same bytes, other shape
    assert data_fingerprint(X.astype(np.float64), Y, W) != base  # same values, other dtype
    assert data_fingerprint(X, Y, None) != base  # no weights is not these weights
    # the position of an entry counts: (X, None) and (None, X) are two inputs
    assert data_fingerprint(X, None) != data_fingerprint(None, X)


def test_search_parameters_keep_what_shapes_the_search_only():
    params = EvoPruneClassifier().get_params(deep=False)
    kept = search_parameters(params)
    for name in ("checkpoint", "verbose", "n_jobs", "selection", "n_evaluations",
                 "warm_start", "max_time", "callbacks", "memory"):
        assert name not in kept, name
    for name in ("pop_size", "alpha", "hidden_layer_sizes", "random_state", "objectives"):
        assert name in kept, name
    # a name and the objective it stands for are one problem
    named = search_parameters({**params, "objectives": ("accuracy", "complexity", "robustness")})
    built = search_parameters({**params, "objectives": ("accuracy", "complexity", ODIN())})
    assert named == built


@pytest.mark.parametrize("name,value", [
    ("pop_size", 7), ("alpha", 0.5), ("hidden_layer_sizes", (4,)), ("random_state", 1),
    ("objectives", ("accuracy", "complexity", ODIN(temperature=2.0))),
])
def test_every_search_parameter_changes_the_fingerprint(name, value):
    params = EvoPruneClassifier().get_params(deep=False)
    before = search_fingerprint(params, (X, Y))
    after = search_fingerprint({**params, name: value}, (X, Y))
    assert after["parameters"] != before["parameters"]
    with pytest.raises(ValueError, match=f"other parameters \\({name}="):
        check_fingerprint("c.ckpt", before, after)


def test_budget_and_workers_do_not_change_the_fingerprint():
    params = EvoPruneClassifier().get_params(deep=False)
    before = search_fingerprint(params, (X, Y))
    after = search_fingerprint({**params, "n_evaluations": 999, "n_jobs": 2}, (X, Y))
    assert after == before
    check_fingerprint("c.ckpt", before, after)  # accepted


def test_a_weights_file_is_identified_by_its_content(tmp_path):
    path = tmp_path / "w.pt"
    path.write_bytes(b"first")
    params = {**EvoPruneClassifier().get_params(deep=False), "weights": str(path)}
    first = search_parameters(params)
    path.write_bytes(b"other")
    assert search_parameters(params)["weights_digest"] != first["weights_digest"]


def test_check_fingerprint_names_what_differs():
    params = EvoPruneClassifier().get_params(deep=False)
    here = search_fingerprint(params, (X, Y))
    with pytest.raises(ValueError, match="other training data"):
        check_fingerprint("c.ckpt", search_fingerprint(params, (X, Y[::-1])), here)
    old = {**here, "version": "0.0.1"}
    with pytest.raises(ValueError, match=f"0.0.1, but this is version {__version__}"):
        check_fingerprint("c.ckpt", old, here)
    with pytest.raises(ValueError, match="warm_start=False"):
        check_fingerprint("previous fit", old, here, warm=True)
