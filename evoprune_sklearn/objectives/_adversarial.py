"""Adversarial robustness: accuracy under FGSM or PGD attacks (torchattacks).

The robustness of a pruned head is its accuracy on validation images that an
attacker perturbs within an L-infinity ball of radius ``eps`` in ``[0, 1]``
pixel space, the perturbed images staying valid images. The attack sees the
whole network, frozen backbone and candidate head, so its gradients flow
through the backbone to the pixels. torchattacks is handed a network that
takes ``[0, 1]`` images (the backbone's normalisation is its first layer), so
``eps`` really is in pixel units.

The budget. ``eps="auto"`` (the default) calibrates ``eps`` once per
fit: the budget at which the *dense* head's attacked accuracy is half its
clean accuracy, found by bisection over ``log(eps)``. A fixed budget such as
the customary ``8/255`` is the right choice for a stated threat model, but a
frozen ImageNet backbone with a small head falls at far smaller budgets:
there every candidate scores 0 under PGD and the objective carries no
information. At the calibrated budget the candidates spread around half
their clean accuracy, where they differ most.

The measure. A sample counts as robust for a candidate when the candidate
classifies it correctly clean and at every point the attack visits (PGD's
random start, each iterate, the final image): the attacker keeps the first
misclassifying image it finds. That definition is what allows the early exit
below without changing the value; it is at least as strict as scoring the
final iterate only.

Costs, per candidate and per image of the subset (at most
``subset`` validation images), in backbone passes of one image:

- samples the candidate misclassifies clean (known from the cached
  features) are never attacked;
- FGSM: one forward and one backward pass, plus one forward pass to score;
- PGD: up to ``steps`` forward/backward passes plus one forward pass;
  a sample leaves the attack as soon as it is misclassified (early exit).
  The forward pass of each step doubles as the check of the iterate it
  starts from, so checking every iterate is free.

The rows (candidate, image) of a whole generation share one queue, so the
backbone always sees full batches even when early exits leave few survivors
per candidate. ``eps="auto"`` adds one calibration per fit (the dense
head, attacked at about six budgets). With precomputed features
(``backbone=None``) there are no pixels and an ``eps`` budget would have no
meaning, so these modes refuse feature input; ODIN works there.

torchattacks is an optional dependency (``pip install
'evoprune_sklearn[attacks]'``): it pins an old ``requests`` release, which a
plain install should not force on anyone who does not use these modes.

The MO-EvoPruneDeepTL research code had no adversarial objective; this is an
addition of this package.
"""

import math
import numbers
import time

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from .._engines import train_heads
from ._base import Objective, frozen_heads, head_module

__all__ = [
    "require_torchattacks",
    "default_alpha",
    "attack_images",
    "robust_mask",
    "calibrate_eps",
    "Adversarial",
]

ATTACKS = ("fgsm", "pgd")
INSTALL_HINT = "pip install 'evoprune_sklearn[attacks]'"
#: ``eps="auto"`` bisects ``log2(eps)`` in this range (about 0.06/255
#: to 32/255) ...
AUTO_EPS_RANGE = (2.0**-12, 2.0**-3)
#: ... in this many attacks of the dense head (a grid finer than 10% in eps).
AUTO_EPS_STEPS = 6
#: Attacked accuracy of the dense head at the calibrated budget, as a
#: fraction of its clean accuracy.
AUTO_EPS_TARGET = 0.5


def require_torchattacks(mode="fgsm"):
    """Import torchattacks, or explain how to install it.

    Parameters
    ----------
    mode : str, default="fgsm"
        The attack that needs it (named in the message).

    Returns
    -------
    torchattacks : module

    Raises
    ------
    ImportError
        When torchattacks is not installed.

    Examples
    --------
    >>> from evoprune_sklearn.objectives._adversarial import require_torchattacks
    >>> require_torchattacks("pgd").__name__
    'torchattacks'
    """
    try:
        import torchattacks
    except ImportError as exc:
        raise ImportError(
            f"The {mode!r} objective (Adversarial(method={mode!r})) needs "
            "torchattacks, an optional dependency that is not installed. Install "
            f"it with\n    {INSTALL_HINT}\n(or pip install torchattacks), or use "
            "the 'odin' objective, which needs no extra package."
        ) from exc
    return torchattacks


def default_alpha(eps, steps):
    """PGD step size when ``alpha=None``: ``2.5 * eps / steps`` (Madry et al.).

    Parameters
    ----------
    eps : float
    steps : int

    Returns
    -------
    alpha : float
    """
    return 2.5 * float(eps) / int(steps)


class _RoutedHeads(nn.Module):
    """``[0, 1]`` images -> backbone -> the head each row is routed to -> logits.

    Rows of several candidates go through the backbone as one batch; the
    logits of the last forward pass are kept, so that the forward pass of an
    attack step doubles as the check of the image it started from.
    """

    def __init__(self, trunk, heads):
        super().__init__()
        self.trunk = trunk
        self.heads = nn.ModuleList(heads)
        self.route = None
        self.logits = None
        self.n_forward = 0
        self.n_backward = 0

    def forward(self, x):
        feats = self.trunk(x)
        if len(self.heads) == 1:
            out = self.heads[0](feats)
        else:
            route = torch.as_tensor(self.route, device=feats.device)
            order = torch.argsort(route, stable=True)
            counts = torch.bincount(route, minlength=len(self.heads)).tolist()
            parts, start = [], 0
            for head, count in zip(self.heads, counts):
                if count:
                    parts.append(head(feats[order[start : start + count]]))
                    start += count
            inverse = torch.empty_like(order)
            inverse[order] = torch.arange(len(order), device=order.device)
            out = torch.cat(parts)[inverse]
        self.logits = out.detach()
        self.n_forward += len(x)
        return out


def _network(trunk, heads, device):
    return _RoutedHeads(trunk, heads).to(device).eval()


def robust_mask(network, images, labels, clean_correct, *, method="fgsm", eps,
                steps=10, alpha=None, noise=None, early_exit=True, batch_size=128):
    """Which (candidate, image) pairs withstand an FGSM or PGD attack.

    Parameters
    ----------
    network : torch.nn.Module
        Built by ``_network``: ``[0, 1]`` images through the backbone, then
        through head ``network.route[r]`` for row ``r``.
    images : torch.Tensor of shape (n, 3, S, S)
        Clean images in ``[0, 1]`` at the backbone's input size.
    labels : torch.Tensor of shape (n,)
        Encoded true labels.
    clean_correct : ndarray of bool, shape (n_heads, n)
        Whether each head classifies each clean image correctly.
    method : {"fgsm", "pgd"}, default="fgsm"
    eps : float
        L-infinity radius in ``[0, 1]`` pixel units.
    steps : int, default=10
        PGD iterations (FGSM takes one step of size ``eps``).
    alpha : float, default=None
        PGD step size; :func:`default_alpha` when None.
    noise : torch.Tensor of shape (n, 3, S, S), default=None
        PGD's random start, uniform in ``[-1, 1]`` and scaled by ``eps``;
        the same for every head. None starts from the clean image.
    early_exit : bool, default=True
        Stop attacking a pair as soon as it is misclassified, and never
        attack pairs misclassified clean. Does not change the result.
    batch_size : int, default=128
        Rows per pass through the backbone, across heads.

    Returns
    -------
    robust : ndarray of bool, shape (n_heads, n)
        Correct clean and at every point the attack visited.
    """
    torchattacks = require_torchattacks(method)
    if method not in ATTACKS:
        raise ValueError(f"Unknown attack {method!r}; valid attacks are {ATTACKS}.")
    n_heads, n = clean_correct.shape
    if method == "fgsm":
        n_steps, step_size, noise = 1, float(eps), None
    else:
        n_steps = int(steps)
        step_size = default_alpha(eps, steps) if alpha is None else float(alpha)
    # One FGSM step of size alpha, projected back into the eps-ball around
    # the clean image, is one PGD iteration; running PGD step by step is
    # what lets a row leave as soon as it is misclassified.
    attack = torchattacks.FGSM(network, eps=step_size)
    robust = np.asarray(clean_correct, dtype=bool).reshape(-1).copy()
    head_of, image_of = np.divmod(np.arange(n_heads * n), n)
    queue = np.flatnonzero(robust) if early_exit else np.arange(n_heads * n)
    next_row = 0
    rows = np.empty(0, dtype=int)
    steps_done = np.empty(0, dtype=int)
    x = images[:0]
    final_rows, final_x = [], []

    labels_np = labels.cpu().numpy()

    def score(rows, x):
        network.route = head_of[rows]
        with torch.no_grad():
            pred = network(x).argmax(dim=-1).cpu().numpy()
        robust[rows[pred != labels_np[image_of[rows]]]] = False

    while next_row < len(queue) or len(rows):
        take = queue[next_row : next_row + batch_size - len(rows)]
        next_row += len(take)
        if len(take):
            start = images[image_of[take]]
            if noise is not None:
                start = (start + eps * noise[image_of[take]]).clamp_(0.0, 1.0)
            rows = np.concatenate([rows, take])
            steps_done = np.concatenate([steps_done, np.zeros(len(take), dtype=int)])
            x = torch.cat([x, start])
        network.route = head_of[rows]
        clean = images[image_of[rows]]
        stepped = attack(x, labels[image_of[rows]])
        network.n_backward += len(rows)
        # The step's forward pass scored the point it started from: the
        # clean image (known already) or an attack point, to be checked.
        checked = (steps_done > 0) | (noise is not None)
        wrong = checked & (
            network.logits.argmax(dim=-1).cpu().numpy() != labels_np[image_of[rows]]
        )
        robust[rows[wrong]] = False
        x = torch.min(torch.max(stepped, clean - eps), clean + eps).clamp_(0.0, 1.0)
        steps_done = steps_done + 1
        leave = wrong if early_exit else np.zeros(len(rows), dtype=bool)
        finished = ~leave & (steps_done == n_steps)
        if finished.any():
            final_rows.append(rows[finished])
            final_x.append(x[torch.as_tensor(finished)])
        stay = torch.as_tensor(~leave & ~finished)
        rows, steps_done, x = rows[stay.numpy()], steps_done[stay.numpy()], x[stay]
        n_final = sum(len(r) for r in final_rows)
        if n_final >= batch_size or (n_final and next_row >= len(queue) and not len(rows)):
            score(np.concatenate(final_rows), torch.cat(final_x))
            final_rows, final_x = [], []
    return robust.reshape(n_heads, n)


def attack_images(model, images, labels, *, method="fgsm", eps=8 / 255, steps=10,
                  alpha=None, seed=0):
    """Adversarial versions of ``[0, 1]`` images against ``model``.

    The attack of a single network, for inspection; the robustness objective
    scores candidates with :func:`robust_mask`. PGD returns its last iterate.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``[0, 1]`` images to logits.
    images : torch.Tensor of shape (n, C, H, W)
        Clean images in ``[0, 1]``.
    labels : torch.Tensor of shape (n,)
        True (encoded) labels; the attack raises their cross-entropy loss.
    method : {"fgsm", "pgd"}, default="fgsm"
    eps : float, default=8/255
        L-infinity radius in ``[0, 1]`` pixel units.
    steps : int, default=10
        PGD iterations.
    alpha : float, default=None
        PGD step size; :func:`default_alpha` when None.
    seed : int, default=0
        Seeds PGD's random start (without touching the global torch RNG).

    Returns
    -------
    adversarial : torch.Tensor of shape (n, C, H, W)
        In ``[0, 1]`` and within ``eps`` of ``images`` in every pixel.

    Examples
    --------
    >>> import torch
    >>> from evoprune_sklearn.objectives._adversarial import attack_images
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    >>> x = torch.rand(4, 3, 2, 2)
    >>> adv = attack_images(model, x, torch.zeros(4, dtype=torch.long), eps=0.1)
    >>> bool((adv - x).abs().max() <= 0.1 + 1e-6) and 0 <= float(adv.min())
    True
    """
    torchattacks = require_torchattacks(method)
    if method == "fgsm":
        return torchattacks.FGSM(model, eps=eps)(images, labels)
    if method != "pgd":
        raise ValueError(f"Unknown attack {method!r}; valid attacks are {ATTACKS}.")
    alpha = default_alpha(eps, steps) if alpha is None else alpha
    attack = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    devices = [images.device] if images.is_cuda else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        return attack(images, labels)


def calibrate_eps(accuracy_at, target, *, low=AUTO_EPS_RANGE[0],
                  high=AUTO_EPS_RANGE[1], n_steps=AUTO_EPS_STEPS):
    """The budget whose attacked accuracy is closest to ``target``, by bisection.

    Bisects ``log2(eps)`` between ``low`` and ``high``, assuming accuracy
    falls as ``eps`` grows, and returns the tried budget whose accuracy came
    closest to ``target``.

    Parameters
    ----------
    accuracy_at : callable
        ``accuracy_at(eps)`` returns the attacked accuracy at budget ``eps``.
    target : float
    low, high : float
        Bisection range.
    n_steps : int
        Budgets tried.

    Returns
    -------
    eps : float
    trace : list of (eps, accuracy)
        Every budget tried, in order.

    Examples
    --------
    >>> from evoprune_sklearn.objectives._adversarial import calibrate_eps
    >>> eps, trace = calibrate_eps(lambda e: 1 - 20 * e, 0.5, low=1e-3, high=1.0,
    ...                            n_steps=12)
    >>> round(eps, 3), len(trace)
    (0.025, 12)
    """
    lo, hi = math.log2(low), math.log2(high)
    trace = []
    for _ in range(int(n_steps)):
        mid = (lo + hi) / 2
        eps = 2.0**mid
        acc = float(accuracy_at(eps))
        trace.append((eps, acc))
        if acc > target:
            lo = mid
        else:
            hi = mid
    eps = min(trace, key=lambda t: abs(t[1] - target))[0]
    return eps, trace


def _in_255(eps):
    return f"{eps * 255:.3g}/255"


class Adversarial(Objective):
    """Accuracy on FGSM- or PGD-attacked validation images (higher is better).

    Attacks (torchattacks, ``pip install 'evoprune_sklearn[attacks]'``) go
    through the whole network, frozen backbone included, within an
    L-infinity ball of ``eps`` in ``[0, 1]`` pixel space; a sample counts
    when it is classified correctly clean and at every point the attack
    visits. Image input only: with ``backbone=None`` there are no pixels, so
    fit raises a ValueError. ``"fgsm"`` and ``"pgd"`` in ``objectives=`` mean
    ``Adversarial("fgsm")`` and ``Adversarial("pgd")``.

    Parameters
    ----------
    method : {"fgsm", "pgd"}, default="fgsm"
        The attack. FGSM costs one forward/backward pass plus one forward
        pass per candidate and image; PGD up to ``steps`` forward/backward
        passes plus one (samples leave the attack once misclassified).
    eps : "auto" or float, default="auto"
        L-infinity budget in ``[0, 1]`` pixel units. ``"auto"`` calibrates it
        once per fit: the budget at which the dense (unpruned) head keeps half
        its clean accuracy under this attack, found by bisection (six attacks
        of the dense head); the values then spread across the front. A number
        is a fixed, stated threat model (e.g. ``8/255``); frozen ImageNet
        backbones fall at far smaller budgets, where every candidate may
        score 0. The budget used is ``eps_``.
    steps : int, default=5
        PGD iterations. At a calibrated budget 5 steps rank candidates like
        10 (attacked accuracies within about 0.05) at about half the cost.
    alpha : float, default=None
        PGD step size; ``2.5 * eps / steps`` when None.
    subset : int or None, default=128
        At most this many validation images (a fixed random subset drawn from
        the fit's ``random_state``) are attacked; None attacks them all. 128
        keeps the attacked accuracy within about 0.03 of its value on every
        validation image (digits), at half the cost of 256.
    early_exit : bool, default=True
        Stop attacking a sample once it is misclassified (same values).
    batch_size : int, default=128
        Rows per pass through the backbone, across candidates.

    Attributes
    ----------
    eps_ : float
        The budget in use, set by :meth:`prepare`: ``eps`` itself, or the
        calibrated budget when ``eps="auto"``.
    calibration_ : list of (eps, accuracy)
        Budgets tried on the dense head and its attacked accuracy at each
        (empty for a fixed budget).
    seconds_per_candidate_ : float
        Estimated seconds of one candidate's evaluation (NaN for a fixed
        budget unless the fit is verbose).

    Examples
    --------
    >>> from evoprune_sklearn.objectives import Adversarial
    >>> Adversarial("pgd", eps=8 / 255)
    Adversarial(eps=0.03137254901960784, method='pgd')
    """

    name = "robustness"
    greater_is_better = True

    _parameter_constraints = {
        "method": [StrOptions(set(ATTACKS))],
        "eps": [StrOptions({"auto"}), Interval(numbers.Real, 0, 1, closed="both")],
        "steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, 1, closed="right"), None],
        "subset": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "early_exit": ["boolean"],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, method="fgsm", eps="auto", steps=5, alpha=None, subset=128,
                 early_exit=True, batch_size=128):
        self.method = method
        self.eps = eps
        self.steps = steps
        self.alpha = alpha
        self.subset = subset
        self.early_exit = early_exit
        self.batch_size = batch_size

    def check(self, *, image_input):
        """Refuse bad settings, feature input and a missing torchattacks.

        Parameters
        ----------
        image_input : bool
            Whether the fit takes images (a backbone is set).
        """
        self._validate_params()
        if not image_input:
            raise ValueError(
                f"The {self.method!r} objective attacks images through the "
                "backbone and needs backbone to be set; with backbone=None there "
                "are no pixels, and an eps budget has no meaning for precomputed "
                "features. Use the 'odin' objective for feature input."
            )
        require_torchattacks(self.method)

    @property
    def runs_backbone(self):
        """Whether :meth:`evaluate` runs the backbone (set by :meth:`prepare`)."""
        return getattr(self, "_backbone", None) is not None

    def prepare(self, context):
        """Draw the attacked images and fix (or calibrate) the budget.

        Parameters
        ----------
        context : ObjectiveContext
        """
        require_torchattacks(self.method)
        backbone = context.backbone
        if context.images is None or backbone is None:
            raise ValueError(
                f"The {self.method!r} objective needs image input and a backbone; "
                "use the 'odin' objective with backbone=None."
            )
        seed = int(context.seed)
        rng = np.random.default_rng(seed)
        val = np.asarray(context.val_index)
        keep = np.arange(len(val))
        if self.subset is not None and len(val) > self.subset:
            keep = np.sort(rng.choice(len(val), size=self.subset, replace=False))
        self._device = context.device
        self._keep = keep
        self._images = context.images.to_tensor(
            backbone.input_size, index=val[keep]).to(self._device)
        self._labels = torch.as_tensor(np.asarray(context.y_val)[keep], device=self._device)
        self._noise = None
        if self.method == "pgd":
            gen = torch.Generator().manual_seed(seed)
            noise = torch.rand(self._images.shape, generator=gen) * 2 - 1
            self._noise = noise.to(self._device)
        self._backbone = backbone
        backbone.module.to(self._device)
        self.calibration_ = []
        if self.eps == "auto":
            self._calibrate(context)
        else:
            self.eps_ = float(self.eps)
            self.seconds_per_candidate_ = self._probe_seconds(context)
        if context.verbose:
            self._report(context)

    def _alpha(self):
        return None if self.alpha is None else float(self.alpha)

    def _dense_head(self, context):
        config = context.config
        genome = np.ones((1, config.head.n_genes), dtype=bool)
        return train_heads(genome, context.X_train, context.y_train, config,
                           sample_weight=context.w_train)

    def _clean_correct(self, heads, context):
        logits = heads.logits(np.asarray(context.X_val)[self._keep])
        return (logits.argmax(dim=-1).numpy() == self._labels.cpu().numpy()[None, :])

    def _robust(self, modules, clean_correct, eps):
        network = _network(self._backbone.unit_image_model(), modules, self._device)
        robust = robust_mask(
            network, self._images, self._labels, clean_correct, method=self.method,
            eps=eps, steps=int(self.steps), alpha=self._alpha(), noise=self._noise,
            early_exit=bool(self.early_exit), batch_size=int(self.batch_size),
        )
        # Images through the backbone, for benchmarks (this process only).
        self.n_forward_ = getattr(self, "n_forward_", 0) + network.n_forward
        self.n_backward_ = getattr(self, "n_backward_", 0) + network.n_backward
        return robust

    def _calibrate(self, context):
        dense = self._dense_head(context)
        clean = self._clean_correct(dense, context)
        modules = [head_module(dense.head_parameters(0), self._device)]
        seconds = {}

        def accuracy_at(eps):
            t0 = time.perf_counter()
            value = float(self._robust(modules, clean, eps).mean())
            seconds[eps] = time.perf_counter() - t0
            return value

        self._clean_accuracy = float(clean.mean())
        self.eps_, self.calibration_ = calibrate_eps(
            accuracy_at, AUTO_EPS_TARGET * self._clean_accuracy
        )
        self.seconds_per_candidate_ = seconds[self.eps_]

    def _probe_seconds(self, context):
        """Upper bound of a candidate's cost, without early exits."""
        if not context.verbose:
            return float("nan")
        modules = [head_module(context.config.initial_parameters(), self._device)]
        n = min(len(self._images), 32)
        network = _network(self._backbone.unit_image_model(), modules, self._device)
        attack = require_torchattacks(self.method).FGSM(network, eps=1 / 255)
        network.route = np.zeros(n, dtype=int)
        t0 = time.perf_counter()
        attack(self._images[:n], self._labels[:n])
        t_step = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        with torch.no_grad():
            network(self._images[:n])
        t_check = (time.perf_counter() - t0) / n
        n_steps = 1 if self.method == "fgsm" else int(self.steps)
        return len(self._images) * (n_steps * t_step + t_check)

    def _report(self, context):
        n_eval = context.n_evaluations
        what = f"Adversarial(method={self.method!r}"
        if self.method == "pgd":
            what += f", steps={self.steps}"
        what += ")"
        if self.calibration_:
            acc = dict(self.calibration_)[self.eps_]
            budget = (f"eps='auto' calibrated to {_in_255(self.eps_)}: the dense "
                      f"head's accuracy on the {len(self._images)} attacked images "
                      f"falls from {self._clean_accuracy:.2f} to {acc:.2f}")
            bound = "about"
        else:
            budget = f"eps={_in_255(self.eps_)}"
            bound = "at most"
        msg = (f"{what}, {budget}. Estimate: {bound} "
               f"{self.seconds_per_candidate_:.2g} s per candidate")
        if n_eval:
            total = self.seconds_per_candidate_ * n_eval
            msg += f", {bound} {total / 60:.2g} min for {n_eval} evaluations"
        print(msg + ", on top of head training.", flush=True)

    def evaluate(self, heads, context):
        """Attacked accuracy of every candidate.

        Parameters
        ----------
        heads : TrainedHeads
        context : ObjectiveContext

        Returns
        -------
        values : ndarray of shape (n_candidates,)
            Fraction of the attacked images that withstand the attack.
        """
        clean = self._clean_correct(heads, context)
        modules = frozen_heads(heads, self._device)
        return self._robust(modules, clean, self.eps_).mean(axis=1)
