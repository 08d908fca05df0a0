"""evoprune_sklearn: small, robust, explainable image classifiers from pretrained
networks, by multi-objective evolutionary pruning (MO-EvoPruneDeepTL)."""

from ._backbones import (
    Backbone,
    BackboneSpec,
    get_backbone,
    list_backbones,
    register_backbone,
)
from ._classifier import EvoPruneClassifier
from ._export import CompactHead, PrunedNetwork
from ._front import Member, ParetoFront
from ._head import MaskedHead
from ._ood import OODSet
from ._version import __version__

__all__ = [
    "EvoPruneClassifier",
    "Explanation",
    "ParetoFront",
    "Member",
    "MaskedHead",
    "OODSet",
    "CompactHead",
    "PrunedNetwork",
    "Backbone",
    "BackboneSpec",
    "register_backbone",
    "list_backbones",
    "get_backbone",
    "__version__",
]


def __getattr__(name):
    # Explanation subclasses shap.Explanation: shap is imported when the class
    # is first asked for (or an explanation is made), not with the package.
    if name == "Explanation":
        from ._explanation import Explanation

        return Explanation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
