"""Adversarial robustness: accuracy under FGSM or PGD attacks (torchattacks).

The robustness of a pruned head is its accuracy on validation images that an
attacker has perturbed within an L-infinity ball of radius ``attack_eps`` in
``[0, 1]`` pixel space, the perturbed images staying valid images. The attack
sees the whole network, frozen backbone and candidate head, so its gradients
flow through the backbone to the pixels.

torchattacks measures ``eps`` in the space of the tensors it modifies. Our
network expects *normalised* inputs, so the backbone's normalisation is
declared to the attack with ``set_normalization_used``: torchattacks then
un-normalises the inputs, attacks in ``[0, 1]`` pixel space (where
``eps = 8/255`` means eight grey levels) and re-normalises its output. That
avoids the common mistake of attacking already-normalised tensors, where
``eps`` would silently be ``1 / std`` (about 4x for ImageNet statistics) too
large and clipping to ``[0, 1]`` would be meaningless.

Costs, per candidate head and per image of the subset (at most
``robustness_subset`` validation images): FGSM one forward and one backward
pass of the backbone plus one forward pass to score; PGD ``attack_steps``
forward/backward passes plus one forward pass. With precomputed features
(``backbone=None``) there are no pixels and an ``eps`` budget would have no
meaning, so these modes refuse feature input; ODIN works there.

The MO-EvoPruneDeepTL research code had no adversarial objective; this is an
addition of this package.
"""

import numpy as np
import torch
from torch import nn

from ._objectives import Objective
from ._ood import head_module, image_batches

__all__ = ["attack_images", "AdversarialRobustness"]

ATTACKS = ("fgsm", "pgd")


def _make_attack(model, method, eps, steps, alpha, mean, std):
    import torchattacks

    if method == "fgsm":
        attack = torchattacks.FGSM(model, eps=eps)
    elif method == "pgd":
        attack = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps,
                                  random_start=True)
    else:
        raise ValueError(f"Unknown attack {method!r}; valid attacks are {ATTACKS}.")
    attack.set_normalization_used(mean=list(mean), std=list(std))
    return attack


def default_alpha(eps, steps):
    """PGD step size when ``attack_alpha=None``: ``2.5 * eps / steps`` (Madry et al.)."""
    return 2.5 * float(eps) / int(steps)


def attack_images(model, images, labels, *, method="fgsm", eps=8 / 255, steps=10,
                  alpha=None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), seed=0):
    """Adversarial versions of ``[0, 1]`` images against ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps *normalised* images ``(images - mean) / std`` to logits.
    images : torch.Tensor of shape (n, 3, H, W)
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
    mean, std : tuple of float
        The normalisation ``model`` expects, declared to torchattacks.
    seed : int, default=0
        Seeds PGD's random start (without touching the global torch RNG).

    Returns
    -------
    adversarial : torch.Tensor of shape (n, 3, H, W)
        In ``[0, 1]`` and within ``eps`` of ``images`` in every pixel.

    Examples
    --------
    >>> import torch
    >>> from evoprune_sklearn._adversarial import attack_images
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    >>> x = torch.rand(4, 3, 2, 2)
    >>> adv = attack_images(model, x, torch.zeros(4, dtype=torch.long), eps=0.1)
    >>> bool((adv - x).abs().max() <= 0.1 + 1e-6) and 0 <= float(adv.min())
    True
    """
    if alpha is None:
        alpha = default_alpha(eps, steps)
    attack = _make_attack(model, method, eps, steps, alpha, mean, std)
    devices = [images.device] if images.is_cuda else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        # The attack was told the inputs are normalised: hand it normalised
        # tensors, it works on attack.inverse_normalize(inputs) in [0, 1].
        adversarial = attack(attack.normalize(images), labels)
    return attack.inverse_normalize(adversarial).clamp_(0.0, 1.0)


def adversarial_accuracy(model, X, spec, y, *, input_size, method, eps, steps,
                         alpha, mean, std, seed=0, batch_size=64, device="cpu"):
    """Accuracy of ``model`` on attacked images.

    ``model`` takes normalised images; ``X`` holds raw images described by
    ``spec`` and is resized to ``input_size`` first.
    """
    norm_mean = torch.tensor(mean, device=device)[:, None, None]
    norm_std = torch.tensor(std, device=device)[:, None, None]
    correct = 0
    for start, stop, images in image_batches(X, spec, input_size, batch_size, device):
        labels = torch.as_tensor(np.asarray(y[start:stop]), device=device)
        adv = attack_images(model, images, labels, method=method, eps=eps,
                            steps=steps, alpha=alpha, mean=mean, std=std,
                            seed=seed + start)
        with torch.no_grad():
            pred = model((adv - norm_mean) / norm_std).argmax(dim=-1)
        correct += int((pred == labels).sum())
    return correct / len(X)


class AdversarialRobustness(Objective):
    """Accuracy on FGSM- or PGD-attacked validation images (higher is better).

    Parameters
    ----------
    method : {"fgsm", "pgd"}
    eps : float, default=8/255
    steps : int, default=10
    alpha : float, default=None
    subset : int or None, default=256
        At most this many validation images are attacked.
    """

    name = "robustness"
    greater_is_better = True

    def __init__(self, method, eps=8 / 255, steps=10, alpha=None, subset=256):
        if method not in ATTACKS:
            raise ValueError(f"Unknown attack {method!r}; valid attacks are {ATTACKS}.")
        self.method = method
        self.eps = float(eps)
        self.steps = int(steps)
        self.alpha = default_alpha(eps, steps) if alpha is None else float(alpha)
        self.subset = subset

    def prepare(self, data, estimator):
        images = getattr(data, "images", None)
        backbone = getattr(estimator, "backbone_", None)
        if images is None or backbone is None:
            raise ValueError(
                f"robustness={self.method!r} needs image input and a backbone; "
                "use robustness='odin' with backbone=None."
            )
        X, spec = images
        self._seed = int(getattr(data, "seed", 0))
        rng = np.random.default_rng(self._seed)
        val = np.asarray(data.val_index)
        keep = np.arange(len(val))
        if self.subset is not None and len(val) > self.subset:
            keep = np.sort(rng.choice(len(val), size=self.subset, replace=False))
        self._X, self._spec = X[val[keep]], spec
        self._y = np.asarray(data.y_val)[keep]
        self._backbone = backbone
        self._device = getattr(estimator, "_device", "cpu")

    def evaluate(self, heads, data):
        bb = self._backbone
        bb.module.to(self._device)
        values = []
        for i in range(len(heads)):
            model = nn.Sequential(bb.module, head_module(heads.head_parameters(i),
                                                        self._device)).eval()
            values.append(adversarial_accuracy(
                model, self._X, self._spec, self._y, input_size=bb.input_size,
                method=self.method, eps=self.eps, steps=self.steps,
                alpha=self.alpha, mean=bb.mean, std=bb.std, seed=self._seed,
                device=self._device,
            ))
        return np.asarray(values, dtype=float)
