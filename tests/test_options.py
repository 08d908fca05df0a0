"""What every value of every enumerated option changes, through the public
estimator, and the training recipe (refit, weights, solvers) users rely on."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._backbones._extractor import native_bf16
from evoprune_sklearn.objectives import ODIN

# head_precision="bf16" is refused on a CPU without native bfloat16 (the
# refusal is tested on every CPU); what it does runs only where it is allowed.
needs_native_bf16 = pytest.mark.skipif(
    not native_bf16("cpu"),
    reason="head_precision='bf16' is refused on CPUs without native bfloat16 "
           "(AVX512-BF16 or AMX); the refusal itself is tested on every CPU")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=160, n_features=12, n_informative=6,
                               n_classes=3, random_state=0)
    return X.astype(np.float32), y


# What each value of each enumerated option changes, through the public
# estimator: a value is tested by the difference it makes (or by the sameness
# it promises), never only by a fit that runs.
def _fit(data, params, sample_weight=None, **options):
    X, y = data
    return EvoPruneClassifier(**dict(params, **options)).fit(X, y, sample_weight=sample_weight)


@pytest.fixture(scope="module")
def default_fit(data):
    from conftest import SMALL_PARAMS

    return _fit(data, SMALL_PARAMS["features"])


def _params_equal(a, b):
    return all(np.array_equal(np.asarray(wa), np.asarray(wb)) and
               np.array_equal(np.asarray(ba), np.asarray(bb))
               for (wa, ba), (wb, bb) in zip(a.params, b.params))


def test_engine_skorch_trains_the_same_head_up_to_training_noise(data, feature_params):
    X, _ = data
    batched = _fit(data, feature_params, hidden_layer_sizes=(8,), engine="batched")
    skorch = _fit(data, feature_params, hidden_layer_sizes=(8,), engine="skorch")
    # the dense head of both fits: one genome, trained by each engine
    assert not _params_equal(batched.baseline_, skorch.baseline_)
    agree = np.mean(batched.baseline_.predict(X) == skorch.baseline_.predict(X))
    assert agree >= 0.9


def test_encoding_says_what_a_gene_prunes(data, feature_params):
    features = _fit(data, feature_params, hidden_layer_sizes=(8,), encoding="features")
    neurons = _fit(data, feature_params, hidden_layer_sizes=(8,), encoding="neurons")
    assert features.n_genes_ == 12 and neurons.n_genes_ == 8
    for m in features.pareto_front_:  # a pruned feature has no weight into the layer
        rows = np.abs(np.asarray(m.params[0][0])).sum(axis=1)
        assert (rows[~m.genome] == 0).all() and (rows[m.genome] > 0).all()
    for m in neurons.pareto_front_:  # a pruned neuron has no weight in or out
        into = np.abs(np.asarray(m.params[0][0])).sum(axis=0)
        out = np.abs(np.asarray(m.params[1][0])).sum(axis=1)
        assert (into[~m.genome] == 0).all() and (out[~m.genome] == 0).all()
        assert (into[m.genome] > 0).all()


@pytest.mark.parametrize("rule", ["knee", "tradeoff", "accuracy", "complexity", 0])
def test_selection_picks_a_member_and_leaves_the_search_alone(
        data, feature_params, default_fit, front_key, chosen_by_definition, rule):
    X, _ = data
    clf = _fit(data, feature_params, selection=rule)
    assert front_key(clf) == front_key(default_fit)
    expected = 0 if rule == 0 else chosen_by_definition(clf.pareto_front_, rule)
    assert clf.best_index_ == expected
    np.testing.assert_array_equal(clf.predict(X), clf.pareto_front_[expected].predict(X))


def test_solver_says_which_settings_train_the_head(data, feature_params):
    def dense(**kw):
        return _fit(data, feature_params, hidden_layer_sizes=(8,), **kw).baseline_

    # adam reads lr; L-BFGS reads max_iter (and ignores lr: see test_solver_options)
    assert not _params_equal(dense(solver="adam", lr=1e-3, max_epochs=20),
                             dense(solver="adam", lr=1e-2, max_epochs=20))
    assert not _params_equal(dense(solver="lbfgs", max_iter=3),
                             dense(solver="lbfgs", max_iter=30))
    assert not _params_equal(dense(solver="adam"), dense(solver="lbfgs"))


def test_refit_retrains_the_members_and_keeps_their_measured_values(
        data, feature_params, default_fit, front_key):
    kept = _fit(data, feature_params, refit=False)
    assert default_fit.refit is True and front_key(kept) == front_key(default_fit)
    assert not any(_params_equal(a, b)
                   for a, b in zip(kept.pareto_front_, default_fit.pareto_front_))


@pytest.mark.parametrize("class_weight", ["balanced", {0: 2.0}])
def test_class_weight_is_the_sample_weight_it_stands_for(
        data, feature_params, default_fit, front_key, class_weight):
    from sklearn.utils.class_weight import compute_sample_weight

    by_class = _fit(data, feature_params, class_weight=class_weight)
    by_sample = _fit(data, feature_params,
                     sample_weight=compute_sample_weight(class_weight, data[1]))
    assert front_key(by_class) == front_key(by_sample)
    assert front_key(by_class) != front_key(default_fit)  # class_weight=None


@pytest.mark.parametrize("sizes", [(), (8,), (8, 4)])
def test_hidden_layer_sizes_shape_every_member(data, feature_params, sizes):
    clf = _fit(data, feature_params, hidden_layer_sizes=sizes)
    dims = [12, *sizes, 3]
    for m in clf.pareto_front_:
        assert [tuple(w.shape) for w, _ in m.params] == list(zip(dims[:-1], dims[1:]))
        n_linear = sum(isinstance(x, torch.nn.Linear) for x in m.module().modules())
        assert n_linear == len(sizes) + 1


def test_robustness_is_odin_by_another_name(data, feature_params, default_fit, front_key):
    odin = _fit(data, feature_params, objectives=("accuracy", "complexity", "odin"))
    named = _fit(data, feature_params, objectives=("accuracy", "complexity", "robustness"))
    assert front_key(odin) == front_key(named) == front_key(default_fit)
    assert type(odin.objectives_[2]) is ODIN
    two = _fit(data, feature_params, objectives=("accuracy", "complexity"))
    assert "robustness" not in two.pareto_front_.objective_names


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_device_auto_is_the_cpu_without_an_accelerator(
        data, feature_params, default_fit, front_key, device):
    clf = _fit(data, feature_params, device=device)
    if device == "cpu" or not (torch.cuda.is_available() or torch.backends.mps.is_available()):
        assert clf.device_ == "cpu" and front_key(clf) == front_key(default_fit)
    else:
        assert clf.device_ != "cpu"


def test_n_folds_measures_accuracy_out_of_fold_on_every_sample(data, feature_params,
                                                               default_fit):
    cv = _fit(data, feature_params, n_folds=3)
    n = len(data[1])
    # one split: accuracy on a 20 % fold; k folds: on every training sample
    assert default_fit.n_folds is None and default_fit.pareto_front_.n_validation == 32
    assert cv.pareto_front_.n_validation == n
    accuracy = cv.pareto_front_.F[:, 0]
    np.testing.assert_allclose(accuracy * n, np.round(accuracy * n), atol=1e-9)


def test_init_and_mutation_change_the_search(data, feature_params, front_key):
    # the informed operators' effect on quality is tested in test_operators.py;
    # here: each value is a different search from the same seed
    params = dict(feature_params, n_evaluations=16)
    keys = {(init, mutation): front_key(_fit(data, params, init=init, mutation=mutation))
            for init in ("informed", "random") for mutation in ("informed", "bitflip")}
    assert keys[("informed", "informed")] != keys[("random", "informed")]
    assert keys[("random", "informed")] != keys[("random", "bitflip")]


def test_neurons_encoding_needs_a_hidden_layer(data, feature_params):
    X, y = data
    with pytest.raises(ValueError, match="encoding='neurons'.*hidden_layer_sizes"):
        EvoPruneClassifier(encoding="neurons", hidden_layer_sizes=(), **feature_params).fit(X, y)


def test_linear_head_at_defaults_matches_logistic_regression(data, feature_params):
    # alpha=1 with a linear head is LogisticRegression(C=1)'s objective; the
    # refitted dense head is trained on the same data, so it predicts alike.
    X, y = data
    clf = EvoPruneClassifier(**feature_params).fit(X, y)
    lr = LogisticRegression(max_iter=5000).fit(X, y)
    agree = np.mean(clf.baseline_.net.predict(X) == lr.predict(X))
    assert agree >= 0.97


def test_refit_trains_members_on_the_validation_fold_too(data, feature_params):
    X, y = data
    kept = EvoPruneClassifier(**feature_params, refit=False).fit(X, y)
    refit = EvoPruneClassifier(**feature_params, refit=True).fit(X, y)
    # Same search (same fitness values), different final heads.
    np.testing.assert_array_equal(kept.pareto_front_.to_frame()["accuracy"],
                                  refit.pareto_front_.to_frame()["accuracy"])
    w_kept = kept.pareto_front_[0].params[0][0]
    w_refit = refit.pareto_front_[0].params[0][0]
    assert not np.allclose(w_kept, w_refit)
    # The refitted dense head fits the validation samples better.
    val = kept._val_index
    acc_kept = np.mean(kept.baseline_.net.predict(X[val]) == y[val])
    acc_refit = np.mean(refit.baseline_.net.predict(X[val]) == y[val])
    assert acc_refit >= acc_kept


def test_integer_sample_weight_is_repetition(data, feature_params):
    X, y = data
    w = np.random.default_rng(0).integers(0, 3, size=len(y))
    weighted = EvoPruneClassifier(**feature_params).fit(X, y, sample_weight=w)
    repeated = EvoPruneClassifier(**feature_params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X),
                               rtol=1e-5, atol=1e-6)


def test_sample_weight_changes_the_fit(data, feature_params):
    X, y = data
    w = np.where(y == 0, 10.0, 1.0)
    plain = EvoPruneClassifier(**feature_params).fit(X, y)
    heavy = EvoPruneClassifier(**feature_params).fit(X, y, sample_weight=w)
    # Weighting class 0 ten times makes the heads predict it more often.
    assert np.sum(heavy.predict(X) == 0) > np.sum(plain.predict(X) == 0)


def test_class_weight_balanced_equals_its_sample_weights(data, feature_params):
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = data
    X, y = X[:120], y[:120]
    a = EvoPruneClassifier(**feature_params, class_weight="balanced").fit(X, y)
    w = compute_sample_weight("balanced", y)
    b = EvoPruneClassifier(**feature_params).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_voting_classifier_passes_sample_weight(data, feature_params):
    X, y = data
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    vote = VotingClassifier(
        [("evo", EvoPruneClassifier(**feature_params)), ("lr", LogisticRegression(max_iter=2000))],
        voting="soft",
    ).fit(X, y, sample_weight=w)
    assert vote.score(X, y) > 0.5


@pytest.mark.parametrize("bad, message", [
    (-np.ones(160), "(?i)negative"),
    (np.zeros(160), "non-zero|sums to zero"),
    (np.ones(5), "shape|length|samples"),
])
def test_bad_sample_weight_is_refused(data, bad, message, feature_params):
    X, y = data
    with pytest.raises(ValueError, match=message):
        EvoPruneClassifier(**feature_params).fit(X, y, sample_weight=bad)


def test_duplicates_are_never_split_across_folds(data, feature_params):
    X, y = data
    Xd, yd = np.vstack([X, X[:40]]), np.concatenate([y, y[:40]])
    clf = EvoPruneClassifier(**feature_params).fit(Xd, yd)
    train = {X_row.tobytes() for X_row in Xd[clf._train_index]}
    val = {X_row.tobytes() for X_row in Xd[clf._val_index]}
    assert not train & val


# ------------------------------------------------------------ head_precision
def test_head_precision_fp32_is_the_default_and_bf16_is_refused_where_emulated(
        data, feature_params, monkeypatch):
    from evoprune_sklearn._backbones import _extractor

    X, y = data
    clf = EvoPruneClassifier(**feature_params)
    assert clf.head_precision == "fp32"
    with pytest.raises(ValueError, match="head_precision"):
        EvoPruneClassifier(**feature_params, head_precision="fp16").fit(X, y)
    monkeypatch.setattr(_extractor, "_cpu_bf16_flags", lambda: False)
    with pytest.raises(ValueError, match="head_precision='bf16' needs native bfloat16"):
        EvoPruneClassifier(**feature_params, hidden_layer_sizes=(8,),
                           head_precision="bf16").fit(X, y)


@needs_native_bf16
def test_head_precision_bf16_trains_hidden_heads_in_bfloat16_reproducibly(
        data, feature_params, tmp_path):
    X, y = data
    params = dict(feature_params, hidden_layer_sizes=(16,))
    fp32 = _fit(data, params)
    bf16 = _fit(data, params, head_precision="bf16")
    again = _fit(data, params, head_precision="bf16")
    assert bf16._config.precision == "bf16" and fp32._config.precision == "fp32"
    # another arithmetic: other weights, close losses, the same quality
    assert not _params_equal(fp32.baseline_, bf16.baseline_)
    loss32, loss16 = fp32.baseline_.train_loss[-1], bf16.baseline_.train_loss[-1]
    assert abs(loss16 - loss32) <= 0.1 * loss32
    assert abs(bf16.score(X, y) - fp32.score(X, y)) <= 0.1
    # reproducible: the same seed, the same front and predictions
    np.testing.assert_array_equal(bf16.pareto_front_.F, again.pareto_front_.F)
    np.testing.assert_array_equal(bf16.predict_proba(X), again.predict_proba(X))
    # saved and pickled models keep the parameter
    loaded = EvoPruneClassifier.load(bf16.save(tmp_path / "bf16.safetensors"))
    assert loaded.head_precision == "bf16"
    assert pickle.loads(pickle.dumps(bf16)).head_precision == "bf16"
    np.testing.assert_array_equal(loaded.predict_proba(X), bf16.predict_proba(X))


@needs_native_bf16
@pytest.mark.parametrize("params, reason", [
    (dict(), "a linear head"),
    (dict(hidden_layer_sizes=(8,), solver="adam", max_epochs=2), "solver='adam'"),
    (dict(hidden_layer_sizes=(8,), engine="skorch"), "engine='skorch'"),
])
def test_head_precision_bf16_warns_where_nothing_reads_it(data, feature_params, params,
                                                          reason):
    with pytest.warns(UserWarning, match=f"head_precision='bf16' has no effect here: {reason}"):
        fit = _fit(data, dict(feature_params, **params), head_precision="bf16")
    assert np.array_equal(fit.pareto_front_.F,
                          _fit(data, dict(feature_params, **params)).pareto_front_.F)
