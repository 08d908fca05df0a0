"""Docstrings of the public API agree with the signatures (numpydoc).

After imbalanced-learn's ``imblearn/tests/test_docstring_parameters.py``:
every public class, function and method is checked with
:func:`numpydoc.validate.validate`, for a chosen set of error codes: the
documented parameters are the parameters of the signature, in its order;
the sections are known ones, each once, in numpydoc's order; a public name
has a docstring with a summary. Parameters documented together by
reference (``kind, n_images : see plot``) need no type of their own.
"""

import importlib
import inspect
import pkgutil

import numpydoc.validate as numpydoc_validate  # in the dev extra: never skipped
import pytest

import evoprune_sklearn

# The package and its public submodules (tests/test_public_api.py checks
# that their __all__ is the documented API).
PUBLIC_MODULES = [evoprune_sklearn.__name__] + [
    f"{evoprune_sklearn.__name__}.{info.name}"
    for info in pkgutil.iter_modules(evoprune_sklearn.__path__)
    if not info.name.startswith("_")
]

CHECKED = {
    "GL06",  # unknown section
    "GL07",  # sections in the wrong order
    "GL08",  # no docstring
    "PR01",  # a parameter of the signature is not documented
    "PR02",  # a documented parameter is not in the signature
    "PR03",  # parameters documented in another order than the signature
    "SS01",  # no summary
}


def _overrides_documented(cls, name, attr):
    """An override without a docstring of its own inherits the base class's
    (as :func:`inspect.getdoc` shows it), which is checked there."""
    if getattr(attr, "__doc__", None):
        return False
    return any(getattr(vars(base).get(name), "__doc__", None) for base in cls.__mro__[1:])


def _public_methods(cls):
    """Public methods and properties the class itself defines."""
    for name, attr in vars(cls).items():
        if name.startswith("_") or _overrides_documented(cls, name, attr):
            continue
        if inspect.isfunction(attr) or isinstance(attr, (classmethod, staticmethod, property)):
            yield name


def _public_objects():
    paths = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            path = f"{obj.__module__}.{obj.__qualname__}"
            paths.append(path)
            if inspect.isclass(obj):
                paths += [f"{path}.{m}" for m in _public_methods(obj)]
    return sorted(set(paths))


@pytest.mark.parametrize("path", _public_objects())
def test_docstring_matches_the_signature(path):
    try:
        result = numpydoc_validate.validate(path)
    except Exception as exc:  # numpydoc refuses malformed docstrings outright
        pytest.fail(f"{path}: numpydoc cannot parse the docstring ({exc})")
    errors = [f"{code}: {message}" for code, message in result["errors"]
              if code in CHECKED]
    assert not errors, f"{path}:\n" + "\n".join(errors)
