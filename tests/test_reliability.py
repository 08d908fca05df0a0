"""Reliability a user relies on: reproducible fronts and pickling.

Resumable searches are tested in test_checkpoint.py, save/load in
test_persistence.py, lazy image folders in test_datasets.py."""

import dataclasses
import pickle
import warnings

import joblib
import numpy as np
import torch

from evoprune_sklearn import EvoPruneClassifier


# --------------------------------------------------------------- determinism
def test_same_random_state_gives_the_same_front(
    reference_search, search_params, search_data, front_key
):
    X, y = search_data
    again = EvoPruneClassifier(**search_params).fit(X, y)
    assert front_key(again) == front_key(reference_search)
    other = EvoPruneClassifier(**{**search_params, "random_state": 1,
                                  "n_evaluations": 12}).fit(X, y)
    assert front_key(other) != front_key(reference_search)


def test_same_front_with_two_workers(reference_search, search_params, search_data, front_key):
    X, y = search_data
    settings = {**search_params, "n_evaluations": 24}
    one = EvoPruneClassifier(**settings).fit(X, y)
    two_a = EvoPruneClassifier(n_jobs=2, **settings).fit(X, y)
    two_b = EvoPruneClassifier(n_jobs=2, **settings).fit(X, y)
    assert front_key(two_a) == front_key(two_b)
    # heads are pure functions of their genomes, whichever worker trains them
    assert front_key(two_a) == front_key(one)


# --------------------------------------------------------------- persistence
def test_pickle_and_joblib_round_trips_predict_identically(
    reference_search, tmp_path, search_data, front_key
):
    X, _ = search_data
    proba = reference_search.predict_proba(X)
    for loaded in (
        pickle.loads(pickle.dumps(reference_search)),
        joblib.load(joblib.dump(reference_search, tmp_path / "clf.joblib")[0]),
    ):
        np.testing.assert_array_equal(loaded.predict_proba(X), proba)
        np.testing.assert_array_equal(loaded.predict(X), reference_search.predict(X))
        assert front_key(loaded) == front_key(reference_search)


def test_gpu_fitted_estimator_unpickles_on_a_cpu_only_machine(
    reference_search, monkeypatch, search_data
):
    # Simulated: mark everything as fitted on CUDA, then unpickle while CUDA
    # is unavailable (CI has no GPU).
    X, y = search_data
    clf = pickle.loads(pickle.dumps(reference_search))
    proba = clf.predict_proba(X)
    clf._config = dataclasses.replace(clf._config, device="cuda")  # the device, stored once
    front = clf.pareto_front_
    clf.pareto_front_ = dataclasses.replace(front, members=[
        dataclasses.replace(m, config=clf._config) for m in front])
    blob = pickle.dumps(clf)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch says it maps to the CPU
        loaded = pickle.loads(blob)
    assert loaded._device == "cpu" and loaded._config.device == "cpu"
    # members compute where they are told (the estimator's device, now the
    # CPU); their skorch nets are built on demand on the CPU
    assert all(str(m.net.device) == "cpu" for m in loaded.pareto_front_)
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)
