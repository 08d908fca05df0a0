"""Backbones: the registry and its entries, one module each.

``_api`` holds :class:`BackboneSpec`, the registry and :class:`Backbone`;
every other module registers entries when imported. Adding a bundled
backbone is one module here (imported below) plus one test.
"""

from . import _efficientnet_lite, _torchvision  # noqa: F401  (register entries)
from ._api import (
    Backbone,
    BackboneSpec,
    available_backbones,
    get_backbone,
    list_backbones,
    load_backbone,
    register_backbone,
    validate_backbone_args,
)

__all__ = [
    "Backbone", "BackboneSpec", "available_backbones", "get_backbone", "list_backbones",
    "load_backbone", "register_backbone", "validate_backbone_args",
]
