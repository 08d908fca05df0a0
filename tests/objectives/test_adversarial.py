"""The adversarial objective: accuracy under FGSM and PGD (torchattacks)."""

import sys

import numpy as np
import pytest
import torch
from torch import nn

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._images import Images
from evoprune_sklearn.objectives import ODIN, Adversarial
from evoprune_sklearn.objectives._adversarial import (
    _network,
    attack_images,
    calibrate_eps,
    robust_mask,
)

from ._shared import SMALL, features_data


@pytest.fixture(scope="module")
def attack_setup(fitted, digits):
    """The most accurate member as a full network, and validation images."""
    X, y = digits
    clf = fitted
    member = clf.pareto_front_[0]
    model = nn.Sequential(clf.backbone_.unit_image_model(), member.module()).eval()
    val = clf._val_index
    y_enc = np.searchsorted(clf.classes_, y[val])
    return clf, model, X[val], y_enc


# ---------------------------------------------------------------- adversarial
def _member_heads(clf, n=None):
    return [m.module() for m in list(clf.pareto_front_)[:n]]


def _clean_correct(clf, heads, X_val, y_val):
    feats = torch.as_tensor(clf.extract_features(X_val))
    with torch.no_grad():
        return np.stack([(h(feats).argmax(1).numpy() == y_val) for h in heads])


def _robust(clf, heads, images, y_val, clean, method, eps, **kw):
    network = _network(clf.backbone_.unit_image_model(), heads, "cpu")
    robust = robust_mask(network, images, torch.as_tensor(y_val), clean,
                         method=method, eps=eps, **kw)
    return robust, network


def test_attack_stays_inside_eps_ball_in_pixel_space(attack_setup):
    clf, model, X_val, y_val = attack_setup
    bb = clf.backbone_
    images = Images(X_val[:16]).to_tensor(bb.input_size)
    labels = torch.as_tensor(y_val[:16])
    eps = 8 / 255
    for method in ("fgsm", "pgd"):
        adv = attack_images(model, images, labels, method=method, eps=eps, steps=3)
        delta = (adv - images).abs().max()
        assert delta <= eps + 1e-5
        assert delta > eps / 2  # the attack really moved the pixels
        assert adv.min() >= 0 and adv.max() <= 1


def test_accuracy_falls_as_eps_grows_and_pgd_is_stronger(attack_setup):
    clf, _, X_val, y_val = attack_setup
    X_val, y_val = X_val[:48], y_val[:48]
    heads = _member_heads(clf, 1)
    clean = _clean_correct(clf, heads, X_val, y_val)
    images = Images(X_val).to_tensor(clf.backbone_.input_size)
    # 32-px digits through an ImageNet network are very fragile: FGSM's single
    # linear step is a good model of the loss only for small eps.
    fgsm = [_robust(clf, heads, images, y_val, clean, "fgsm", e)[0].mean()
            for e in (0.1 / 255, 0.3 / 255, 1 / 255)]
    noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pgd = _robust(clf, heads, images, y_val, clean, "pgd", 0.3 / 255, steps=5,
                  noise=noise)[0].mean()
    assert fgsm[0] < clean.mean()
    assert fgsm[0] >= fgsm[1] >= fgsm[2] and fgsm[2] < fgsm[0]
    assert pgd <= fgsm[1]


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_early_exit_does_not_change_the_value(attack_setup, method):
    clf, _, X_val, y_val = attack_setup
    heads = _member_heads(clf, 3)
    X_val, y_val = X_val[:32], y_val[:32]
    clean = _clean_correct(clf, heads, X_val, y_val)
    images = Images(X_val).to_tensor(clf.backbone_.input_size)
    noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(3)) * 2 - 1
    kw = dict(steps=5, noise=noise, batch_size=24)
    eps = 0.5 / 255
    fast, net_fast = _robust(clf, heads, images, y_val, clean, method, eps, **kw)
    slow, net_slow = _robust(clf, heads, images, y_val, clean, method, eps,
                             early_exit=False, **kw)
    assert np.array_equal(fast, slow)
    assert 0 < fast.mean() < clean.mean()  # some pairs fell, some held
    # the early exit really skipped work: fewer backbone passes
    assert net_fast.n_backward < net_slow.n_backward
    assert net_fast.n_forward < net_slow.n_forward
    # robust means correct clean, and the objective value is their mean
    assert not (fast & ~clean).any()


@pytest.mark.parametrize("mode", ["fgsm", "pgd"])
def test_default_settings_give_values_that_spread_across_the_front(digits, mode):
    # Before the calibrated budget, PGD at eps=8/255 scored every candidate
    # 0: an objective without information.
    X, y = digits
    clf = EvoPruneClassifier(image_size=32, objectives=("accuracy", "complexity", mode),
                             **dict(SMALL, hidden_layer_sizes=(16,)))
    clf.fit(X, y)
    rob = clf.pareto_front_.to_frame()["robustness"].to_numpy()
    assert len(rob) >= 3
    assert rob.max() - rob.min() >= 0.1
    assert 0 < clf.objectives_[2].eps_ < 8 / 255
    assert clf.objectives_[2].method == mode


def test_auto_eps_halves_the_dense_heads_accuracy():
    obj = Adversarial("fgsm")
    accuracy = {}

    def accuracy_at(eps):  # a head that falls linearly, half-way at eps = 0.01
        accuracy[eps] = max(0.0, 0.9 * (1 - eps / 0.02))
        return accuracy[eps]

    eps, trace = calibrate_eps(accuracy_at, 0.45)
    assert obj.eps == "auto"
    assert len(trace) == 6 and eps in accuracy
    assert eps == pytest.approx(0.01, rel=0.1)


def test_fixed_eps_is_the_stated_budget(digits):
    X, y = digits
    user = Adversarial("fgsm", eps=2 / 255, subset=16)
    clf = EvoPruneClassifier(image_size=32, objectives=("accuracy", "complexity", user),
                             **dict(SMALL, pop_size=2, n_evaluations=2))
    clf.fit(X[::2], y[::2])
    assert clf.objectives_[2].eps_ == 2 / 255
    assert not hasattr(user, "eps_")  # the user's instance is never fitted
    rob = clf.pareto_front_.to_frame()["robustness"]
    assert np.allclose(rob * 16, np.round(rob * 16))  # accuracy on 16 images


@pytest.mark.parametrize("mode", ["fgsm", "pgd"])
def test_verbose_prints_a_time_estimate_before_the_search(digits, mode, capsys):
    X, y = digits
    attack = Adversarial(mode, eps=1 / 255, steps=2, subset=8)
    clf = EvoPruneClassifier(image_size=32, objectives=("accuracy", "complexity", attack),
                             verbose=1, **dict(SMALL, pop_size=2, n_evaluations=2))
    clf.fit(X[::4], y[::4])
    out = capsys.readouterr().out
    assert f"Adversarial(method={mode!r}" in out and "eps=1/255" in out
    estimate = out.index("s per candidate")
    assert "for 2 evaluations" in out[estimate:]


@pytest.mark.parametrize("mode", ["odin_eps", "fgsm", "pgd"])
def test_three_objective_search_runs_in_each_image_mode(digits, mode):
    X, y = digits
    robustness = (ODIN(epsilon=0.002, subset=16) if mode == "odin_eps"
                  else Adversarial(mode, steps=2, eps=1 / 255, subset=16))
    clf = EvoPruneClassifier(image_size=32,
                             objectives=("accuracy", "complexity", robustness),
                             **dict(SMALL, pop_size=2, n_evaluations=4))
    clf.fit(X[::2], y[::2])
    rob = clf.pareto_front_.to_frame()["robustness"]
    assert rob.between(0, 1).all()
    if mode != "odin_eps":
        # accuracy on the 16 attacked images of subset
        assert np.allclose(rob * 16, np.round(rob * 16))


@pytest.mark.parametrize("mode", ["fgsm", "pgd"])
def test_attacks_refuse_feature_input(mode):
    X, y = features_data()
    clf = EvoPruneClassifier(backbone=None, objectives=("accuracy", mode), **SMALL)
    with pytest.raises(ValueError, match="backbone"):
        clf.fit(X, y)


@pytest.mark.parametrize("eps", ["big", -0.1, 1.5])
def test_bad_attack_eps_is_refused_by_name(digits, eps, heavy_work):
    X, y = digits
    clf = EvoPruneClassifier(image_size=32, objectives=("accuracy", Adversarial(eps=eps)),
                             **SMALL)
    with pytest.raises(ValueError, match="'eps' parameter of Adversarial"):
        clf.fit(X, y)
    assert heavy_work.none  # refused before any heavy work


# -------------------------------------------------- torchattacks is optional
@pytest.mark.parametrize("mode", ["fgsm", "pgd"])
def test_attacks_without_torchattacks_explain_how_to_install(
    digits, monkeypatch, mode, heavy_work
):
    monkeypatch.setitem(sys.modules, "torchattacks", None)  # import now fails
    X, y = digits
    clf = EvoPruneClassifier(image_size=32, objectives=("accuracy", mode), **SMALL)
    with pytest.raises(ImportError, match=r"pip install 'evoprune_sklearn\[attacks\]'"):
        clf.fit(X, y)
    assert heavy_work.none  # refused before any heavy work


def test_torchattacks_is_an_optional_extra():
    import re
    from pathlib import Path

    tomllib = pytest.importorskip(
        "tomllib",
        reason="tomllib is stdlib from Python 3.11; the package supports 3.10, where"
        " this packaging check runs on the newer interpreters only",
    )
    root = Path(__file__).parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert not any("torchattacks" in req for req in project["dependencies"])
    assert any(
        req.startswith("torchattacks")
        for req in project["optional-dependencies"]["attacks"]
    )
    makefile = (root / "Makefile").read_text()
    assert re.search(r"pip install -e \"\.\[[a-z,]*attacks[a-z,]*\]\"", makefile)
