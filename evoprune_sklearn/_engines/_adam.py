"""Batched Adam: a generation's heads trained together, mini-batch by mini-batch.

The candidates of a generation are trained together as one stacked
computation. Each candidate keeps only its active features (``features``
encoding) or neurons (``neurons`` encoding), so its cost falls with its
density; candidates whose compact sizes round to the same bucket are
stacked and trained with batched matrix products (the stacked form of
:meth:`~evoprune_sklearn._head.HeadSpec.forward`).

Every candidate shuffles mini-batches with the same ``shuffle_seed`` every
epoch, drawn as skorch draws them (:func:`_batch_orders`), and early-stops
with skorch's ``EarlyStopping(monitor="train_loss")`` rule, so the
``"skorch"`` engine trains the same heads up to float rounding. Groups are
trained on threads of their own.
"""

import math

import numpy as np
import torch

from .._head import head_forward
from .._parallel import parallel_map
from ._base import (
    Engine,
    TrainedHeads,
    layer_flops,
    normalised_weights,
    penalised_loss,
    register_engine,
)

__all__ = ["AdamEngine"]

_BUCKET = 128


def _adam(params, lr, device):
    """Adam with one fused kernel a step where torch has one for ``device``.

    Adam touches every weight once a step; on a CPU the unfused update
    (a handful of elementwise passes) costs about a third of the matrix
    products at batch 128, the fused one about a tenth.
    """
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError):  # no fused kernel for this device/dtype
        return torch.optim.Adam(params, lr=lr, foreach=device.type != "cpu")


def _batch_orders(n, config):
    """The mini-batch order of every epoch, shared by all candidates.

    Drawn exactly as skorch's shuffling ``DataLoader`` draws it from the same
    generator, so both engines see the same batches: each epoch's iterator
    takes a base seed, then ``RandomSampler`` a permutation, and once
    exhausted a second (empty-sliced) permutation.
    """
    gen = torch.Generator().manual_seed(int(config.shuffle_seed))
    orders = []
    for _ in range(config.max_epochs):
        torch.empty((), dtype=torch.int64).random_(generator=gen)
        orders.append(torch.randperm(n, generator=gen))
        torch.randperm(n, generator=gen)
    return orders


def _padded(k, full):
    return max(1, min(full, int(math.ceil(k / _BUCKET)) * _BUCKET))


# Parameter rows are stored this many floats wide (columns beyond a layer's
# width stay zero and unused). Vectorised elementwise kernels (fused Adam
# among them) round differently in their scalar tail; with every
# candidate's block a whole number of vectors no element ever falls into a
# tail, so a candidate's update is bit-identical whatever its group.
_LANES = 16


def _storage_width(cols):
    return int(math.ceil(cols / _LANES)) * _LANES


class _Group:
    """Candidates with the same padded compact sizes, stacked together.

    ``weights``/``biases`` hold the final parameters of every member; while
    training, :class:`_Trainer` works on copies of the rows still training.
    """

    def __init__(self, members, sets, config, init):
        self.members = members
        head = config.head
        widths = head.sizes[:-1]
        self.sizes = [_padded(max(len(s[i]) for s in sets), w) for i, w in enumerate(widths)]
        G = len(members)
        # Layer-0 input indices; padding points at an all-zero extra column d.
        idx = torch.full((G, self.sizes[0]), head.n_features, dtype=torch.long)
        self.unit_masks = [torch.zeros(G, 1, size) for size in self.sizes[1:]]
        self.weights, self.biases = [], []
        self.out_sizes = out_sizes = self.sizes[1:] + [head.n_classes]
        for layer, _ in enumerate(init):
            width = _storage_width(out_sizes[layer])
            self.weights.append(torch.zeros(G, self.sizes[layer], width))
            self.biases.append(torch.zeros(G, 1, width))
        for g, s in enumerate(sets):
            idx[g, : len(s[0])] = torch.as_tensor(s[0])
            for layer, (w, b) in enumerate(head.compact(s, init)):
                self.weights[layer][g, : w.shape[0], : w.shape[1]] = w
                self.biases[layer][g, 0, : b.shape[0]] = b
                if layer < len(init) - 1:
                    self.unit_masks[layer][g, 0, : b.shape[0]] = 1.0
        self.input_index = idx
        self.sets = sets
        n_units = [[len(u) for u in s] + [head.n_classes] for s in sets]
        self.useful_flops_per_sample = [layer_flops(u) for u in n_units]
        self.executed_flops_per_sample = layer_flops(self.sizes + [head.n_classes])

    def to(self, device):
        self.input_index = self.input_index.to(device)
        self.unit_masks = [m.to(device) for m in self.unit_masks]
        self.weights = [w.to(device) for w in self.weights]
        self.biases = [b.to(device) for b in self.biases]
        return self

    def forward(self, X_aug):
        """Logits ``(G, n, C)`` for augmented features ``(n, d+1)``."""
        return _forward(X_aug, self.input_index, self.weights, self.biases,
                        self.unit_masks, self.out_sizes)


def _forward(X_aug, input_index, weights, biases, unit_masks, out_sizes):
    # One gather straight into the (G, n, k0) layout the batched product reads.
    x = X_aug[None, :, :].expand(input_index.shape[0], -1, -1).gather(
        2, input_index[:, None, :].expand(-1, X_aug.shape[0], -1)
    )
    layers = [(w[..., :width], b[..., :width])
              for w, b, width in zip(weights, biases, out_sizes)]
    return head_forward(x, layers, unit_masks=unit_masks)


def _augment(X):
    return torch.cat([X, X.new_zeros(X.shape[0], 1)], dim=1)


class _Trainer:
    """Trains the still-active members of one group.

    Candidates that early-stop leave the stacked tensors (their parameters
    are written back to the group, their Adam state dropped), so a stopped
    candidate costs nothing from then on.
    """

    def __init__(self, group, config, device):
        self.group = group
        self.config = config
        self.device = device
        self.active = torch.arange(len(group.members))
        self.best = torch.full((len(group.members),), float("inf"))
        self.misses = torch.zeros(len(group.members), dtype=torch.long)
        self._load(None)

    def _load(self, keep):
        g = self.group
        if keep is None:
            self.params = [p.clone().requires_grad_(True) for p in g.weights + g.biases]
            self.input_index = g.input_index
            self.unit_masks = g.unit_masks
            self.opt = _adam(self.params, self.config.lr, self.device)
            return
        keep_dev = keep.to(self.device)
        old_params, old_state = self.params, self.opt.state
        self.params = [p.detach()[keep_dev].clone().requires_grad_(True) for p in old_params]
        self.opt = _adam(self.params, self.config.lr, self.device)
        for new, old in zip(self.params, old_params):
            st = old_state.get(old)
            if st:
                self.opt.state[new] = {
                    k: (v[keep_dev].clone() if v.dim() else v.clone()) for k, v in st.items()
                }
        self.input_index = self.input_index[keep_dev]
        self.unit_masks = [m[keep_dev] for m in self.unit_masks]
        self.active = self.active[keep]
        self.best = self.best[keep]
        self.misses = self.misses[keep]

    def step(self, X_batch, y_batch, w_batch=None, n_samples=1):
        """One optimisation step; returns the per-candidate mean batch loss."""
        n_layers = len(self.group.weights)
        weights = self.params[:n_layers]
        logits = _forward(
            X_batch, self.input_index, weights, self.params[n_layers:],
            self.unit_masks, self.group.out_sizes,
        )
        losses = penalised_loss(
            logits, y_batch, weights, sample_weight=w_batch,
            alpha=self.config.alpha, n_samples=n_samples,
        )
        self.opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.opt.step()
        return losses.detach()

    def end_epoch(self, epoch_loss):
        """skorch ``EarlyStopping(monitor="train_loss")`` semantics, per candidate.

        Returns the group indices of the candidates that stop now.
        """
        cfg = self.config
        improved = epoch_loss < self.best * (1.0 - cfg.tol)
        self.best = torch.where(improved, epoch_loss, self.best)
        self.misses = torch.where(improved, torch.zeros_like(self.misses), self.misses + 1)
        stop = self.misses >= cfg.patience
        if stop.any():
            self._write_back(stop)
            self._load(torch.nonzero(~stop).flatten())
        return stop

    def _write_back(self, which):
        g = self.group
        which_dev = which.to(self.device)
        rows = self.active[which].to(self.device)
        with torch.no_grad():
            for dst, src in zip(g.weights + g.biases, self.params):
                dst[rows] = src.detach()[which_dev]

    def finish(self):
        if len(self.active):
            self._write_back(torch.ones(len(self.active), dtype=torch.bool))
            self.active = self.active[:0]
        self.params, self.opt = [], None


class _BatchedHeads(TrainedHeads):
    """The heads of :func:`_train_batched`, stored in their groups."""

    def __init__(self, genomes, groups, config, epochs, train_loss, flops,
                 executed_flops=None):
        super().__init__(genomes, config, epochs, train_loss, flops, executed_flops)
        self.groups = groups

    def logits(self, X):
        X = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.config.device)
        X_aug = _augment(X)
        out = torch.empty(len(self.genomes), X.shape[0], self.config.n_classes)

        def forward(group):
            with torch.no_grad():
                return group.forward(X_aug).float().cpu()

        for group, logits in zip(self.groups, parallel_map(forward, self.groups)):
            out[group.members] = logits
        return out

    def _locate(self, i):
        for group in self.groups:
            where = np.flatnonzero(np.asarray(group.members) == i)
            if len(where):
                return group, int(where[0])
        raise IndexError(f"no candidate {i}")

    def compact_parameters(self, i):
        group, g = self._locate(i)
        sets = group.sets[g]
        params = []
        for layer in range(len(group.weights)):
            n_rows = len(sets[layer])
            n_cols = len(sets[layer + 1]) if layer + 1 < len(sets) else self.config.n_classes
            params.append((
                group.weights[layer][g, :n_rows, :n_cols].detach().cpu().clone(),
                group.biases[layer][g, 0, :n_cols].detach().cpu().clone(),
            ))
        return sets, params


def _make_groups(genomes, config, device):
    head = config.head
    init = config.initial_parameters()
    sets = [head.unit_sets(g) for g in genomes]
    widths = head.sizes[:-1]
    keys = {}
    for i, s in enumerate(sets):
        key = tuple(_padded(len(u), w) for u, w in zip(s, widths))
        keys.setdefault(key, []).append(i)
    return [
        _Group(members, [sets[i] for i in members], config, init).to(device)
        for members in keys.values()
    ]


def _train_group(group, data, orders, config, device):
    """Train one group to the end; its curves and its useful/executed FLOPs."""
    X_aug, y, w, n_weighted = data
    n = X_aug.shape[0]
    trainer = _Trainer(group, config, device)
    curves = {member: [] for member in group.members}
    useful = executed = 0.0
    for epoch in range(config.max_epochs):
        order = orders[epoch]
        loss_sum = torch.zeros(len(trainer.active), device=device)
        for start in range(0, n, config.batch_size):
            batch = order[start : start + config.batch_size]
            loss_sum += trainer.step(
                X_aug[batch], y[batch], None if w is None else w[batch], n_weighted
            ) * batch.shape[0]
        G = len(trainer.active)
        executed += group.executed_flops_per_sample * G * n
        useful += n * sum(group.useful_flops_per_sample[int(g)] for g in trainer.active)
        epoch_loss = (loss_sum / n).cpu()
        for g, value in zip(trainer.active.tolist(), epoch_loss.tolist()):
            curves[group.members[g]].append(value)
        trainer.end_epoch(epoch_loss)
        if not len(trainer.active):
            break
    trainer.finish()
    return curves, useful, executed


def _train_batched(genomes, X, y, config, sample_weight=None):
    device = torch.device(config.device)
    X = torch.as_tensor(np.asarray(X, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y, dtype=np.int64)).to(device)
    w, n_weighted = normalised_weights(sample_weight, X.shape[0], device)
    data = (_augment(X).to(device), y, w, n_weighted)
    groups = _make_groups(genomes, config, device)
    orders = [o.to(device) for o in _batch_orders(X.shape[0], config)]
    # Groups share nothing but read-only inputs: each on its own thread.
    results = parallel_map(lambda g: _train_group(g, data, orders, config, device), groups)
    epochs = np.zeros(len(genomes), dtype=int)
    all_curves = [[] for _ in genomes]
    useful = executed = 0.0
    for curves, u, e in results:
        for member, curve in curves.items():
            all_curves[member] = curve
            epochs[member] = len(curve)
        useful += u
        executed += e
    return _BatchedHeads(np.asarray(genomes, dtype=bool), groups, config, epochs, all_curves,
                         useful, executed)


class AdamEngine(Engine):
    """``engine="batched"`` with ``solver="adam"``: :func:`_train_batched`."""

    name = "adam"
    option = "batched"

    def serves(self, config):
        return config.solver != "lbfgs"

    def train(self, genomes, X, y, config, sample_weight=None):
        return _train_batched(genomes, X, y, config, sample_weight)


register_engine(AdamEngine())
