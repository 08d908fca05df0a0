"""Robustness report: front members and ensembles against a plain baseline.

For each model it measures, on data given by the caller (held-out test data):
accuracy, OoD-detection AUROC against a near and a far OoD set, and accuracy
under white-box FGSM and PGD attacks (torchattacks) and under transfer
attacks crafted on one member. An ensemble is attacked through its averaged
logits (the whole network, frozen backbone and every member's head, in one
module), so the attacker sees exactly what the ensemble computes.

The baseline row is scikit-learn's :class:`~sklearn.linear_model.LogisticRegression`
fitted on the same frozen features of the training fold, scored by its
maximum softmax probability (the simple alternative a user would try first).
"""

import numbers

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from ._ensemble import (
    DEFAULT_OOD_METHOD,
    check_ood_method,
    member_logits,
    resolve_members,
    score_ood,
)
from ._images import Images
from .objectives._adversarial import attack_images, calibrate_eps
from .objectives._odin import ood_auroc

__all__ = ["AveragedLogits", "attack_accuracy", "robustness_report"]

#: Columns of the report, in order.
COLUMNS = ("kind", "n_members", "accuracy", "auroc_near", "auroc_far",
           "fgsm", "pgd", "fgsm_transfer", "pgd_transfer")


class AveragedLogits(nn.Module):
    """``[0, 1]`` images -> trunk -> mean of several heads' logits.

    Parameters
    ----------
    trunk : torch.nn.Module or None
        Maps images to features (None: the input is features already).
    heads : list of torch.nn.Module
        Feature -> logits modules; their logits are averaged.
    """

    def __init__(self, trunk, heads):
        super().__init__()
        self.trunk = trunk
        self.heads = nn.ModuleList(heads)

    def forward(self, x):
        feats = x if self.trunk is None else self.trunk(x)
        return torch.stack([h(feats) for h in self.heads]).mean(dim=0)


def attack_accuracy(model, images, labels, *, method="fgsm", eps, steps=5, seed=0,
                    adversarial=None):
    """Accuracy of ``model`` on attacked images.

    Parameters
    ----------
    model : torch.nn.Module
        ``[0, 1]`` images -> logits.
    images : torch.Tensor of shape (n, 3, H, W)
    labels : torch.Tensor of shape (n,)
        Encoded labels.
    method : {"fgsm", "pgd"}, default="fgsm"
    eps : float
        L-infinity budget in ``[0, 1]`` pixel units.
    steps : int, default=5
        PGD iterations.
    seed : int, default=0
        PGD's random start.
    adversarial : torch.Tensor, default=None
        Images already attacked (a transfer attack crafted on another model);
        None crafts them against ``model`` (white box).

    Returns
    -------
    accuracy : float
    adversarial : torch.Tensor
        The attacked images.
    """
    if adversarial is None:
        adversarial = attack_images(model, images, labels, method=method, eps=eps,
                                    steps=steps, seed=seed)
    with torch.no_grad():
        pred = model(adversarial).argmax(dim=-1)
    return float((pred == labels).float().mean()), adversarial


def _lr_head(lr):
    head = nn.Linear(lr.coef_.shape[1], lr.coef_.shape[0])
    with torch.no_grad():
        coef, intercept = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:  # binary: logits (0, z) give the same softmax
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.r_[0.0, intercept]
            head = nn.Linear(coef.shape[1], 2)
        head.weight.copy_(torch.as_tensor(coef, dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(intercept, dtype=torch.float32))
    return head.requires_grad_(False).eval()


def _name(spec):
    if isinstance(spec, tuple) and spec and spec[0] == "top":
        return f"top-{spec[1]}" + (f" {spec[2]}" if len(spec) == 3 else "")
    if isinstance(spec, tuple) and spec and spec[0] == "window":
        return f"window {spec[1]} {spec[2]}-{spec[3]}"
    if isinstance(spec, str):
        return spec
    return str(list(np.atleast_1d(spec).tolist()))


def _check_attacks(attacks):
    attacks = tuple(attacks or ())
    bad = [a for a in attacks if a not in ("fgsm", "pgd")]
    if bad:
        raise ValueError(f"attacks must hold 'fgsm' and/or 'pgd', got {attacks!r}.")
    return attacks


def robustness_report(clf, X, y, *, X_near=None, X_far=None, members=("top", 3),
                      ensembles=(("top", 3), "front"), ood_method=DEFAULT_OOD_METHOD,
                      attacks=("fgsm", "pgd"), eps="auto", n_attack=64, steps=5,
                      baseline=True, random_state=0):
    """Accuracy, OoD detection and attacked accuracy of members, ensembles and a baseline.

    Parameters
    ----------
    clf : EvoPruneClassifier
        A fitted estimator.
    X, y : array-like
        Held-out in-distribution data (images or features, as in ``fit``).
    X_near, X_far : array-like, default=None
        Near and far OoD samples (for example altered digits, and photos);
        the AUROC column is NaN when not given.
    members : "front", int, list of int or tuple, default=("top", 3)
        Members reported one by one (named as ``members=`` of
        :meth:`~EvoPruneClassifier.ensemble_predict`).
    ensembles : sequence, default=(("top", 3), "front")
        Ensembles reported, each a member choice; soft vote.
    ood_method : str, default="knn"
        OoD score of members and ensembles (``method=`` of
        :meth:`~EvoPruneClassifier.ensemble_ood_score`).
    attacks : sequence of {"fgsm", "pgd"}, default=("fgsm", "pgd")
        White-box attacks (each model attacked through its own logits; an
        ensemble through its averaged logits) and transfer attacks crafted on
        the most accurate member. Empty, or feature input (``backbone=None``,
        no pixels to perturb): no attack columns are filled.
    eps : "auto" or float, default="auto"
        Budget in ``[0, 1]`` pixel units. ``"auto"``: the budget an
        adversarial objective calibrated during ``fit``; without one, the
        budget at which FGSM halves the most accurate member's accuracy on
        the attacked images (the same bisection, so every row is attacked at
        a budget where attacks neither always nor never succeed).
    n_attack : int, default=64
        Images attacked (a random subset of ``X``).
    steps : int, default=5
        PGD iterations (step size ``2.5 * eps / steps``).
    baseline : bool, default=True
        Add the logistic-regression row.
    random_state : int, default=0
        Draws the attacked subset and PGD's random start.

    Returns
    -------
    report : pandas.DataFrame
        One row per model (index ``model``), columns ``kind`` ("member",
        "ensemble" or "baseline"), ``n_members``, ``accuracy``,
        ``auroc_near``, ``auroc_far``, ``fgsm``, ``pgd``, ``fgsm_transfer``,
        ``pgd_transfer``; ``report.attrs["eps"]`` holds the budget.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.robustness import robustness_report
    >>> X, y = make_classification(n_samples=150, n_features=20, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, pop_size=6, n_evaluations=12,
    ...                          random_state=0).fit(X[:100], y[:100])
    >>> report = robustness_report(clf, X[100:], y[100:], X_far=X[100:] * 10)
    >>> list(report["kind"].unique())
    ['member', 'ensemble', 'baseline']
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(clf, "pareto_front_")
    attacks = _check_report_args(ood_method, attacks, eps, n_attack)
    front = clf.pareto_front_
    rows = {f"member {int(i)}": ("member", [int(i)])
            for i in resolve_members(front, members)}
    for e in ensembles:
        idx = resolve_members(front, e, "ensembles")
        rows[f"ensemble {_name(e)}"] = ("ensemble", [int(i) for i in idx])
    y_enc = _encoded(clf, y)
    device, ref = clf.device_, clf.ood_reference_
    feats = {"in": clf.extract_features(X)}
    for key, data in (("near", X_near), ("far", X_far)):
        if data is not None:
            feats[key] = clf.extract_features(data)

    table, models = {}, {}  # models: name -> feature -> logits modules, for the attacks
    for name, (kind, idx) in rows.items():
        table[name] = _member_row(front, kind, idx, feats, y_enc, ood_method, ref, device)
        models[name] = [front[i].module().requires_grad_(False) for i in idx]
    if baseline:
        lr = LogisticRegression(max_iter=1000).fit(ref["features"], ref["labels"])
        table["logistic regression"] = _baseline_row(lr, feats, y_enc)
        models["logistic regression"] = [_lr_head(lr)]
    report = _frame(table, ood_method)
    if attacks and clf.backbone_ is not None:
        _attack_columns(report, clf, X, y_enc, models, attacks, eps=eps,
                        n_attack=n_attack, steps=steps, random_state=random_state)
    return report


def _check_report_args(ood_method, attacks, eps, n_attack):
    check_ood_method(ood_method)
    attacks = _check_attacks(attacks)
    if not (eps == "auto" or (isinstance(eps, numbers.Real) and eps > 0)):
        raise ValueError(f"eps must be 'auto' or a positive number, got {eps!r}.")
    if not isinstance(n_attack, numbers.Integral) or n_attack < 1:
        raise ValueError(f"n_attack must be an int >= 1, got {n_attack!r}.")
    return attacks


def _encoded(clf, y):
    """``y`` as indices into ``clf.classes_``; unknown labels are refused."""
    y = np.asarray(y)
    y_enc = np.searchsorted(clf.classes_, y)
    if not np.array_equal(clf.classes_[np.clip(y_enc, 0, len(clf.classes_) - 1)], y):
        raise ValueError("y holds labels the estimator was not fitted on.")
    return y_enc


def _aurocs(row, feats, score):
    """``auroc_near`` and ``auroc_far`` of ``score`` (features -> OoD score)."""
    s_in = score(feats["in"])
    for key in ("near", "far"):
        row[f"auroc_{key}"] = ood_auroc(s_in, score(feats[key])) if key in feats else np.nan
    return row


def _member_row(front, kind, idx, feats, y_enc, ood_method, ref, device):
    logits = member_logits(front, idx, feats["in"], device)
    pred = torch.softmax(logits, dim=-1).mean(dim=0).argmax(dim=-1).numpy()
    row = {"kind": kind, "n_members": len(idx), "accuracy": float(np.mean(pred == y_enc))}
    return _aurocs(row, feats, lambda f: score_ood(front, idx, f, ood_method,
                                                   reference=ref, device=device))


def _baseline_row(lr, feats, y_enc):
    proba = lr.predict_proba(feats["in"])
    row = {"kind": "baseline", "n_members": 1,
           "accuracy": float(np.mean(lr.classes_[proba.argmax(1)] == y_enc))}
    return _aurocs(row, feats, lambda f: lr.predict_proba(f).max(1))


def _frame(table, ood_method):
    report = pd.DataFrame.from_dict(table, orient="index")
    for col in COLUMNS:
        if col not in report:
            report[col] = np.nan
    report = report[list(COLUMNS)]
    report.index.name = "model"
    report.attrs["eps"] = None
    report.attrs["ood_method"] = ood_method
    return report


def _attack_columns(report, clf, X, y_enc, models, attacks, *, eps, n_attack, steps,
                    random_state):
    """Fill the white-box and transfer attack columns of ``report`` in place."""
    device, front, backbone = clf.device_, clf.pareto_front_, clf.backbone_
    rng = np.random.default_rng(random_state)
    pick = np.sort(rng.choice(len(y_enc), size=min(int(n_attack), len(y_enc)),
                              replace=False))
    backbone.module.to(device)
    # extract_features already checked X's image shape against the fitted one
    images = Images.of(X).to_tensor(backbone.input_size, index=pick).to(device)
    labels = torch.as_tensor(y_enc[pick], device=device)
    trunk = backbone.unit_image_model()
    nets = {name: AveragedLogits(trunk, heads).to(device).eval()
            for name, heads in models.items()}
    source = f"member {int(front.top(1)[0])}"
    source_net = nets.get(source)
    if source_net is None:
        source_net = AveragedLogits(
            trunk, [front[int(front.top(1)[0])].module()]).to(device).eval()
    budget = _budget(clf, eps, source_net, images, labels)
    report.attrs["eps"] = budget
    report.attrs["transfer_source"] = source
    for method in attacks:
        crafted = attack_images(source_net, images, labels, method=method, eps=budget,
                                steps=steps, seed=random_state)
        for name, net in nets.items():
            acc, _ = attack_accuracy(net, images, labels, method=method, eps=budget,
                                     steps=steps, seed=random_state)
            report.loc[name, method] = acc
            report.loc[name, f"{method}_transfer"] = attack_accuracy(
                net, images, labels, adversarial=crafted, eps=budget)[0]


def _budget(clf, eps, net, images, labels):
    if eps != "auto":
        return float(eps)
    for objective in getattr(clf, "objectives_", ()):
        if getattr(objective, "eps_", None) is not None:
            return float(objective.eps_)
    with torch.no_grad():
        clean = float((net(images).argmax(-1) == labels).float().mean())

    def accuracy_at(e):
        return attack_accuracy(net, images, labels, method="fgsm", eps=e)[0]

    return float(calibrate_eps(accuracy_at, 0.5 * clean)[0])
