"""The head specification (_head.py): genome -> masks, initial weights and
the one forward pass every engine, the front and the objectives use."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import EvoPruneClassifier, MaskedHead
from evoprune_sklearn._head import HeadSpec, head_forward


def test_features_encoding_masks_features_only():
    spec = HeadSpec("features", 5, (3, 2), 4)
    assert spec.n_genes == 5 and spec.sizes == [5, 3, 2, 4]
    fmask, nmasks = spec.masks([1, 0, 1, 1, 0])
    assert fmask.tolist() == [True, False, True, True, False]
    assert [m.tolist() for m in nmasks] == [[True] * 3, [True] * 2]
    sets = spec.unit_sets([1, 0, 1, 1, 0])
    assert [s.tolist() for s in sets] == [[0, 2, 3], [0, 1, 2], [0, 1]]


def test_neurons_encoding_masks_each_hidden_layer_in_turn():
    spec = HeadSpec("neurons", 5, (3, 2), 4)
    assert spec.n_genes == 5  # 3 + 2 neurons, whatever n_features
    assert HeadSpec("neurons", 100, (3, 2), 4).n_genes == 5
    fmask, nmasks = spec.masks([0, 1, 1, 1, 0])
    assert fmask.all() and fmask.shape == (5,)
    assert [m.tolist() for m in nmasks] == [[False, True, True], [True, False]]
    assert [s.tolist() for s in spec.unit_sets([0, 1, 1, 1, 0])] == [
        [0, 1, 2, 3, 4], [1, 2], [0]]


def test_spec_normalises_its_fields():
    spec = HeadSpec("features", np.int64(6), [np.int64(4)], 3.0)
    assert spec == HeadSpec("features", 6, (4,), 3)
    assert isinstance(spec.hidden_layer_sizes, tuple) and hash(spec) == hash(
        HeadSpec("features", 6, (4,), 3))


def test_initial_weights_depend_on_the_seed_only():
    spec = HeadSpec("features", 6, (4,), 3)
    a = spec.initial_parameters(0)
    torch.manual_seed(123)  # the global generator plays no part
    b = spec.initial_parameters(0)
    c = spec.initial_parameters(1)
    assert [tuple(w.shape) for w, _ in a] == [(6, 4), (4, 3)]
    assert [tuple(b_.shape) for _, b_ in a] == [(4,), (3,)]
    assert all(torch.equal(w, w1) and torch.equal(v, v1) for (w, v), (w1, v1) in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])
    # uniform in +-1/sqrt(fan_in), as torch.nn.Linear draws
    assert a[0][0].abs().max() <= 1 / np.sqrt(6) and a[1][0].abs().max() <= 1 / np.sqrt(4)


def _numpy_forward(x, params, fmask, nmasks):
    x = x * fmask
    for (w, b), m in zip(params[:-1], nmasks):
        x = np.maximum(x @ w + b, 0.0) * m
    w, b = params[-1]
    return x @ w + b


@pytest.mark.parametrize("encoding", ["features", "neurons"])
def test_forward_is_the_masked_mlp(encoding):
    rng = np.random.default_rng(0)
    spec = HeadSpec(encoding, 6, (5, 4), 3)
    genome = rng.random(spec.n_genes) < 0.6
    params = [(w.double(), b.double()) for w, b in spec.initial_parameters(2)]
    fmask, nmasks = spec.masks(genome)
    x = rng.normal(size=(7, 6))
    expected = _numpy_forward(x, [(w.numpy(), b.numpy()) for w, b in params],
                              fmask, nmasks)
    got = spec.forward(torch.as_tensor(x), params, torch.as_tensor(fmask, dtype=torch.float64),
                       [torch.as_tensor(m, dtype=torch.float64) for m in nmasks])
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_pruned_units_contribute_nothing():
    # Whatever a pruned feature's value or a pruned neuron's weights, the
    # logits do not move.
    rng = np.random.default_rng(1)
    for encoding in ("features", "neurons"):
        spec = HeadSpec(encoding, 6, (5,), 3)
        genome = np.ones(spec.n_genes, bool)
        genome[[1, 3]] = False
        fmask, nmasks = spec.masks(genome)
        params = spec.initial_parameters(0)
        masks = (torch.as_tensor(fmask, dtype=torch.float32),
                 [torch.as_tensor(m, dtype=torch.float32) for m in nmasks])
        x = torch.as_tensor(rng.normal(size=(4, 6)), dtype=torch.float32)
        before = spec.forward(x, params, *masks)
        x2 = x.clone()
        x2[:, ~torch.as_tensor(fmask)] = 1e6
        changed = [(w.clone(), b.clone()) for w, b in params]
        changed[0][0][:, ~torch.as_tensor(nmasks[0])] = 1e6
        changed[0][1][~torch.as_tensor(nmasks[0])] = 1e6
        assert torch.equal(spec.forward(x2, changed, *masks), before)


def test_a_stack_of_candidates_computes_each_candidate():
    # The stacked form (leading candidate dimension, batched products) the
    # Adam engine trains with gives each candidate's own logits, bit for bit.
    rng = np.random.default_rng(2)
    spec = HeadSpec("features", 6, (4,), 3)
    heads = [spec.initial_parameters(s) for s in range(3)]
    x = torch.as_tensor(rng.normal(size=(3, 5, 6)), dtype=torch.float32)
    stacked = [(torch.stack([h[i][0] for h in heads]),
                torch.stack([h[i][1] for h in heads])[:, None]) for i in range(2)]
    together = head_forward(x, stacked)
    for g, params in enumerate(heads):
        alone = head_forward(x[g:g + 1], [(w[None], b[None, None]) for w, b in params])
        assert torch.equal(together[g], alone[0])
        np.testing.assert_allclose(head_forward(x[g], params).numpy(), together[g].numpy(),
                                   rtol=1e-6, atol=1e-6)


def test_compact_and_expand_are_inverse_on_kept_units():
    spec = HeadSpec("neurons", 6, (5, 4), 3)
    genome = np.array([1, 0, 1, 1, 0, 0, 1, 1, 0], bool)
    sets = spec.unit_sets(genome)
    params = spec.initial_parameters(0)
    compact = spec.compact(sets, params)
    assert [tuple(w.shape) for w, _ in compact] == [(6, 3), (3, 2), (2, 3)]
    full = spec.expand(sets, compact)
    fmask, nmasks = spec.masks(genome)
    keep = [fmask, *nmasks, np.ones(3, bool)]
    for layer, ((w, b), (w0, b0)) in enumerate(zip(full, params)):
        kept = torch.as_tensor(np.outer(keep[layer], keep[layer + 1]))
        assert torch.equal(w, torch.where(kept, w0, 0.0))
        assert torch.equal(b, torch.where(torch.as_tensor(keep[layer + 1]), b0, 0.0))


@pytest.mark.parametrize("encoding", ["features", "neurons"])
def test_masked_head_and_spec_logits_agree_bit_for_bit(encoding):
    spec = HeadSpec(encoding, 6, (5,), 3)
    genome = np.random.default_rng(3).random(spec.n_genes) < 0.6
    params = spec.expand(spec.unit_sets(genome),
                         spec.compact(spec.unit_sets(genome), spec.initial_parameters(4)))
    module = spec.module(genome, params)
    assert isinstance(module, MaskedHead)
    x = torch.as_tensor(np.random.default_rng(4).normal(size=(8, 6)), dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(module(x), spec.logits(genome, params, x.numpy()))


def test_masked_head_starts_from_the_pruned_initial_weights():
    spec = HeadSpec("features", 6, (4,), 3)
    genome = np.array([1, 1, 0, 1, 0, 1], bool)
    head = spec.module(genome, init_seed=5)
    (w0, _), _ = spec.initial_parameters(5)
    w = head.layers[0].weight.detach().T
    assert torch.equal(w[genome], w0[genome]) and not w[~genome].any()


def test_estimator_members_compute_through_the_spec(blobs):
    X, y = blobs
    X = X.astype(np.float32)
    clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(6,), encoding="neurons",
                             pop_size=4, n_evaluations=8, random_state=0).fit(X, y)
    spec = clf._config.head
    assert spec.n_genes == 6 == clf.baseline_.genome.size
    for member in clf.pareto_front_:
        logits = spec.logits(member.genome, member.params, X)
        assert torch.equal(member.logits(X), logits)
        with torch.no_grad():
            assert torch.equal(member.module()(torch.as_tensor(X)), logits)


def test_hidden_forward_gives_the_masked_activations():
    # hidden=True: every given layer is a hidden one (ReLU and mask), as the
    # gradient and pruning explanations read a head's inner layers.
    rng = np.random.default_rng(5)
    spec = HeadSpec("neurons", 6, (5, 4), 3)
    genome = rng.random(spec.n_genes) < 0.6
    head = spec.module(genome, init_seed=1)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    params = [(w.detach().numpy(), b.detach().numpy()) for w, b in head.layer_parameters()]
    masks = [m.numpy() for m in head.unit_masks()]
    with torch.no_grad():
        got = head_forward(torch.as_tensor(x), head.layer_parameters()[:2], head.feature_mask,
                           head.unit_masks(), hidden=True)
    h = x
    for (w, b), m in zip(params[:2], masks):
        h = np.maximum(h @ w + b, 0.0) * m
    np.testing.assert_allclose(got.numpy(), h, rtol=1e-5, atol=1e-6)
    assert not got[:, ~torch.as_tensor(masks[1], dtype=torch.bool)].any()
