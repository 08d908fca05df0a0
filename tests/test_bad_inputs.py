"""The catalogue of bad inputs: each gives a clear error naming the problem.

Every case that reaches an estimator runs on a copy of an already fitted
one, and checks afterwards that the failed fit left it exactly as it was
(a half-updated estimator, say new ``classes_`` over an old front, would
predict garbage). Cases marked ``early`` must fail before any heavy work:
no backbone pass and no search. docs/reliability.rst holds the same table.
"""

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import HeavyWork
from PIL import Image
from sklearn.datasets import make_classification

import evoprune_sklearn._classifier as classifier_module
from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._backbones import Backbone
from evoprune_sklearn.datasets import load_image_folder
from evoprune_sklearn.objectives import ODIN


@dataclass
class Case:
    id: str
    call: Callable
    error: type
    match: str
    estimator: str = None  # "features", "images" or None (no estimator)
    early: bool = True
    marker: bool = field(default=False)  # a malicious file must not run


class _RunsCode:
    """Pickles into a call that creates ``path``: what a hostile file does."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    X, y = make_classification(
        n_samples=120, n_features=12, n_informative=5, n_classes=3, random_state=0
    )
    settings = dict(hidden_layer_sizes=(8,), pop_size=4, n_evaluations=4, random_state=0)
    checkpoint = str(root / "search.ckpt")
    features = EvoPruneClassifier(backbone=None, checkpoint=checkpoint, **settings)
    features.fit(X, y)
    features.set_params(checkpoint=None)

    from evoprune_sklearn.datasets import load_digits_images

    images, labels = load_digits_images(size=16, n_per_class=6)
    image_clf = EvoPruneClassifier(
        image_size=32, objectives=("accuracy", "complexity"),
        **{**settings, "pop_size": 2, "n_evaluations": 2},
    ).fit(images, labels)

    def path(name):
        return str(root / name)

    # weights files
    with open(path("garbage.pt"), "wb") as f:
        f.write(b"not a torch file at all")
    torch.save(_RunsCode(path("pwned_by_weights")), path("hostile.pt"))
    torch.save({"no.such.layer": torch.zeros(3)}, path("other_arch.pt"))
    # checkpoints
    with open(path("garbage.ckpt"), "wb") as f:
        f.write(b"\x00" * 64)
    torch.save(_RunsCode(path("pwned_by_checkpoint")), path("hostile.ckpt"))
    torch.save({"weight": torch.zeros(2)}, path("foreign.ckpt"))
    blob = torch.load(checkpoint, weights_only=True)
    import json

    meta = json.loads(blob["meta"])
    meta["fingerprint"]["version"] = "0.0.0"
    torch.save({**blob, "meta": json.dumps(meta)}, path("old_version.ckpt"))
    # image folders
    os.makedirs(path("empty"))
    os.makedirs(path("no_images/cats"))
    with open(path("no_images/cats/readme.txt"), "w") as f:
        f.write("no images here")
    rng = np.random.default_rng(0)

    def folder(name, files):
        for rel, writer in files.items():
            os.makedirs(os.path.dirname(path(f"{name}/{rel}")), exist_ok=True)
            writer(path(f"{name}/{rel}"))

    def image(size):
        return lambda p: Image.fromarray(
            rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(p)

    def truncated_jpeg(p):
        image(32)(p)
        data = open(p, "rb").read()
        open(p, "wb").write(data[: len(data) // 2])

    def text(p):
        open(p, "w").write("this is not a PNG")

    good = {f"{c}/{i}.png": image(32) for c in "ab" for i in range(3)}
    folder("not_image", {**good, "a/fake.png": text})
    folder("corrupt_jpeg", {**good, "b/broken.jpg": truncated_jpeg})
    folder("mixed_sizes", {**good, "b/big.png": image(48)})
    return SimpleNamespace(
        X=X, y=y, settings=settings, features=features, images=images,
        labels=labels, image_clf=image_clf, checkpoint=checkpoint, path=path,
    )


# ------------------------------------------------------------------ the cases
def _fit(**params):
    def call(c, est):
        est.set_params(**params).fit(c.X, c.y)
    return call


def _fit_with(X=None, y=None, **kwargs):
    def call(c, est):
        est.fit(c.X if X is None else X(c), c.y if y is None else y(c), **kwargs)
    return call


def _fit_images(X=None, y=None, **params):
    def call(c, est):
        est.set_params(**params).fit(
            c.images if X is None else X(c), c.labels if y is None else y(c))
    return call


def _fit_ood(X_ood):
    def call(c, est):
        est.set_params(objectives=("accuracy", "complexity", "odin"))
        X, y = (c.X, c.y) if est.backbone is None else (c.images, c.labels)
        est.fit(X, y, X_ood=X_ood(c))
    return call


def _resume(X=None, path=None, **params):
    def call(c, est):
        est.set_params(checkpoint=path(c) if path else c.checkpoint,
                       **{**c.settings, **params})
        est.fit(c.X if X is None else X(c), c.y)
    return call


def _load(name, **kwargs):
    def call(c, est):
        X, _ = load_image_folder(c.path(name), **kwargs)
        if kwargs.get("lazy"):
            np.asarray(X)
    return call


def _nan(c):
    X = c.X.copy()
    X[3, 2] = np.nan
    return X


CASES = [
    # X
    Case("X-has-nan", _fit_with(X=_nan), ValueError, "NaN", "features"),
    Case("X-is-1d", _fit_with(X=lambda c: c.X[:, 0]), ValueError,
         "Expected 2D array", "features"),
    Case("X-has-no-samples", _fit_with(X=lambda c: c.X[:0], y=lambda c: c.y[:0]),
         ValueError, "0 sample", "features"),
    Case("X-is-strings", _fit_with(X=lambda c: np.full(c.X.shape, "a")), ValueError,
         "could not convert string", "features"),
    Case("images-have-5-channels",
         _fit_images(X=lambda c: np.zeros((len(c.labels), 16, 16, 5), np.uint8)),
         ValueError, "1 or 3 channels", "images"),
    Case("float-images-outside-0-1",
         _fit_images(X=lambda c: c.images.astype(np.float32)), ValueError,
         r"must lie in \[0, 1\]", "images"),
    Case("2d-X-for-an-image-backbone", _fit_images(X=lambda c: c.images.reshape(
        len(c.images), -1)), ValueError, "backbone=None", "images"),
    Case("images-of-1x1-pixel",
         _fit_images(X=lambda c: np.zeros((len(c.labels), 1, 1, 3), np.uint8)),
         ValueError, "at least 2x2", "images"),
    Case("images-of-strings",
         _fit_images(X=lambda c: np.full((len(c.labels), 4, 4, 3), "x")),
         TypeError, "numeric image array", "images"),
    Case("predict-with-other-n-features",
         lambda c, est: est.predict(c.X[:, :5]), ValueError, "features", "features"),
    Case("predict-with-other-image-size",
         lambda c, est: est.predict(np.zeros((2, 20, 20, 3), np.uint8)), ValueError,
         "fitted on images of shape", "images"),
    # y
    Case("y-length-differs", _fit_with(y=lambda c: c.y[:-1]), ValueError,
         "inconsistent numbers of samples", "features"),
    Case("y-has-one-class", _fit_with(y=lambda c: np.zeros_like(c.y)), ValueError,
         "at least 2 classes", "features"),
    Case("y-is-continuous", _fit_with(y=lambda c: c.y + 0.5), ValueError,
         "Unknown label type", "features"),
    Case("y-every-class-with-1-sample",
         _fit_with(X=lambda c: c.X[:3], y=lambda c: np.arange(3)),
         ValueError, "Every class has a single sample", "features"),
    Case("y-is-none", _fit_images(y=lambda c: None), ValueError, "requires y",
         "images"),
    Case("y-is-2d", _fit_with(y=lambda c: np.c_[c.y, c.y]), ValueError,
         "1d array", "features"),
    # X_ood
    Case("X_ood-other-n-features", _fit_ood(lambda c: np.zeros((10, 3))),
         ValueError, "X_ood has 3 features", "features"),
    Case("X_ood-has-nan", _fit_ood(lambda c: np.full((10, c.X.shape[1]), np.nan)),
         ValueError, "X_ood contains NaN", "features"),
    Case("X_ood-is-3d", _fit_ood(lambda c: np.zeros((10, 4, 3))), ValueError,
         "X_ood must be a 2-D feature matrix", "features"),
    Case("X_ood-has-no-samples", _fit_ood(lambda c: np.zeros((0, c.X.shape[1]))),
         ValueError, "X_ood holds 0 samples", "features"),
    Case("X_ood-images-have-5-channels",
         _fit_ood(lambda c: np.zeros((4, 16, 16, 5), np.uint8)), ValueError,
         "X_ood.*channels", "images"),
    # parameters
    Case("pop_size-1", _fit(pop_size=1), ValueError, "pop_size", "features"),
    Case("n_evaluations-below-pop_size", _fit(pop_size=6, n_evaluations=3),
         ValueError, "n_evaluations=3 is smaller than pop_size=6", "features"),
    Case("unknown-objective", _fit(objectives=("accuracy", "speed")), ValueError,
         "Unknown objective 'speed'", "features"),
    Case("objectives-without-accuracy", _fit(objectives=("complexity",)),
         ValueError, "must include 'accuracy'", "features"),
    Case("hidden-layer-of-0", _fit(hidden_layer_sizes=(0,)), ValueError,
         "hidden_layer_sizes", "features"),
    Case("three-hidden-layers", _fit(hidden_layer_sizes=(4, 4, 4)), ValueError,
         "one or two positive integers", "features"),
    Case("unknown-device", _fit(device="tpu"), ValueError, "device", "features"),
    Case("validation_fraction-above-1", _fit(validation_fraction=1.5), ValueError,
         "validation_fraction", "features"),
    Case("unknown-backbone", _fit_images(backbone="no_such_net"), ValueError,
         "Unknown backbone 'no_such_net'", "images"),
    Case("attack-robustness-without-backbone",
         _fit(objectives=("accuracy", "fgsm")), ValueError,
         "needs backbone", "features"),
    Case("objective-class-not-instance", _fit(objectives=("accuracy", ODIN)), TypeError,
         "add the parentheses", "features"),
    Case("two-robustness-objectives", _fit(objectives=("accuracy", "odin", "fgsm")),
         ValueError, "duplicate names", "features"),
    Case("objective-bad-parameter", _fit(objectives=("accuracy", ODIN(temperature=0))),
         ValueError, "'temperature' parameter of ODIN", "features"),
    Case("selection-beyond-the-front", _fit(selection=99), ValueError,
         "selection=99", "features", early=False),
    # weights files
    Case("weights-file-missing", _fit_images(weights="/no/such/weights.pt"),
         ValueError, "does not exist", "images"),
    Case("weights-file-garbage", lambda c, est: _fit_images(
        weights=c.path("garbage.pt"))(c, est), ValueError, "could not be read",
        "images"),
    Case("weights-file-runs-code", lambda c, est: _fit_images(
        weights=c.path("hostile.pt"))(c, est), ValueError, "could not be read",
        "images", marker=True),
    Case("weights-for-another-architecture", lambda c, est: _fit_images(
        weights=c.path("other_arch.pt"))(c, est), ValueError,
        "does not match the backbone", "images"),
    # checkpoints
    Case("checkpoint-for-other-data", _resume(X=lambda c: c.X + 1.0), ValueError,
         "other training data", "features"),
    Case("checkpoint-for-other-parameters", _resume(alpha=0.5), ValueError,
         r"other parameters \(alpha=1.0 there, 0.5 here\)", "features"),
    Case("checkpoint-from-another-version", _resume(path=lambda c: c.path(
        "old_version.ckpt")), ValueError, "written by evoprune_sklearn 0.0.0",
        "features"),
    Case("checkpoint-garbage", _resume(path=lambda c: c.path("garbage.ckpt")),
         ValueError, "could not be read", "features"),
    Case("checkpoint-runs-code", _resume(path=lambda c: c.path("hostile.ckpt")),
         ValueError, "could not be read", "features", marker=True),
    Case("checkpoint-of-another-program", _resume(path=lambda c: c.path(
        "foreign.ckpt")), ValueError, "not an evoprune_sklearn checkpoint",
        "features"),
    Case("checkpoint-is-a-directory", _resume(path=lambda c: c.path("empty")),
         ValueError, "is a directory", "features"),
    Case("checkpoint-folder-missing", _resume(path=lambda c: c.path(
        "nowhere/x.ckpt")), ValueError, "does not exist", "features"),
    # image folders
    Case("folder-missing", _load("missing"), ValueError, "does not exist"),
    Case("folder-empty", _load("empty"), ValueError, "no class subfolders"),
    Case("folder-without-images", _load("no_images"), ValueError,
         "holds no image files"),
    Case("folder-non-image-file", _load("not_image"), ValueError,
         "Cannot read image file .*fake.png"),
    Case("folder-non-image-file-lazy", _load("not_image", lazy=True), ValueError,
         "Cannot read image file .*fake.png"),
    Case("folder-corrupt-jpeg", _load("corrupt_jpeg"), ValueError,
         "Cannot read image file .*broken.jpg"),
    Case("folder-mixed-sizes", _load("mixed_sizes", size=None), ValueError,
         "different sizes"),
    Case("folder-mixed-sizes-lazy", _load("mixed_sizes", size=None, lazy=True),
         ValueError, "different sizes"),
    Case("folder-size-0", _load("not_image", size=0), ValueError,
         "size must be a positive integer"),
    # a corrupt JPEG in a lazy folder is found when the backbone decodes it
    Case("lazy-folder-corrupt-jpeg-in-fit", lambda c, est: est.fit(
        *load_image_folder(c.path("corrupt_jpeg"), size=16, lazy=True)),
        ValueError, "Cannot read image file .*broken.jpg", "images", early=False),
]


def test_catalogue_is_large_enough():
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_a_clear_error(case, ctx, monkeypatch):
    est, probe, before = None, None, None
    if case.estimator == "features":
        est, probe = pickle.loads(pickle.dumps(ctx.features)), ctx.X
    elif case.estimator == "images":
        est, probe = pickle.loads(pickle.dumps(ctx.image_clf)), ctx.images
    if est is not None:
        before = est.predict_proba(probe)
        fitted_state = {k: v for k, v in vars(est).items() if k.endswith("_")}
    if case.early:
        def heavy(*args, **kwargs):
            raise AssertionError("heavy work started before the error was found")

        monkeypatch.setattr(classifier_module, "NSGA2Search", heavy)
        monkeypatch.setattr(Backbone, "extract", heavy)
        work = HeavyWork(monkeypatch)  # sees the dense baseline too

    with pytest.raises(case.error, match=case.match):
        case.call(ctx, est)
    if case.early:
        # no head trained, not even the dense baseline (building the backbone
        # is where a bad weights file is found, so only heads are counted)
        assert work.heads == 0

    monkeypatch.undo()
    if case.marker:
        assert not any(os.path.exists(ctx.path(m))
                       for m in ("pwned_by_weights", "pwned_by_checkpoint"))
    if est is not None:
        # the failed fit left the previous fit untouched
        assert {k: v for k, v in vars(est).items() if k.endswith("_")}.keys() == \
            fitted_state.keys()
        assert all(getattr(est, k) is v for k, v in fitted_state.items())
        if case.id == "selection-beyond-the-front":
            # selection is the user's parameter and stays as set; predict
            # follows it, so the previous prediction is back with its value.
            est.set_params(selection="knee")
        np.testing.assert_array_equal(est.predict_proba(probe), before)
