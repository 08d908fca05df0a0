"""The skorch engine: one :class:`skorch.NeuralNetClassifier` per candidate.

Each candidate is a :class:`~evoprune_sklearn.MaskedHead` trained by skorch
over the full masked feature matrix. It is the reference the batched
engines are tested against, and what the benchmarks call the naive path.
Candidates are trained on threads of their own.

:meth:`SkorchEngine.wrap` also turns trained parameters into a fitted skorch
classifier (a front member's ``net``).
"""

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping

from .._head import MaskedHead
from .._parallel import parallel_map
from ._base import Engine, TrainedHeads, normalised_weights, penalised_loss, register_engine
from ._lbfgs import LBFGS_TOL_GRAD

__all__ = ["HeadNet", "SkorchEngine", "make_skorch_net", "wrap_in_skorch"]


class HeadNet(NeuralNetClassifier):
    """skorch classifier whose loss is :func:`penalised_loss`.

    ``X`` may be a dict ``{"X": features, "sample_weight": w}`` (skorch's way
    to route sample weights to the loss); ``penalty_`` holds
    ``(alpha, n_samples)``.
    """

    def get_loss(self, y_pred, y_true, X=None, training=False):
        alpha, n_samples = getattr(self, "penalty_", (0.0, 1.0))
        w = X.get("sample_weight") if isinstance(X, dict) else None
        if w is not None:
            w = torch.as_tensor(w, device=y_pred.device, dtype=y_pred.dtype)
        weights = [layer.weight for layer in self.module_.layers]
        return penalised_loss(
            y_pred, torch.as_tensor(y_true, device=y_pred.device), weights,
            sample_weight=w, alpha=alpha, n_samples=n_samples,
        )


def _training_settings(config):
    """skorch's optimiser, batches and callbacks for ``config.solver``."""
    if config.solver == "lbfgs":
        return dict(
            optimizer=torch.optim.LBFGS, lr=1.0, optimizer__max_iter=config.max_iter,
            optimizer__history_size=10, optimizer__tolerance_grad=LBFGS_TOL_GRAD,
            optimizer__tolerance_change=config.tol * 1e-3,
            optimizer__line_search_fn="strong_wolfe", max_epochs=1, batch_size=-1,
            callbacks=[],
        )
    return dict(
        optimizer=torch.optim.Adam, lr=config.lr, max_epochs=config.max_epochs,
        batch_size=config.batch_size,
        callbacks=[
            ("early_stopping", EarlyStopping(
                monitor="train_loss", patience=config.patience,
                threshold=config.tol, threshold_mode="rel",
            ))
        ],
    )


def make_skorch_net(genome, config, **kwargs):
    """An (unfitted) skorch classifier for the masked head of ``genome``."""
    head = config.head
    fmask, nmasks = head.masks(genome)
    training = _training_settings(config)
    training.update(kwargs)
    return HeadNet(
        MaskedHead,
        module__n_features=head.n_features,
        module__hidden_layer_sizes=head.hidden_layer_sizes,
        module__n_classes=head.n_classes,
        module__feature_mask=fmask,
        module__neuron_masks=nmasks,
        module__init_seed=config.init_seed,
        criterion=torch.nn.CrossEntropyLoss,
        train_split=None,
        iterator_train__shuffle=True,
        iterator_train__generator=torch.Generator().manual_seed(int(config.shuffle_seed)),
        classes=np.arange(head.n_classes),
        device=config.device,
        verbose=0,
        **training,
    )


def wrap_in_skorch(genome, params, config, train_loss=None):
    """A fitted skorch classifier holding already-trained head ``params``."""
    net = make_skorch_net(genome, config)
    net.initialize()
    net.module_.load_parameters(params)
    for loss in train_loss or []:
        net.history.new_epoch()
        net.history.record("train_loss", loss)
    return net


class _SkorchHeads(TrainedHeads):
    """Reference engine result: one fitted skorch net per candidate."""

    def __init__(self, genomes, nets, config, flops):
        epochs = np.array([len(n.history) for n in nets])
        curves = [list(n.history[:, "train_loss"]) for n in nets]
        super().__init__(genomes, config, epochs, curves, flops)
        self.nets = nets

    def logits(self, X):
        X = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.config.device)

        def forward(net):
            with torch.no_grad():
                return net.module_(X).float().cpu()

        return torch.stack(parallel_map(forward, self.nets))

    def head_parameters(self, i):
        layers = self.nets[i].module_.layers
        return [(l.weight.detach().cpu().T.clone(), l.bias.detach().cpu().clone()) for l in layers]

    def compact_parameters(self, i):
        sets = self.config.head.unit_sets(self.genomes[i])
        full = self.head_parameters(i)
        params = []
        for layer, (w, b) in enumerate(full):
            cols = sets[layer + 1] if layer + 1 < len(sets) else np.arange(self.config.n_classes)
            params.append((w[np.ix_(sets[layer], cols)].clone(), b[cols].clone()))
        return sets, params


def _train_skorch(genomes, X, y, config, sample_weight=None):
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    w, n_weighted = normalised_weights(sample_weight, len(X), "cpu")
    X_fit = X if w is None else {"X": X, "sample_weight": w.numpy()}
    sizes = config.head.sizes
    dense = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))

    def fit_one(genome):
        net = make_skorch_net(genome, config)
        net.initialize()
        net.penalty_ = (config.alpha, n_weighted)
        return net.partial_fit(X_fit, y)

    nets = parallel_map(fit_one, genomes)
    flops = float(sum(3 * dense * len(X) * len(net.history) for net in nets))
    return _SkorchHeads(np.asarray(genomes, dtype=bool), nets, config, flops)


class SkorchEngine(Engine):
    """``engine="skorch"``, either solver: :func:`_train_skorch`."""

    name = "skorch"
    option = "skorch"

    def train(self, genomes, X, y, config, sample_weight=None):
        return _train_skorch(genomes, X, y, config, sample_weight)

    def wrap(self, genome, params, config, train_loss=None):
        """A fitted skorch classifier holding trained ``params`` (see :func:`wrap_in_skorch`)."""
        return wrap_in_skorch(genome, params, config, train_loss)


register_engine(SkorchEngine())
