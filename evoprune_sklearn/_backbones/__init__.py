"""Backbones: the registry and its entries, one module each.

``_api`` holds :class:`BackboneSpec` and the registry, ``_extractor`` the
:class:`Backbone` a spec becomes; every other module registers entries when
imported. Adding a bundled backbone is one module here (imported below) plus
one test.
"""

from . import _efficientnet_lite, _torchvision  # noqa: F401  (register entries)
from ._api import (
    BackboneSpec,
    get_backbone,
    list_backbones,
    register_backbone,
    validate_backbone_args,
)
from ._extractor import Backbone

__all__ = [
    "Backbone", "BackboneSpec", "get_backbone", "list_backbones", "register_backbone",
    "validate_backbone_args",
]
