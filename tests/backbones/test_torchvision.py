"""torchvision backbones: the classifier removed, pooled features, ONNX export."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import (
    get_backbone,
)


@pytest.mark.parametrize("name", ["resnet18", "vgg11", "mobilenet_v3_small"])
def test_torchvision_backbones_export_to_onnx(name, tmp_path):
    """torch.export and the dynamo ONNX exporter take the backbones the tests use."""
    # onnxscript (needed by the dynamo exporter) and onnxruntime are in the
    # dev extra: a missing install fails here instead of skipping silently.
    import onnxruntime as ort
    import onnxscript  # noqa: F401
    model = get_backbone(name, weights=None, image_size=32).unit_image_model().eval()
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
    bb = get_backbone("resnet18", weights=None, image_size=32)
    assert bb.n_features == 512
    X = np.random.default_rng(0).integers(0, 255, (3, 20, 20, 3), dtype=np.uint8)
    feats = bb.extract(X)
    assert feats.shape == (3, 512)


@pytest.mark.parametrize("name,dim", [("vgg11", 512), ("mobilenet_v3_small", 576)])
def test_pooled_features_for_other_families(name, dim):
    assert get_backbone(name, weights=None, image_size=32).n_features == dim
