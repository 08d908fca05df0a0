"""Expected gradients: completeness, zero for pruned genes, the soft vote, and
the same draws for a seed."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import MaskedHead
from evoprune_sklearn._gradients import (
    LogProba,
    expected_gradients,
    gene_data,
    gradient_gene_values,
)

RNG = np.random.default_rng(0)
X = torch.as_tensor(RNG.normal(size=(5, 6)), dtype=torch.float32)
BG = torch.as_tensor(RNG.normal(size=(12, 6)), dtype=torch.float32)
TARGETS = np.array([0, 1, 2, 0, 1])


def _head(feature_mask=None, neuron_masks=None, hidden=(7,), seed=0):
    torch.manual_seed(seed)
    return MaskedHead(6, hidden, 3, feature_mask=feature_mask,
                      neuron_masks=neuron_masks).eval()


def test_linear_model_is_exact_against_one_reference():
    # a linear model has a constant gradient: phi = w * (x - b), exactly
    model = torch.nn.Linear(6, 3)
    phi = expected_gradients(model, BG[:1], X, TARGETS, nsamples=3, seed=0, chunk=4)
    w = model.weight.detach().double().numpy()[TARGETS]
    np.testing.assert_allclose(phi, w * (X - BG[:1]).double().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_background,nsamples,tol", [(1, 20000, 0.02), (12, 40000, 0.03)])
def test_attributions_sum_to_output_minus_the_background_expectation(n_background, nsamples,
                                                                     tol):
    # completeness: sum_j phi_j = f(x) - E_b f(b), up to the Monte-Carlo error
    # (of the path only with one reference; of the draw of b too with several)
    model = LogProba([_head()])
    bg = BG[:n_background]
    phi = expected_gradients(model, bg, X, TARGETS, nsamples=nsamples, seed=0, chunk=8192)
    with torch.no_grad():
        out = model(X).double().numpy()[np.arange(5), TARGETS]
        base = model(bg).double().numpy().mean(axis=0)[TARGETS]
    gap = out - base
    np.testing.assert_allclose(phi.sum(axis=1), gap, atol=tol * np.abs(gap).max())


def test_same_seed_same_values_other_seed_other_values():
    model = LogProba([_head()])
    a = expected_gradients(model, BG, X, TARGETS, nsamples=20, seed=1, chunk=7)
    b = expected_gradients(model, BG, X, TARGETS, nsamples=20, seed=1, chunk=100)
    c = expected_gradients(model, BG, X, TARGETS, nsamples=20, seed=2, chunk=100)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)  # chunking does not matter
    assert not np.allclose(a, c)


def test_pruned_features_get_exactly_zero():
    mask = np.array([1, 0, 1, 0, 1, 1], dtype=bool)
    phi = gradient_gene_values([_head(feature_mask=mask)], X, BG, TARGETS, "features",
                               seed=0, nsamples=10)
    assert phi.shape == (5, 6)
    assert (phi[:, ~mask] == 0).all() and (phi[:, mask] != 0).any()


def test_pruned_neurons_get_exactly_zero_and_data_is_the_activation():
    masks = [np.array([1, 1, 0, 1], dtype=bool), np.array([0, 1, 1], dtype=bool)]
    head = _head(neuron_masks=masks, hidden=(4, 3))
    phi = gradient_gene_values([head], X, BG, TARGETS, "neurons", seed=0, nsamples=10)
    off = ~np.concatenate(masks)
    assert phi.shape == (5, 7) and (phi[:, off] == 0).all()
    data = gene_data([head], X, "neurons")
    assert data.shape == (5, 7) and (data[:, off] == 0).all() and (data >= 0).all()
    np.testing.assert_array_equal(gene_data([head], X, "features"), X.double().numpy())


def test_several_heads_are_the_log_of_their_mean_probability():
    heads = [_head(seed=0), _head(seed=1)]
    with torch.no_grad():
        vote = LogProba(heads)(X)
        mean = (torch.softmax(heads[0](X), 1) + torch.softmax(heads[1](X), 1)) / 2
    torch.testing.assert_close(vote, mean.log(), rtol=1e-5, atol=1e-6)


def test_no_rows_give_no_values():
    out = expected_gradients(torch.nn.Linear(6, 3), BG, X[:0], [], nsamples=5, seed=0,
                             chunk=4)
    assert out.shape == (0, 6)


@pytest.mark.parametrize("nsamples", [1, 4])
def test_values_have_the_input_shape(nsamples):
    phi = expected_gradients(torch.nn.Linear(6, 3), BG, X, TARGETS, nsamples=nsamples,
                             seed=0, chunk=3)
    assert phi.shape == tuple(X.shape) and phi.dtype == np.float64
