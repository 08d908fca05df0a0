"""Names usable in ``objectives=``: the objective registry."""

import inspect

from sklearn.base import clone

from ._accuracy import Accuracy
from ._adversarial import Adversarial
from ._base import Objective
from ._complexity import Complexity
from ._detectors import OoD
from ._odin import ODIN

__all__ = ["register_objective", "list_objectives", "get_objective", "registry_name"]

_REGISTRY = {}


def register_objective(name, factory):
    """Make ``name`` usable in ``objectives=`` (and storable by ``save``).

    Parameters
    ----------
    name : str
        The alias, e.g. ``"sparsity"``.
    factory : callable
        Called without arguments, returns a new :class:`Objective`; usually
        the objective class itself.

    Returns
    -------
    factory : callable
        Unchanged, so that ``register_objective`` also works as a decorator
        factory: ``register_objective("name", MyObjective)``.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn.objectives import (Objective, get_objective,
    ...                                          register_objective)
    >>> class Sparsity(Objective):
    ...     name = "sparsity"
    ...     def evaluate(self, heads, context):
    ...         return 1.0 - np.asarray(heads.genomes, dtype=bool).mean(axis=1)
    >>> _ = register_objective("sparsity", Sparsity)
    >>> get_objective("sparsity")
    Sparsity()
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"An objective name must be a non-empty str, got {name!r}.")
    if not callable(factory):
        raise TypeError(
            f"The factory of objective {name!r} must be callable (an Objective "
            f"subclass or a function returning one), got {factory!r}."
        )
    _REGISTRY[name] = factory
    return factory


def list_objectives():
    """The names usable in ``objectives=``, sorted.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from evoprune_sklearn.objectives import list_objectives
    >>> [n for n in list_objectives() if n in ("accuracy", "odin", "pgd")]
    ['accuracy', 'odin', 'pgd']
    """
    return sorted(_REGISTRY)


def get_objective(spec):
    """A fresh, unfitted objective for a name or an instance.

    Parameters
    ----------
    spec : str or Objective
        A registered name, or an objective whose parameters are copied
        (``sklearn.base.clone``: the instance itself is never changed).

    Returns
    -------
    objective : Objective

    Examples
    --------
    >>> from evoprune_sklearn.objectives import ODIN, get_objective
    >>> get_objective("robustness")
    ODIN()
    >>> user = ODIN(temperature=1.0)
    >>> copy = get_objective(user)
    >>> copy is user, copy.temperature
    (False, 1.0)
    """
    if isinstance(spec, Objective):
        return clone(spec)
    if isinstance(spec, str):
        if spec not in _REGISTRY:
            raise ValueError(
                f"Unknown objective {spec!r}; valid objectives are "
                f"{list_objectives()}, or an Objective instance (register your "
                "own with evoprune_sklearn.objectives.register_objective)."
            )
        objective = _REGISTRY[spec]()
        if not isinstance(objective, Objective):
            raise TypeError(
                f"The factory registered as {spec!r} returned a "
                f"{type(objective).__name__}, not an Objective."
            )
        return objective
    what = spec.__name__ if inspect.isclass(spec) else type(spec).__name__
    hint = " (pass an instance: add the parentheses)" if inspect.isclass(spec) else ""
    raise TypeError(
        f"An objective must be a registered name or an Objective instance, got "
        f"{what}{hint}."
    )


def registry_name(objective):
    """The registered name under which ``objective``'s class is built.

    Used by ``save`` to store an objective as its name and parameters.

    Parameters
    ----------
    objective : Objective

    Returns
    -------
    name : str or None
        None when no registered factory builds this class.
    """
    cls = type(objective)
    for name, factory in _REGISTRY.items():
        if factory is cls:
            return name
    for name, factory in _REGISTRY.items():
        if not inspect.isclass(factory) and type(factory()) is cls:
            return name
    return None


register_objective("accuracy", Accuracy)
register_objective("complexity", Complexity)
register_objective("odin", ODIN)
register_objective("robustness", ODIN)
register_objective("adversarial", Adversarial)
register_objective("fgsm", Adversarial)


def _pgd():
    return Adversarial("pgd")


register_objective("pgd", _pgd)


def _mahalanobis():
    return OoD(score="mahalanobis")


register_objective("ood", OoD)
register_objective("knn", OoD)
register_objective("mahalanobis", _mahalanobis)
