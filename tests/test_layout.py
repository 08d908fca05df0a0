"""The tests mirror the package, and no module reads another's private attributes.

Mirroring: ``evoprune_sklearn/_x.py`` or ``x.py`` is tested in
``tests/test_x.py``; a module of a subpackage, ``evoprune_sklearn/<pkg>/_x.py``,
in ``tests/<pkg without its leading underscore>/test_x.py`` (a folder with an
``__init__.py``, so equal basenames do not collide). ``__init__.py`` files are
exempt; ``__main__.py`` is tested in ``tests/test_main.py``.

Privacy: ``obj._name`` (one leading underscore) is read only on ``self`` or
``cls``, or when this module defines ``_name`` itself (a function, class or
``self._name`` attribute: its own objects' state). Reading another module's
object, or pymoo's, through a private name couples the two to details the
owner may change at any time. The scan reads the source (the AST), so a
function that is never run is checked too.
"""

import ast
import pathlib

import pytest

import evoprune_sklearn

ROOT = pathlib.Path(evoprune_sklearn.__file__).parent
TESTS = pathlib.Path(__file__).parent

# Private reads allowed as exceptions, (file, private name), each with its
# reason; empty: no module reads another object's private state.
ALLOWED = set()

# Test files a change in progress has not written yet (a module may land one
# commit before its test file); empty on main.
PENDING = set()


def mirrored_test(module):
    """The test file a package module must have, relative to ``tests/``; None if exempt."""
    parts = module.relative_to(ROOT).parts
    name = parts[-1]
    if name == "__init__.py":
        return None
    stem = "main" if name == "__main__.py" else name[:-3].lstrip("_")
    folders = [p.lstrip("_") for p in parts[:-1]]
    return pathlib.Path(*folders, f"test_{stem}.py")


def _package_modules():
    return sorted(ROOT.rglob("*.py"))


def test_mirrored_test_paths():
    assert mirrored_test(ROOT / "_head.py") == pathlib.Path("test_head.py")
    assert mirrored_test(ROOT / "plotting.py") == pathlib.Path("test_plotting.py")
    assert mirrored_test(ROOT / "__main__.py") == pathlib.Path("test_main.py")
    assert mirrored_test(ROOT / "objectives" / "_odin.py") == pathlib.Path(
        "objectives", "test_odin.py")
    assert mirrored_test(ROOT / "engines" / "_adam.py") == pathlib.Path(
        "engines", "test_adam.py")
    assert mirrored_test(ROOT / "_backbones" / "__init__.py") is None


def test_every_module_has_its_mirrored_test_file():
    missing = []
    for module in _package_modules():
        test = mirrored_test(module)
        if test is not None and not (TESTS / test).is_file() and str(test) not in PENDING:
            missing.append(f"{module.relative_to(ROOT.parent)} -> tests/{test}")
    assert not missing, "modules without their test file:\n" + "\n".join(missing)


def test_pending_test_files_are_still_missing():
    written = [name for name in sorted(PENDING) if (TESTS / name).is_file()]
    assert not written, f"remove from PENDING, the files exist now: {written}"


def test_every_test_folder_is_a_package():
    # without __init__.py, tests/objectives/test_base.py and
    # tests/backbones/test_base.py would collide as one module "test_base"
    folders = {p.parent for p in TESTS.rglob("test_*.py")} - {TESTS}
    missing = [str(f.relative_to(TESTS)) for f in folders
               if not (f / "__init__.py").is_file()]
    assert not missing, f"test folders without __init__.py: {missing}"


# ---------------------------------------------------------------- privacy
def _private(name):
    return name.startswith("_") and not name.startswith("__")


def _defined_here(tree):
    """Names a module defines itself: functions, classes, ``self._x``/``cls._x``,
    and names assigned at any level."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def private_reads(source):
    """``(line, text)`` of every read of another object's private attribute."""
    tree = ast.parse(source)
    own = _defined_here(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not on_self and node.attr not in own:
                found.append((node.lineno, node.attr, ast.unparse(node)))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str) and _private(node.args[1].value)):
            target = node.args[0]
            on_self = isinstance(target, ast.Name) and target.id in ("self", "cls")
            if not on_self and node.args[1].value not in own:
                found.append((node.lineno, node.args[1].value, ast.unparse(node)))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                       else [a.name for a in node.names])
            for module in modules:
                if module.split(".")[0] != "pymoo":
                    continue
                names = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) \
                    else []
                bad = [p for p in module.split(".") + names if _private(p)]
                if bad:
                    found.append((node.lineno, bad[0], f"pymoo private import {module}"))
    return found


def test_private_read_scan_finds_what_it_should():
    source = (
        "import pymoo.core._private\n"
        "from pymoo.core.algorithm import _helper\n"
        "class A:\n"
        "    def __init__(self):\n"
        "        self._mine = 1\n"
        "    def f(self, other, clf):\n"
        "        ok = (self._mine, other._mine, _helper, other.__class__)\n"
        "        return clf._device, getattr(clf, '_cache', None), algorithm._initialize()\n"
    )
    names = sorted(name for _, name, _ in private_reads(source))
    assert names == ["_cache", "_device", "_helper", "_initialize", "_private"]


@pytest.mark.parametrize("module", _package_modules(),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_reads_another_objects_private_attributes(module):
    found = [f"{module.relative_to(ROOT)}:{line}: {text}"
             for line, name, text in private_reads(module.read_text(encoding="utf-8"))
             if (module.name, name) not in ALLOWED]
    assert not found, "private attributes of other objects read:\n" + "\n".join(found)


def test_the_allow_list_has_no_stale_entries():
    # an entry whose read is gone must leave the list, so the list only shrinks
    seen = {(m.name, name) for m in _package_modules()
            for _, name, _ in private_reads(m.read_text(encoding="utf-8"))}
    stale = ALLOWED - seen
    assert not stale, f"remove from ALLOWED, the reads are gone: {sorted(stale)}"
