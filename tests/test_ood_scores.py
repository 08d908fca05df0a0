"""Ensemble OoD scores through the estimator (``ensemble_ood_score``)."""

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.metrics import roc_auc_score

from evoprune_sklearn._ensemble import DEFAULT_OOD_METHOD, OOD_METHODS


@pytest.mark.parametrize("method", OOD_METHODS)
def test_every_method_through_the_estimator(ood_fit, method):
    clf, X, _ = ood_fit
    s = clf.ensemble_ood_score(X, members="front", method=method)
    assert s.shape == (len(X),) and np.all(np.isfinite(s))
    proba = clf.ensemble_predict_proba(X, members="front")
    if method == "msp":
        np.testing.assert_allclose(s, proba.max(1), rtol=1e-5)
    elif method == "entropy":
        np.testing.assert_allclose(s, (proba * np.log(proba)).sum(1), rtol=1e-4, atol=1e-6)
    elif method == "mutual_info":
        assert np.all(s <= 0)
        one = clf.ensemble_ood_score(X, members=0, method=method)
        np.testing.assert_allclose(one, 0.0, atol=1e-9)
    elif method == "energy":
        logits = clf.pareto_front_[0].logits(X).double().numpy()
        np.testing.assert_allclose(clf.ensemble_ood_score(X, members=0, method=method),
                                   logsumexp(logits, axis=1), rtol=1e-6)
    elif method in ("knn", "mahalanobis"):
        # far-away inputs score lower than the data
        far = -X
        s_far = clf.ensemble_ood_score(far, members="front", method=method)
        auroc = roc_auc_score(np.r_[np.ones(len(X)), np.zeros(len(far))], np.r_[s, s_far])
        assert auroc > 0.95


def test_default_method_is_knn(ood_fit):
    clf, X, _ = ood_fit
    assert DEFAULT_OOD_METHOD == "knn"
    np.testing.assert_array_equal(clf.ensemble_ood_score(X),
                                  clf.ensemble_ood_score(X, method="knn"))


def test_knn_k_and_member_choice_matter(ood_fit):
    clf, X, _ = ood_fit
    a = clf.ensemble_ood_score(X, members="front", k=1)
    b = clf.ensemble_ood_score(X, members="front", k=20)
    assert not np.allclose(a, b)


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "bogus"}, "method must be one of"),
    ({"method": "energy", "temperature": -1}, "temperature"),
    ({"k": 0}, "k must be"),
    ({"members": [99]}, "Pareto front has"),
])
def test_bad_options_are_refused(ood_fit, kwargs, match):
    clf, X, _ = ood_fit
    with pytest.raises(ValueError, match=match):
        clf.ensemble_ood_score(X, **kwargs)
