"""selection after fit: best_index_ follows the parameter, no refit, nothing ignored."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

# accuracy and complexity only: these tests are not about robustness
TWO = ("accuracy", "complexity")


@pytest.fixture(scope="module")
def fitted(blobs):
    from conftest import tiny

    X, y = blobs
    clf = tiny(backbone=None, objectives=TWO, pop_size=6, n_evaluations=18).fit(X, y)
    assert len(clf.pareto_front_) >= 3  # otherwise every rule picks the same member
    return clf, X, y


def _expected(clf, selection):
    frame = clf.pareto_front_.to_frame()
    if selection == "accuracy":
        return int(np.lexsort((frame.complexity, -frame.accuracy))[0])
    if selection == "complexity":
        return int(np.lexsort((-frame.accuracy, frame.complexity))[0])
    return selection


@pytest.mark.parametrize("selection", ["accuracy", "complexity", 0, 1, 2])
def test_set_params_after_fit_changes_the_predicting_member(fitted, selection):
    clf, X, _ = fitted
    front, n_trained, fit_time = clf.pareto_front_, clf.n_trained_, clf.fit_time_
    old = clf.selection
    try:
        clf.set_params(selection=selection)
        index = _expected(clf, selection)
        assert clf.best_index_ == index
        member = clf.pareto_front_[index]
        np.testing.assert_allclose(clf.predict_proba(X), member.predict_proba(X), atol=1e-6)
        head = clf.export_model(head_only=True)  # export follows too
        assert head.summary()["layers"][0][0] == member.n_active
    finally:
        clf.set_params(selection=old)
    # nothing was refitted
    assert clf.pareto_front_ is front and clf.n_trained_ == n_trained
    assert clf.fit_time_ is fit_time


def test_switching_back_and_forth_changes_predictions(fitted):
    clf, X, _ = fitted
    old = clf.selection
    try:
        probas = {}
        for s in ("accuracy", "complexity"):
            probas[s] = clf.set_params(selection=s).predict_proba(X)
        a, c = (clf.set_params(selection=s).best_index_ for s in ("accuracy", "complexity"))
        assert a != c
        assert not np.allclose(probas["accuracy"], probas["complexity"])
        np.testing.assert_array_equal(
            clf.set_params(selection="accuracy").predict_proba(X), probas["accuracy"]
        )
    finally:
        clf.set_params(selection=old)


def test_selection_set_after_fit_equals_selection_set_before(fitted, make_tiny):
    clf, X, y = fitted
    direct = make_tiny(backbone=None, objectives=TWO, pop_size=6, n_evaluations=18,
                       selection="complexity").fit(X, y)
    old = clf.selection
    try:
        clf.set_params(selection="complexity")
        assert clf.best_index_ == direct.best_index_
        np.testing.assert_array_equal(clf.predict(X), direct.predict(X))
    finally:
        clf.set_params(selection=old)


def test_bad_selection_after_fit_raises_at_use(fitted):
    clf, X, _ = fitted
    old = clf.selection
    try:
        clf.set_params(selection=99)
        with pytest.raises(ValueError, match="selection=99 but the Pareto front has only"):
            clf.predict(X)
        clf.set_params(selection="best")
        with pytest.raises(ValueError, match="'selection' parameter"):
            clf.best_index_
    finally:
        clf.set_params(selection=old)
    clf.predict(X)  # usable again


def test_best_index_is_not_an_attribute_before_fit(fitted, make_tiny):
    clf, _, _ = fitted
    unfitted = make_tiny(backbone=None)
    assert not hasattr(unfitted, "best_index_")
    with pytest.raises(NotFittedError):
        unfitted.best_index_
    assert not hasattr(clone(clf), "best_index_")
    assert "best_index_" not in vars(clf)  # computed, never stored


@pytest.mark.parametrize("name", ["knee", "tradeoff", "accuracy", "complexity"])
def test_every_selection_string_is_a_rule_object(fitted, name, chosen_by_definition):
    from evoprune_sklearn.selection import RULES

    clf, X, _ = fitted
    old = clf.selection
    try:
        by_name = clf.set_params(selection=name).best_index_
        rule = RULES[name]()
        by_rule = clf.set_params(selection=rule).best_index_
        assert by_name == by_rule == chosen_by_definition(clf.pareto_front_, name)
    finally:
        clf.set_params(selection=old)


def test_a_custom_rule_object_selects(fitted):
    from evoprune_sklearn.selection import SelectionRule

    class Last(SelectionRule):
        def _select(self, front):
            return len(front) - 1

    clf, X, _ = fitted
    old = clf.selection
    try:
        clf.set_params(selection=Last())
        assert clf.best_index_ == len(clf.pareto_front_) - 1
        np.testing.assert_array_equal(clf.predict(X), clf.pareto_front_[-1].predict(X))
        assert clone(clf).selection.__class__ is Last  # clone copies the rule
    finally:
        clf.set_params(selection=old)


def _budget_front(n_validation=200):
    from evoprune_sklearn import Member, ParetoFront

    # genes on 1..4 of 8; the 3-gene member is within one standard error of
    # the best within a 3-gene budget (0.92 +- 0.019 at n=200), the 1-gene
    # one is not
    spec = [(1, 0.80), (2, 0.92), (3, 0.91), (8, 0.97)]
    return ParetoFront(TWO, (True, False), members=[
        Member(np.arange(8) < k, {"accuracy": a, "complexity": k / 8}) for k, a in spec
    ], n_validation=n_validation)


def test_within_budget_prefers_more_genes_among_members_it_cannot_tell_apart():
    from evoprune_sklearn.selection import WithinBudget

    front = _budget_front()
    assert WithinBudget(3).select(front) == 2  # 0.91 cannot be told from 0.92
    assert WithinBudget(3 / 8).select(front) == 2  # the same budget as a fraction
    assert WithinBudget(3, one_standard_error=False).select(front) == 1
    assert WithinBudget(2).select(front) == 1
    assert WithinBudget(1.0).select(front) == 3  # the whole genome
    # a large validation set tells 0.91 from 0.92: the most accurate wins
    assert WithinBudget(3).select(_budget_front(n_validation=100_000)) == 1
    # no validation count on the front: the most accurate within the budget
    assert WithinBudget(3).select(_budget_front(n_validation=None)) == 1


def test_within_budget_refuses_what_it_cannot_do():
    from evoprune_sklearn import Member, ParetoFront
    from evoprune_sklearn.selection import WithinBudget

    front = _budget_front()
    with pytest.raises(ValueError, match="no member of the front keeps at most 0 genes; "
                                         "the smallest keeps 1 of 8"):
        WithinBudget(0.05).select(front)
    for bad, error in [(0, ValueError), (0.0, ValueError), (1.5, ValueError),
                       (-2, ValueError), (True, TypeError), ("20%", TypeError)]:
        with pytest.raises(error, match="max_genes"):
            WithinBudget(bad)
    no_accuracy = ParetoFront(("complexity",), (False,), members=[
        Member([1, 0], {"complexity": 0.5})])
    with pytest.raises(ValueError, match="needs 'accuracy' among the objectives"):
        WithinBudget(1).select(no_accuracy)


@pytest.mark.parametrize("one_standard_error", [True, False])
def test_within_budget_through_the_estimator(fitted, one_standard_error):
    from evoprune_sklearn.selection import WithinBudget

    clf, X, _ = fitted
    front, old = clf.pareto_front_, clf.selection
    sizes = np.array([m.n_active for m in front])
    acc = front.to_frame().accuracy.to_numpy()
    budget = int(np.median(sizes))
    ok = np.flatnonzero(sizes <= budget)
    try:
        clf.set_params(selection=WithinBudget(budget, one_standard_error))
        chosen = clf.best_index_
        assert sizes[chosen] <= budget
        if one_standard_error:
            best = acc[ok].max()
            se = np.sqrt(best * (1 - best) / front.n_validation)
            close = ok[acc[ok] >= best - se - 1e-12]
            assert sizes[chosen] == sizes[close].max()
        else:
            assert acc[chosen] == acc[ok].max()
        np.testing.assert_array_equal(clf.predict(X), front[chosen].predict(X))
        clf.set_params(selection=WithinBudget(0.5 / clf.n_genes_))  # below one gene
        with pytest.raises(ValueError, match="no member of the front keeps at most 0 genes"):
            clf.predict(X)
    finally:
        clf.set_params(selection=old)
