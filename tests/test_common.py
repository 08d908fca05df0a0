"""scikit-learn's own estimator checks, run on the feature-input estimator.

Every training parameter is at the default users get: only the size of the
search (``pop_size``, ``n_evaluations``) is reduced, for time. No check is
expected to fail: sample-weight equivalence holds because identical samples
are merged before the validation split (see ``EvoPruneClassifier.fit``).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from evoprune_sklearn import EvoPruneClassifier


def _small():
    return EvoPruneClassifier(backbone=None, pop_size=4, n_evaluations=8, random_state=0)


@parametrize_with_checks([_small()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
