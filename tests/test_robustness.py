"""The robustness objective: ODIN OoD detection and adversarial accuracy."""

import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, cross_validate
from torch import nn

from evoprune_sklearn import EvoPruneClassifier, OODSet
from evoprune_sklearn._images import Images
from evoprune_sklearn._ood import synthetic_ood_features, synthetic_ood_images
from evoprune_sklearn.datasets import load_digits_images
from evoprune_sklearn.objectives import ODIN, Adversarial, odin_scores, ood_auroc
from evoprune_sklearn.objectives._adversarial import (
    _network,
    attack_images,
    calibrate_eps,
    robust_mask,
)

SMALL = dict(hidden_layer_sizes=(32,), pop_size=4, n_evaluations=8, random_state=0)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # These heads and 32-px images are tiny: one thread is faster than two,
    # and much faster when other test processes share the cores.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _noise_images(n, size, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def digits():
    return load_digits_images(size=32, n_per_class=20)


@pytest.fixture(scope="module")
def fitted(digits):
    """A three-objective search on digits with uniform-noise OoD images."""
    X, y = digits
    # refit=False: members keep the heads their objectives were measured on
    clf = EvoPruneClassifier(image_size=32, refit=False, **SMALL)
    return clf.fit(X, y, X_ood=_noise_images(40, 24))


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


def features_data():
    X, y = make_classification(n_samples=160, n_features=12, n_informative=6,
                               n_classes=3, random_state=0)
    return X, y


# ----------------------------------------------------------------------- ODIN
def test_trained_member_separates_digits_from_noise(fitted):
    front = fitted.pareto_front_
    assert "robustness" in front.to_frame().columns
    assert "best_robustness" in fitted.history_[-1]
    # the most accurate member tells digits from noise images
    assert front[0].objectives["accuracy"] > 0.6
    assert front[0].objectives["robustness"] > 0.85  # chance is 0.5
    assert fitted.n_ood_samples_ == 40


def test_temperature_one_is_the_max_softmax_baseline():
    X, y = features_data()
    X_ood = np.random.default_rng(1).normal(size=(50, X.shape[1])) * 3
    clf = EvoPruneClassifier(backbone=None, refit=False, **SMALL,
                             objectives=("accuracy", "complexity", ODIN(temperature=1.0)))
    clf.fit(X, y, X_ood=X_ood)
    X_val = X[clf._val_index].astype(np.float32)
    for member in clf.pareto_front_:
        with torch.no_grad():
            logit_in = member.module()(torch.as_tensor(X_val)).double()
            logit_out = member.module()(torch.as_tensor(X_ood, dtype=torch.float32)).double()
        msp_in = torch.softmax(logit_in, dim=1).max(dim=1).values.numpy()
        msp_out = torch.softmax(logit_out, dim=1).max(dim=1).values.numpy()
        expected = ood_auroc(msp_in, msp_out)
        assert member.objectives["robustness"] == pytest.approx(expected, abs=1e-9)


def test_odin_scores_shrink_towards_uniform_with_temperature():
    logits = np.array([[4.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert odin_scores(logits, 1.0)[0] == pytest.approx(np.exp(4) / (np.exp(4) + np.e + 1))
    hot = odin_scores(logits, 1000.0)
    # still ordered by confidence although both are within 1e-3 of 1/3
    assert hot[0] > hot[1] == pytest.approx(1 / 3)
    assert hot[0] - 1 / 3 < 1e-3


def test_input_perturbation_changes_scores_and_is_deterministic():
    X, y = features_data()
    kw = dict(backbone=None, **dict(SMALL, n_evaluations=4))
    def odin(epsilon):
        return EvoPruneClassifier(objectives=("accuracy", "complexity", ODIN(epsilon=epsilon)),
                                  **kw)

    plain = odin(0.0).fit(X, y)
    a = odin(0.05).fit(X, y)
    b = odin(0.05).fit(X, y)
    ra = a.pareto_front_.to_frame()["robustness"].to_numpy()
    assert np.array_equal(ra, b.pareto_front_.to_frame()["robustness"].to_numpy())
    assert not np.allclose(ra, plain.pareto_front_.to_frame()["robustness"].to_numpy())


def test_default_ood_set_is_synthetic_and_documented_size():
    X, y = features_data()
    clf = EvoPruneClassifier(backbone=None, **SMALL).fit(X, y)
    assert clf.n_ood_samples_ == len(clf._val_index)
    F, kinds = synthetic_ood_features(X, 9, random_state=0)
    assert F.shape == (9, X.shape[1]) and list(kinds).count("shuffled") == 3
    # the shuffled kind keeps every marginal: each value comes from X's column
    shuffled = F[kinds == "shuffled"]
    for j in range(X.shape[1]):
        assert np.isin(shuffled[:, j], X[:, j].astype(np.float32)).all()


def test_synthetic_ood_images_match_training_statistics(digits):
    X, _ = digits
    images, kinds = synthetic_ood_images(X, 30, random_state=0)
    assert images.shape == (30, 32, 32, 3) and images.dtype == np.uint8
    gaussian = images[kinds == "gaussian"] / 255.0
    assert abs(gaussian.mean() - (X / 255.0).mean()) < 0.05
    # shuffled images rearrange training images; none is left as it was
    shuffled = images[kinds == "shuffled"]
    assert not any(np.array_equal(s, x) for s in shuffled for x in X[:50])


# ------------------------------------------------------------------ X_ood input
@pytest.mark.parametrize(
    "X_ood, match",
    [
        (np.zeros((0, 32, 32, 3), dtype=np.uint8), "0 images"),
        (np.zeros((5, 32 * 32 * 3), dtype=np.uint8), "3 dimensions"),
        (np.zeros((5, 32, 32, 4), dtype=np.uint8), "channels"),
        (np.full((5, 32, 32, 3), 2.0), r"\[0, 1\]"),
    ],
)
def test_misshaped_image_ood_raises_before_work(digits, X_ood, match, heavy_work):
    X, y = digits
    clf = EvoPruneClassifier(image_size=32, **SMALL)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y, X_ood=X_ood)
    assert heavy_work.none


def test_the_heavy_work_counter_sees_a_fit(digits, heavy_work):
    X, y = digits
    EvoPruneClassifier(image_size=32, **SMALL).fit(X, y)
    assert heavy_work.backbones == 1 and heavy_work.heads >= SMALL["n_evaluations"]


@pytest.mark.parametrize(
    "X_ood, match",
    [
        (np.zeros((0, 12)), "0 samples"),
        (np.zeros(12), "2-D"),
        (np.zeros((5, 11)), "11 features"),
        (np.full((5, 12), np.nan), "NaN"),
    ],
)
def test_misshaped_feature_ood_raises(X_ood, match):
    X, y = features_data()
    with pytest.raises(ValueError, match=match):
        EvoPruneClassifier(backbone=None, **SMALL).fit(X, y, X_ood=X_ood)


def test_images_of_another_size_and_grayscale_are_accepted(digits):
    X, y = digits
    gray_ood = _noise_images(12, 20)[..., 0]
    clf = EvoPruneClassifier(image_size=32, **dict(SMALL, pop_size=2, n_evaluations=2))
    clf.fit(X[::2], y[::2], X_ood=gray_ood)
    assert clf.n_ood_samples_ == 12


@pytest.mark.parametrize("search", ["cross_validate", "grid"])
def test_ood_set_is_not_sliced_by_cv_even_with_len_of_X(search):
    X, y = features_data()
    X_ood = OODSet(np.random.default_rng(2).normal(size=(len(X), X.shape[1])))
    est = EvoPruneClassifier(backbone=None, **dict(SMALL, n_evaluations=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the length warning must not fire
        if search == "cross_validate":
            out = cross_validate(est, X, y, cv=3, params={"X_ood": X_ood},
                                 return_estimator=True)
            fitted = out["estimator"]
        else:
            grid = GridSearchCV(est, {"objectives": [
                ("accuracy", "complexity", ODIN(temperature=t)) for t in (1.0, 1000.0)]},
                cv=2)
            grid.fit(X, y, X_ood=X_ood)
            fitted = [grid.best_estimator_]
            assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert all(e.n_ood_samples_ == len(X) for e in fitted)


def test_plain_ood_array_of_len_X_warns_that_cv_would_slice_it():
    X, y = features_data()
    X_ood = np.random.default_rng(2).normal(size=(len(X), X.shape[1]))
    with pytest.warns(UserWarning, match="OODSet"):
        EvoPruneClassifier(backbone=None, **dict(SMALL, n_evaluations=4)).fit(
            X, y, X_ood=X_ood)


def test_ood_ignored_without_odin_warns():
    X, y = features_data()
    clf = EvoPruneClassifier(backbone=None, objectives=("accuracy", "complexity"),
                             **dict(SMALL, n_evaluations=4))
    with pytest.warns(UserWarning, match="ignored"):
        clf.fit(X, y, X_ood=np.zeros((3, X.shape[1])))
    assert clf.n_ood_samples_ is None
    assert "robustness" not in clf.pareto_front_.to_frame().columns


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


def test_odin_needs_no_torchattacks(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchattacks", None)
    X, y = features_data()
    clf = EvoPruneClassifier(backbone=None, **dict(SMALL, n_evaluations=4)).fit(X, y)
    assert "robustness" in clf.pareto_front_.to_frame().columns


def test_torchattacks_is_an_optional_extra():
    import re
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert not any("torchattacks" in req for req in project["dependencies"])
    assert any(
        req.startswith("torchattacks")
        for req in project["optional-dependencies"]["attacks"]
    )
    makefile = (root / "Makefile").read_text()
    assert re.search(r"pip install -e \"\.\[[a-z,]*attacks[a-z,]*\]\"", makefile)
