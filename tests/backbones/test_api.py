"""The backbone registry: every entry keeps the contract; user backbones."""

import pickle

import numpy as np
import pytest
import torch
from conftest import TinyNet
from sklearn.base import clone

from evoprune_sklearn import (
    BackboneSpec,
    EvoPruneClassifier,
    get_backbone,
    list_backbones,
    register_backbone,
)
from evoprune_sklearn.objectives import Adversarial


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError, match="Valid names: efficientnet_lite0, .*resnet50"):
        get_backbone("resnet51")
    assert "vgg19" in list_backbones()


# ------------------------------------------------------- registry contract
# Every registry entry is checked here. The bundled entries are built; of the
# torchvision family (~80 models, some with hundreds of millions of
# parameters) the families the package documents are built, with weights=None,
# and every other name must at least resolve to a valid spec.
BUILT = ["efficientnet_lite0", "resnet18", "vgg11", "mobilenet_v3_small"]


def test_registry_lists_every_entry_bundled_first():
    from evoprune_sklearn._backbones._api import _REGISTRY

    names = list_backbones()
    assert names[0] == "efficientnet_lite0"
    assert len(names) == len(set(names))
    assert set(_REGISTRY) <= set(names) and "resnet50" in names


@pytest.mark.parametrize("name", list_backbones())
def test_every_registered_name_resolves_to_a_spec(name):
    from evoprune_sklearn._backbones._api import _spec_of

    spec = _spec_of(name, None)
    assert isinstance(spec, BackboneSpec) and spec.builder is not None
    assert spec.display_name == name
    assert spec.input_size >= 32 and len(spec.mean) == len(spec.std) == 3


@pytest.mark.parametrize("name", BUILT)
def test_backbone_contract(name):
    """Shapes, dtype, determinism, the feature map, and pickling for workers."""
    weights = "DEFAULT" if name == "efficientnet_lite0" else None
    bb = get_backbone(name, weights=weights, image_size=32)
    assert bb.name == name and bb.input_size == 32
    X = np.random.default_rng(0).integers(0, 255, (4, 24, 24, 3), dtype=np.uint8)
    feats = bb.extract(X, batch_size=3)
    assert feats.shape == (4, bb.n_features) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    np.testing.assert_array_equal(feats, bb.extract(X, batch_size=3))
    # batching changes only float rounding
    np.testing.assert_allclose(feats, bb.extract(X), rtol=1e-4, atol=1e-5)
    # the map pixel explanations spread values over: its mean is the features
    unit = torch.as_tensor(X).permute(0, 3, 1, 2).float() / 255
    fmap = bb.last_conv_map(unit)
    assert fmap.dim() == 4 and fmap.shape[:2] == (4, bb.n_features)
    np.testing.assert_allclose(fmap.mean(dim=(2, 3)).numpy(), feats, rtol=1e-3, atol=1e-4)
    # workers receive backbones by pickle
    again = pickle.loads(pickle.dumps(bb))
    np.testing.assert_array_equal(again.extract(X, batch_size=3), feats)


# ------------------------------------------------------- user backbones
def tiny_spec(**kwargs):
    params = dict(module=TinyNet(), input_size=16, mean=(0.5,) * 3, std=(0.25,) * 3)
    params.update(kwargs)
    return BackboneSpec(**params)


def quadrant_digits(n=48):
    """Red top-left quadrant = class 1, blue bottom-right = class 0.

    The colours differ so that globally pooled features of a random network
    tell the classes apart.
    """
    rng = np.random.default_rng(0)
    X = rng.integers(0, 60, (n, 16, 16, 3), dtype=np.uint8)
    y = np.arange(n) % 2
    X[y == 1, :8, :8, 0] = 255
    X[y == 0, 8:, 8:, 2] = 255
    return X, y


def test_user_module_backbone_fits_predicts_explains_attacks_exports(tmp_path):
    X, y = quadrant_digits()
    net = TinyNet()
    before = [p.detach().clone() for p in net.parameters()]
    clf = EvoPruneClassifier(
        backbone=tiny_spec(module=net, name="tiny"), hidden_layer_sizes=(8,), pop_size=4,
        n_evaluations=8,
        objectives=("accuracy", "complexity", Adversarial("fgsm", eps=2 / 255, subset=8)),
        random_state=0,
    ).fit(X, y)
    # the user's module is copied, never frozen or changed
    assert all(p.requires_grad for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert clf.backbone_.module is not net and clf.backbone_.n_features == 8
    assert clf.gene_names_[0] == "tiny:0"
    assert clf.score(X, y) > 0.7
    rob = clf.pareto_front_.to_frame()["robustness"]
    assert rob.between(0, 1).all() and np.allclose(rob * 8, np.round(rob * 8))
    # pixel explanations through the user's network
    exp = clf.explain(X[:4], max_samples=4, random_state=0)
    assert exp.pixels.values.shape == (4, 16, 16, 3)
    assert np.isfinite(exp.pixels.values).all() and np.abs(exp.pixels.values).sum() > 0
    fm = clf.explain(X[:2], pixel_method="feature_map", random_state=0)
    assert fm.pixels.values.shape == (2, 16, 16, 3)
    # the full network exports and computes predict_proba
    model = clf.export_model()
    images = torch.as_tensor(np.moveaxis(X, -1, 1).astype(np.float32) / 255)
    with torch.no_grad():
        proba = torch.softmax(model(images), dim=1).numpy()
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)
    program = torch.export.export(model, (images[:2],))
    torch.testing.assert_close(program.module()(images[:2]), model(images[:2]))
    # save refuses (the file holds no code); the error says what to do instead
    with pytest.raises(TypeError, match="register_backbone"):
        clf.save(tmp_path / "m.safetensors")


def test_user_spec_survives_clone_and_get_params():
    spec = tiny_spec()
    clf = EvoPruneClassifier(backbone=spec)
    assert clf.get_params()["backbone"] is spec
    twin = clone(clf)
    assert isinstance(twin.backbone, BackboneSpec) and twin.backbone.input_size == 16
    X, _ = quadrant_digits(4)
    a = get_backbone(spec).extract(X)
    b = get_backbone(twin.backbone).extract(X)
    np.testing.assert_array_equal(a, b)
    assert "BackboneSpec(module=TinyNet, input_size=16" in repr(clf)
    # checkpoints compare the network's weights, not only its class name
    assert twin.backbone.fingerprint() == spec.fingerprint()
    other = tiny_spec(module=torch.nn.Sequential(TinyNet(), torch.nn.Identity()))
    assert other.fingerprint() != spec.fingerprint()


def test_user_module_weights_file_and_registration(tmp_path):
    other = TinyNet()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    torch.save(other.state_dict(), tmp_path / "tiny.pt")
    bb = get_backbone(tiny_spec(), weights=str(tmp_path / "tiny.pt"))
    assert torch.equal(bb.module.conv[0].weight, other.conv[0].weight)

    def build_tiny(weights):
        return TinyNet()

    try:
        register_backbone("tiny_test_net", BackboneSpec(builder=build_tiny, input_size=16))
        assert list_backbones()[-1] == "tiny_test_net"
        assert get_backbone("tiny_test_net").n_features == 8
        with pytest.raises(ValueError, match="already registered"):
            register_backbone("tiny_test_net", BackboneSpec(builder=build_tiny))
    finally:
        from evoprune_sklearn._backbones._api import _REGISTRY

        _REGISTRY.pop("tiny_test_net", None)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(), ValueError, "exactly one of"),
    (dict(module=TinyNet(), builder=TinyNet), ValueError, "exactly one of"),
    (dict(module="net"), TypeError, "torch.nn.Module"),
    (dict(module=TinyNet(), mean=(0.5,)), ValueError, "mean must be three"),
    (dict(module=TinyNet(), std=(0.5, 0.5, 0.0)), ValueError, "std must be three"),
    (dict(module=TinyNet(), input_size=0), ValueError, "input_size"),
])
def test_bad_specs_are_refused_when_made(kwargs, error, match):
    with pytest.raises(error, match=match):
        BackboneSpec(**kwargs)


def test_bad_user_backbones_are_refused_before_fit_work():
    X, y = quadrant_digits(8)
    with pytest.raises(TypeError, match=r"BackboneSpec\(module=net"):
        EvoPruneClassifier(backbone=TinyNet()).fit(X, y)
    with pytest.raises(ValueError, match="weights=None"):
        EvoPruneClassifier(backbone=tiny_spec(), weights=None).fit(X, y)
    flat = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))  # no pooling: 4-D output
    with pytest.raises(ValueError, match="2-D"):
        get_backbone(tiny_spec(module=flat))
    with pytest.raises(ValueError, match="declares n_features=9"):
        get_backbone(tiny_spec(n_features=9))


def build_tiny_net(weights):
    """A registered builder (module level, so that workers can unpickle it)."""
    return TinyNet()


def test_registered_user_backbone_saves_and_loads(tmp_path):
    from evoprune_sklearn._backbones._api import _REGISTRY

    X, y = quadrant_digits()
    try:
        register_backbone("tiny_saved_net", BackboneSpec(
            builder=build_tiny_net, input_size=16, mean=(0.5,) * 3, std=(0.25,) * 3))
        clf = EvoPruneClassifier(backbone="tiny_saved_net", hidden_layer_sizes=(8,),
                                 objectives=("accuracy", "complexity"), pop_size=4,
                                 n_evaluations=8, random_state=0).fit(X, y)
        path = clf.save(tmp_path / "m.safetensors")
        same = EvoPruneClassifier.load(path)
        np.testing.assert_array_equal(same.predict_proba(X), clf.predict_proba(X))
        assert same.backbone_.last_conv_map(torch.zeros(1, 3, 16, 16)).shape == (1, 8, 16, 16)
    finally:
        _REGISTRY.pop("tiny_saved_net", None)
