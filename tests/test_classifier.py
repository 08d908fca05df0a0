"""End-to-end behaviour of EvoPruneClassifier on images and on features."""

import numpy as np
import pytest


def test_fit_on_images_gives_a_front_and_predictions(digit_images, make_tiny):
    X, y = digit_images
    clf = make_tiny(image_size=32, n_evaluations=12).fit(X, y)
    front = clf.pareto_front_
    assert len(front) >= 1
    frame = front.to_frame()
    assert list(frame.columns[:2]) == ["accuracy", "complexity"]
    for member in front:
        assert member.genome.dtype == bool and member.genome.size == clf.n_genes_
        assert member.params is not None
        np.testing.assert_array_equal(member.classes, clf.classes_)
        assert 0.0 <= member.objectives["accuracy"] <= 1.0
        assert member.objectives["complexity"] == pytest.approx(member.genome.mean())
    # no member dominates another
    F = front.F * np.where(front.greater_is_better, -1.0, 1.0)  # all to minimise
    for i in range(len(F)):
        for j in range(len(F)):
            assert not (np.all(F[i] <= F[j]) and np.any(F[i] < F[j]))
    assert clf.n_genes_ == clf.backbone_.n_features == 1280
    assert clf.image_shape_ == (32, 32, 3)
    pred = clf.predict(X)
    assert set(pred) <= set(clf.classes_)
    # ImageNet features of digits are far better than chance (10%)
    assert clf.score(X, y) > 0.5
    proba = clf.predict_proba(X[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_backbone_runs_once_per_training_image(digit_images, make_tiny):
    X, y = digit_images
    clf = make_tiny(image_size=32, objectives=("accuracy", "complexity")).fit(X, y)
    assert clf.backbone_.n_images_forwarded == len(X)
    # ODIN (epsilon=0) adds one pass per out-of-distribution image, no more
    clf = make_tiny(image_size=32).fit(X, y)
    assert clf.n_ood_samples_ > 0
    assert clf.backbone_.n_images_forwarded == len(X) + clf.n_ood_samples_


@pytest.mark.parametrize("layout", ["nhwc", "nchw", "gray", "float", "gray1"])
def test_image_layouts_give_the_same_features(digit_images, make_tiny, layout):
    X, y = digit_images
    X, y = X[:40], y[:40]
    ref = make_tiny(image_size=32, pop_size=2, n_evaluations=2)
    ref.fit(np.concatenate([X] * 2), np.concatenate([y] * 2))
    base = ref.extract_features(X)
    variants = {
        "nhwc": X,
        "nchw": np.moveaxis(X, -1, 1),
        "gray": X[..., 0],
        "float": X.astype(np.float32) / 255,
        "gray1": X[..., :1],
    }
    Xv = variants[layout]
    clf = make_tiny(image_size=32, pop_size=2, n_evaluations=2)
    clf.fit(np.concatenate([Xv] * 2), np.concatenate([y] * 2))
    np.testing.assert_allclose(clf.extract_features(Xv), base, rtol=1e-4, atol=1e-4)


def test_neurons_encoding_with_two_layers(blobs, make_tiny):
    X, y = blobs
    clf = make_tiny(backbone=None, encoding="neurons", hidden_layer_sizes=(12, 8)).fit(X, y)
    assert clf.n_genes_ == 20
    member = clf.pareto_front_[clf.best_index_]
    head = member.module()
    # pruned neurons really are switched off in the member's head
    np.testing.assert_array_equal(head.neuron_mask(0).numpy() > 0, member.genome[:12])
    np.testing.assert_array_equal(head.neuron_mask(1).numpy() > 0, member.genome[12:])
    assert clf.score(X, y) > 0.8


def test_features_encoding_prunes_inputs(blobs, make_tiny):
    X, y = blobs
    clf = make_tiny(backbone=None).fit(X, y)
    member = clf.pareto_front_[clf.best_index_]
    X2 = X.copy()
    X2[:, ~member.genome] = 1e3  # pruned features cannot change the prediction
    np.testing.assert_allclose(clf.predict_proba(X2), clf.predict_proba(X), rtol=1e-5)


def test_history_records_every_generation(blobs, make_tiny):
    X, y = blobs
    clf = make_tiny(backbone=None, pop_size=4, n_evaluations=14).fit(X, y)
    evals = [h["n_evaluations"] for h in clf.history_]
    assert evals == [4, 8, 12, 14]  # the last generation is cut to the budget
    assert clf.n_evaluations_ == 14
    assert clf.n_trained_ <= 14
    for record in clf.history_:
        assert {"front_size", "best_accuracy", "best_complexity"} <= set(record)


@pytest.mark.parametrize("selection", ["knee", "tradeoff", "accuracy", "complexity", 0])
def test_selection_picks_the_documented_member(blobs, make_tiny, selection):
    X, y = blobs
    # Two objectives: there the documented knee is the sparsest member within
    # one standard error of the best accuracy (with robustness it also
    # weighs the robustness of the eligible members).
    clf = make_tiny(backbone=None, n_evaluations=16, selection=selection,
                    objectives=("accuracy", "complexity")).fit(X, y)
    frame = clf.pareto_front_.to_frame()
    chosen = frame.iloc[clf.best_index_]
    if selection == "accuracy":
        assert chosen["accuracy"] == frame["accuracy"].max()
    elif selection == "complexity":
        assert chosen["complexity"] == frame["complexity"].min()
    elif selection == 0:
        assert clf.best_index_ == 0
    elif selection == "knee":
        best = frame["accuracy"].max()
        se = np.sqrt(best * (1 - best) / clf.pareto_front_.n_validation)
        eligible = frame[frame["accuracy"] >= best - se - 1e-12]
        assert chosen["complexity"] == eligible["complexity"].min()
    elif selection == "tradeoff":  # closest to the ideal, both axes rescaled to [0, 1]
        span = (frame.max() - frame.min()).replace(0, 1)
        gap = (frame["accuracy"].max() - frame["accuracy"]) / span["accuracy"]
        size = (frame["complexity"] - frame["complexity"].min()) / span["complexity"]
        assert clf.best_index_ == int(np.argmin(np.hypot(gap, size)))
    member = clf.pareto_front_[clf.best_index_]
    np.testing.assert_allclose(clf.predict_proba(X), member.predict_proba(X), rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), member.predict(X))


def test_selection_index_out_of_range(blobs, make_tiny):
    X, y = blobs
    with pytest.raises(ValueError, match="Pareto front has only"):
        make_tiny(backbone=None, selection=999).fit(X, y)


def test_string_labels_and_same_seed_same_front(blobs, make_tiny):
    X, y = blobs
    labels = np.array(["cat", "dog", "eel"], dtype=object)[y]
    a = make_tiny(backbone=None).fit(X, labels)
    b = make_tiny(backbone=None).fit(X, labels)
    assert set(a.predict(X)) <= {"cat", "dog", "eel"}
    assert len(a.pareto_front_) == len(b.pareto_front_)
    for ma, mb in zip(a.pareto_front_, b.pareto_front_):
        np.testing.assert_array_equal(ma.genome, mb.genome)
        assert ma.objectives == mb.objectives


def test_dense_head_baseline(blobs, make_tiny):
    X, y = blobs
    clf = make_tiny(backbone=None).fit(X, y)
    dense = clf.baseline_
    assert dense.genome.all() and dense.objectives["complexity"] == 1.0
    assert dense.module().feature_mask.sum() == X.shape[1]
    assert np.mean(dense.predict(X) == y) > 0.8
    # the skorch net, built on demand from the same weights, predicts class indices
    assert np.mean(clf.classes_[dense.net.predict(X.astype(np.float32))] == y) > 0.8
    assert set(dense.objectives) == set(clf.pareto_front_.objective_names)


def test_dense_baseline_objectives_are_its_validation_measurements(blobs, make_tiny):
    X, y = blobs
    clf = make_tiny(backbone=None, refit=False).fit(X, y)  # heads as the search scored them
    dense, val = clf.baseline_, clf._val_index
    assert dense.objectives["accuracy"] == pytest.approx(np.mean(dense.predict(X[val]) == y[val]))
    assert dense.objectives["complexity"] == 1.0


def _heads_trained_after_fit(monkeypatch):
    """Count the genomes the engines train from now on."""
    import evoprune_sklearn._engines._base as base

    counted, real = [], base.train_heads

    def counting(genomes, *args, **kwargs):
        counted.append(len(genomes))
        return real(genomes, *args, **kwargs)

    monkeypatch.setattr(base, "train_heads", counting)
    return counted


def _weights(front):
    return [[(w.numpy().copy(), b.numpy().copy()) for w, b in m.params] for m in front]


@pytest.mark.parametrize("hidden", [(), (8,)])
def test_refit_retrains_members_when_first_used_with_the_weights_of_a_full_refit(
        blobs, make_tiny, monkeypatch, hidden, tmp_path):
    """fit retrains the baseline and the selected member; every other member
    is retrained on first use, to the weights an eager refit gives."""
    import pickle

    X, y = blobs
    params = dict(backbone=None, hidden_layer_sizes=hidden, solver="lbfgs",
                  pop_size=8, n_evaluations=24)
    eager = make_tiny(**params).fit(X, y)
    reference = _weights(eager.pareto_front_)  # reading the front retrains them all
    assert len(reference) > 2
    lazy = make_tiny(**params).fit(X, y)
    counted = _heads_trained_after_fit(monkeypatch)
    np.testing.assert_array_equal(lazy.predict_proba(X), eager.predict_proba(X))
    lazy.export_model(head_only=True)
    assert counted == []  # fit retrained what predict uses
    other = next(i for i in range(len(reference)) if i != lazy.best_index_)
    lazy.ensemble_predict_proba(X, members=[other])
    assert counted == [1]
    front = lazy.pareto_front_
    assert counted == [1, len(reference) - 2]  # the rest together, once
    _ = lazy.pareto_front_, pickle.dumps(lazy)
    assert counted == [1, len(reference) - 2]
    _assert_same_weights(_weights(front), reference)
    # a pickle or a saved file holds the retrained heads, not the training rows
    fresh = make_tiny(**params).fit(X, y)
    restored = pickle.loads(pickle.dumps(fresh))
    assert "_refit_job" not in vars(restored) and "_refit_job" not in vars(fresh)
    _assert_same_weights(_weights(restored.pareto_front_), reference)
    fresh = make_tiny(**params).fit(X, y)
    loaded = type(fresh).load(fresh.save(tmp_path / "model.safetensors"))
    _assert_same_weights(_weights(loaded.pareto_front_), reference)


def _assert_same_weights(fronts_a, fronts_b):
    assert len(fronts_a) == len(fronts_b)
    for a, b in zip(fronts_a, fronts_b):
        for (w, c), (w1, c1) in zip(a, b, strict=True):
            np.testing.assert_array_equal(w, w1)
            np.testing.assert_array_equal(c, c1)


def test_refit_retrains_the_ensemble_predict_uses_during_fit(blobs, make_tiny, monkeypatch):
    X, y = blobs
    clf = make_tiny(backbone=None, ensemble="front", pop_size=8, n_evaluations=24).fit(X, y)
    counted = _heads_trained_after_fit(monkeypatch)
    clf.predict(X)
    assert counted == [] and "_refit_job" not in vars(clf)


def test_an_ensemble_the_front_cannot_give_fails_at_predict_not_fit(blobs, make_tiny):
    X, y = blobs
    clf = make_tiny(backbone=None, ensemble=[0, 500]).fit(X, y)
    with pytest.raises(ValueError, match="ensemble holds index 500"):
        clf.predict(X)
    assert np.array_equal(clf.set_params(ensemble=None).predict(X),
                          make_tiny(backbone=None).fit(X, y).predict(X))


def test_validation_split_is_stratified_and_disjoint(blobs, make_tiny):
    X, y = blobs
    clf = make_tiny(backbone=None, validation_fraction=0.25).fit(X, y)
    train, val = clf._train_index, clf._val_index
    assert len(np.intersect1d(train, val)) == 0
    assert len(train) + len(val) == len(X)
    assert len(val) == 60
    np.testing.assert_array_equal(np.bincount(y[val]), [20, 20, 20])


# ------------------------------------------------- what each option changes
TWO_OBJECTIVES = ("accuracy", "complexity")


def _search_front(X, y, **params):
    from evoprune_sklearn import EvoPruneClassifier

    clf = EvoPruneClassifier(backbone=None, pop_size=6, n_evaluations=24,
                             objectives=TWO_OBJECTIVES, random_state=0, **params)
    return clf.fit(X, y).pareto_front_.to_frame().round(6).values.tolist()


@pytest.mark.parametrize("params", [
    dict(mutation_rate=0.3), dict(mutation_rate=0.01),
    dict(crossover_rate=0.0), dict(crossover_rate=0.5),
])
def test_variation_rates_steer_the_search(blobs, params):
    X, y = blobs
    assert _search_front(X, y, **params) != _search_front(X, y)


def test_max_iter_bounds_lbfgs_training(blobs):
    from evoprune_sklearn import EvoPruneClassifier

    X, y = blobs
    kw = dict(backbone=None, pop_size=4, n_evaluations=4, objectives=TWO_OBJECTIVES,
              random_state=0)
    short = EvoPruneClassifier(max_iter=2, **kw).fit(X, y)
    full = EvoPruneClassifier(**kw).fit(X, y)
    assert len(short.baseline_.train_loss) <= 2 < len(full.baseline_.train_loss)
    assert short.baseline_.train_loss[-1] > full.baseline_.train_loss[-1]


def test_patience_stops_adam_early(blobs):
    from evoprune_sklearn import EvoPruneClassifier

    X, y = blobs
    kw = dict(backbone=None, solver="adam", lr=0.05, max_epochs=100, pop_size=4,
              n_evaluations=4, objectives=TWO_OBJECTIVES, random_state=0)
    impatient = EvoPruneClassifier(patience=1, **kw).fit(X, y)
    patient = EvoPruneClassifier(patience=20, **kw).fit(X, y)
    assert len(impatient.baseline_.train_loss) < len(patient.baseline_.train_loss)
    assert len(patient.baseline_.train_loss) <= 100


def test_a_weights_file_is_the_backbone_the_estimator_uses(tmp_path, digit_images):
    import torch
    import torchvision

    from evoprune_sklearn import EvoPruneClassifier, get_backbone

    torch.manual_seed(0)
    path = tmp_path / "resnet18.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    X, y = digit_images
    clf = EvoPruneClassifier(backbone="resnet18", weights=str(path), image_size=32,
                             pop_size=4, n_evaluations=4, objectives=TWO_OBJECTIVES,
                             random_state=0).fit(X[::3], y[::3])
    from_file = get_backbone("resnet18", weights=str(path), image_size=32)
    np.testing.assert_allclose(clf.extract_features(X[:8]), from_file.extract(X[:8]),
                               rtol=1e-5, atol=1e-6)
    torch.manual_seed(1)  # another random network: other features
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    other = get_backbone("resnet18", weights=str(path), image_size=32)
    assert not np.allclose(clf.extract_features(X[:8]), other.extract(X[:8]))


def test_the_device_is_stored_once(blobs, make_tiny):
    """The fit's torch device lives in the heads' training configuration; the
    estimator and the objectives' context read it from there."""
    import dataclasses

    from evoprune_sklearn.objectives import ObjectiveContext

    X, y = blobs
    clf = make_tiny(backbone=None).fit(X, y)
    assert "_device" not in vars(clf) and clf._device == clf._config.device == "cpu"
    assert "device" not in {f.name for f in dataclasses.fields(ObjectiveContext)}
    context = ObjectiveContext(X[:4], y[:4], X[4:6], y[4:6], 3,
                               config=dataclasses.replace(clf._config, device="cuda:1"))
    assert context.device == "cuda:1"
    assert ObjectiveContext(X[:4], y[:4], X[4:6], y[4:6], 3).device == "cpu"
