"""Which training parameters each head solver reads.

``EvoPruneClassifier`` has one flat set of training parameters for two
solvers; a value given to a parameter the chosen solver never reads would
silently do nothing (``lr=1e-2`` with the default L-BFGS solver, say). The
estimator warns about it, as :class:`~sklearn.linear_model.LogisticRegression`
warns about ``l1_ratio`` without the elastic-net penalty, and the docs' tests
check every gallery example and code block against the same table.
"""

import inspect

__all__ = ["SOLVER_PARAMETERS", "ignored_parameters", "init_defaults"]

# Parameters read by one solver only (the rest, alpha included, are shared).
SOLVER_PARAMETERS = {
    "lbfgs": ("max_iter",),
    "adam": ("lr", "max_epochs", "batch_size", "patience"),
}


def ignored_parameters(params, defaults, solver=None):
    """Names of the parameters in ``params`` that ``solver`` ignores.

    Parameters
    ----------
    params : dict
        Parameter names and values, as ``get_params(deep=False)`` gives them
        or as keyword arguments of a constructor call.
    defaults : dict
        The constructor's default values; a parameter left at its default is
        never reported, whatever the solver.
    solver : str or None, default=None
        The solver; when None, ``params["solver"]`` or else
        ``defaults["solver"]``.

    Returns
    -------
    names : list of str
        Sorted names of parameters given a non-default value that only
        another solver reads.
    """
    if solver is None:
        solver = params.get("solver", defaults.get("solver"))
    read = set(SOLVER_PARAMETERS.get(solver, ()))
    others = {n for names in SOLVER_PARAMETERS.values() for n in names} - read
    return sorted(
        name for name in others
        if name in params and name in defaults and params[name] != defaults[name]
    )


def init_defaults(cls):
    """Default values of ``cls.__init__``'s keyword parameters."""
    return {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
