"""Training a generation of pruned heads.

Two engines give the same result up to training noise:

* ``"batched"`` (default): the candidates of a generation are trained together
  as one stacked computation. Each candidate keeps only its active features
  (``features`` encoding) or neurons (``neurons`` encoding), so its cost falls
  with its density; candidates whose compact sizes round to the same bucket are
  stacked and trained with batched matrix products (``torch.baddbmm``).
* ``"skorch"``: one :class:`skorch.NeuralNetClassifier` per candidate over the
  full masked feature matrix. It is the reference the batched engine is tested
  against, and what the benchmarks call the naive path.

Both start every candidate from the same dense initial weights (drawn once per
fit from ``init_seed``) and shuffle mini-batches with the same ``shuffle_seed``
every epoch, so a genome's trained head is a pure function of the genome: the
result does not depend on which other genomes share its generation, on
``n_jobs``, or on the order of evaluation.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ._head import MaskedHead, genome_masks, init_head_parameters

__all__ = ["TrainingConfig", "TrainedHeads", "train_heads", "make_skorch_net"]

_BUCKET = 128
_ADAM_KW = {"foreach": False}


@dataclass(frozen=True)
class TrainingConfig:
    """How each candidate head is trained (see :class:`EvoPruneClassifier`)."""

    encoding: str
    n_features: int
    hidden_layer_sizes: tuple
    n_classes: int
    lr: float = 1e-3
    max_epochs: int = 20
    batch_size: int = 128
    patience: int = 5
    tol: float = 1e-4
    init_seed: int = 0
    shuffle_seed: int = 0
    device: str = "cpu"

    def initial_parameters(self):
        return init_head_parameters(
            self.init_seed, self.n_features, self.hidden_layer_sizes, self.n_classes
        )


def _batch_orders(n, config):
    """The mini-batch order of every epoch, shared by all candidates."""
    gen = torch.Generator().manual_seed(int(config.shuffle_seed))
    return [torch.randperm(n, generator=gen) for _ in range(config.max_epochs)]


def _unit_sets(genome, config):
    """Index sets of kept units: input features, then each hidden layer."""
    fmask, nmasks = genome_masks(
        genome, config.encoding, config.n_features, config.hidden_layer_sizes
    )
    return [np.flatnonzero(fmask)] + [np.flatnonzero(m) for m in nmasks]


def _padded(k, full):
    return max(1, min(full, int(math.ceil(k / _BUCKET)) * _BUCKET))


class _Group:
    """Candidates with the same padded compact sizes, stacked together."""

    def __init__(self, members, sets, config, init):
        self.members = members
        widths = [config.n_features, *config.hidden_layer_sizes]
        self.sizes = [_padded(max(len(s[i]) for s in sets), w) for i, w in enumerate(widths)]
        G = len(members)
        d = config.n_features
        # Layer-0 input indices; padding points at an all-zero extra column d.
        idx = torch.full((G, self.sizes[0]), d, dtype=torch.long)
        self.unit_masks = []
        for layer in range(1, len(self.sizes)):
            self.unit_masks.append(torch.zeros(G, 1, self.sizes[layer]))
        self.weights, self.biases = [], []
        out_sizes = self.sizes[1:] + [config.n_classes]
        for layer, (w0, b0) in enumerate(init):
            self.weights.append(torch.zeros(G, self.sizes[layer], out_sizes[layer]))
            self.biases.append(torch.zeros(G, 1, out_sizes[layer]))
        for g, s in enumerate(sets):
            idx[g, : len(s[0])] = torch.as_tensor(s[0])
            for layer, (w0, b0) in enumerate(init):
                rows = torch.as_tensor(s[layer])
                last = layer == len(init) - 1
                cols = torch.arange(config.n_classes) if last else torch.as_tensor(s[layer + 1])
                self.weights[layer][g, : len(rows), : len(cols)] = w0[rows][:, cols]
                self.biases[layer][g, 0, : len(cols)] = b0[cols]
                if not last:
                    self.unit_masks[layer][g, 0, : len(cols)] = 1.0
        self.input_index = idx
        self.sets = sets

    def to(self, device):
        self.input_index = self.input_index.to(device)
        self.unit_masks = [m.to(device) for m in self.unit_masks]
        self.weights = [w.to(device) for w in self.weights]
        self.biases = [b.to(device) for b in self.biases]
        return self

    def parameters(self):
        return self.weights + self.biases

    def forward(self, X_aug):
        """Logits ``(G, B, C)`` for a batch of augmented features ``(B, d+1)``."""
        G, k0 = self.input_index.shape
        x = X_aug[:, self.input_index.reshape(-1)].reshape(-1, G, k0).transpose(0, 1)
        n_layers = len(self.weights)
        for layer in range(n_layers):
            x = torch.baddbmm(self.biases[layer], x, self.weights[layer])
            if layer < n_layers - 1:
                x = torch.relu(x) * self.unit_masks[layer]
        return x

    def flops_per_sample(self, n_classes):
        """Multiply-adds x2 of one training step per sample, forward + backward."""
        sizes = self.sizes + [n_classes]
        total = 0
        for layer in range(len(sizes) - 1):
            mm = 2 * sizes[layer] * sizes[layer + 1]
            total += mm * (3 if layer > 0 else 2)  # no input gradient for layer 0
        return total * len(self.members)


def _augment(X):
    return torch.cat([X, X.new_zeros(X.shape[0], 1)], dim=1)


def _early_stopping_step(loss, state, config):
    """skorch ``EarlyStopping(monitor="train_loss")`` semantics, per candidate."""
    improved = loss < state["best"] * (1.0 - config.tol)
    state["best"] = torch.where(improved, loss, state["best"])
    state["misses"] = torch.where(improved, torch.zeros_like(state["misses"]), state["misses"] + 1)
    return state["misses"] >= config.patience


class TrainedHeads:
    """The trained heads of one generation, in the order of their genomes.

    Attributes
    ----------
    genomes : ndarray of bool, shape (n_candidates, n_genes)
    epochs : ndarray of int
        Epochs each candidate trained before early stopping.
    train_loss : list of list of float
        Per-candidate training loss curve.
    flops : float
        Floating-point operations spent training (executed, padding included).
    """

    def __init__(self, genomes, groups, config, epochs, train_loss, flops):
        self.genomes = genomes
        self.groups = groups
        self.config = config
        self.epochs = epochs
        self.train_loss = train_loss
        self.flops = flops

    def __len__(self):
        return len(self.genomes)

    def logits(self, X):
        """Logits of every candidate, shape ``(n_candidates, n_samples, n_classes)``.

        Parameters
        ----------
        X : ndarray or torch.Tensor of shape (n_samples, n_features)
        """
        X = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.config.device)
        X_aug = _augment(X)
        out = torch.empty(len(self.genomes), X.shape[0], self.config.n_classes)
        with torch.no_grad():
            for group in self.groups:
                out[group.members] = group.forward(X_aug).float().cpu()
        return out

    def head_parameters(self, i):
        """Full-size ``[(weight (in, out), bias), ...]`` of candidate ``i``.

        Pruned rows/columns are zero; with :class:`MaskedHead` they are also
        masked, so the masked head computes exactly what the compact one did.
        """
        cfg = self.config
        for group in self.groups:
            where = np.flatnonzero(np.asarray(group.members) == i)
            if len(where):
                g = int(where[0])
                break
        sets = group.sets[g]
        widths = [cfg.n_features, *cfg.hidden_layer_sizes, cfg.n_classes]
        params = []
        for layer in range(len(group.weights)):
            rows = sets[layer]
            cols = sets[layer + 1] if layer + 1 < len(sets) else np.arange(cfg.n_classes)
            w = torch.zeros(widths[layer], widths[layer + 1])
            b = torch.zeros(widths[layer + 1])
            w_c = group.weights[layer][g].detach().cpu()
            b_c = group.biases[layer][g, 0].detach().cpu()
            w[np.ix_(rows, cols)] = w_c[: len(rows), : len(cols)]
            b[cols] = b_c[: len(cols)]
            params.append((w, b))
        return params


def _train_batched(genomes, X, y, config):
    device = torch.device(config.device)
    X = torch.as_tensor(np.asarray(X, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    X_aug = _augment(X).to(device)
    y = y.to(device)
    init = config.initial_parameters()
    sets = [_unit_sets(g, config) for g in genomes]
    keys = {}
    for i, s in enumerate(sets):
        widths = [config.n_features, *config.hidden_layer_sizes]
        key = tuple(_padded(len(u), w) for u, w in zip(s, widths))
        keys.setdefault(key, []).append(i)
    groups = [
        _Group(members, [sets[i] for i in members], config, init).to(device)
        for members in keys.values()
    ]
    n = X.shape[0]
    orders = _batch_orders(n, config)
    epochs = np.zeros(len(genomes), dtype=int)
    curves = [[] for _ in genomes]
    flops = 0.0
    for group in groups:
        params = group.parameters()
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=config.lr, **_ADAM_KW)
        G = len(group.members)
        state = {"best": torch.full((G,), float("inf")), "misses": torch.zeros(G, dtype=torch.long)}
        stopped = torch.zeros(G, dtype=torch.bool)
        frozen = [p.detach().clone() for p in params]
        per_sample = group.flops_per_sample(config.n_classes)
        for epoch in range(config.max_epochs):
            order = orders[epoch].to(device)
            loss_sum = torch.zeros(G, device=device)
            for start in range(0, n, config.batch_size):
                batch = order[start : start + config.batch_size]
                logits = group.forward(X_aug[batch])
                B = batch.shape[0]
                losses = F.cross_entropy(
                    logits.reshape(G * B, -1), y[batch].repeat(G), reduction="none"
                ).reshape(G, B).mean(dim=1)
                opt.zero_grad(set_to_none=True)
                losses.sum().backward()
                opt.step()
                loss_sum += losses.detach() * B
                flops += per_sample * B
            epoch_loss = (loss_sum / n).cpu()
            for g, member in enumerate(group.members):
                if not stopped[g]:
                    curves[member].append(float(epoch_loss[g]))
                    epochs[member] = epoch + 1
            newly = _early_stopping_step(epoch_loss, state, config) & ~stopped
            if newly.any():
                with torch.no_grad():
                    for p, f in zip(params, frozen):
                        f[newly.to(f.device)] = p[newly.to(p.device)]
            stopped |= newly
            if stopped.all():
                break
        with torch.no_grad():
            for p, f in zip(params, frozen):
                p[stopped.to(p.device)] = f[stopped.to(f.device)]
                p.requires_grad_(False)
    return TrainedHeads(np.asarray(genomes, dtype=bool), groups, config, epochs, curves, flops)


def make_skorch_net(genome, config, **kwargs):
    """An (unfitted) skorch classifier for the masked head of ``genome``."""
    from skorch import NeuralNetClassifier
    from skorch.callbacks import EarlyStopping

    fmask, nmasks = genome_masks(
        genome, config.encoding, config.n_features, config.hidden_layer_sizes
    )
    return NeuralNetClassifier(
        MaskedHead,
        module__n_features=config.n_features,
        module__hidden_layer_sizes=tuple(config.hidden_layer_sizes),
        module__n_classes=config.n_classes,
        module__feature_mask=fmask,
        module__neuron_masks=nmasks,
        module__init_seed=config.init_seed,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=config.lr,
        max_epochs=config.max_epochs,
        batch_size=config.batch_size,
        train_split=None,
        callbacks=[
            ("early_stopping", EarlyStopping(
                monitor="train_loss", patience=config.patience,
                threshold=config.tol, threshold_mode="rel",
            ))
        ],
        iterator_train__shuffle=True,
        iterator_train__generator=torch.Generator().manual_seed(int(config.shuffle_seed)),
        classes=np.arange(config.n_classes),
        device=config.device,
        verbose=0,
        **kwargs,
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
        super().__init__(genomes, [], config, epochs, curves, flops)
        self.nets = nets

    def logits(self, X):
        X = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.config.device)
        with torch.no_grad():
            return torch.stack([n.module_(X).float().cpu() for n in self.nets])

    def head_parameters(self, i):
        layers = self.nets[i].module_.layers
        return [(l.weight.detach().cpu().T.clone(), l.bias.detach().cpu().clone()) for l in layers]


def _train_skorch(genomes, X, y, config):
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    nets = []
    sizes = [config.n_features, *config.hidden_layer_sizes, config.n_classes]
    dense = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    flops = 0.0
    for genome in genomes:
        net = make_skorch_net(genome, config)
        net.fit(X, y)
        flops += 3 * dense * len(X) * len(net.history)
        nets.append(net)
    return _SkorchHeads(np.asarray(genomes, dtype=bool), nets, config, flops)


def train_heads(genomes, X, y, config, engine="batched"):
    """Train one head per genome on ``(X, y)``.

    Parameters
    ----------
    genomes : ndarray of bool, shape (n_candidates, n_genes)
    X : ndarray of shape (n_samples, n_features)
        Backbone features of the training fold.
    y : ndarray of int, shape (n_samples,)
        Encoded labels ``0 .. n_classes - 1``.
    config : TrainingConfig
    engine : {"batched", "skorch"}, default="batched"

    Returns
    -------
    TrainedHeads
    """
    genomes = np.asarray(genomes, dtype=bool)
    if engine == "skorch":
        return _train_skorch(genomes, X, y, config)
    return _train_batched(genomes, X, y, config)
