"""The accuracy objective: (weighted) validation accuracy of each candidate."""

from types import SimpleNamespace

import numpy as np
import torch

from evoprune_sklearn.objectives import Accuracy


class _Heads:
    """Candidates whose logits are given: candidate i predicts ``pred[i]``."""

    def __init__(self, pred, n_classes=3):
        self.pred = np.asarray(pred)
        self.n_classes = n_classes

    def logits(self, X):
        assert len(X) == self.pred.shape[1]
        return torch.nn.functional.one_hot(torch.as_tensor(self.pred), self.n_classes).float()


Y_VAL = np.array([0, 1, 2, 1, 0])
PRED = [[0, 1, 2, 1, 0],   # all right
        [0, 0, 0, 0, 0],   # rows 0 and 4 right
        [2, 2, 1, 0, 1]]   # none right


def test_unweighted_accuracy_is_the_share_of_right_predictions():
    context = SimpleNamespace(X_val=np.zeros((5, 2)), y_val=Y_VAL, w_val=None)
    np.testing.assert_allclose(Accuracy().evaluate(_Heads(PRED), context), [1.0, 0.4, 0.0])


def test_weighted_accuracy_weights_each_validation_sample():
    w = np.array([3.0, 1.0, 1.0, 1.0, 0.0])
    context = SimpleNamespace(X_val=np.zeros((5, 2)), y_val=Y_VAL, w_val=w)
    # candidate 1 is right on rows 0 (weight 3) and 4 (weight 0): 3 / 6
    np.testing.assert_allclose(Accuracy().evaluate(_Heads(PRED), context), [1.0, 0.5, 0.0])
