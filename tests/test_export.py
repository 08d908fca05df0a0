"""export_model: pruned parts physically removed, same predictions, smaller."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import CompactHead, PrunedNetwork

# accuracy and complexity only: these tests are not about robustness
TWO = ("accuracy", "complexity")



def _onnx_outputs(model, example, inputs, tmp_path, name):
    """Export with the dynamo ONNX exporter (dynamic batch), run in onnxruntime."""
    # onnxscript (needed by the dynamo exporter) and onnxruntime are in the
    # dev extra: a missing install fails here instead of skipping silently.
    import onnxruntime as ort
    import onnxscript  # noqa: F401
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(model, (example,), dynamo=True, verbose=False,
                                dynamic_shapes={name: {0: batch}})
    path = tmp_path / "model.onnx"
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]


@pytest.fixture(scope="module")
def feature_fit(blobs):
    from conftest import tiny

    X, y = blobs
    return tiny(backbone=None, objectives=TWO, pop_size=6, n_evaluations=12).fit(X, y), X


@pytest.fixture(scope="module")
def neuron_fit(blobs):
    from conftest import tiny

    X, y = blobs
    clf = tiny(backbone=None, objectives=TWO, encoding="neurons", hidden_layer_sizes=(12, 8),
               pop_size=6, n_evaluations=12).fit(X, y)
    return clf, X


def _masked_logits(clf, i, X):
    with torch.no_grad():
        return clf.pareto_front_[i].module()(torch.as_tensor(X, dtype=torch.float32))


def test_feature_encoding_export_equals_masked_head_and_is_smaller(feature_fit):
    clf, X = feature_fit
    Xt = torch.as_tensor(X, dtype=torch.float32)
    for i, member in enumerate(clf.pareto_front_):
        head = clf.export_model(member=i, head_only=True)
        assert isinstance(head, CompactHead)
        with torch.no_grad():
            torch.testing.assert_close(head(Xt), _masked_logits(clf, i, X),
                                       rtol=1e-5, atol=1e-5)
        first = head.summary()["layers"][0]
        assert first == (member.n_active, 16)  # only kept features are read
        s = head.summary()
        kept = member.n_active
        assert s["n_parameters"] == kept * 16 + 16 + 16 * 3 + 3
        assert s["n_dense_parameters"] == 24 * 16 + 16 + 16 * 3 + 3
        if kept < member.genome.size:
            assert s["n_parameters"] < s["n_dense_parameters"]
            assert 0 < s["saving"] < 1


def test_neuron_encoding_export_drops_neurons(neuron_fit):
    clf, X = neuron_fit
    Xt = torch.as_tensor(X, dtype=torch.float32)
    for i, member in enumerate(clf.pareto_front_):
        head = clf.export_model(member=i, head_only=True)
        k1, k2 = int(member.genome[:12].sum()), int(member.genome[12:].sum())
        assert head.summary()["layers"] == [(24, k1), (k1, k2), (k2, 3)]
        with torch.no_grad():
            torch.testing.assert_close(head(Xt), _masked_logits(clf, i, X),
                                       rtol=1e-5, atol=1e-5)


def test_export_defaults_to_the_selected_member(feature_fit):
    clf, X = feature_fit
    head = clf.export_model(head_only=True)
    with torch.no_grad():
        proba = torch.softmax(head(torch.as_tensor(X, dtype=torch.float32)), 1).numpy()
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)


def test_export_saves_loads_and_exports(feature_fit, tmp_path):
    clf, X = feature_fit
    Xt = torch.as_tensor(X, dtype=torch.float32)
    head = clf.export_model(head_only=True)
    path = tmp_path / "head.pt"
    torch.save(head.state_dict(), path)
    other = clf.export_model(head_only=True)
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    other.load_state_dict(torch.load(path, weights_only=True))
    batch = torch.export.Dim("batch")
    program = torch.export.export(head, (Xt[:4],), dynamic_shapes={"features": {0: batch}})
    with torch.no_grad():
        torch.testing.assert_close(other(Xt), head(Xt))
        torch.testing.assert_close(program.module()(Xt), head(Xt))


def test_head_runs_in_onnxruntime_with_the_estimators_probabilities(feature_fit, tmp_path):
    clf, X = feature_fit
    Xt = torch.as_tensor(X, dtype=torch.float32)
    logits = _onnx_outputs(clf.export_model(head_only=True), Xt[:4], Xt, tmp_path, "features")
    proba = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)


def test_full_model_takes_images_and_matches_predict_proba(digit_images, make_tiny):
    X, y = digit_images
    # the search size does not matter here: any member's export must match
    clf = make_tiny(image_size=32, objectives=TWO, pop_size=2, n_evaluations=2).fit(X, y)
    model = clf.export_model()
    assert isinstance(model, PrunedNetwork)
    images = torch.as_tensor(np.moveaxis(X[:20], -1, 1).astype(np.float32) / 255)
    with torch.no_grad():
        proba = torch.softmax(model(images), dim=1).numpy()
        np.testing.assert_allclose(proba, clf.predict_proba(X[:20]), atol=1e-4)
        # any size is resized the way fit resized it
        big = torch.nn.functional.interpolate(images, size=(48, 48), mode="nearest")
        assert model(big).shape == (20, 10)
    s = model.summary()
    assert s["n_total_parameters"] == s["n_backbone_parameters"] + s["n_parameters"]
    assert not any(p.requires_grad for p in model.backbone.parameters())
    # eager modules all the way down: nothing TorchScript-traced or scripted
    assert not any(isinstance(m, torch.jit.ScriptModule) for m in model.modules())


def test_default_network_leaves_python_through_both_exporters(digit_images, make_tiny,
                                                              tmp_path):
    """The default efficientnet_lite0 network, images in, runs in onnxruntime."""
    X, y = digit_images
    clf = make_tiny(image_size=32, objectives=TWO, pop_size=2, n_evaluations=2).fit(X, y)
    model = clf.export_model()
    images = torch.as_tensor(np.moveaxis(X[:12], -1, 1).astype(np.float32) / 255)
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (images[:2],), dynamic_shapes={"images": {0: batch}})
    with torch.no_grad():
        torch.testing.assert_close(program.module()(images), model(images),
                                   rtol=1e-4, atol=1e-4)
    logits = _onnx_outputs(model, images[:2], images, tmp_path, "images")
    proba = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
    np.testing.assert_allclose(proba, clf.predict_proba(X[:12]), atol=1e-4)


def test_bad_export_arguments(feature_fit):
    clf, _ = feature_fit
    n = len(clf.pareto_front_)
    with pytest.raises(ValueError, match=f"has {n} member"):
        clf.export_model(member=n, head_only=True)
    with pytest.raises(TypeError, match="member must be"):
        clf.export_model(member="knee", head_only=True)
    with pytest.raises(ValueError, match="head_only=True"):
        clf.export_model()  # backbone=None has no image model to export
