"""Cost and behaviour of each robustness mode on the bundled digits.

For each mode (ODIN with eps=0, ODIN with eps>0, FGSM, PGD) this runs a
three-objective search (accuracy, complexity, robustness) with the bundled
EfficientNet-Lite0 backbone and prints:

- seconds per evaluation: the whole search divided by evaluations, and the
  robustness objective alone (its ``evaluate`` calls, timed);
- the Pareto front's size and the Spearman rank correlations between
  accuracy, complexity and robustness across its members;
- the trade-off: the largest robustness difference between two front members
  whose validation accuracies differ by at most 0.02.

Run: ``PYTHONPATH=. python benchmarks/bench_robustness.py [--quick] [--device cuda]``.
``--threads N`` sets torch's CPU threads (the figures in the docs used 2).
"""

import argparse
import time

import numpy as np


def _timed(cls, box):
    """Wrap ``cls.evaluate`` so its seconds accumulate in ``box``."""
    original = cls.evaluate

    def evaluate(self, heads, data):
        t0 = time.perf_counter()
        out = original(self, heads, data)
        box["seconds"] += time.perf_counter() - t0
        box["calls"] += len(heads)
        return out

    cls.evaluate = evaluate
    return original


def _tradeoff(frame, window=0.02):
    acc, rob = frame["accuracy"].to_numpy(), frame["robustness"].to_numpy()
    best = 0.0
    for i in range(len(acc)):
        near = np.abs(acc - acc[i]) <= window
        best = max(best, float(rob[near].max() - rob[near].min()))
    return best


def main(argv=None):
    import torch
    from scipy.stats import spearmanr
    from sklearn.model_selection import train_test_split

    from evoprune_sklearn import EvoPruneClassifier
    from evoprune_sklearn._adversarial import AdversarialRobustness
    from evoprune_sklearn._ood import ODINRobustness
    from evoprune_sklearn.datasets import load_digits_images

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny budgets (smoke run)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--modes", default="odin,odin_eps,fgsm,pgd")
    parser.add_argument("--pop-size", type=int, default=12)
    parser.add_argument("--n-evaluations", type=int, default=48)
    parser.add_argument("--subset", type=int, default=128, help="robustness_subset")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    X, y = load_digits_images(size=32, n_per_class=40 if args.quick else None)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    pop, n_eval, subset = args.pop_size, args.n_evaluations, args.subset
    if args.quick:
        pop, n_eval, subset = 4, 8, 32
    modes = {
        "odin": dict(robustness="odin"),
        "odin_eps": dict(robustness="odin", odin_epsilon=0.002),
        "fgsm": dict(robustness="fgsm"),
        "pgd": dict(robustness="pgd", attack_steps=10),
    }
    print(f"digits {X_train.shape[0]} train images at {args.image_size}px, "
          f"backbone efficientnet_lite0, hidden (64,), pop {pop}, {n_eval} evaluations, "
          f"robustness_subset {subset}, device {args.device}, torch threads "
          f"{torch.get_num_threads()}")
    rows = []
    for name in args.modes.split(","):
        box = {"seconds": 0.0, "calls": 0}
        originals = {c: _timed(c, box) for c in (ODINRobustness, AdversarialRobustness)}
        try:
            clf = EvoPruneClassifier(
                image_size=args.image_size, hidden_layer_sizes=(64,), pop_size=pop,
                n_evaluations=n_eval, lr=0.01, max_epochs=30, robustness_subset=subset,
                device=args.device, random_state=0, **modes[name],
            )
            clf.fit(X_train, y_train)
        finally:
            for c, f in originals.items():
                c.evaluate = f
        frame = clf.pareto_front_.to_frame()
        corr = {}
        for a, b in (("accuracy", "complexity"), ("accuracy", "robustness"),
                     ("complexity", "robustness")):
            rho = spearmanr(frame[a], frame[b]).statistic if len(frame) > 2 else np.nan
            corr[f"{a[:3]}~{b[:3]}"] = rho
        rows.append({
            "mode": name,
            "s/eval (search)": clf.fit_time_["search"] / clf.n_evaluations_,
            "s/eval (robustness)": box["seconds"] / max(box["calls"], 1),
            "front": len(frame),
            "best acc": frame["accuracy"].max(),
            "robustness range": f"{frame['robustness'].min():.3f}-{frame['robustness'].max():.3f}",
            **corr,
            "rob. spread at ~acc": _tradeoff(frame),
            "test acc": clf.score(X_test, y_test),
        })
        print(f"mode {name}:")
        print(frame.round(4).to_string())
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()},
              flush=True)
    import pandas as pd

    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return table


if __name__ == "__main__":
    main()
