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
