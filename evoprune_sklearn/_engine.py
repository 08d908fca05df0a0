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

With ``solver="lbfgs"`` (full batch) the batched engine trains a linear head
(``hidden_layer_sizes=()``) with a stacked L-BFGS: a pool of candidates shares
every product with the feature matrix, each with its own history, step and
stopping test (:func:`_stacked_lbfgs`). Heads with hidden layers are trained
one at a time on their kept units (:func:`_train_lbfgs`).

Both start every candidate from the same dense initial weights (drawn once per
fit from ``init_seed``) and shuffle mini-batches with the same ``shuffle_seed``
every epoch, so a genome's trained head is a pure function of the genome: the
result does not depend on which other genomes share its generation, on
``n_jobs``, or on the order of evaluation.

Nor on the number of threads: training and logits run inside
:func:`~evoprune_sklearn._parallel.deterministic_arithmetic`, every torch
kernel on one thread, and the work is spread over threads in pieces of a
shape fixed by the problem (blocks of samples of the stacked L-BFGS, single
candidates of the per-head L-BFGS and of skorch, groups of the batched Adam).
"""

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping

from ._head import MaskedHead, genome_masks, init_head_parameters
from ._parallel import deterministic_arithmetic, parallel_map

__all__ = [
    "TrainingConfig", "TrainedHeads", "train_heads", "expand_parameters", "make_skorch_net",
    "penalised_loss", "refit_members",
]

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


def penalised_loss(logits, y, weights, *, sample_weight=None, alpha=0.0, n_samples=1):
    """The training objective of every head, per candidate.

    ``mean_i(w_i * CE_i) + alpha / (2 * n_samples) * sum ||W||^2``: the
    (sample-weighted) mean cross-entropy plus an L2 penalty on the weight
    matrices (not the biases), in the units of scikit-learn's
    ``MLPClassifier(alpha=...)``; ``alpha=1`` with a linear head is the
    objective of ``LogisticRegression(C=1)`` divided by ``n_samples``.

    Parameters
    ----------
    logits : Tensor of shape (..., n_batch, n_classes)
        Leading dimensions index candidates.
    y : Tensor of shape (n_batch,)
    weights : list of Tensor
        Weight matrices, candidates along the same leading dimensions.
    sample_weight : Tensor of shape (n_batch,), default=None
        Normalised to mean 1 over the training fold.
    alpha : float, default=0.0
    n_samples : float, default=1
        Samples in the training fold (sum of sample weights).

    Returns
    -------
    loss : Tensor of shape logits.shape[:-2]
    """
    lead = logits.shape[:-2]
    n_batch, n_classes = logits.shape[-2:]
    ce = F.cross_entropy(
        logits.reshape(-1, n_classes), y.repeat(int(np.prod(lead, dtype=int))),
        reduction="none",
    ).reshape(*lead, n_batch)
    if sample_weight is not None:
        ce = ce * sample_weight
    loss = ce.mean(dim=-1)
    if alpha:
        dims = (-2, -1)
        penalty = sum((w * w).sum(dim=dims) for w in weights)
        loss = loss + (alpha / (2.0 * n_samples)) * penalty
    return loss


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
    alpha: float = 0.0
    solver: str = "adam"
    max_iter: int = 200
    init_seed: int = 0
    shuffle_seed: int = 0
    device: str = "cpu"

    def initial_parameters(self):
        return init_head_parameters(
            self.init_seed, self.n_features, self.hidden_layer_sizes, self.n_classes
        )


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


def _unit_sets(genome, config):
    """Index sets of kept units: input features, then each hidden layer."""
    fmask, nmasks = genome_masks(
        genome, config.encoding, config.n_features, config.hidden_layer_sizes
    )
    return [np.flatnonzero(fmask)] + [np.flatnonzero(m) for m in nmasks]


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


def _layer_flops(sizes, n_candidates=1):
    """FLOPs of one training step per sample: forward and backward products.

    ``sizes`` are the widths ``[in, hidden..., out]``. Layer 0 needs no
    input gradient (features are constants), so it costs two products, the
    others three.
    """
    total = 0
    for layer in range(len(sizes) - 1):
        total += 2 * sizes[layer] * sizes[layer + 1] * (3 if layer > 0 else 2)
    return total * n_candidates


class _Group:
    """Candidates with the same padded compact sizes, stacked together.

    ``weights``/``biases`` hold the final parameters of every member; while
    training, :class:`_Trainer` works on copies of the rows still training.
    """

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
        self.out_sizes = out_sizes = self.sizes[1:] + [config.n_classes]
        for layer, _ in enumerate(init):
            width = _storage_width(out_sizes[layer])
            self.weights.append(torch.zeros(G, self.sizes[layer], width))
            self.biases.append(torch.zeros(G, 1, width))
        for g, s in enumerate(sets):
            idx[g, : len(s[0])] = torch.as_tensor(s[0])
            for layer, (w, b) in enumerate(_compact_initial(s, init, config.n_classes)):
                self.weights[layer][g, : w.shape[0], : w.shape[1]] = w
                self.biases[layer][g, 0, : b.shape[0]] = b
                if layer < len(init) - 1:
                    self.unit_masks[layer][g, 0, : b.shape[0]] = 1.0
        self.input_index = idx
        self.sets = sets
        n_units = [[len(u) for u in s] + [config.n_classes] for s in sets]
        self.useful_flops_per_sample = [_layer_flops(u) for u in n_units]
        self.executed_flops_per_sample = _layer_flops(self.sizes + [config.n_classes])

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
    n_layers = len(weights)
    for layer in range(n_layers):
        width = out_sizes[layer]
        x = torch.baddbmm(biases[layer][..., :width], x, weights[layer][..., :width])
        if layer < n_layers - 1:
            x = torch.relu(x) * unit_masks[layer]
    return x


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
        Floating-point operations of the matrix products that training
        needed (compact sizes, no padding): the work a dense implementation
        of each pruned head would do.
    executed_flops : float
        Products actually executed, bucket padding included.
    """

    def __init__(self, genomes, groups, config, epochs, train_loss, flops,
                 executed_flops=None):
        self.genomes = genomes
        self.groups = groups
        self.config = config
        self.epochs = epochs
        self.train_loss = train_loss
        self.flops = flops
        self.executed_flops = flops if executed_flops is None else executed_flops

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
        """Candidate ``i`` as ``(unit_sets, [(weight, bias), ...])``, kept units only.

        Much smaller than :meth:`head_parameters` for sparse genomes: this is
        what travels back from parallel workers.
        """
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

    def head_parameters(self, i):
        """Full-size ``[(weight (in, out), bias), ...]`` of candidate ``i``.

        Pruned rows/columns are zero; with :class:`MaskedHead` they are also
        masked, so the masked head computes exactly what the compact one did.
        """
        return expand_parameters(*self.compact_parameters(i), self.config)


def expand_parameters(sets, params, config):
    """Full-size head parameters from :meth:`TrainedHeads.compact_parameters`."""
    widths = [config.n_features, *config.hidden_layer_sizes, config.n_classes]
    full = []
    for layer, (w_c, b_c) in enumerate(params):
        rows = sets[layer]
        cols = sets[layer + 1] if layer + 1 < len(sets) else np.arange(config.n_classes)
        w = torch.zeros(widths[layer], widths[layer + 1])
        b = torch.zeros(widths[layer + 1])
        w[np.ix_(rows, cols)] = torch.as_tensor(w_c).cpu()
        b[cols] = torch.as_tensor(b_c).cpu()
        full.append((w, b))
    return full


def _make_groups(genomes, config, device):
    init = config.initial_parameters()
    sets = [_unit_sets(g, config) for g in genomes]
    widths = [config.n_features, *config.hidden_layer_sizes]
    keys = {}
    for i, s in enumerate(sets):
        key = tuple(_padded(len(u), w) for u, w in zip(s, widths))
        keys.setdefault(key, []).append(i)
    return [
        _Group(members, [sets[i] for i in members], config, init).to(device)
        for members in keys.values()
    ]


def _normalised_weights(sample_weight, n, device):
    """Sample weights scaled to mean 1 (None stays None), and their sum."""
    if sample_weight is None:
        return None, float(n)
    w = np.asarray(sample_weight, dtype=np.float64)
    return torch.as_tensor(w / w.mean(), dtype=torch.float32, device=device), float(w.sum())


def _train_batched(genomes, X, y, config, sample_weight=None):
    device = torch.device(config.device)
    X = torch.as_tensor(np.asarray(X, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    X_aug = _augment(X).to(device)
    y = y.to(device)
    w, n_weighted = _normalised_weights(sample_weight, X.shape[0], device)
    groups = _make_groups(genomes, config, device)
    n = X.shape[0]
    orders = [o.to(device) for o in _batch_orders(n, config)]

    def train_group(group):
        # Groups share nothing but read-only inputs: each on its own thread.
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

    epochs = np.zeros(len(genomes), dtype=int)
    all_curves = [[] for _ in genomes]
    useful = executed = 0.0
    for curves, u, e in parallel_map(train_group, groups):
        for member, curve in curves.items():
            all_curves[member] = curve
            epochs[member] = len(curve)
        useful += u
        executed += e
    return TrainedHeads(np.asarray(genomes, dtype=bool), groups, config, epochs, all_curves,
                        useful, executed)


def _compact_initial(sets, init, n_classes):
    """A candidate's share of the shared dense initial weights."""
    params = []
    for layer, (w0, b0) in enumerate(init):
        rows = torch.as_tensor(sets[layer])
        last = layer == len(init) - 1
        cols = torch.arange(n_classes) if last else torch.as_tensor(sets[layer + 1])
        params.append((w0[rows][:, cols].clone(), b0[cols].clone()))
    return params


def _compact_forward(X, params):
    x = X
    for layer, (w, b) in enumerate(params):
        x = torch.addmm(b, x, w)
        if layer < len(params) - 1:
            x = torch.relu(x)
    return x


def _lbfgs(params, config):
    """Full-batch L-BFGS with a strong-Wolfe line search (torch's own)."""
    return torch.optim.LBFGS(
        params, lr=1.0, max_iter=config.max_iter, history_size=10,
        tolerance_grad=_LBFGS_TOL_GRAD, tolerance_change=config.tol * 1e-3,
        line_search_fn="strong_wolfe",
    )


# First-order optimality: stop when every gradient entry is below this.
_LBFGS_TOL_GRAD = 1e-5


def _lbfgs_fit(params, X, y, w, n_weighted, config, mean, scale):
    """Minimise :func:`penalised_loss` over ``params``; returns the loss curve.

    The first layer is trained in preconditioned coordinates: inputs are
    centred by ``mean`` and divided by ``scale`` (the square root of the
    diagonal of the loss's curvature, see :func:`_input_preconditioner`),
    its weights multiplied by ``scale``. This change of variables leaves the
    objective, the penalty on the original weights included, and so its
    optimum unchanged; it only makes the problem well conditioned, so L-BFGS
    gets there in about a third of the iterations on raw backbone features.
    ``params`` are updated in place, in the original coordinates.
    """
    (w0, b0), rest = params[0], params[1:]
    v0 = (w0 * scale[:, None]).requires_grad_(True)
    c0 = (b0 + mean @ w0).requires_grad_(True)
    rest = [(w.clone().requires_grad_(True), b.clone().requires_grad_(True))
            for w, b in rest]
    Xs = (X - mean) / scale
    flat = [v0, c0] + [p for pair in rest for p in pair]
    opt = _lbfgs(flat, config)
    curve = []

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = penalised_loss(
            _compact_forward(Xs, [(v0, c0), *rest]), y,
            [v0 / scale[:, None]] + [w for w, _ in rest],
            sample_weight=w, alpha=config.alpha, n_samples=n_weighted,
        )
        loss.backward()
        curve.append(float(loss.detach()))
        return loss

    opt.step(closure)
    with torch.no_grad():
        params[0] = (v0 / scale[:, None], c0 - (mean / scale) @ v0)
        params[1:] = [(w.detach(), b.detach()) for w, b in rest]
    return curve, int(opt.state[flat[0]].get("n_iter", 1))


def _input_preconditioner(X, w, alpha, n_weighted):
    """Per-feature centre and scale of the first layer's change of variables.

    ``scale_j = sqrt(var_j / 4 + alpha / n)``: the square root of the
    diagonal of the penalised loss's Hessian in the first layer's weights
    (softmax curvature at most 1/4 times the feature's variance, plus the
    penalty's), so every coordinate has about unit curvature.
    """
    if w is None:
        mean, var = X.mean(dim=0), X.var(dim=0, unbiased=False)
    else:
        p = w / w.sum()
        mean = p @ X
        var = p @ (X - mean) ** 2
    return mean, torch.sqrt(var / 4.0 + alpha / n_weighted + 1e-12)


class _CompactHeads(TrainedHeads):
    """L-BFGS heads, stored per candidate on their kept units only."""

    def __init__(self, genomes, heads, config, epochs, curves, flops, executed_flops=None):
        super().__init__(genomes, [], config, epochs, curves, flops, executed_flops)
        self.heads = heads  # per candidate: (unit sets, [(weight, bias), ...])

    def logits(self, X):
        X = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.config.device)
        out = torch.empty(len(self.heads), X.shape[0], self.config.n_classes)

        def forward(head):
            sets, params = head
            with torch.no_grad():
                return _compact_forward(X[:, torch.as_tensor(sets[0], device=X.device)],
                                        params).float().cpu()

        for i, logits in enumerate(parallel_map(forward, self.heads)):
            out[i] = logits
        return out

    def compact_parameters(self, i):
        sets, params = self.heads[i]
        return sets, [(w.detach().cpu().clone(), b.detach().cpu().clone()) for w, b in params]


def _full_batch(X, y, config, sample_weight):
    """The training fold as tensors, its loss weights and preconditioner."""
    device = torch.device(config.device)
    X = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
    y = torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)
    w, n_weighted = _normalised_weights(sample_weight, X.shape[0], device)
    mean, scale = _input_preconditioner(X, w, config.alpha, n_weighted)
    return X, y, w, n_weighted, mean, scale


def _train_lbfgs(genomes, X, y, config, sample_weight=None):
    """Each candidate alone, full batch, to convergence (see :func:`_lbfgs`).

    Serves heads with hidden layers (a linear head goes to
    :func:`_train_lbfgs_stacked`).

    The whole training fold is one batch, so each head is trained on its
    kept features (or neurons) only: its cost falls with its density and its
    result depends on its genome alone.
    """
    X, y, w, n_weighted, mean, scale = _full_batch(X, y, config, sample_weight)
    device = X.device
    init = config.initial_parameters()

    def train_one(genome):
        # Candidates share nothing but read-only inputs: each on its own thread.
        sets = _unit_sets(genome, config)
        params = [(W.to(device), b.to(device))
                  for W, b in _compact_initial(sets, init, config.n_classes)]
        kept = torch.as_tensor(sets[0], device=device)
        curve, n_iter = _lbfgs_fit(params, X[:, kept], y, w, n_weighted, config,
                                   mean[kept], scale[kept])
        return sets, [(W.detach(), b.detach()) for W, b in params], curve, n_iter

    heads, curves, epochs, flops = [], [], [], 0.0
    for sets, params, curve, n_iter in parallel_map(train_one, genomes):
        units = [len(u) for u in sets] + [config.n_classes]
        flops += _layer_flops(units) * X.shape[0] * len(curve)
        heads.append((sets, params))
        curves.append(curve)
        epochs.append(n_iter)
    return _CompactHeads(np.asarray(genomes, dtype=bool), heads, config,
                         np.asarray(epochs, dtype=int), curves, flops)


# ---------------------------------------------------------------------------
# Stacked L-BFGS: a generation's linear heads trained together.

# Slots of the stacked pool, at most. The pool always has exactly this many
# (empty slots compute and are ignored), so every product has the same
# shape whoever shares it.
_STACK = 16
# Bytes the pool may hold (parameters, gradients, history, logits).
_STACK_BYTES = 256 * 2**20
# Feature rows and samples are padded to multiples of this: every tensor the
# pool touches is then a whole number of SIMD vectors a candidate, so no
# candidate's element ever lands in a kernel's scalar tail.
_ALIGN = 64
# Samples per block of the stacked evaluation (at least; see _block_rows):
# a block of features (256 x 1,344 floats for 1,280 features) stays in a
# core's cache between the two products that read it.
_BLOCK_ROWS = 256
_MAX_BLOCKS = 16
_HISTORY = 10
_C1 = 1e-4  # Armijo's sufficient-decrease constant
_MAX_BACKTRACKS = 25


def _block_rows(n_pad):
    """Samples per block of :meth:`_StackedProblem.evaluate` (a multiple of
    ``_ALIGN``): at least ``_BLOCK_ROWS``, and at most ``_MAX_BLOCKS``
    blocks. A function of the problem's size only, never of the threads."""
    return max(_BLOCK_ROWS, _round_up(-(-n_pad // _MAX_BLOCKS), _ALIGN))


def _stackable(config):
    """The stacked engine serves full-batch L-BFGS on a linear head."""
    return config.solver == "lbfgs" and not config.hidden_layer_sizes


def _round_up(k, to):
    return int(math.ceil(k / to)) * to


def _stack_size(n_pad, d_pad, n_classes):
    """Slots of the pool: a function of the problem's shape only."""
    per_candidate = 4 * n_classes * (d_pad * (2 * _HISTORY + 10) + 6 * n_pad)
    size = _STACK
    while size > 1 and size * per_candidate > _STACK_BYTES:
        size //= 2
    return size


class _StackedProblem:
    """The penalised loss of ``S`` linear heads and its gradient, at once.

    Parameters of candidate ``k`` are ``x[k]`` of shape ``(C, D)``, the
    first layer in preconditioned coordinates: columns ``0 .. d-1`` are the
    weights times ``scale``, column ``d`` the bias (centred), the rest
    padding. One product ``Xa @ x.view(S*C, D).T`` gives every candidate's
    logits, one ``dZ.T @ Xa`` every gradient; pruned features have zero
    weights and a masked gradient, so they stay zero.
    """

    def __init__(self, X, y, w, n_weighted, config, mean, scale):
        n, d = X.shape
        device = X.device
        self.n, self.d, self.C = n, d, config.n_classes
        self.D = _round_up(d + 1, _ALIGN)
        n_pad = _round_up(n, _ALIGN)
        Xa = X.new_zeros(n_pad, self.D)
        Xa[:n, :d] = (X - mean) / scale
        Xa[:n, d] = 1.0
        self.Xa = Xa
        yp = torch.zeros(n_pad, dtype=torch.long, device=device)
        yp[:n] = y
        self.yp = yp
        self.onehotT = F.one_hot(yp, self.C).to(X.dtype).T.contiguous()[None]  # (1, C, n_pad)
        # Per-sample coefficient of the mean: w_i / n (zero for padding).
        coef = X.new_zeros(n_pad)
        coef[:n] = (1.0 if w is None else w) / n
        self.coef = coef
        inv_s2 = X.new_zeros(self.D)
        inv_s2[:d] = 1.0 / (scale * scale)
        self.pen = (config.alpha / n_weighted) * inv_s2  # gradient of the penalty / x
        self.alpha = config.alpha
        self.mean, self.scale = mean, scale
        self.S = _stack_size(n_pad, self.D, self.C)
        # Blocks of samples for evaluate: sizes fixed by n alone. On a GPU
        # one block (one kernel each, no host threads).
        rows = n_pad if device.type != "cpu" else _block_rows(n_pad)
        self.blocks = [
            (Xa[a:a + rows], yp[a:a + rows], self.onehotT[..., a:a + rows], coef[a:a + rows])
            for a in range(0, n_pad, rows)
        ]

    def evaluate(self, x, mask):
        """Loss ``(S,)`` and gradient ``(S, C, D)`` of every candidate.

        Computed per block of samples (:attr:`blocks`), the blocks in
        parallel (:func:`~evoprune_sklearn._parallel.parallel_map`), their
        sums added in block order: the same arithmetic for any number of
        threads.
        """
        parts = parallel_map(lambda block: self._evaluate_block(x, block), self.blocks)
        loss, grad = parts[0]
        for block_loss, block_grad in parts[1:]:
            loss = loss + block_loss
            grad = grad + block_grad
        grad = grad * mask
        if self.alpha:
            pen = x * self.pen
            loss = loss + 0.5 * (x * pen).view(x.shape[0], -1).sum(-1)
            grad = grad + pen
        return loss, grad

    def _evaluate_block(self, x, block):
        """One block's share of the mean cross-entropy and of its gradient.

        Logits are laid out ``(S, C, n)``: the softmax over classes then
        runs across samples in SIMD lanes, and each candidate's rows are
        contiguous.
        """
        Xa, yp, onehotT, coef = block
        S, C = x.shape[0], self.C
        Z = (x.view(S * C, self.D) @ Xa.T).view(S, C, -1)
        ce = -torch.log_softmax(Z, dim=1).gather(1, yp[None, None, :].expand(S, 1, -1))
        loss = (ce.view(S, -1) * coef).sum(-1)
        dZ = (torch.softmax(Z, dim=1) - onehotT) * coef
        return loss, (dZ.view(S * C, -1) @ Xa).view(S, C, self.D)

    def initial(self, sets, init):
        """One candidate's initial parameters ``(C, D)`` and mask ``(1, D)``.

        The shared dense initial weights with pruned features zeroed, in
        preconditioned coordinates.
        """
        w0, b0 = (p.to(self.Xa.device) for p in init[0])
        m = torch.zeros(self.d, device=self.Xa.device)
        m[torch.as_tensor(sets[0], device=m.device)] = 1.0
        wk = w0 * m[:, None]
        x = self.Xa.new_zeros(self.C, self.D)
        x[:, : self.d] = (wk * self.scale[:, None]).T
        x[:, self.d] = b0 + self.mean @ wk
        mask = self.Xa.new_zeros(1, self.D)
        mask[0, : self.d] = m
        mask[0, self.d] = 1.0
        return x, mask

    def head(self, xk, sets):
        """One candidate's compact ``[(weight, bias)]`` in original coordinates."""
        v = xk[:, : self.d].T  # (d, C)
        kept = torch.as_tensor(sets[0], device=v.device)
        w = v / self.scale[:, None]
        b = xk[:, self.d] - (self.mean / self.scale) @ v
        return [(w[kept].clone(), b)]


def _rowdot(a, b):
    return (a * b).view(a.shape[0], -1).sum(-1)


def _stacked_lbfgs(problem, all_sets, init, config):
    """Full-batch L-BFGS on many candidates at once.

    ``problem.S`` slots train one candidate each; a slot whose candidate
    has converged takes the next one waiting, so every function evaluation
    (two products with the feature matrix, see :meth:`_StackedProblem.evaluate`)
    serves ``S`` candidates until the queue runs dry.

    Each candidate keeps its own history of ``(s, y)`` pairs, its own step
    and its own convergence test, with torch's ``LBFGS`` stopping rules
    (``tolerance_grad``, ``tolerance_change``, ``max_iter``, ``max_eval =
    1.25 max_iter``; ``n_iter`` counts line searches). The line search
    starts from the unit step (the first iteration's ``min(1, 1/|g|_1)``)
    and backtracks by safeguarded quadratic interpolation until Armijo's
    condition holds; on the convex penalised loss the curvature ``y's``
    stays positive and the unit quasi-Newton step is accepted almost always
    (about as many evaluations as torch's strong-Wolfe search, measured).
    A slot whose trial step fails tries a shorter one while the others take
    their next iteration.

    All work is row-wise on tensors of one fixed shape, so a candidate's
    iterates do not depend on its slot, on when it started, or on the other
    candidates. Returns per candidate its parameters ``(C, D)``, iterations
    and loss curve (one value per evaluation).
    """
    S, device = problem.S, problem.Xa.device
    tol_grad, tol_change = _LBFGS_TOL_GRAD, config.tol * 1e-3
    max_iter, max_eval = config.max_iter, config.max_iter * 5 // 4
    rows = torch.arange(S, device=device)
    x = problem.Xa.new_zeros(S, problem.C, problem.D)
    mask = problem.Xa.new_zeros(S, 1, problem.D)
    P = x[0].numel()
    d, g = torch.zeros_like(x), torch.zeros_like(x)
    f, t, gtd = x.new_zeros(S), x.new_zeros(S), x.new_zeros(S)
    hist_s, hist_y = x.new_zeros(S, _HISTORY, P), x.new_zeros(S, _HISTORY, P)
    rho, h_diag = x.new_zeros(S, _HISTORY), x.new_ones(S)
    zeros = torch.zeros(S, dtype=torch.long, device=device)
    n_hist, head, n_evals, n_iter, backtracks = (zeros.clone() for _ in range(5))
    slot_of = [-1] * S  # candidate in each slot
    fresh = torch.zeros(S, dtype=torch.bool, device=device)
    active = torch.zeros_like(fresh)
    results = [None] * len(all_sets)
    curves = [[] for _ in all_sets]
    queue = iter(range(len(all_sets)))

    def load(k):
        i = next(queue, None)
        slot_of[k] = -1 if i is None else i
        if i is not None:
            x[k], mask[k] = problem.initial(all_sets[i], init)
            d[k] = 0.0
            hist_s[k], hist_y[k], rho[k] = 0.0, 0.0, 0.0
        return i is not None

    for k in range(S):
        fresh[k] = active[k] = load(k)
    executed = 0
    while bool(active.any()):
        # A fresh slot evaluates its initial point (t = 0, d = 0).
        step = t[:, None, None] * d
        xt = x + step
        ft, gt = problem.evaluate(xt, mask)
        executed += 1
        n_evals = torch.where(fresh, 1, n_evals + active.long())
        for k, v in zip(torch.nonzero(active).flatten().tolist(), ft[active].tolist()):
            curves[slot_of[k]].append(v)
        old = active & ~fresh
        accept = old & (ft <= f + _C1 * t * gtd)
        retry = old & ~accept
        # Backtrack: minimiser of the quadratic through f, g'd and f(t),
        # kept within [0.1 t, 0.5 t] (a non-finite f(t) halves the step).
        t_q = -gtd * t * t / (2.0 * (ft - f - gtd * t))
        t_q = torch.where(torch.isfinite(t_q), t_q, 0.5 * t)
        t_back = torch.minimum(torch.maximum(t_q, 0.1 * t), 0.5 * t)
        backtracks += retry.long()
        failed = retry & ((n_evals >= max_eval) | (backtracks >= _MAX_BACKTRACKS))
        t = torch.where(retry, t_back, t)
        # Accepted steps move; fresh slots take their initial point.
        moved = accept | fresh
        sel = moved[:, None, None]
        s = step.view(S, P)
        yv = (gt - g).view(S, P)
        f_prev = f
        x = torch.where(sel, xt, x)
        f = torch.where(moved, ft, f)
        g = torch.where(sel, gt, g)
        g_max = g.abs().view(S, -1).amax(-1)
        stop = accept & (
            (n_iter >= max_iter) | (n_evals >= max_eval) | (g_max <= tol_grad)
            | (s.abs().amax(-1) <= tol_change) | ((f - f_prev).abs() < tol_change)
        )
        stop |= fresh & (g_max <= tol_grad)
        go = accept & ~stop
        ys = _rowdot(yv, s)
        upd = go & (ys > 1e-10)
        if bool(upd.any()):
            r = rows[upd]
            slot = head[upd]
            hist_s[r, slot] = s[upd]
            hist_y[r, slot] = yv[upd]
            rho[r, slot] = 1.0 / ys[upd]
            h_diag = torch.where(upd, ys / _rowdot(yv, yv), h_diag)
            head = torch.where(upd, (head + 1) % _HISTORY, head)
            n_hist = torch.where(upd, torch.clamp(n_hist + 1, max=_HISTORY), n_hist)
        # Two-loop recursion, newest pair first, each row its own history
        # (a fresh slot has none: its direction is -g).
        q = -g.view(S, P)
        flat_s, flat_y = hist_s.view(-1, P), hist_y.view(-1, P)
        depth = int(n_hist.max())
        picks, al = [], []
        for i in range(depth):
            pick = rows * _HISTORY + (head - 1 - i) % _HISTORY
            s_i, rho_i = flat_s.index_select(0, pick), rho.view(-1)[pick]
            a = torch.where(i < n_hist, _rowdot(s_i, q) * rho_i, 0.0)
            q = q - a[:, None] * flat_y.index_select(0, pick)
            picks.append((pick, s_i, rho_i))
            al.append(a)
        r_ = q * torch.where(fresh, 1.0, h_diag)[:, None]
        for i in reversed(range(depth)):
            pick, s_i, rho_i = picks[i]
            be = torch.where(i < n_hist, _rowdot(flat_y.index_select(0, pick), r_) * rho_i, 0.0)
            r_ = r_ + s_i * (al[i] - be)[:, None]
        turn = go | (fresh & ~stop)
        d = torch.where(turn[:, None, None], r_.view_as(d), d)
        gtd = torch.where(turn, _rowdot(g, d), gtd)
        stop |= turn & (gtd > -tol_change)
        first_t = torch.clamp(1.0 / g.abs().view(S, -1).sum(-1), max=1.0)
        t = torch.where(go, torch.ones_like(t), torch.where(fresh, first_t, t))
        n_iter = torch.where(fresh, 1, n_iter + go.long())
        backtracks = torch.where(turn, 0, backtracks)
        finished = stop | failed
        fresh.zero_()
        if bool(finished.any()):
            for k in torch.nonzero(finished).flatten().tolist():
                results[slot_of[k]] = (x[k].clone(), int(n_iter[k]))
                if load(k):
                    fresh[k] = True
                    h_diag[k], n_hist[k], head[k], t[k] = 1.0, 0, 0, 0.0
                else:
                    active[k] = False
    return results, curves, executed


def _train_lbfgs_stacked(genomes, X, y, config, sample_weight=None):
    """Linear heads, full batch, many candidates at once.

    The same objective, preconditioning and stopping rules as
    :func:`_train_lbfgs`, but candidates share each product with the
    feature matrix (see :func:`_stacked_lbfgs`).
    """
    X, y, w, n_weighted, mean, scale = _full_batch(X, y, config, sample_weight)
    problem = _StackedProblem(X, y, w, n_weighted, config, mean, scale)
    all_sets = [_unit_sets(genome, config) for genome in genomes]
    results, curves, n_products = _stacked_lbfgs(
        problem, all_sets, config.initial_parameters(), config)
    heads, epochs, flops = [], [], 0.0
    for s, (xk, n_iter), curve in zip(all_sets, results, curves):
        heads.append((s, problem.head(xk, s)))
        epochs.append(n_iter)
        units = [len(u) for u in s] + [config.n_classes]
        flops += _layer_flops(units) * X.shape[0] * len(curve)
    executed = 2 * 2 * problem.Xa.shape[0] * problem.D * problem.C * problem.S * n_products
    return _CompactHeads(np.asarray(genomes, dtype=bool), heads, config,
                         np.asarray(epochs, dtype=int), curves, flops, executed)


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


def make_skorch_net(genome, config, **kwargs):
    """An (unfitted) skorch classifier for the masked head of ``genome``."""
    fmask, nmasks = genome_masks(
        genome, config.encoding, config.n_features, config.hidden_layer_sizes
    )
    if config.solver == "lbfgs":
        training = dict(
            optimizer=torch.optim.LBFGS, lr=1.0, optimizer__max_iter=config.max_iter,
            optimizer__history_size=10, optimizer__tolerance_grad=_LBFGS_TOL_GRAD,
            optimizer__tolerance_change=config.tol * 1e-3,
            optimizer__line_search_fn="strong_wolfe", max_epochs=1, batch_size=-1,
            callbacks=[],
        )
    else:
        training = dict(
            optimizer=torch.optim.Adam, lr=config.lr, max_epochs=config.max_epochs,
            batch_size=config.batch_size,
            callbacks=[
                ("early_stopping", EarlyStopping(
                    monitor="train_loss", patience=config.patience,
                    threshold=config.tol, threshold_mode="rel",
                ))
            ],
        )
    training.update(kwargs)
    return HeadNet(
        MaskedHead,
        module__n_features=config.n_features,
        module__hidden_layer_sizes=tuple(config.hidden_layer_sizes),
        module__n_classes=config.n_classes,
        module__feature_mask=fmask,
        module__neuron_masks=nmasks,
        module__init_seed=config.init_seed,
        criterion=torch.nn.CrossEntropyLoss,
        train_split=None,
        iterator_train__shuffle=True,
        iterator_train__generator=torch.Generator().manual_seed(int(config.shuffle_seed)),
        classes=np.arange(config.n_classes),
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
        super().__init__(genomes, [], config, epochs, curves, flops)
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
        sets = _unit_sets(self.genomes[i], self.config)
        full = self.head_parameters(i)
        params = []
        for layer, (w, b) in enumerate(full):
            cols = sets[layer + 1] if layer + 1 < len(sets) else np.arange(self.config.n_classes)
            params.append((w[np.ix_(sets[layer], cols)].clone(), b[cols].clone()))
        return sets, params


def _train_skorch(genomes, X, y, config, sample_weight=None):
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    w, n_weighted = _normalised_weights(sample_weight, len(X), "cpu")
    X_fit = X if w is None else {"X": X, "sample_weight": w.numpy()}
    sizes = [config.n_features, *config.hidden_layer_sizes, config.n_classes]
    dense = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    def fit_one(genome):
        net = make_skorch_net(genome, config)
        net.initialize()
        net.penalty_ = (config.alpha, n_weighted)
        return net.partial_fit(X_fit, y)

    nets = parallel_map(fit_one, genomes)
    flops = float(sum(3 * dense * len(X) * len(net.history) for net in nets))
    return _SkorchHeads(np.asarray(genomes, dtype=bool), nets, config, flops)


def train_heads(genomes, X, y, config, engine="batched", sample_weight=None):
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
    sample_weight : ndarray of shape (n_samples,), default=None
        Weights of the training loss (see :func:`penalised_loss`).

    Returns
    -------
    TrainedHeads
    """
    genomes = np.asarray(genomes, dtype=bool)
    if engine == "skorch":
        train = _train_skorch
    elif _stackable(config):
        train = _train_lbfgs_stacked
    elif config.solver == "lbfgs":
        train = _train_lbfgs
    else:
        train = _train_batched
    with deterministic_arithmetic():
        return train(genomes, X, y, config, sample_weight)


def refit_members(members, X, y, config, engine="batched", sample_weight=None):
    """Members retrained on ``(X, y)`` (``refit=True``), as new records.

    Each new member keeps its genome and objective values; its ``params`` and
    ``train_loss`` are those of a head trained, with the same recipe and
    initial weights, on the whole training data.

    Returns
    -------
    members : list of Member
    """
    if not members:
        return []
    heads = train_heads(np.array([m.genome for m in members]), X, y, config,
                        engine=engine, sample_weight=sample_weight)
    return [
        replace(member, params=heads.head_parameters(i), train_loss=heads.train_loss[i])
        for i, member in enumerate(members)
    ]
