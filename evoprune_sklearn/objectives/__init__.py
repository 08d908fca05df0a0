"""Objectives a genome is scored on, and how to add one.

An objective turns a generation of trained heads into one number per
candidate. Pass names or instances to ``EvoPruneClassifier(objectives=...)``:

============  ===========================================================
name          objective
============  ===========================================================
accuracy      :class:`Accuracy` (required in every fit)
complexity    :class:`Complexity`
robustness    ``ODIN()`` (the default robustness objective)
odin          ``ODIN()``
fgsm          ``Adversarial("fgsm")``
adversarial   ``Adversarial("fgsm")``
pgd           ``Adversarial("pgd")``
ood           ``OoD()`` (feature-space kNN detector)
knn           ``OoD(score="knn")``
mahalanobis   ``OoD(score="mahalanobis")``
============  ===========================================================

A new objective is a subclass of :class:`Objective` (its settings as
``__init__`` parameters, a ``name``, ``greater_is_better``, ``evaluate``
and, when it needs data of the fit, ``prepare``), registered with
:func:`register_objective` when it should be usable by name or stored by
``save``.
"""

from ._accuracy import Accuracy
from ._adversarial import Adversarial
from ._base import Objective, ObjectiveContext
from ._complexity import Complexity
from ._detectors import FeatureBank, OoD, logit_ood_scores
from ._odin import ODIN, odin_scores, ood_auroc
from ._registry import get_objective, list_objectives, register_objective

__all__ = [
    "Objective",
    "ObjectiveContext",
    "Accuracy",
    "Complexity",
    "ODIN",
    "OoD",
    "Adversarial",
    "register_objective",
    "list_objectives",
    "get_objective",
    "odin_scores",
    "ood_auroc",
    "logit_ood_scores",
    "FeatureBank",
]
