"""Stacked L-BFGS: a generation's linear heads trained together, full batch.

Serves ``solver="lbfgs"`` with a linear head (``hidden_layer_sizes=()``).
A pool of candidates shares every product with the feature matrix, each
with its own history, step and stopping test (:class:`_Pool`), under the
objective, preconditioning and stopping rules of
:mod:`~evoprune_sklearn._engines._lbfgs`.

The pool computes its logits and their gradient by hand in a transposed
layout (:meth:`_StackedProblem.evaluate`, one product for the logits and
one for the gradient of every candidate): this is the one place the head's
forward pass is not :meth:`~evoprune_sklearn._head.HeadSpec.forward`, since
the loss and its gradient are computed together, blockwise, for speed.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from .._parallel import deterministic_arithmetic, parallel_map
from ._base import Engine, layer_flops, register_engine
from ._lbfgs import LBFGS_TOL_GRAD, CompactHeads, full_batch

__all__ = ["StackedLBFGSEngine"]

# Slots of the stacked pool, at most. The pool always has this many; the
# products with the feature matrix take the slots that hold a candidate
# (see _StackedProblem.evaluate).
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


def _slot_bytes(n_pad, d_pad, n_classes, kept_pairs=False):
    """Bytes one slot of the pool holds at most.

    Parameters, direction, gradient and their trial copies (about ten
    ``(C, D)`` tensors), the ``2 * _HISTORY`` history pairs, and about six
    ``(C, n)`` logit-sized temporaries of an evaluation; with
    ``kept_pairs``, also the copy of the history the two-loop recursion
    keeps for its second loop.
    """
    vectors = 2 * _HISTORY + 10 + (2 * _HISTORY if kept_pairs else 0)
    return 4 * n_classes * (d_pad * vectors + 6 * n_pad)


def _stack_size(n_pad, d_pad, n_classes):
    """Slots of the pool: a function of the problem's shape only (see
    :func:`_slot_bytes`)."""
    per_candidate = _slot_bytes(n_pad, d_pad, n_classes)
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
        # The two-loop recursion keeps the history pairs it gathers (rather
        # than gathering them twice) where the budget has room: same values.
        self.keep_pairs = (self.S * _slot_bytes(n_pad, self.D, self.C, kept_pairs=True)
                           <= _STACK_BYTES)
        # Blocks of samples for evaluate: sizes fixed by n alone. On a GPU
        # one block (one kernel each, no host threads).
        rows = n_pad if device.type != "cpu" else _block_rows(n_pad)
        self.blocks = [
            (Xa[a:a + rows], yp[a:a + rows], self.onehotT[..., a:a + rows], coef[a:a + rows])
            for a in range(0, n_pad, rows)
        ]

    def evaluate(self, x, mask, active=None):
        """Loss ``(S,)`` and gradient ``(S, C, D)`` of every candidate.

        Computed per block of samples (:attr:`blocks`), the blocks in
        parallel (:func:`~evoprune_sklearn._parallel.parallel_map`), their
        sums added in block order: the same arithmetic for any number of
        threads.

        With ``active`` (a boolean mask of slots; the pool passes it where
        :meth:`rows_independent`), only those slots are computed, their rows
        gathered into smaller products (the others get zeros): a slot's
        values are then the same bit for bit as in the full products.
        """
        if active is None or bool(active.all()):
            return self._evaluate_rows(x, mask)
        idx = torch.nonzero(active).flatten()
        part_loss, part_grad = self._evaluate_rows(x[idx], mask[idx])
        loss, grad = x.new_zeros(x.shape[0]), torch.zeros_like(x)
        loss[idx], grad[idx] = part_loss, part_grad
        return loss, grad

    def rows_independent(self):
        """Whether this BLAS computes every row of the pool's two products
        the same, bit for bit, whatever rows are computed with it.

        Checked once per process and shape, single-threaded as the pool's
        products run: every number of slots ``k < S``, on the first ``k``
        slots and on a random ``k`` of them, for each block size. Large
        products pass (the kernels split only the shared dimension); small
        ones can take another kernel by size, and then the pool computes
        every slot, as if all were training.
        """
        key = (self.Xa.device.type, self.Xa.dtype, self.S, self.C, self.D,
               tuple(sorted({len(b[0]) for b in self.blocks})))
        if key not in _ROWS_INDEPENDENT:
            _ROWS_INDEPENDENT[key] = _probe_rows(self)
        return _ROWS_INDEPENDENT[key]

    def _evaluate_rows(self, x, mask):
        """:meth:`evaluate` of the slots in ``x``."""
        parts = parallel_map(lambda block: self._evaluate_block(x, block), self.blocks)
        loss, grad = parts[0]
        for block_loss, block_grad in parts[1:]:
            loss = loss + block_loss
            grad = grad + block_grad
        grad = grad * mask
        if self.alpha:
            pen = x * self.pen
            loss = loss + 0.5 * _rowdot(x, pen)
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


# rows_independent's answers: (device type, dtype, S, C, D, block sizes) -> bool.
_ROWS_INDEPENDENT = {}


def _probe_rows(problem):
    """:meth:`_StackedProblem.rows_independent`, computed."""
    S, C, D = problem.S, problem.C, problem.D
    gen = torch.Generator().manual_seed(0)
    device, dtype = problem.Xa.device, problem.Xa.dtype
    with deterministic_arithmetic(n_threads=1):
        for Xb in {len(b[0]): b[0] for b in problem.blocks}.values():
            x = torch.randn(S * C, D, generator=gen).to(device, dtype)
            dz = torch.randn(S * C, len(Xb), generator=gen).to(device, dtype)
            full = ((x @ Xb.T).view(S, C, -1), (dz @ Xb).view(S, C, D))
            for k in range(1, S):
                for idx in (torch.arange(k), torch.randperm(S, generator=gen)[:k]):
                    idx = idx.to(device)
                    xk = x.view(S, C, D)[idx].view(k * C, D)
                    dzk = dz.view(S, C, -1)[idx].view(k * C, -1)
                    if not (torch.equal((xk @ Xb.T).view(k, C, -1), full[0][idx])
                            and torch.equal((dzk @ Xb).view(k, C, D), full[1][idx])):
                        return False
    return True


def _rowdot(a, b):
    return (a * b).view(a.shape[0], -1).sum(-1)


class _Pool:
    """Full-batch L-BFGS on many candidates at once.

    ``problem.S`` slots train one candidate each; a slot whose candidate
    has converged takes the next one waiting, so every function evaluation
    (two products with the feature matrix, see :meth:`_StackedProblem.evaluate`)
    serves ``S`` candidates until the queue runs dry; then only the slots
    still training are computed.

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

    All work is row-wise: a row of a product with the feature matrix does
    not depend on the rows computed with it, and the rest runs per slot, so
    a candidate's iterates do not depend on its slot, on when it started or
    on the other candidates. :meth:`run` returns per candidate its
    parameters ``(C, D)`` and iterations, its loss curve (one value per
    evaluation), and the number of slot evaluations computed.
    """

    def __init__(self, problem, all_sets, init, config):
        S, device = problem.S, problem.Xa.device
        self.problem, self.all_sets, self.init = problem, all_sets, init
        self.tol_grad, self.tol_change = LBFGS_TOL_GRAD, config.tol * 1e-3
        self.max_iter, self.max_eval = config.max_iter, config.max_iter * 5 // 4
        self.rows = torch.arange(S, device=device)
        x = self.x = problem.Xa.new_zeros(S, problem.C, problem.D)
        self.mask = problem.Xa.new_zeros(S, 1, problem.D)
        self.P = P = x[0].numel()
        self.keep_pairs = problem.keep_pairs
        # Products of the slots still training only, where that changes no bit.
        self.compact = problem.rows_independent()
        self.d, self.g = torch.zeros_like(x), torch.zeros_like(x)
        self.f, self.t, self.gtd = x.new_zeros(S), x.new_zeros(S), x.new_zeros(S)
        self.hist_s, self.hist_y = x.new_zeros(S, _HISTORY, P), x.new_zeros(S, _HISTORY, P)
        self.rho, self.h_diag = x.new_zeros(S, _HISTORY), x.new_ones(S)
        zeros = torch.zeros(S, dtype=torch.long, device=device)
        (self.n_hist, self.head, self.n_evals, self.n_iter,
         self.backtracks) = (zeros.clone() for _ in range(5))
        self.slot_of = [-1] * S  # candidate in each slot
        self.fresh = torch.zeros(S, dtype=torch.bool, device=device)
        self.active = torch.zeros_like(self.fresh)
        self.results = [None] * len(all_sets)
        self.curves = [[] for _ in all_sets]
        self.queue = iter(range(len(all_sets)))

    def _load(self, k):
        """Put the next waiting candidate in slot ``k``; False if none waits."""
        i = next(self.queue, None)
        self.slot_of[k] = -1 if i is None else i
        if i is not None:
            self.x[k], self.mask[k] = self.problem.initial(self.all_sets[i], self.init)
            self.d[k] = 0.0
            self.hist_s[k], self.hist_y[k], self.rho[k] = 0.0, 0.0, 0.0
        return i is not None

    def run(self):
        for k in range(self.problem.S):
            self.fresh[k] = self.active[k] = self._load(k)
        executed = 0
        while bool(self.active.any()):
            executed += int(self.active.sum()) if self.compact else self.problem.S
            self._iterate()
        return self.results, self.curves, executed

    def _iterate(self):
        """One evaluation of the pool: line-search test, move, next direction."""
        S, P, fresh, active = self.problem.S, self.P, self.fresh, self.active
        # A fresh slot evaluates its initial point (t = 0, d = 0).
        step = self.t[:, None, None] * self.d
        xt = self.x + step
        ft, gt = self.problem.evaluate(xt, self.mask, active if self.compact else None)
        self.n_evals = torch.where(fresh, 1, self.n_evals + active.long())
        for k, v in zip(torch.nonzero(active).flatten().tolist(), ft[active].tolist()):
            self.curves[self.slot_of[k]].append(v)
        accept, failed = self._line_search(ft)
        # Accepted steps move; fresh slots take their initial point.
        moved = accept | fresh
        sel = moved[:, None, None]
        s = step.view(S, P)
        yv = (gt - self.g).view(S, P)
        f_prev = self.f
        self.x = torch.where(sel, xt, self.x)
        self.f = torch.where(moved, ft, self.f)
        self.g = torch.where(sel, gt, self.g)
        g_max = self.g.abs().view(S, -1).amax(-1)
        stop = accept & (
            (self.n_iter >= self.max_iter) | (self.n_evals >= self.max_eval)
            | (g_max <= self.tol_grad) | (s.abs().amax(-1) <= self.tol_change)
            | ((self.f - f_prev).abs() < self.tol_change)
        )
        stop |= fresh & (g_max <= self.tol_grad)
        go = accept & ~stop
        self._remember(go, s, yv)
        stop = self._turn(go, stop)
        self._finish(stop | failed)

    def _line_search(self, ft):
        """Armijo's test of every trial step; the next trial of those that fail."""
        old = self.active & ~self.fresh
        t, f, gtd = self.t, self.f, self.gtd
        accept = old & (ft <= f + _C1 * t * gtd)
        retry = old & ~accept
        # Backtrack: minimiser of the quadratic through f, g'd and f(t),
        # kept within [0.1 t, 0.5 t] (a non-finite f(t) halves the step).
        t_q = -gtd * t * t / (2.0 * (ft - f - gtd * t))
        t_q = torch.where(torch.isfinite(t_q), t_q, 0.5 * t)
        t_back = torch.minimum(torch.maximum(t_q, 0.1 * t), 0.5 * t)
        self.backtracks += retry.long()
        failed = retry & ((self.n_evals >= self.max_eval)
                          | (self.backtracks >= _MAX_BACKTRACKS))
        self.t = torch.where(retry, t_back, t)
        return accept, failed

    def _remember(self, go, s, yv):
        """Store the accepted steps' ``(s, y)`` pairs where the curvature is positive."""
        ys = _rowdot(yv, s)
        upd = go & (ys > 1e-10)
        if bool(upd.any()):
            r = self.rows[upd]
            slot = self.head[upd]
            self.hist_s[r, slot] = s[upd]
            self.hist_y[r, slot] = yv[upd]
            self.rho[r, slot] = 1.0 / ys[upd]
            self.h_diag = torch.where(upd, ys / _rowdot(yv, yv), self.h_diag)
            self.head = torch.where(upd, (self.head + 1) % _HISTORY, self.head)
            self.n_hist = torch.where(upd, torch.clamp(self.n_hist + 1, max=_HISTORY),
                                      self.n_hist)

    def _turn(self, go, stop):
        """New directions and first trial steps of the slots that turn (the
        others keep theirs); returns ``stop`` with ascent stops."""
        fresh = self.fresh
        turn = go | (fresh & ~stop)
        slots = torch.nonzero(turn).flatten()
        first_t = torch.ones_like(self.t)
        if len(slots):
            g = self.g[slots]
            self.d[slots] = self._direction(slots).view_as(g)
            self.gtd[slots] = _rowdot(g, self.d[slots])
            first_t[slots] = torch.clamp(1.0 / g.abs().view(len(slots), -1).sum(-1), max=1.0)
        stop = stop | (turn & (self.gtd > -self.tol_change))
        self.t = torch.where(go, torch.ones_like(self.t), torch.where(fresh, first_t, self.t))
        self.n_iter = torch.where(fresh, 1, self.n_iter + go.long())
        self.backtracks = torch.where(turn, 0, self.backtracks)
        return stop

    def _direction(self, slots):
        """Two-loop recursion for ``slots``, newest pair first, each slot
        its own history (a fresh slot has none: its direction is -g)."""
        n, P = len(slots), self.P
        n_hist, head = self.n_hist[slots], self.head[slots]
        q = -self.g[slots].view(n, P)
        flat_s, flat_y = self.hist_s.view(-1, P), self.hist_y.view(-1, P)
        depth = int(n_hist.max())
        pairs, al = [], []
        for i in range(depth):
            pick = slots * _HISTORY + (head - 1 - i) % _HISTORY
            s_i, y_i = flat_s.index_select(0, pick), flat_y.index_select(0, pick)
            rho_i = self.rho.view(-1)[pick]
            a = torch.where(i < n_hist, _rowdot(s_i, q) * rho_i, 0.0)
            q = q - a[:, None] * y_i
            # The pairs are kept for the second loop when the pool's memory
            # budget has room for a copy of the history; else gathered again.
            pairs.append((s_i, y_i, rho_i) if self.keep_pairs else (pick, None, rho_i))
            al.append(a)
        r_ = q * torch.where(self.fresh[slots], 1.0, self.h_diag[slots])[:, None]
        for i in reversed(range(depth)):
            s_i, y_i, rho_i = pairs[i]
            if y_i is None:
                s_i, y_i = flat_s.index_select(0, s_i), flat_y.index_select(0, s_i)
            be = torch.where(i < n_hist, _rowdot(y_i, r_) * rho_i, 0.0)
            r_ = r_ + s_i * (al[i] - be)[:, None]
        return r_

    def _finish(self, finished):
        """Record the finished candidates; their slots take the next ones."""
        self.fresh.zero_()
        if bool(finished.any()):
            for k in torch.nonzero(finished).flatten().tolist():
                self.results[self.slot_of[k]] = (self.x[k].clone(), int(self.n_iter[k]))
                if self._load(k):
                    self.fresh[k] = True
                    self.h_diag[k], self.n_hist[k], self.head[k], self.t[k] = 1.0, 0, 0, 0.0
                else:
                    self.active[k] = False


def _train_lbfgs_stacked(genomes, X, y, config, sample_weight=None):
    """Linear heads, full batch, many candidates at once.

    The same objective, preconditioning and stopping rules as the per-head
    L-BFGS engine, but candidates share each product with the feature
    matrix (see :class:`_Pool`).
    """
    X, y, w, n_weighted, mean, scale = full_batch(X, y, config, sample_weight)
    problem = _StackedProblem(X, y, w, n_weighted, config, mean, scale)
    all_sets = [config.head.unit_sets(genome) for genome in genomes]
    results, curves, n_slot_evals = _Pool(
        problem, all_sets, config.initial_parameters(), config).run()
    heads, epochs, flops = [], [], 0.0
    for s, (xk, n_iter), curve in zip(all_sets, results, curves):
        heads.append((s, problem.head(xk, s)))
        epochs.append(n_iter)
        units = [len(u) for u in s] + [config.n_classes]
        flops += layer_flops(units) * X.shape[0] * len(curve)
    executed = 2 * 2 * problem.Xa.shape[0] * problem.D * problem.C * n_slot_evals
    return CompactHeads(np.asarray(genomes, dtype=bool), heads, config,
                        np.asarray(epochs, dtype=int), curves, flops, executed)


class StackedLBFGSEngine(Engine):
    """``engine="batched"``, ``solver="lbfgs"``, linear head: :class:`_Pool`."""

    name = "stacked_lbfgs"
    option = "batched"

    def serves(self, config):
        return _stackable(config)

    def train(self, genomes, X, y, config, sample_weight=None):
        return _train_lbfgs_stacked(genomes, X, y, config, sample_weight)


register_engine(StackedLBFGSEngine())
