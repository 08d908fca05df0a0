"""The frozen Backbone a spec becomes: state_dict files loaded safely."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import (
    get_backbone,
)


def test_state_dict_file_is_loaded(tmp_path):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pt"
    torch.save(model.state_dict(), path)
    bb = get_backbone("resnet18", weights=str(path), image_size=32)
    np.testing.assert_array_equal(
        bb.module.conv1.weight.detach().numpy(), model.conv1.weight.detach().numpy()
    )
    # a state_dict saved without the classifier (a feature extractor) also loads
    trunk = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    torch.save(trunk, tmp_path / "trunk.pt")
    get_backbone("resnet18", weights=str(tmp_path / "trunk.pt"), image_size=32)


def test_bad_weight_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        get_backbone("resnet18", weights=str(tmp_path / "missing.pt"))
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="does not hold a state_dict"):
        get_backbone("resnet18", weights=str(tmp_path / "list.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not be read"):
        get_backbone("resnet18", weights=str(tmp_path / "junk.pt"))
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="does not match"):
        get_backbone("resnet18", weights=str(tmp_path / "wrong.pt"))
