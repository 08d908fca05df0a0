"""Ensembles of Pareto-front members against single members, over seeds.

For every seed the bundled digits are split into a fit set and a held-out
test set (stratified, ``--test-size``). The classifier is fitted on the fit
set only; it carves its own validation fold out of it, where fitness is
measured. Then, for each strategy, this script reports

* ``val_acc``  accuracy on the classifier's own validation fold (what the
  package's defaults are chosen on: test data never choose anything),
* ``test_acc`` accuracy on the held-out test set,
* ``auroc_*``  OoD detection AUROC, test digits (positives) against an
  out-of-distribution set, scored with the ODIN score (max softmax of
  logits / T, T = 1000, no input perturbation); for an ensemble the mean of
  its members' scores. Two OoD sets: ``photos`` (random crops of the two
  scikit-learn sample photographs, far OoD) and ``inverted`` (the test digits
  with inverted intensities, near OoD),
* ``members``  ensemble size.

Strategies: ``selected`` (the member ``predict`` uses, ``selection="knee"``),
``best_val`` (the member with the best validation accuracy), and every
ensemble: the whole front, the top-k members by validation accuracy and the
paper's accuracy-percentile windows, each with soft and hard voting. A window
that selects no member on some seed is reported with fewer seeds (``n``).

Every member's logits are computed once per data set and each strategy picks
its rows, which is what ``ensemble_predict`` does (checked against it on the
first seed).

Run ``python benchmarks/bench_ensemble.py`` (about 10 minutes on 2 CPU cores;
``--help`` for the knobs).

``--export`` instead fits once (default 512-neuron head) and prints, for every
front member, the parameters of its physically pruned export
(``export_model``) against the dense head, after checking that the export's
logits equal the masked head's.
"""

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn._ensemble import (
    PAPER_WINDOWS,
    member_logits,
    odin_scores,
    resolve_members,
    vote,
)
from evoprune_sklearn.datasets import load_digits_images


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


def strategies():
    out = [("selected", None, None), ("best_val", None, None)]
    ensembles = (["front", ("top", 3), ("top", 5)] + list(PAPER_WINDOWS)
                 + [("window", "accuracy", 50, 100)])
    for m in ensembles:
        for voting in ("soft", "hard"):
            out.append((f"{_name(m)} {voting}", m, voting))
    return out


def _name(m):
    if isinstance(m, tuple) and m[0] == "window":
        return f"window {m[2]}-{m[3]}"
    if isinstance(m, tuple) and m[0] == "top":
        return f"top-{m[1]}"
    return m


def evaluate_seed(seed, X, y, args):
    X_fit, X_test, y_fit, y_test = train_test_split(
        X, y, test_size=args.test_size, stratify=y, random_state=seed
    )
    clf = EvoPruneClassifier(
        image_size=args.image_size, hidden_layer_sizes=(args.hidden,),
        objectives=tuple(args.objectives), pop_size=args.pop_size,
        n_evaluations=args.n_evaluations, device=args.device, random_state=seed,
    )
    t0 = time.perf_counter()
    clf.fit(X_fit, y_fit)
    fit_s = time.perf_counter() - t0
    front = clf.pareto_front_
    everyone = np.arange(len(front))
    # The classifier's own validation fold (rows of X_fit held out in fit).
    val = clf._val_index
    sets = {
        "val": (clf.extract_features(X_fit[val]), y_fit[val]),
        "test": (clf.extract_features(X_test), y_test),
        "photos": (clf.extract_features(photo_crops(len(X_test), X.shape[1], seed)), None),
        "inverted": (clf.extract_features(255 - X_test), None),
    }
    logits = {k: member_logits(front, everyone, f, clf._device) for k, (f, _) in sets.items()}
    proba = {k: torch.softmax(v, dim=-1).numpy() for k, v in logits.items()}
    odin = {k: odin_scores(v, 1000.0) for k, v in logits.items()}
    best_val = front.select("accuracy")
    rows = {}
    for name, members, voting in strategies():
        if name == "selected":
            idx, voting = np.array([clf.best_index_]), "soft"
        elif name == "best_val":
            idx, voting = np.array([best_val]), "soft"
        else:
            try:
                idx = resolve_members(front, members)
            except ValueError:  # an empty percentile window on this front
                continue
        row = {"members": len(idx)}
        for split in ("val", "test"):
            pred = clf.classes_[vote(proba[split][idx], voting)]
            row[f"{split}_acc"] = float(np.mean(pred == sets[split][1]))
        s_in = odin["test"][idx].mean(axis=0)
        for ood in ("photos", "inverted"):
            s_out = odin[ood][idx].mean(axis=0)
            labels = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
            row[f"auroc_{ood}"] = float(roc_auc_score(labels, np.r_[s_in, s_out]))
        rows[name] = row
    if args.check_api:
        api = clf.ensemble_predict(X_test, members="front", voting="hard")
        assert np.mean(api == y_test) == rows["front hard"]["test_acc"]
        api = clf.ensemble_ood_score(X_test, members=("top", 3))
        np.testing.assert_allclose(api, odin["test"][front.top(3)].mean(0))
    info = {"front": len(front), "fit_s": fit_s,
            "selected_genes": front[clf.best_index_].objectives["complexity"]}
    return rows, info


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
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--hidden", type=int, default=None,
                   help="hidden layer size (default 64; 512 with --export)")
    p.add_argument("--pop-size", type=int, default=16)
    p.add_argument("--n-evaluations", type=int, default=96)
    p.add_argument("--test-size", type=float, default=0.3)
    p.add_argument("--n-per-class", type=int, default=None,
                   help="subsample the digits (fewer training images)")
    p.add_argument("--objectives", nargs="+", default=["accuracy", "complexity"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--export", action="store_true",
                   help="print the parameter saving of exported members instead")
    p.add_argument("--encoding", default="features", choices=["features", "neurons"])
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    X, y = load_digits_images(size=args.image_size, n_per_class=args.n_per_class)
    if args.export:
        args.hidden = args.hidden or 512
        return export_report(X, y, args)
    args.hidden = args.hidden or 64
    print(f"digits {X.shape}, {args.seeds} seeds, objectives {args.objectives}, "
          f"pop {args.pop_size}, {args.n_evaluations} evaluations, hidden {args.hidden}")
    per_seed, infos = [], []
    for seed in range(args.seeds):
        args.check_api = seed == 0
        rows, info = evaluate_seed(seed, X, y, args)
        per_seed.append(rows)
        infos.append(info)
        print(f"seed {seed}: front {info['front']} members, selected keeps "
              f"{info['selected_genes']:.0%} of genes, fit {info['fit_s']:.0f} s", flush=True)
    names = [n for n, _, _ in strategies() if any(n in r for r in per_seed)]
    cols = ["val_acc", "test_acc", "auroc_photos", "auroc_inverted", "members"]
    print()
    print(f"{'strategy':<20}{'n':>3}" + "".join(f"{c:>18}" for c in cols))
    means = {}
    for name in names:
        vals = [r[name] for r in per_seed if name in r]
        line = f"{name:<20}{len(vals):>3}"
        for c in cols:
            v = np.array([r[c] for r in vals], dtype=float)
            sd = v.std(ddof=1) if len(v) > 1 else 0.0
            digits = 1 if c == "members" else 3
            line += f"{v.mean():>11.{digits}f} ± {sd:.{digits}f}"
            means.setdefault(name, {})[c] = v.mean()
        print(line)
    singles = ("selected", "best_val")
    full = [n for n in names if all(n in r for r in per_seed) and n not in singles]
    pick = max(full, key=lambda n: (means[n]["val_acc"], -names.index(n)))
    print(f"\nbest ensemble on validation accuracy (over strategies present on every "
          f"seed): {pick!r}; its test accuracy {means[pick]['test_acc']:.3f} vs "
          f"best_val member {means['best_val']['test_acc']:.3f} and selected member "
          f"{means['selected']['test_acc']:.3f}")


if __name__ == "__main__":
    main()
