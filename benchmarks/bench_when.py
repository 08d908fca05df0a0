"""When to use EvoPruneClassifier, and when logistic regression is enough.

Side by side on the bundled digits (scikit-learn's 1797 8x8 digits as RGB
images, the README's setting: ``efficientnet_lite0`` at ``image_size=64``,
default parameters), each seed another stratified 75/25 split and
``random_state``, everything on the same frozen features:

- ``LogisticRegression(max_iter=5000)`` on all features: the simplest thing
  a user could do instead;
- the same refitted on the support of an L1 path at the selected member's
  size: the simplest pruning alternative;
- the estimator's selected member (what ``predict`` uses) and its default
  ensemble.

For each: test accuracy; features kept; parameters and bytes of the exported
model (backbone included; the head alone in brackets); CPU latency of one
image through the exported network, one torch thread, median of 30 calls;
out-of-distribution AUROC against far OoD (300 crops of scikit-learn's
sample photos) and near OoD (the test digits inverted); accuracy under FGSM
at ``eps`` (first 200 test images, white-box, through the backbone, with
torchattacks); fit seconds (feature extraction included for every row).

LR's OoD score is its max softmax probability; the member's is the score of
:meth:`~evoprune_sklearn.EvoPruneClassifier.ensemble_ood_score` restricted to
that member; the ensemble's is ``ensemble_ood_score`` at its defaults (both
``method="knn"``: the distance to the 10th nearest training sample on the
features the members keep). The ensemble is attacked through its members'
averaged logits; its "kept" is the members' mean.

Run: ``PYTHONPATH=. python benchmarks/bench_when.py [--seeds 3] [--eps 0.004]``.
"""

import argparse
import io
import time

import numpy as np
import torch
from bench_ensemble import photo_crops  # the far OoD set bench_ensemble uses
from torch import nn

from evoprune_sklearn._ensemble import DEFAULT_MEMBERS, resolve_members
from evoprune_sklearn._export import PrunedNetwork
from evoprune_sklearn.robustness import AveragedLogits


def l1_support(F, y, k, seed):
    """Feature indices of the L1-logistic path point whose support is closest to ``k``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import l1_min_c

    Z = StandardScaler().fit_transform(F)
    best = None
    for C in l1_min_c(Z, y, loss="log") * np.logspace(0.3, 3, 12):
        ovr = OneVsRestClassifier(LogisticRegression(
            l1_ratio=1.0, solver="liblinear", C=C, max_iter=2000, random_state=seed,
        )).fit(Z, y)
        coef = np.vstack([e.coef_ for e in ovr.estimators_])
        support = np.flatnonzero(np.any(coef != 0, axis=0))
        if best is None or abs(len(support) - k) < abs(len(best) - k):
            best = support
    return best


class SelectedLinear(nn.Module):
    """A linear layer reading the given columns of the backbone features."""

    def __init__(self, columns, coef, intercept):
        super().__init__()
        self.register_buffer("columns", torch.as_tensor(np.asarray(columns)))
        self.linear = nn.Linear(coef.shape[1], coef.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.as_tensor(coef, dtype=torch.float32))
            self.linear.bias.copy_(torch.as_tensor(intercept, dtype=torch.float32))

    def forward(self, features):
        return self.linear(features.index_select(1, self.columns))


def logistic_network(exported, lr, columns):
    """The member's exported backbone with ``lr`` (fitted on ``columns``) as its head."""
    head = SelectedLinear(columns, lr.coef_, lr.intercept_)
    return PrunedNetwork(exported.backbone, head, exported.input_size).eval()


def n_bytes(module):
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.tell()


def latency_ms(net, size):
    x = torch.rand(1, 3, size, size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for _ in range(5):
                net(x)
            times = []
            for _ in range(30):
                t = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads)
    return 1000 * float(np.median(times))


def fgsm_accuracy(net, X, y, eps):
    import torchattacks

    images = torch.as_tensor(X, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    labels = torch.as_tensor(y)
    attack = torchattacks.FGSM(net, eps=eps)
    adv = attack(images, labels)
    with torch.no_grad():
        return float((net(adv).argmax(1) == labels).float().mean())


def auroc(score_in, score_out):
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(score_in)), np.zeros(len(score_out))],
                               np.r_[score_in, score_out]))


def run_seed(X, y, seed, args):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from evoprune_sklearn import EvoPruneClassifier

    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y,
                                              random_state=seed)
    far = photo_crops(300, X.shape[1], seed)
    near = 255 - X_te
    t = time.perf_counter()
    search = {k: v for k, v in (("pop_size", args.pop_size),
                                ("n_evaluations", args.n_evaluations)) if v}
    clf = EvoPruneClassifier(image_size=args.image_size, random_state=seed, **search)
    clf.fit(X_tr, y_tr)
    fit_seconds = time.perf_counter() - t
    extract_seconds = clf.fit_time_["features"]
    F_tr, F_te = clf.extract_features(X_tr), clf.extract_features(X_te)
    F_far, F_near = clf.extract_features(far), clf.extract_features(near)
    member = clf.pareto_front_[clf.best_index_]
    exported = clf.export_model()
    n_genes = clf.n_genes_
    attack_X, attack_y = X_te[:args.n_attack], y_te[:args.n_attack]
    rows = {}

    def lr_row(name, columns, seconds):
        lr = LogisticRegression(max_iter=5000)
        t = time.perf_counter()
        lr.fit(F_tr[:, columns], y_tr)
        seconds += time.perf_counter() - t
        net = logistic_network(exported, lr, columns)
        msp = [lr.predict_proba(F[:, columns]).max(1) for F in (F_te, F_far, F_near)]
        rows[name] = dict(
            accuracy=lr.score(F_te[:, columns], y_te), kept=len(columns) / n_genes,
            params=sum(p.numel() for p in net.parameters()),
            head_params=lr.coef_.size + lr.intercept_.size, bytes=n_bytes(net),
            latency_ms=latency_ms(net, X.shape[1]),
            far=auroc(msp[0], msp[1]), near=auroc(msp[0], msp[2]),
            fgsm=fgsm_accuracy(net, attack_X, attack_y, args.eps), fit_seconds=seconds,
        )

    lr_row("LogisticRegression, all features", np.arange(n_genes), extract_seconds)
    t = time.perf_counter()
    support = l1_support(F_tr, y_tr, member.n_active, seed)
    lr_row("L1 path + LogisticRegression, same size", support,
           extract_seconds + time.perf_counter() - t)

    index = clf.best_index_
    scores = [clf.ensemble_ood_score(Z, members=[index]) for Z in (X_te, far, near)]
    rows["EvoPrune selected member"] = dict(
        accuracy=float(np.mean(member.predict(F_te) == y_te)), kept=member.n_active / n_genes,
        params=exported.summary()["n_total_parameters"],
        head_params=exported.summary()["n_parameters"], bytes=n_bytes(exported),
        latency_ms=latency_ms(exported, X.shape[1]),
        far=auroc(scores[0], scores[1]), near=auroc(scores[0], scores[2]),
        fgsm=fgsm_accuracy(exported, attack_X, attack_y, args.eps), fit_seconds=fit_seconds,
    )
    ens = [clf.ensemble_ood_score(Z) for Z in (X_te, far, near)]
    top = resolve_members(clf.pareto_front_, DEFAULT_MEMBERS)
    trunk = PrunedNetwork(exported.backbone, nn.Identity(), exported.input_size)
    heads = [clf.export_model(member=i, head_only=True) for i in top]
    ensemble_net = AveragedLogits(trunk, heads).eval()  # white box: the averaged logits
    rows["EvoPrune default ensemble"] = dict(
        accuracy=float(np.mean(clf.ensemble_predict(X_te) == y_te)),
        kept=np.mean([clf.pareto_front_[i].n_active for i in top]) / n_genes,
        params=sum(p.numel() for p in ensemble_net.parameters()),
        head_params=sum(sum(p.numel() for p in h.parameters()) for h in heads),
        bytes=n_bytes(ensemble_net), latency_ms=latency_ms(ensemble_net, X.shape[1]),
        far=auroc(ens[0], ens[1]), near=auroc(ens[0], ens[2]),
        fgsm=fgsm_accuracy(ensemble_net, attack_X, attack_y, args.eps),
        fit_seconds=fit_seconds,
    )
    return rows


def main(argv=None):
    import pandas as pd

    from evoprune_sklearn.datasets import load_digits_images

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--eps", type=float, default=1 / 255)
    parser.add_argument("--n-attack", type=int, default=200)
    parser.add_argument("--pop-size", type=int, default=None,
                        help="search size for a quick check (default: the estimator's)")
    parser.add_argument("--n-evaluations", type=int, default=None)
    args = parser.parse_args(argv)
    X, y = load_digits_images(size=32)
    per_seed = []
    for seed in range(args.seeds):
        rows = run_seed(X, y, seed, args)
        frame = pd.DataFrame(rows).T
        print(f"seed {seed}\n{frame.to_string(float_format=lambda v: f'{v:.4g}')}",
              flush=True)
        per_seed.append(frame.astype(float))
    mean = sum(per_seed) / len(per_seed)
    print(f"\nMean over {args.seeds} seeds (FGSM eps = {args.eps * 255:.2f}/255):")
    print(mean.to_markdown(floatfmt=".4g") if _has_tabulate() else mean.to_string())


def _has_tabulate():
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
