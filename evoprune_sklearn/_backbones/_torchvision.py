"""Every torchvision classification model, by name, with its classifier removed.

One family entry of the registry: the names come from
``torchvision.models.list_models`` and each spec is built on demand, so
torchvision is imported only when a torchvision backbone is asked for.
"""

import functools

from torch import nn

from ._api import IMAGENET_MEAN, IMAGENET_STD, BackboneSpec, register_backbone_family
from ._extractor import apply_state_dict, load_state_dict_file

__all__ = ["model_names", "make_spec", "build", "strip_classifier"]


def model_names():
    """Names of torchvision's classification models, sorted."""
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def strip_classifier(model):
    """Replace the classification layer with identity so pooled features come out."""
    name = type(model).__name__.lower()
    if name in ("vgg", "alexnet"):
        model.avgpool = nn.AdaptiveAvgPool2d(1)
        model.classifier = nn.Identity()
        return model
    for attr in ("fc", "classifier", "heads", "head"):
        layer = getattr(model, attr, None)
        if layer is None:
            continue
        if isinstance(layer, nn.Linear):
            setattr(model, attr, nn.Identity())
            return model
        if isinstance(layer, nn.Sequential):
            kept = []
            for sub in layer:
                if isinstance(sub, nn.Linear):
                    break
                kept.append(sub)
            setattr(model, attr, nn.Sequential(*kept) if kept else nn.Identity())
            return model
    raise ValueError(
        f"Cannot find the classification layer of torchvision model "
        f"{type(model).__name__}; pass backbone=None with your own features."
    )


def build(name, weights):
    """Torchvision model ``name`` without its classifier; ``weights`` as in a spec."""
    import torchvision.models as tvm

    default = isinstance(weights, str) and weights == "DEFAULT"
    model = tvm.get_model(name, weights=tvm.get_model_weights(name).DEFAULT if default
                          else None)
    if hasattr(model, "aux_logits"):
        model.aux_logits = False
        model.AuxLogits = None if hasattr(model, "AuxLogits") else None
    state = None
    if weights is not None and not default:
        # a file of the whole classifier loads before the classifier goes;
        # one of the feature extractor after
        state = load_state_dict_file(weights)
        try:
            model.load_state_dict(state, strict=True)
            state = None
        except RuntimeError:
            pass
    model = strip_classifier(model)
    if state is not None:
        apply_state_dict([model], state, weights)
    return model


def make_spec(name, weights):
    """The spec of torchvision model ``name`` (input size from its weights)."""
    import torchvision.models as tvm

    input_size = 299 if name.startswith("inception") else 224
    if isinstance(weights, str) and weights == "DEFAULT":
        crop = getattr(tvm.get_model_weights(name).DEFAULT.transforms(), "crop_size", None)
        if crop:
            input_size = int(crop[0])
    return BackboneSpec(builder=functools.partial(build, name), input_size=input_size,
                        mean=IMAGENET_MEAN, std=IMAGENET_STD, name=name)


register_backbone_family(model_names, make_spec)
