"""The fitted result: ParetoFront, Member, the selection rules and history_."""

import dataclasses
import pickle

import numpy as np
import pytest

from evoprune_sklearn import Member, ParetoFront
from evoprune_sklearn._front import gene_frequencies, merge_front, sorted_front
from evoprune_sklearn.selection import (
    Knee,
    MostAccurate,
    SelectionRule,
    Sparsest,
    get_rule,
    knee_index,
)

TWO = ("accuracy", "complexity")
VALUES = [(0.80, 0.5), (0.95, 0.9), (0.70, 0.2), (0.90, 0.7), (0.60, 0.1)]


def _front(values=VALUES, **kwargs):
    return ParetoFront(TWO, (True, False), members=[
        Member(np.arange(4) < 1 + i % 4, {"accuracy": a, "complexity": c})
        for i, (a, c) in enumerate(values)
    ], **kwargs)


@pytest.fixture(scope="module")
def fitted(blobs):
    from conftest import tiny

    X, y = blobs
    labels = np.array(["ant", "bee", "cat"])[y]
    clf = tiny(backbone=None, objectives=TWO, pop_size=6, n_evaluations=18).fit(X, labels)
    return clf, X, labels


# ------------------------------------------------------------ immutability
def test_front_is_an_immutable_sequence():
    from collections.abc import Sequence

    front = _front()
    assert isinstance(front, Sequence) and len(front) == 5
    assert front[1] is front.members[1] and front[-1] is front.members[4]
    assert list(front)[2] is front[2] and front[2] in front
    assert isinstance(front[1:3], ParetoFront) and len(front[1:3]) == 2
    assert isinstance(front.members, tuple)
    for name, value in [("members", []), ("objective_names", ("x",)), ("gene_names", None)]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(front, name, value)
    for mutator in ("update", "sort", "append", "minimization_matrix"):
        assert not hasattr(front, mutator)
    with pytest.raises(ValueError, match="read-only"):
        front.F[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        front.genomes[0, 0] = False
    with pytest.raises(TypeError, match="integers or slices"):
        front["accuracy"]


def test_member_is_a_frozen_record():
    m = Member([1, 0, 1], {"accuracy": 0.9, "complexity": 0.5})
    assert m.genome.dtype == bool and m.n_active == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.genome = np.ones(3, bool)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.params = None
    with pytest.raises(ValueError, match="read-only"):
        m.genome[0] = False
    with pytest.raises(TypeError):
        m.objectives["accuracy"] = 1.0
    assert "net" not in {f.name for f in dataclasses.fields(m)}  # one copy of the weights
    # pickles (joblib workers, copies) and compares by identity
    copy = pickle.loads(pickle.dumps(m))
    assert dict(copy.objectives) == dict(m.objectives)
    np.testing.assert_array_equal(copy.genome, m.genome)
    with pytest.raises(TypeError):
        copy.objectives["accuracy"] = 1.0


def test_member_without_a_head_explains_what_is_missing():
    m = Member([1, 0], {"accuracy": 0.9})
    with pytest.raises(ValueError, match="no parameters"):
        m.predict(np.zeros((1, 2)))


def test_front_refuses_bad_members():
    with pytest.raises(TypeError, match="Member objects"):
        ParetoFront(TWO, (True, False), members=[object()])
    with pytest.raises(ValueError, match="no value for"):
        ParetoFront(TWO, (True, False), members=[Member([1], {"accuracy": 0.5})])
    with pytest.raises(ValueError, match="same length"):
        ParetoFront(TWO, (True,))


# -------------------------------------------------------------- arrays
def test_F_is_in_natural_units_and_genomes_stack():
    front = _front()
    np.testing.assert_array_equal(front.F, np.array(VALUES))
    assert front.F.shape == (5, 2)
    assert front.genomes.shape == (5, 4) and front.genomes.dtype == bool
    np.testing.assert_array_equal(front.genomes[1], front[1].genome)
    empty = ParetoFront(TWO, (True, False))
    assert empty.F.shape == (0, 2) and len(empty.genomes) == 0


def test_to_frame_has_one_row_a_member():
    frame = _front(gene_names=["a", "b", "c", "d"]).to_frame(genomes=True)
    assert list(frame.columns) == ["accuracy", "complexity", "n_genes_on", "a", "b", "c", "d"]
    np.testing.assert_array_equal(frame[["accuracy", "complexity"]].to_numpy(), VALUES)


# ----------------------------------------------------------- top, window
def test_top_and_window():
    front = _front()
    assert front.top(3).tolist() == [0, 1, 3]  # accuracy, in front order
    assert front.top(2, by="complexity").tolist() == [2, 4]  # lowest is best
    assert front.top(99).tolist() == [0, 1, 2, 3, 4]
    assert front.window("accuracy", 50, 100).tolist() == [0, 1, 3]
    with pytest.raises(ValueError, match="k must be"):
        front.top(0)
    with pytest.raises(ValueError, match="objectives are"):
        front.top(1, by="robustness")
    with pytest.raises(ValueError, match="selects no member"):
        _front([(0.9, 0.5), (0.6, 0.1)]).window("accuracy", 40, 60)


# ------------------------------------------------------------ selection
def test_select_rules_match_their_definitions():
    front = _front(n_validation=100)
    assert front.select("accuracy") == MostAccurate().select(front) == 1
    assert front.select("complexity") == Sparsest().select(front) == 4
    minimised = front.F * [-1, 1]
    assert front.select("tradeoff") == knee_index(minimised)
    assert front.select("knee") == knee_index(minimised, accuracy_column=0,
                                              n_validation=100)
    assert front.select(Knee(one_standard_error=False)) == front.select("tradeoff")
    assert front.select(3) == 3
    assert get_rule("knee").one_standard_error and not get_rule("tradeoff").one_standard_error
    with pytest.raises(ValueError, match="only 5 member"):
        front.select(5)
    with pytest.raises(ValueError, match="selection must be"):
        front.select("best")


def test_a_rule_returning_a_bad_index_is_refused():
    class Bad(SelectionRule):
        def _select(self, front):
            return 99

    with pytest.raises(ValueError, match="Bad returned 99"):
        _front().select(Bad())
    with pytest.raises(ValueError, match="empty"):
        ParetoFront(TWO, (True, False)).select("knee")


# -------------------------------------------------- building a front
def test_merge_builds_a_new_non_dominated_front():
    empty = ParetoFront(TWO, (True, False))
    a = Member([1], {"accuracy": 0.8, "complexity": 0.5})
    b = Member([1], {"accuracy": 0.9, "complexity": 0.5})  # dominates a
    c = Member([1], {"accuracy": 0.7, "complexity": 0.1})
    twin = Member([1], {"accuracy": 0.7, "complexity": 0.1})  # equal to c: dropped
    one = merge_front(empty, [a])
    two = merge_front(one, [b, c, twin])
    assert len(empty) == 0 and list(one) == [a]  # nothing changed in place
    assert list(two) == [b, c]
    assert list(sorted_front(merge_front(empty, [c, b]))) == [b, c]


# ------------------------------------------------------------- on a fit
def test_fitted_members_predict_labels(fitted):
    clf, X, labels = fitted
    features = clf.extract_features(X)
    for i, member in enumerate(clf.pareto_front_):
        pred = member.predict(features)
        assert set(pred) <= set(clf.classes_)
        proba = member.predict_proba(features)
        assert proba.shape == (len(X), 3)
        np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
        np.testing.assert_array_equal(pred, clf.ensemble_predict(X, members=i))
        # the skorch net is built on demand from the same weights
        np.testing.assert_array_equal(
            clf.classes_[member.net.predict(features)], pred)
    best = clf.pareto_front_[clf.best_index_]
    np.testing.assert_array_equal(best.predict(features), clf.predict(X))
    np.testing.assert_array_equal(clf.baseline_.classes, clf.classes_)


def test_fitted_front_is_sorted_and_selects_each_rule_by_its_definition(
    fitted, chosen_by_definition
):
    clf, _, _ = fitted
    front = clf.pareto_front_
    acc = front.F[:, 0]
    assert np.all(np.diff(acc) <= 0)  # decreasing accuracy
    assert front.n_validation == len(clf._val_index)
    np.testing.assert_array_equal(front.gene_names, clf.gene_names_)
    for rule in ("knee", "tradeoff", "accuracy", "complexity"):
        expected = chosen_by_definition(front, rule)
        assert front.select(rule) == expected, rule
        assert clf.set_params(selection=rule).best_index_ == expected, rule
    clf.set_params(selection="knee")


def test_history_tabulates_in_one_call(fitted):
    import pandas as pd  # a dependency: a missing pandas is a broken install, not a skip
    clf, _, _ = fitted
    table = pd.DataFrame(clf.history_)
    assert len(table) == len(clf.history_) == clf.n_iter_
    assert {"generation", "n_evaluations", "front_size", "best_accuracy",
            "best_complexity", "hypervolume", "seconds"} <= set(table.columns)
    assert table["n_evaluations"].iloc[-1] == clf.n_evaluations_
    assert all(np.issubdtype(t, np.number) for t in table.dtypes)


def test_front_survives_save_load_and_pickle(fitted, tmp_path):
    from evoprune_sklearn import EvoPruneClassifier

    clf, X, _ = fitted
    clf.save(tmp_path / "model.safetensors")
    features = clf.extract_features(X)
    for other in (EvoPruneClassifier.load(tmp_path / "model.safetensors"),
                  pickle.loads(pickle.dumps(clf))):
        front = other.pareto_front_
        assert isinstance(front, ParetoFront) and all(isinstance(m, Member) for m in front)
        np.testing.assert_array_equal(front.F, clf.pareto_front_.F)
        np.testing.assert_array_equal(front.genomes, clf.pareto_front_.genomes)
        assert front.n_validation == clf.pareto_front_.n_validation
        for mine, theirs in zip(clf.pareto_front_, front):
            np.testing.assert_array_equal(theirs.predict(features), mine.predict(features))
        with pytest.raises(TypeError):
            front[0].objectives["accuracy"] = 0.0
        assert front.select("knee") == clf.best_index_


def test_rules_weigh_robustness_as_documented(blobs, chosen_by_definition):
    from conftest import tiny

    X, y = blobs
    clf = tiny(backbone=None, pop_size=6, n_evaluations=18).fit(X, y)  # three objectives
    front = clf.pareto_front_
    assert "robustness" in front.objective_names and len(front) >= 3
    for rule in ("knee", "tradeoff", "accuracy", "complexity"):
        assert clf.set_params(selection=rule).best_index_ == chosen_by_definition(front, rule)


def test_gene_frequencies_are_the_share_of_members_keeping_each_gene(fitted):
    genomes = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(gene_frequencies(genomes), [1.0, 0.25, 0.25])
    # the one computation behind the plot and the explanation
    from evoprune_sklearn.plotting import gene_frequency

    clf, X, _ = fitted
    by_hand = np.array([m.genome for m in clf.pareto_front_], dtype=float).mean(axis=0)
    np.testing.assert_array_equal(gene_frequency(clf), by_hand)
    exp = clf.explain(X[:2], member="front", random_state=0)
    np.testing.assert_array_equal(exp.gene_frequency, by_hand)
