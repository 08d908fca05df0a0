"""The backbone registry: specs, registration and lookup.

A backbone turns images into a pooled feature vector. Each one is described
by a :class:`BackboneSpec` (how to build the network, its input size and
normalisation, optionally where its last convolutional map is) and is either
registered under a name (:func:`register_backbone`) or handed to the
estimator directly (``backbone=BackboneSpec(module=my_net, ...)``).
:func:`get_backbone` turns a name or a spec into a :class:`Backbone`: the
network frozen, with its preprocessing, extracting features once per fit in
batches under :func:`torch.inference_mode`.

The extractor itself lives in ``_extractor``. Modelled on torchvision's
``models/_api.py`` (``register_model``, ``list_models``, ``get_model``).
"""

import copy
import dataclasses
import hashlib
import numbers
import os
from collections.abc import Callable

import numpy as np
from torch import nn

from ._extractor import Backbone, apply_state_dict, load_state_dict_file

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "BackboneSpec",
    "get_backbone", "list_backbones", "register_backbone",
    "register_backbone_family", "validate_backbone_args",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and prepare images for it.

    Give exactly one of ``builder`` (registered backbones: the network is
    built when an estimator is fitted) or ``module`` (a network you already
    hold). Pass a spec as ``EvoPruneClassifier(backbone=spec)``, or register
    it under a name with :func:`register_backbone`.

    Parameters
    ----------
    builder : callable, default=None
        ``builder(weights) -> torch.nn.Module``, where ``weights`` is
        ``"DEFAULT"`` (the pretrained weights), None (random initialisation)
        or a path to a state_dict file (read it with
        :func:`load_state_dict_file`). The module maps normalised
        ``(n, 3, S, S)`` images to ``(n, n_features)`` features.
    module : torch.nn.Module, default=None
        A ready network with the same contract. It is copied when the
        estimator is fitted, so the original is never frozen or moved.
    input_size : int, default=224
        Side length ``S`` images are resized to (unless the estimator's
        ``image_size`` says otherwise).
    mean, std : tuple of 3 floats, default=ImageNet's
        Per-channel normalisation applied to ``[0, 1]`` RGB images
        (grayscale images arrive as three equal channels).
    n_features : int, default=None
        Width of the feature vector; checked against a probe forward pass
        when given, measured by it when None.
    feature_map : callable, default=None
        ``feature_map(module, x) -> (n, K, h, w)``: the last convolutional
        map of normalised images ``x``, whose spatial mean over ``(h, w)``
        gives the features. Used by ``explain(pixel_method="feature_map")``.
        When None, the input of the module's last
        :class:`~torch.nn.AdaptiveAvgPool2d` is used. Must be a module-level
        function (picklable) for ``n_jobs``.
    name : str, default=None
        Display name, used in gene names (``"<name>:<k>"``) and messages;
        the registry name for registered specs, the module's class name
        otherwise.

    See Also
    --------
    register_backbone : Make a spec available by name.
    get_backbone : Build the frozen :class:`Backbone` of a name or a spec.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from evoprune_sklearn import BackboneSpec, get_backbone
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(),
    ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> spec = BackboneSpec(module=net, input_size=16, mean=(0.5,) * 3, std=(0.5,) * 3)
    >>> backbone = get_backbone(spec)
    >>> backbone.n_features, backbone.input_size
    (8, 16)
    """

    builder: Callable | None = dataclasses.field(default=None, repr=False)
    module: nn.Module | None = dataclasses.field(default=None, repr=False)
    input_size: int = 224
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    n_features: int | None = None
    feature_map: Callable | None = dataclasses.field(default=None, repr=False)
    name: str | None = None

    def __post_init__(self):
        if (self.builder is None) == (self.module is None):
            raise ValueError(
                "BackboneSpec needs exactly one of builder= (a function building the "
                "network) or module= (a torch.nn.Module)."
            )
        if self.builder is not None and not callable(self.builder):
            raise TypeError(f"builder must be callable, got {type(self.builder).__name__}.")
        if self.module is not None and not isinstance(self.module, nn.Module):
            raise TypeError(
                f"module must be a torch.nn.Module, got {type(self.module).__name__}."
            )
        if not isinstance(self.input_size, numbers.Integral) or isinstance(
                self.input_size, bool) or self.input_size < 1:
            raise ValueError(f"input_size must be a positive integer, got {self.input_size!r}.")
        for field in ("mean", "std"):
            value = getattr(self, field)
            try:
                value = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                value = ()
            if len(value) != 3 or not all(np.isfinite(value)) or (
                    field == "std" and min(value) <= 0):
                raise ValueError(
                    f"{field} must be three finite numbers (one per RGB channel"
                    f"{', positive' if field == 'std' else ''}), got "
                    f"{getattr(self, field)!r}."
                )
            object.__setattr__(self, field, value)
        if self.n_features is not None and (
                not isinstance(self.n_features, numbers.Integral)
                or isinstance(self.n_features, bool) or self.n_features < 1):
            raise ValueError(f"n_features must be a positive integer or None, got "
                             f"{self.n_features!r}.")
        if self.feature_map is not None and not callable(self.feature_map):
            raise TypeError(
                f"feature_map must be callable or None, got {type(self.feature_map).__name__}."
            )
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name must be a string or None, got {type(self.name).__name__}.")

    @property
    def display_name(self):
        """The name shown in gene names and messages."""
        if self.name is not None:
            return self.name
        if self.module is not None:
            return type(self.module).__name__
        return getattr(self.builder, "__name__", "backbone")

    def fingerprint(self):
        """A text that changes when the network or its preprocessing does.

        Checkpoints compare it to refuse resuming a search with another
        network: ``repr`` plus a digest of the module's weights (or the
        builder's qualified name).

        Returns
        -------
        fingerprint : str
        """
        h = hashlib.sha256(repr(self).encode())
        if self.module is not None:
            for key, value in self.module.state_dict().items():
                h.update(key.encode())
                h.update(value.detach().cpu().contiguous().numpy().tobytes())
        else:
            # a qualified name, not repr (a partial's repr holds an address)
            qualname = getattr(self.builder, "__qualname__",
                               type(self.builder).__qualname__)
            h.update(f"{getattr(self.builder, '__module__', '')}.{qualname}".encode())
        return f"{self!r}#{h.hexdigest()[:16]}"

    def __repr__(self):
        source = (f"module={type(self.module).__name__}" if self.module is not None
                  else f"builder={getattr(self.builder, '__name__', self.builder)!r}")
        return (f"BackboneSpec({source}, input_size={self.input_size}, mean={self.mean}, "
                f"std={self.std}, n_features={self.n_features}, name={self.name!r})")


# ------------------------------------------------------------------- registry
_REGISTRY = {}
# Families name many backbones at once and build their specs on demand
# (torchvision's ~80 models), so that importing this package does not import
# torchvision: (list_names, make_spec(name, weights)) pairs.
_FAMILIES = []


def register_backbone(name, spec=None, *, overwrite=False):
    """Make a backbone available as ``backbone=name``.

    Adding a bundled backbone is one module that calls this at import time
    (see ``evoprune_sklearn/_backbones/_efficientnet_lite.py``) plus one test.

    Parameters
    ----------
    name : str
        Registry name.
    spec : BackboneSpec, default=None
        The backbone. When None, returns a decorator that registers the
        builder function it decorates with default preprocessing.
    overwrite : bool, default=False
        Replace an existing entry of the same name instead of raising.

    Returns
    -------
    spec : BackboneSpec or callable
        The registered spec (or, with ``spec=None``, the decorator).

    Examples
    --------
    >>> from torch import nn
    >>> from evoprune_sklearn import BackboneSpec, register_backbone, list_backbones
    >>> def tiny_net(weights):
    ...     return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> _ = register_backbone("tiny_doc_net", BackboneSpec(builder=tiny_net, input_size=16))
    >>> "tiny_doc_net" in list_backbones()
    True
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}.")
    if spec is None:
        def decorator(builder):
            register_backbone(name, BackboneSpec(builder=builder, name=name),
                              overwrite=overwrite)
            return builder
        return decorator
    if not isinstance(spec, BackboneSpec):
        raise TypeError(f"spec must be a BackboneSpec, got {type(spec).__name__}.")
    if spec.builder is None:
        raise ValueError(
            "A registered spec needs builder= (the network is built at fit time); "
            "pass a spec with module= directly as backbone= instead."
        )
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"A backbone named {name!r} is already registered; pass "
                         "overwrite=True to replace it.")
    if spec.name != name:
        spec = dataclasses.replace(spec, name=name)
    _REGISTRY[name] = spec
    return spec


def register_backbone_family(list_names, make_spec):
    """Register many backbones whose specs are built on demand.

    Parameters
    ----------
    list_names : callable
        ``list_names() -> list of str``, the names the family provides.
    make_spec : callable
        ``make_spec(name, weights) -> BackboneSpec`` for one of them.
    """
    _FAMILIES.append((list_names, make_spec))


def list_backbones():
    """Names accepted by ``backbone=``, bundled first.

    Returns
    -------
    names : list of str
        ``"efficientnet_lite0"`` (bundled weights, offline), then every
        torchvision classification model, then backbones registered by
        :func:`register_backbone`.

    Examples
    --------
    >>> from evoprune_sklearn import list_backbones
    >>> names = list_backbones()
    >>> names[0], "resnet50" in names
    ('efficientnet_lite0', True)
    """
    bundled = [n for n in _REGISTRY if _is_bundled(_REGISTRY[n])]
    seen = set(_REGISTRY)
    for list_names, _ in _FAMILIES:
        bundled.extend(n for n in list_names() if n not in seen)
    return bundled + [n for n in _REGISTRY if not _is_bundled(_REGISTRY[n])]


def _is_bundled(spec):
    """Registered by this package's own modules (listed before users' entries)."""
    package = __name__.split(".")[0]
    return getattr(spec.builder, "__module__", "").startswith(package + ".")


def _unknown(name):
    return ValueError(
        f"Unknown backbone {name!r}. Valid names: {', '.join(list_backbones())}; or a "
        "BackboneSpec; or None to pass a 2-D feature matrix."
    )


def _spec_of(name, weights):
    if name in _REGISTRY:
        return _REGISTRY[name]
    for list_names, make_spec in _FAMILIES:
        if name in list_names():
            return make_spec(name, weights)
    raise _unknown(name)


# ------------------------------------------------------------------- lookup
def _is_default(weights):
    return isinstance(weights, str) and weights == "DEFAULT"


def validate_backbone_args(backbone, weights):
    """Check ``backbone=``/``weights=`` cheaply, before any heavy work."""
    if backbone is None:
        return
    if isinstance(backbone, nn.Module):
        raise TypeError(
            f"backbone got a bare {type(backbone).__name__} module; wrap it with its "
            "preprocessing: backbone=BackboneSpec(module=net, input_size=..., "
            "mean=..., std=...)."
        )
    if not isinstance(backbone, (str, BackboneSpec)):
        raise TypeError(
            f"backbone must be a registered name, a BackboneSpec or None, got "
            f"{type(backbone).__name__}."
        )
    if isinstance(backbone, str) and backbone not in _REGISTRY and \
            backbone not in list_backbones():
        raise _unknown(backbone)
    if _is_default(weights):
        return
    if weights is None:
        if isinstance(backbone, BackboneSpec) and backbone.module is not None:
            raise ValueError(
                "weights=None (random initialisation) is not defined for a "
                "BackboneSpec holding a module: its module is used as it is; use "
                "weights='DEFAULT' (or a state_dict file to load into it)."
            )
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"weights must be 'DEFAULT', None or a path to a state_dict file, got "
            f"{type(weights).__name__}."
        )
    if not os.path.isfile(weights):
        raise ValueError(f"weights file {os.fspath(weights)!r} does not exist.")


def get_backbone(backbone, weights="DEFAULT", image_size=None):
    """Build the frozen :class:`Backbone` of a registered name or a spec.

    Parameters
    ----------
    backbone : str or BackboneSpec
        A name from :func:`list_backbones`, or a spec (``module=`` specs are
        copied, never modified).
    weights : {"DEFAULT"} or None or path, default="DEFAULT"
        Pretrained weights ("DEFAULT"; a ``module=`` spec's own weights),
        random initialisation (None; not for ``module=`` specs), or a
        state_dict file loaded with ``torch.load(weights_only=True)``.
    image_size : int, default=None
        Side length images are resized to; the spec's ``input_size`` when
        None.

    Returns
    -------
    backbone : Backbone

    Examples
    --------
    >>> from evoprune_sklearn import get_backbone
    >>> get_backbone("resnet18", weights=None, image_size=32).n_features
    512
    """
    validate_backbone_args(backbone, weights)
    if weights is not None and not isinstance(weights, str):
        weights = os.fspath(weights)
    spec = _spec_of(backbone, weights) if isinstance(backbone, str) else backbone
    if spec.module is not None:
        module = copy.deepcopy(spec.module).cpu()
        if weights is not None and not _is_default(weights):
            apply_state_dict([module], load_state_dict_file(weights), weights)
    else:
        module = spec.builder(weights)
        if not isinstance(module, nn.Module):
            raise TypeError(f"the builder of backbone {spec.display_name!r} returned "
                            f"{type(module).__name__}, not a torch.nn.Module.")
    out = Backbone(spec.display_name, module, image_size or spec.input_size,
                   spec.mean, spec.std, feature_map=spec.feature_map)
    if spec.n_features is not None and out.n_features != spec.n_features:
        raise ValueError(
            f"backbone {spec.display_name!r} gives {out.n_features} features, but its "
            f"spec declares n_features={spec.n_features}."
        )
    return out
