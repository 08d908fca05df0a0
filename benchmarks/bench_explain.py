"""Cost and localisation of ``EvoPruneClassifier.explain``.

Two measurements:

1. **Seconds** for ``explain`` on 16 demo digits (32x32 images) with the
   bundled efficientnet_lite0 backbone (1280 genes): gene values only by
   expected gradients (``method="gradient"``) and by shap's permutation
   explainer with the pruning masker (``method="pruning"``; its first call in
   the process, which also compiles shap's numba kernels, is not timed),
   pixel maps by expected gradients through the backbone
   (``pixel_method="gradient"``, the default) and by the backbone's last
   feature map (``"feature_map"``).
2. **Localisation** of both pixel methods on synthetic images whose label is
   decided by a bright filled square in the top-left quadrant (square
   outlines of the same brightness sit in the other quadrants of both
   classes): the share of absolute attribution inside that quadrant (chance
   is 25%). This is the measurement behind the default.

``--figure PATH`` also saves ``ExplanationDisplay`` of the 16 digits (the
figure ``docs/_static/explain_digits.png``).

Run: ``PYTHONPATH=. python benchmarks/bench_explain.py [--figure PATH]``
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))


def _timed(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def digits(args):
    from sklearn.model_selection import train_test_split

    from evoprune_sklearn import EvoPruneClassifier
    from evoprune_sklearn.datasets import load_digits_images

    X, y = load_digits_images(size=32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    rows = []
    explanation = None
    for size in args.image_sizes:
        clf = EvoPruneClassifier(
            image_size=size, hidden_layer_sizes=(128,), objectives=("accuracy", "complexity"),
            pop_size=10, n_evaluations=30, lr=1e-2, random_state=0,
        ).fit(X_train, y_train)
        X16 = X_test[:16]
        _, t_genes = _timed(lambda: clf.explain(X16, pixels=False, random_state=0), args.repeat)
        clf.explain(X16[:1], method="pruning", pixels=False, random_state=0)  # numba warm-up
        _, t_prune = _timed(
            lambda: clf.explain(X16, method="pruning", pixels=False, random_state=0), args.repeat
        )
        exp, t_grad = _timed(lambda: clf.explain(X16, random_state=0), args.repeat)
        _, t_map = _timed(
            lambda: clf.explain(X16, pixel_method="feature_map", random_state=0), args.repeat
        )
        acc = clf.score(X_test, y_test)
        rows.append((size, acc, clf.pareto_front_[clf.best_index_].n_active, t_genes, t_prune,
                     t_grad, t_map))
        if explanation is None or size == 64:
            explanation, figure_clf = exp, clf
    print("explain() on 16 digits (32x32 input), seconds (best of "
          f"{args.repeat}), efficientnet_lite0 on the CPU:")
    print(f"{'image_size':>10} {'test acc':>8} {'genes on':>8} {'genes:grad':>10} "
          f"{'genes:pruning':>13} {'pixels:gradient':>15} {'pixels:feature_map':>18}")
    for size, acc, on, tg, tpr, tp, tm in rows:
        print(f"{size:>10} {acc:>8.3f} {on:>8} {tg:>10.2f} {tpr:>13.2f} {tp:>15.2f} "
              f"{tm:>18.2f}")
    if args.figure:
        from evoprune_sklearn.plotting import ExplanationDisplay

        fig = ExplanationDisplay.from_explanation(explanation, n_images=16, n_cols=8).figure_
        fig.set_size_inches(15, 5.2)
        fig.suptitle(
            f"Explained test digits (image_size={figure_clf.backbone_.input_size}, "
            f"member {explanation.member}: "
            f"{figure_clf.pareto_front_[figure_clf.best_index_].n_active} of "
            f"{figure_clf.n_genes_} features kept)"
        )
        os.makedirs(os.path.dirname(os.path.abspath(args.figure)), exist_ok=True)
        fig.savefig(args.figure, dpi=110)
        print(f"figure saved to {args.figure}")
        true = y_test[:16]
        print("explained classes:", explanation.target.tolist())
        print("true classes:     ", true.tolist())


def localisation(args):
    from test_explain import FAST, quadrant_images

    from evoprune_sklearn import EvoPruneClassifier

    X, y = quadrant_images(320, seed=0)
    X_test, y_test = quadrant_images(40, seed=1)
    print("\nshare of |attribution| in the deciding (top-left) quadrant, 16 test "
          "images, chance 0.25:")
    print(f"{'image_size':>10} {'test acc':>8} {'gradient':>9} {'feature_map':>11} "
          f"{'t gradient':>10} {'t feature_map':>13}")
    for size in args.quadrant_sizes:
        clf = EvoPruneClassifier(image_size=size, **FAST).fit(X, y)
        cells = []
        for method in ("gradient", "feature_map"):
            t0 = time.perf_counter()
            exp = clf.explain(X_test, max_samples=16, pixel_method=method, random_state=0)
            dt = time.perf_counter() - t0
            A = np.abs(exp.pixel_attributions).sum(axis=-1)
            mass = A[:, :16, :16].sum(axis=(1, 2)) / np.maximum(A.sum(axis=(1, 2)), 1e-30)
            cells.append((mass.mean(), dt))
        print(f"{size:>10} {clf.score(X_test, y_test):>8.3f} {cells[0][0]:>9.3f} "
              f"{cells[1][0]:>11.3f} {cells[0][1]:>10.2f} {cells[1][1]:>13.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-sizes", type=int, nargs="+", default=[32, 64])
    p.add_argument("--quadrant-sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--figure", default=None, help="save the digits figure here")
    p.add_argument("--skip-localisation", action="store_true")
    args = p.parse_args(argv)
    import torch

    print(f"torch threads: {torch.get_num_threads()}, load average: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    digits(args)
    if not args.skip_localisation:
        localisation(args)


if __name__ == "__main__":
    main()
