"""Per-head L-BFGS: each candidate alone, full batch, on its kept units.

Serves ``solver="lbfgs"`` for heads with hidden layers (a linear head goes
to :mod:`~evoprune_sklearn._engines._stacked_lbfgs`, which shares this
module's objective, preconditioning and stopping rules). The whole training
fold is one batch, so each head is trained on its kept features (or
neurons) only: its cost falls with its density and its result depends on
its genome alone. Candidates are trained on threads of their own, the
largest first, so that a generation's threads finish together.
"""

import contextlib

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

__all__ = ["LBFGSEngine"]

# First-order optimality: stop when every gradient entry is below this.
LBFGS_TOL_GRAD = 1e-5


def _lbfgs(params, config):
    """Full-batch L-BFGS with a strong-Wolfe line search (torch's own)."""
    return torch.optim.LBFGS(
        params, lr=1.0, max_iter=config.max_iter, history_size=10,
        tolerance_grad=LBFGS_TOL_GRAD, tolerance_change=config.tol * 1e-3,
        line_search_fn="strong_wolfe",
    )


def _lbfgs_fit(params, X, y, w, n_weighted, config, mean, scale):
    """Minimise :func:`penalised_loss` over ``params``; returns the loss curve.

    The first layer is trained in preconditioned coordinates: inputs are
    centred by ``mean`` and divided by ``scale`` (the square root of the
    diagonal of the loss's curvature, see :func:`input_preconditioner`),
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
    # head_precision="bf16": the layers' products in bfloat16 (autocast),
    # the loss, the gradients' accumulation and L-BFGS in float32
    autocast = (torch.autocast(X.device.type, dtype=torch.bfloat16)
                if config.precision == "bf16" else contextlib.nullcontext())

    def closure():
        opt.zero_grad(set_to_none=True)
        with autocast:
            logits = head_forward(Xs, [(v0, c0), *rest])
        loss = penalised_loss(
            logits.float(), y,
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


def input_preconditioner(X, w, alpha, n_weighted):
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


class CompactHeads(TrainedHeads):
    """L-BFGS heads, stored per candidate on their kept units only."""

    def __init__(self, genomes, heads, config, epochs, curves, flops, executed_flops=None):
        super().__init__(genomes, config, epochs, curves, flops, executed_flops)
        self.heads = heads  # per candidate: (unit sets, [(weight, bias), ...])

    def logits(self, X):
        X = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.config.device)
        out = torch.empty(len(self.heads), X.shape[0], self.config.n_classes)

        def forward(head):
            sets, params = head
            with torch.no_grad():
                return head_forward(X[:, torch.as_tensor(sets[0], device=X.device)],
                                    params).float().cpu()

        for i, logits in enumerate(parallel_map(forward, self.heads)):
            out[i] = logits
        return out

    def compact_parameters(self, i):
        sets, params = self.heads[i]
        return sets, [(w.detach().cpu().clone(), b.detach().cpu().clone()) for w, b in params]


def full_batch(X, y, config, sample_weight):
    """The training fold as tensors, its loss weights and preconditioner."""
    device = torch.device(config.device)
    X = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
    y = torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)
    w, n_weighted = normalised_weights(sample_weight, X.shape[0], device)
    mean, scale = input_preconditioner(X, w, config.alpha, n_weighted)
    return X, y, w, n_weighted, mean, scale


def _train_lbfgs(genomes, X, y, config, sample_weight=None):
    """Each candidate alone, full batch, to convergence (see :func:`_lbfgs`)."""
    X, y, w, n_weighted, mean, scale = full_batch(X, y, config, sample_weight)
    device = X.device
    head = config.head
    init = config.initial_parameters()

    all_sets = [head.unit_sets(genome) for genome in genomes]
    units = [[len(u) for u in sets] + [config.n_classes] for sets in all_sets]

    def train_one(i):
        # Candidates share nothing but read-only inputs: each on its own thread.
        sets = all_sets[i]
        params = [(W.to(device), b.to(device)) for W, b in head.compact(sets, init)]
        kept = torch.as_tensor(sets[0], device=device)
        curve, n_iter = _lbfgs_fit(params, X[:, kept], y, w, n_weighted, config,
                                   mean[kept], scale[kept])
        return [(W.detach(), b.detach()) for W, b in params], curve, n_iter

    # Largest heads first: the threads then finish a generation together
    # instead of one waiting for a large head started last. Each head's
    # result is the same whichever thread trains it, and when.
    order = np.argsort([-layer_flops(u) for u in units], kind="stable")
    trained = dict(zip(order.tolist(), parallel_map(train_one, order.tolist())))
    heads, curves, epochs, flops = [], [], [], 0.0
    for i, sets in enumerate(all_sets):
        params, curve, n_iter = trained[i]
        flops += layer_flops(units[i]) * X.shape[0] * len(curve)
        heads.append((sets, params))
        curves.append(curve)
        epochs.append(n_iter)
    return CompactHeads(np.asarray(genomes, dtype=bool), heads, config,
                        np.asarray(epochs, dtype=int), curves, flops)


class LBFGSEngine(Engine):
    """``engine="batched"``, ``solver="lbfgs"``, hidden layers: :func:`_train_lbfgs`."""

    name = "lbfgs"
    option = "batched"

    def serves(self, config):
        return config.solver == "lbfgs" and bool(config.hidden_layer_sizes)

    def train(self, genomes, X, y, config, sample_weight=None):
        return _train_lbfgs(genomes, X, y, config, sample_weight)


register_engine(LBFGSEngine())
