"""scikit-learn's own estimator checks, run on the feature-input estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from evoprune_sklearn import EvoPruneClassifier


def _small():
    # Small but learnable settings: the checks fit dozens of times, and
    # check_classifiers_train asks for > 83% training accuracy.
    return EvoPruneClassifier(
        backbone=None,
        hidden_layer_sizes=(16,),
        pop_size=4,
        n_evaluations=8,
        lr=0.01,
        max_epochs=30,
        random_state=0,
    )


@parametrize_with_checks([_small()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
