"""Training parameters the chosen solver ignores: the table, the estimator's
warning, and every example and documentation snippet checked against it."""

import ast
import re
import warnings
from pathlib import Path

import pytest

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._solver_options import (
    SOLVER_PARAMETERS,
    ignored_parameters,
    init_defaults,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = init_defaults(EvoPruneClassifier)


def test_the_table_names_real_parameters_with_defaults():
    for names in SOLVER_PARAMETERS.values():
        assert set(names) <= set(DEFAULTS)
    assert set(SOLVER_PARAMETERS) == {"lbfgs", "adam"}


@pytest.mark.parametrize("params, expected", [
    ({}, []),
    ({"lr": 1e-3, "max_epochs": 200}, []),                # defaults are never reported
    ({"lr": 1e-2}, ["lr"]),
    ({"lr": 1e-2, "max_epochs": 10, "max_iter": 20}, ["lr", "max_epochs"]),
    ({"solver": "adam", "lr": 1e-2, "batch_size": 32}, []),
    ({"solver": "adam", "max_iter": 20, "patience": 3}, ["max_iter"]),
])
def test_ignored_parameters(params, expected):
    assert ignored_parameters(params, DEFAULTS) == expected


@pytest.mark.parametrize("solver, given, named", [
    ("lbfgs", dict(lr=0.05, max_epochs=7), "lr=0.05, max_epochs=7"),
    ("lbfgs", dict(batch_size=16, patience=2), "batch_size=16, patience=2"),
    ("adam", dict(max_iter=20, max_epochs=3), "max_iter=20"),  # adam reads max_epochs
])
def test_fit_warns_about_parameters_its_solver_ignores(solver, given, named, blobs):
    X, y = blobs
    clf = EvoPruneClassifier(backbone=None, solver=solver, pop_size=4, n_evaluations=4,
                             objectives=("accuracy", "complexity"), random_state=0, **given)
    match = re.escape(named) + f" has no effect with solver='{solver}'"
    with pytest.warns(UserWarning, match=match):
        clf.fit(X, y)
    assert hasattr(clf, "pareto_front_")  # a warning, not an error: the fit went on


@pytest.mark.parametrize("solver, given", [
    ("lbfgs", dict(max_iter=20, alpha=0.5)),
    ("adam", dict(lr=0.01, max_epochs=3, batch_size=32, patience=2)),
])
def test_parameters_the_solver_reads_give_no_warning(solver, given, blobs):
    X, y = blobs
    clf = EvoPruneClassifier(backbone=None, solver=solver, pop_size=4, n_evaluations=4,
                             objectives=("accuracy", "complexity"), random_state=0, **given)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*has no effect with solver")
        clf.fit(X, y)


# ------------------------------------------------ examples and docs snippets
def _unprompted(text):
    """Doctest prompts removed, so that docstring examples parse as code."""
    return re.sub(r"(?m)^(\s*)(>>>|\.\.\.) ?", r"\1", text)


def _calls(text):
    """The argument text of every ``EvoPruneClassifier(...)`` in ``text``."""
    for match in re.finditer(r"\bEvoPruneClassifier\(", text):
        depth, i = 1, match.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield text[match.end():i - 1]


def _module_dicts(text):
    """Module-level ``name = dict(...)`` assignments of a script, for ``**name``."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    found = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "dict"):
            found[node.targets[0].id] = node.value.keywords
    return found


def _keywords(args, dicts):
    """Literal keyword arguments of one call (non-literals count as set)."""
    call = ast.parse(f"f({args}\n)", mode="eval").body  # newlines keep comments apart
    params = {}
    for kw in call.keywords:
        for item in (dicts.get(kw.value.id, []) if kw.arg is None else [kw]):
            try:
                params[item.arg] = ast.literal_eval(item.value)
            except ValueError:
                params[item.arg] = object()  # a name or expression: set, not default
    return params


def _snippet_files():
    yield from sorted((ROOT / "examples").glob("*.py"))
    yield from sorted((ROOT / "docs").rglob("*.rst"))
    yield ROOT / "README.md"
    yield from sorted((ROOT / "evoprune_sklearn").rglob("*.py"))


def _all_calls():
    calls = []
    for path in _snippet_files():
        if any(part.startswith("_build") or part in {"auto_examples", "generated"}
               for part in path.parts):
            continue
        text = _unprompted(path.read_text(encoding="utf-8"))
        dicts = _module_dicts(text) if path.suffix == ".py" else {}
        for args in _calls(text):
            try:
                params = _keywords(args, dicts)
            except SyntaxError:
                continue  # prose such as "EvoPruneClassifier(...)" or a signature
            calls.append((path.relative_to(ROOT), params))
    return calls


def test_the_snippet_scanner_sees_the_examples_and_flags_an_ignored_parameter():
    calls = _all_calls()
    assert len({str(p) for p, _ in calls if str(p).startswith("examples")}) >= 8
    assert len(calls) >= 20
    text = 'common = dict(lr=1e-2)\nclf = EvoPruneClassifier(image_size=32, **common)\n'
    (params,) = [_keywords(a, _module_dicts(text)) for a in _calls(text)]
    assert ignored_parameters(params, DEFAULTS) == ["lr"]


def test_no_example_or_docs_snippet_passes_a_parameter_its_solver_ignores():
    offenders = [
        f"{path}: {names}" for path, params in _all_calls()
        if (names := ignored_parameters(params, DEFAULTS))
    ]
    assert not offenders, offenders
