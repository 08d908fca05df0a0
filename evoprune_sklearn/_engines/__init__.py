"""Engines: how a generation of pruned heads is trained.

One module per engine, each a subclass of :class:`~._base.Engine`
registered in the table of :mod:`._base`:

* :mod:`._adam` — ``solver="adam"``: the candidates stacked and trained
  together with batched matrix products, mini-batch by mini-batch;
* :mod:`._lbfgs` — ``solver="lbfgs"`` with hidden layers: each candidate
  alone, full batch, on its kept units;
* :mod:`._stacked_lbfgs` — ``solver="lbfgs"`` with a linear head: a pool
  of candidates sharing every product with the feature matrix;
* :mod:`._skorch` — ``engine="skorch"``: one skorch classifier per
  candidate, the reference the others are tested against.

:func:`train_heads` picks the engine from the estimator's ``engine`` option
and the :class:`TrainingConfig`, the one object that carries every setting.
Importing this package registers the four engines.
"""

from . import _adam, _lbfgs, _skorch, _stacked_lbfgs  # noqa: F401  (registers them)
from ._base import (
    DeferredRefit,
    Engine,
    TrainedHeads,
    TrainingConfig,
    expand_parameters,
    get_engine,
    penalised_loss,
    refit_members,
    register_engine,
    train_heads,
)
from ._skorch import make_skorch_net, wrap_in_skorch

__all__ = [
    "DeferredRefit", "Engine", "TrainedHeads", "TrainingConfig", "expand_parameters", "get_engine",
    "make_skorch_net", "penalised_loss", "refit_members", "register_engine", "train_heads",
    "wrap_in_skorch",
]
