"""Settings and data the objective tests share (fixtures are in conftest.py)."""

import numpy as np
from sklearn.datasets import make_classification

from evoprune_sklearn.objectives import Adversarial, get_objective

#: A small search: every objective test fits in a few seconds.
SMALL = dict(hidden_layer_sizes=(32,), pop_size=4, n_evaluations=8, random_state=0)

#: Candidates of the generation of trained heads in ``image_context``.
N_CANDIDATES = 4


def noise_images(n, size, seed=0):
    """Uniform-noise uint8 RGB images, an OoD set far from digits."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def features_data():
    """A 3-class feature matrix (backbone=None fits)."""
    return make_classification(n_samples=160, n_features=12, n_informative=6,
                               n_classes=3, random_state=0)


def prepared(name, context):
    """The registered objective ``name``, checked and prepared on ``context``."""
    objective = get_objective(name)
    if isinstance(objective, Adversarial):
        objective.set_params(steps=2)  # a cheaper PGD; same contract
    objective.check(image_input=True)
    objective.prepare(context)
    return objective
