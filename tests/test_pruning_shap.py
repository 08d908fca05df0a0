"""Gene values by pruning, checked against Shapley values computed by hand from
heads rebuilt with the pruned genes."""

import itertools
import math

import numpy as np
import pytest
import torch

from evoprune_sklearn import MaskedHead
from evoprune_sklearn._pruning_shap import (
    PruningMasker,
    pruned_log_proba,
    pruning_gene_values,
)

RNG = np.random.default_rng(0)
FEATS = torch.as_tensor(RNG.normal(size=(4, 5)), dtype=torch.float32)
TARGETS = np.array([0, 1, 2, 1])


def _head(feature_mask, neuron_masks=None, hidden=(6,), seed=0):
    torch.manual_seed(seed)
    return MaskedHead(5, hidden, 3, feature_mask=feature_mask,
                      neuron_masks=neuron_masks).eval()


def _rebuilt(head, feature_mask=None, neuron_masks=None):
    """The same weights with other masks: what pruning these genes gives."""
    other = MaskedHead(5, [layer.out_features for layer in head.layers[:-1]], 3,
                       feature_mask=feature_mask, neuron_masks=neuron_masks).eval()
    other.layers.load_state_dict(head.layers.state_dict())
    return other


def _target_logp(head, feats=FEATS):
    with torch.no_grad():
        return torch.log_softmax(head(feats), 1).double().numpy()[np.arange(len(feats)),
                                                                    TARGETS]


def test_pruned_log_proba_is_the_head_with_the_genes_pruned():
    genome = np.array([1, 1, 0, 1, 1], dtype=bool)
    head = _head(genome)
    mask = np.array([[1, 0, 1, 1, 0]] * 4, dtype=np.float32)
    out = pruned_log_proba([head], FEATS, torch.as_tensor(mask), "features")
    expected = _rebuilt(head, feature_mask=genome & mask[0].astype(bool))
    with torch.no_grad():
        torch.testing.assert_close(out, torch.log_softmax(expected(FEATS), 1))


def test_neuron_genes_prune_hidden_units():
    head = _head(None, hidden=(3, 2))
    genes = np.array([1, 0, 1, 1, 0], dtype=np.float32)  # 3 + 2 neurons
    out = pruned_log_proba([head], FEATS, torch.as_tensor(np.tile(genes, (4, 1))), "neurons")
    expected = _rebuilt(head, neuron_masks=[genes[:3].astype(bool), genes[3:].astype(bool)])
    with torch.no_grad():
        torch.testing.assert_close(out, torch.log_softmax(expected(FEATS), 1))


def _exact_shapley(head, genome):
    """Shapley values of "keep these genes", by enumerating every coalition."""
    active = np.flatnonzero(genome)
    n = len(active)
    value = {}
    for size in range(n + 1):
        for coalition in itertools.combinations(active, size):
            mask = np.zeros(5, dtype=bool)
            mask[list(coalition)] = True
            value[frozenset(coalition)] = _target_logp(_rebuilt(head, feature_mask=mask))
    phi = np.zeros((len(FEATS), 5))
    for g in active:
        others = [a for a in active if a != g]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for s in itertools.combinations(others, size):
                phi[:, g] += weight * (value[frozenset(s) | {g}] - value[frozenset(s)])
    return phi, value[frozenset()]


def test_two_active_genes_give_the_exact_shapley_values():
    # with two players the antithetic pair of permutations covers both orders
    genome = np.array([0, 1, 0, 0, 1], dtype=bool)
    head = _head(genome)
    values, base = pruning_gene_values([head], FEATS, TARGETS, "features", genome, seed=0)
    exact, empty = _exact_shapley(head, genome)
    np.testing.assert_allclose(values, exact, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(base, empty, rtol=1e-6)
    assert (values[:, ~genome] == 0).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_values_add_up_to_member_minus_everything_pruned(seed):
    genome = np.array([1, 1, 0, 1, 1], dtype=bool)
    head = _head(genome)
    values, base = pruning_gene_values([head], FEATS, TARGETS, "features", genome, seed=seed)
    np.testing.assert_allclose(values.sum(axis=1) + base, _target_logp(head), atol=1e-5)
    empty = _target_logp(_rebuilt(head, feature_mask=np.zeros(5, dtype=bool)))
    np.testing.assert_allclose(base, empty, rtol=1e-6)
    assert (values[:, 2] == 0).all()


def test_same_seed_same_values_and_numpy_global_state_untouched():
    genome = np.array([1, 1, 1, 1, 0], dtype=bool)
    head = _head(genome)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, _ = pruning_gene_values([head], FEATS, TARGETS, "features", genome, seed=5)
    assert np.array_equal(np.random.get_state()[1], before)
    b, _ = pruning_gene_values([head], FEATS, TARGETS, "features", genome, seed=5)
    np.testing.assert_array_equal(a, b)


def test_masker_marks_inactive_genes_invariant_and_decodes_delta_masks():
    masker = PruningMasker(np.array([True, False, True]))
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(masker.invariants(x), [[False, True, False]])
    # delta masks: start empty; flip gene 0 (close), flip gene 2 (close)
    (rows, full), _ = masker(np.array([0, 2]), x)
    assert rows.shape == (2, 4)
    np.testing.assert_array_equal(full, [[1, 0, 0], [1, 0, 1]])
