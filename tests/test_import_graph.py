"""The package's import graph: no cycles, no function-level imports.

The graph is read from the source (the AST of every module), not from
``sys.modules``, so that an import inside a function counts as much as one
at the top of a module: a cycle hidden in a function body still means two
modules that cannot be understood, or imported, one without the other.
"""

import ast
import pathlib

import evoprune_sklearn

PACKAGE = evoprune_sklearn.__name__
ROOT = pathlib.Path(evoprune_sklearn.__file__).parent


def _modules():
    """Every module of the package, subpackages included: name -> path."""
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _is_package(module):
    return _modules()[module].name == "__init__.py"


def _imported(node, module):
    """Package modules an ``import``/``from ... import`` node imports."""
    modules = _modules()
    names = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative: resolve against this module's package
            base = module if _is_package(module) else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.module else base
        else:
            target = node.module or ""
        # from X import a: a may be a submodule of X
        names = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target
                 for a in node.names]
    out = []
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module and name not in out:
            out.append(name)
    return out


def _imports(module, path):
    """``(imported module, line, top_level)`` for every import of ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # Module level: the module's statements, including imports under an
    # if/try at module level, but nothing inside a function or class body.
    top = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        top.update(id(s) for s in ast.walk(node))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _imported(node, module):
                out.append((target, node.lineno, id(node) in top))
    return out


def _graph():
    return {m: _imports(m, p) for m, p in _modules().items()}


def _find_cycle(edges):
    """One cycle of the directed graph ``edges`` as a list of nodes, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


# Package modules that import an optional dependency (shap) at their top:
# these, and only these, may be imported inside a function, so that the
# package imports without the dependency.
OPTIONAL = {f"{PACKAGE}._explanation", f"{PACKAGE}._pruning_shap"}

# Function-level imports of package modules still to move to the top of
# their module (issue 12), as (importer, imported). The list only shrinks:
# a pair that is no longer found fails test_the_list_of_imports_to_move_is_current.
TO_MOVE = set()


def _function_level(graph):
    return {(m, target): line
            for m, imports in graph.items()
            for target, line, top in imports if not top}


def test_the_package_import_graph_has_no_cycle():
    # Module-level and function-level imports alike: a cycle through an
    # import inside a function is still a cycle. The imports still to move
    # (TO_MOVE) are left out until they are moved; submodules never import
    # the package itself (tested below), so its __init__ is left out too.
    graph = _graph()
    edges = {
        m: {t for t, _, top in imports
            if t != PACKAGE and (top or (m, t) not in TO_MOVE)}
        for m, imports in graph.items() if m != PACKAGE
    }
    cycle = _find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_submodules_do_not_import_the_package_itself():
    offenders = [
        f"{m} line {line}"
        for m, imports in _graph().items() if m != PACKAGE
        for target, line, _ in imports if target == PACKAGE
    ]
    assert not offenders, offenders


def test_no_function_level_imports_of_package_modules():
    found = sorted(
        f"{m} line {line}: imports {target}"
        for (m, target), line in _function_level(_graph()).items()
        if target not in OPTIONAL and (m, target) not in TO_MOVE
    )
    assert not found, (
        "function-level imports of package modules (import them at the top "
        "of the module):\n" + "\n".join(found)
    )


def test_the_list_of_imports_to_move_is_current():
    stale = sorted(TO_MOVE - set(_function_level(_graph())))
    assert not stale, f"moved to the top already, remove from TO_MOVE: {stale}"
