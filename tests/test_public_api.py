"""The public API is what ``__all__`` says, and the API page documents it.

Like scikit-learn's ``test_all_estimators``-style checks of ``__all__``: every
public module declares ``__all__``, every name there exists, every public
class or function a public module defines is in it, and ``docs/api.rst``
lists exactly those names.
"""

import importlib
import inspect
import pathlib
import pkgutil
import re

import pytest

import evoprune_sklearn

PACKAGE = evoprune_sklearn.__name__
API_PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "api.rst"
# Not documented on the API page: the version string.
UNDOCUMENTED = {"__version__"}
# Defined in a public module without a leading underscore, yet internal (the
# estimator's own validation helper): not public API.
INTERNAL = {"evoprune_sklearn.callbacks.check_callbacks"}


def _public_modules():
    names = [PACKAGE]
    for info in pkgutil.iter_modules(evoprune_sklearn.__path__):
        if not info.name.startswith("_"):
            names.append(f"{PACKAGE}.{info.name}")
    return names


PUBLIC_MODULES = _public_modules()


def _qualified(module_name, name):
    """The name as the API page writes it (relative to the package)."""
    prefix = module_name[len(PACKAGE) + 1:]
    return f"{prefix}.{name}" if prefix else name


def _documented():
    """The names listed in the API page's autosummary blocks."""
    names, in_block = set(), False
    for line in API_PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. autosummary::"):
            in_block = True
        elif in_block and re.match(r"^\s+:", line):
            continue  # an option (:toctree:, :template:)
        elif in_block and re.match(r"^\s+\S", line):
            names.add(line.strip())
        elif in_block and line.strip() and not line.startswith(" "):
            in_block = False
    return names


def test_public_modules_are_found():
    assert {f"{PACKAGE}.callbacks", f"{PACKAGE}.datasets",
            f"{PACKAGE}.plotting"} <= set(PUBLIC_MODULES)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_module_declares_all(module_name):
    module = importlib.import_module(module_name)
    assert isinstance(getattr(module, "__all__", None), list), (
        f"{module_name} has no __all__ list")
    assert len(set(module.__all__)) == len(module.__all__), "duplicates in __all__"


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_name_in_all_exists(module_name):
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names missing attributes: {missing}"


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_definitions_are_in_all(module_name):
    # A public class or function defined in the module itself is public API.
    module = importlib.import_module(module_name)
    left_out = [
        name for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == module_name
        and name not in module.__all__
        and f"{module_name}.{name}" not in INTERNAL
    ]
    assert not left_out, f"{module_name} defines public names not in __all__: {left_out}"


def test_the_api_page_documents_all_and_only_all():
    documented = _documented()
    exported = {
        _qualified(m, name)
        for m in PUBLIC_MODULES
        for name in importlib.import_module(m).__all__
        if name not in UNDOCUMENTED
    }
    assert sorted(exported - documented) == [], "in __all__ but not on docs/api.rst"
    assert sorted(documented - exported) == [], "on docs/api.rst but not in __all__"
