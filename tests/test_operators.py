"""The informed first population and mutation (init= and mutation=)."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from evoprune_sklearn import EvoPruneClassifier, _classifier
from evoprune_sklearn._front import Member
from evoprune_sklearn._operators import (
    GeneScores,
    InformedMutation,
    InformedSampling,
    gene_importance,
    group_l1_ranking,
    spread_densities,
)
from evoprune_sklearn._search import PruningProblem


def hidden_signal(n_noise=200, seed=0):
    """5 informative columns (the first five) among ``n_noise`` noise columns."""
    X, y = make_classification(
        n_samples=240, n_features=5 + n_noise, n_informative=5, n_redundant=0,
        n_repeated=0, n_classes=3, shuffle=False, class_sep=2.0, random_state=seed)
    return X.astype(np.float32), y


def test_group_l1_path_ranks_the_informative_features_first():
    X, y = hidden_signal()
    score = group_l1_ranking(X, y, n_classes=3)
    assert set(np.argsort(-score)[:5]) == set(range(5))


def test_first_population_already_holds_the_informative_features():
    X, y = hidden_signal()
    problem = PruningProblem(X.shape[1], 2)
    ranking = group_l1_ranking(X, y, n_classes=3)
    pop = InformedSampling([ranking]).do(problem, 30, random_state=np.random.default_rng(0))
    genomes = np.asarray(pop.get("X"), dtype=bool)
    target = np.zeros(X.shape[1], dtype=bool)
    target[:5] = True
    assert any((g == target).all() for g in genomes)
    # the dense genome is there once, and a third are random genomes
    assert sum(g.all() for g in genomes) == 1
    assert len(genomes) == 30


def test_first_population_has_no_duplicates_even_with_few_genes():
    # pymoo drops repeated genomes from the first population: with 4 genes
    # and pop 12 the random share would repeat the informed genomes
    problem = PruningProblem(4, 2)
    ranking = np.array([3.0, 2.0, 1.0, 0.0])
    pop = InformedSampling([ranking]).do(problem, 12, random_state=np.random.default_rng(0))
    genomes = np.asarray(pop.get("X"), dtype=bool)
    assert len({g.tobytes() for g in genomes}) == len(genomes) == 12
    assert all(g.any() for g in genomes)


def test_spread_densities_cover_small_budgets_and_the_dense_genome():
    counts = spread_densities(20, 1280)
    assert counts[-1] == 1280 and counts[0] <= 0.01 * 1280
    assert len(counts) == 20 and np.all(np.diff(counts) > 0)
    for b in (0.05, 0.1, 0.2, 0.3, 0.5):  # a genome near every budget
        assert np.min(np.abs(counts / 1280 - b)) < 0.35 * b


def linear_params(weight_norms, n_classes=2):
    W = torch.zeros(len(weight_norms), n_classes)
    W[:, 0] = torch.as_tensor(weight_norms, dtype=torch.float32)
    return [(W, torch.zeros(n_classes))]


def test_mutation_prefers_switching_off_zero_weight_genes():
    L = 20
    # genes 0-4: zero weight, 5-9 strong (both active); 10-19 inactive with
    # gene 15 the strongest in the dense head
    prior = np.r_[np.zeros(5), np.full(5, 3.0), np.full(10, 0.1)]
    prior[15] = 5.0
    scores = GeneScores(linear_params(prior), "features")
    genome = np.zeros(L, dtype=bool)
    genome[:10] = True
    X = np.tile(genome, (3000, 1))
    mutation = InformedMutation(scores, prob_var=1e-9, random_share=0.0)
    Xp = mutation._do(PruningProblem(L, 2), X, random_state=np.random.default_rng(0))
    off = (X & ~Xp).sum(axis=0)
    on = (~X & Xp).sum(axis=0)
    assert off[:5].sum() > 3 * off[5:10].sum()
    # rank weights 1 / (rank + 1): the strongest inactive gene twice the next
    assert on[15] == on.max() and on[15] > 1.5 * np.delete(on, 15)[10:].max()
    # one flip per child at this rate, never an empty genome
    assert np.all((X != Xp).sum(axis=1) == 1)


def test_mutation_is_deterministic_and_never_empties_a_genome():
    L = 30
    scores = GeneScores(linear_params(np.linspace(0, 1, L)), "features")
    X = np.zeros((50, L), dtype=bool)
    X[:, 0] = True
    mutation = InformedMutation(scores, prob_var=0.2)
    a = mutation._do(PruningProblem(L, 2), X, random_state=np.random.default_rng(3))
    b = mutation._do(PruningProblem(L, 2), X, random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.any(axis=1).all()


def test_gene_scores_average_the_front_members_trained_weights():
    prior = np.ones(4)
    scores = GeneScores(linear_params(prior), "features")
    genome = np.array([True, True, False, False])
    member = Member(genome, {}, params=linear_params([3.0, 1.0, 0.0, 0.0]))
    scores.update([member])
    # member normalised by its active mean 2: [1.5, 0.5]; averaged with prior 1
    np.testing.assert_allclose(scores.scores, [1.25, 0.75, 1.0, 1.0])


def test_neuron_importance_is_incoming_times_outgoing_norm():
    W1 = torch.tensor([[3.0, 0.0], [4.0, 1.0]])  # 2 features -> 2 units
    W2 = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # 2 units -> 2 classes
    imp = gene_importance([(W1, torch.zeros(2)), (W2, torch.zeros(2))], "neurons")
    np.testing.assert_allclose(imp, [5.0, 2.0])


@pytest.mark.parametrize("init", ["informed", "random"])
@pytest.mark.parametrize("mutation", ["informed", "bitflip"])
def test_every_init_and_mutation_fits_reproducibly(init, mutation):
    X, y = hidden_signal(n_noise=30)
    kw = dict(backbone=None, pop_size=6, n_evaluations=18, init=init, mutation=mutation,
              objectives=("accuracy", "complexity"), random_state=0)
    a = EvoPruneClassifier(**kw).fit(X, y)
    b = EvoPruneClassifier(**kw).fit(X, y)
    np.testing.assert_array_equal(a.pareto_front_.genomes, b.pareto_front_.genomes)
    np.testing.assert_array_equal(a.pareto_front_.F, b.pareto_front_.F)
    assert a.n_evaluations_ == 18


def test_informed_init_finds_the_hidden_signal_at_a_small_budget():
    X, y = hidden_signal()
    kw = dict(backbone=None, pop_size=12, n_evaluations=12, random_state=0,
              objectives=("accuracy", "complexity"))
    front = EvoPruneClassifier(init="informed", **kw).fit(X, y).pareto_front_
    small = [m for m in front if m.n_active <= 10]
    assert any(m.genome[:5].all() for m in small)


def test_neurons_encoding_with_informed_operators():
    X, y = hidden_signal(n_noise=20)
    clf = EvoPruneClassifier(backbone=None, encoding="neurons", hidden_layer_sizes=(12,),
                             pop_size=6, n_evaluations=12, random_state=0,
                             objectives=("accuracy", "complexity")).fit(X, y)
    assert clf.n_genes_ == 12 and clf.score(X, y) > 0.5


def test_random_init_and_bitflip_is_the_papers_search(monkeypatch):
    """init="random", mutation="bitflip" gives the front of the search before
    the informed operators: the search built without them (the papers'
    DensitySampling and pymoo's bit-flip mutation)."""
    X, y = hidden_signal(n_noise=30)
    kw = dict(backbone=None, pop_size=6, n_evaluations=18, random_state=0)
    new = EvoPruneClassifier(init="random", mutation="bitflip", **kw).fit(X, y)
    original = _classifier.NSGA2Search

    def old_search(*, sampling, gene_scores, **kwargs):
        return original(**kwargs)

    monkeypatch.setattr(_classifier, "NSGA2Search", old_search)
    old = EvoPruneClassifier(**kw).fit(X, y)
    np.testing.assert_array_equal(new.pareto_front_.genomes, old.pareto_front_.genomes)
    np.testing.assert_array_equal(new.pareto_front_.F, old.pareto_front_.F)
    for m_new, m_old in zip(new.pareto_front_, old.pareto_front_):
        for (w1, b1), (w2, b2) in zip(m_new.params, m_old.params):
            assert torch.equal(w1, w2) and torch.equal(b1, b2)


@pytest.mark.parametrize("name, value", [("init", "l1"), ("mutation", "uniform")])
def test_bad_operator_names_are_refused(name, value):
    X, y = hidden_signal(n_noise=5)
    with pytest.raises(ValueError, match=name):
        EvoPruneClassifier(backbone=None, **{name: value}).fit(X, y)
