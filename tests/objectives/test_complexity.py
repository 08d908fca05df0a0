"""The complexity objective: the fraction of genes a candidate keeps."""

from types import SimpleNamespace

import numpy as np

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn.objectives import Complexity

from ._shared import features_data


def test_complexity_is_the_fraction_of_genes_on():
    heads = SimpleNamespace(genomes=np.array([[1, 0, 0, 0], [1, 1, 1, 1], [0, 1, 1, 0]]))
    np.testing.assert_allclose(Complexity().evaluate(heads, None), [0.25, 1.0, 0.5])
    assert Complexity().greater_is_better is False


def test_every_front_member_holds_its_share_of_genes():
    X, y = features_data()
    clf = EvoPruneClassifier(backbone=None, objectives=("accuracy", "complexity"),
                             hidden_layer_sizes=(8,), pop_size=6, n_evaluations=12,
                             random_state=0).fit(X, y)
    for member in clf.pareto_front_:
        assert member.objectives["complexity"] == member.genome.sum() / X.shape[1]
