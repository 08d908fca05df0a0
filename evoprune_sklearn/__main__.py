"""Command line: ``python -m evoprune_sklearn demo``."""

import argparse
import os
import sys
import time

from ._classifier import EvoPruneClassifier
from ._engines import refit_members
from ._front import Member
from .datasets import load_digits_images
from .plotting import ParetoFrontDisplay


def l1_path_supports(X, y, n_cs=10, max_features=None, c_max=1000.0):
    """Supports of an L1-penalised logistic regression path, sparsest first.

    liblinear, one-vs-rest (a feature is kept when any class uses it), on
    standardised features, for ``n_cs`` values of ``C`` from 1.6 to
    ``c_max`` times ``l1_min_c``, spaced geometrically. The path stops
    after the first support larger than ``max_features``.

    Returns
    -------
    supports : list of ndarray of bool, shape (n_features,)
    """
    import numpy as np
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import l1_min_c

    # scikit-learn 1.8 deprecated penalty= for l1_ratio=
    version = tuple(int(v) for v in sklearn.__version__.split(".")[:2])
    l1 = {"l1_ratio": 1.0} if version >= (1, 8) else {"penalty": "l1"}
    Xs = StandardScaler().fit_transform(X)
    c_min = l1_min_c(Xs, y, loss="log")
    supports = []
    for C in c_min * np.geomspace(10 ** 0.2, c_max, n_cs):
        lr = LogisticRegression(solver="liblinear", C=C, tol=1e-3, max_iter=5000, **l1)
        if len(np.unique(y)) > 2:  # liblinear is binary: one-vs-rest by hand
            coef = np.vstack([e.coef_ for e in OneVsRestClassifier(lr).fit(Xs, y).estimators_])
        else:
            coef = lr.fit(Xs, y).coef_
        supports.append(np.any(coef != 0, axis=0))
        if max_features is not None and supports[-1].sum() > max_features:
            break
    return supports


def l1_path_baseline(clf, F_train, y_train, F_test, y_test, n_genes_on):
    """Test accuracy of the L1-path support with at most ``n_genes_on`` features.

    What a user comparing pruning methods would try first: the support of
    :func:`l1_path_supports` with the most features within the budget (the
    sparsest one when none fits) gets the estimator's own head, trained
    like its members on the whole training set.

    Returns
    -------
    accuracy : float
    n_kept : int
    """
    import dataclasses

    import numpy as np

    supports = l1_path_supports(F_train, y_train, max_features=n_genes_on)
    fits = [s for s in supports if 0 < s.sum() <= n_genes_on]
    best = fits[-1] if fits else min(supports, key=lambda s: s.sum() or np.inf)
    y_enc = np.searchsorted(clf.classes_, y_train)
    config = clf.pareto_front_[0].config  # the training recipe every member holds
    (member,) = refit_members([Member(best, {})], F_train, y_enc, config)
    member = dataclasses.replace(member, classes=clf.classes_, config=config)
    return float(np.mean(member.predict(F_test) == y_test)), int(best.sum())


def demo(args):
    """Fit on the bundled digits with the bundled backbone and report the front."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import train_test_split

    t0 = time.perf_counter()
    X, y = load_digits_images(size=32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.random_state
    )
    print(f"digits: {len(X_train)} training and {len(X_test)} test images "
          f"({X.shape[1]}x{X.shape[2]} RGB, 10 classes)")
    clf = EvoPruneClassifier(
        backbone="efficientnet_lite0",
        image_size=args.image_size,
        pop_size=args.pop_size,
        n_evaluations=args.n_evaluations,
        random_state=args.random_state,
        verbose=1,
    )
    clf.fit(X_train, y_train)
    features_test = clf.extract_features(X_test)
    # What a user could do instead: logistic regression on the same frozen
    # features (one more backbone pass over the training images).
    from sklearn.linear_model import LogisticRegression

    t_lr = time.perf_counter()
    features_train = clf.extract_features(X_train)
    logreg = LogisticRegression(max_iter=5000).fit(features_train, y_train)
    lr_acc = logreg.score(features_test, y_test)
    t_lr = time.perf_counter() - t_lr

    frame = clf.pareto_front_.to_frame()
    frame["test_accuracy"] = [
        float(np.mean(m.predict(features_test) == y_test))
        for m in clf.pareto_front_
    ]
    frame["selected"] = ["<- predict()" if i == clf.best_index_ else "" for i in range(len(frame))]
    with pd.option_context("display.max_rows", 200, "display.width", 120):
        print("\nPareto front (validation accuracy, fraction of genes on; test accuracy "
              "for reference only):")
        print(frame.to_string(float_format=lambda v: f"{v:.4f}"))

    dense_acc = float(np.mean(clf.baseline_.predict(features_test) == y_test))
    sel = clf.pareto_front_[clf.best_index_]
    sel_acc = clf.score(X_test, y_test)
    print(f"\nselected member (selection={clf.selection!r}): test accuracy {sel_acc:.4f} "
          f"with {sel.n_active}/{sel.genome.size} genes on "
          f"({100 * sel.n_active / sel.genome.size:.1f}% kept)")
    print(f"dense head (all {sel.genome.size} genes, same training fold, trained the same way): "
          f"test accuracy {dense_acc:.4f}")
    print(f"difference: {100 * (sel_acc - dense_acc):+.2f} points")
    print(f"LogisticRegression(max_iter=5000) on the same backbone features (the "
          f"simplest alternative, {t_lr:.1f} s): test accuracy {lr_acc:.4f}; the "
          f"selected member is {100 * (sel_acc - lr_acc):+.2f} points from it with "
          f"{100 * sel.n_active / sel.genome.size:.1f}% of the features")
    if clf.encoding == "features":
        t_l1 = time.perf_counter()
        l1_acc, l1_kept = l1_path_baseline(clf, features_train, y_train, features_test,
                                           y_test, sel.n_active)
        print(f"L1 path at the selected member's budget (the standard pruning baseline: "
              f"the largest support of an L1 logistic path with at most {sel.n_active} "
              f"features, the same head trained on it, {time.perf_counter() - t_l1:.1f} s): test "
              f"accuracy {l1_acc:.4f} with {l1_kept} features; the selected member is "
              f"{100 * (sel_acc - l1_acc):+.2f} points from it")
    # the front applies any selection rule itself, no refit needed.
    best = clf.pareto_front_[clf.pareto_front_.select("accuracy")]
    best_acc = float(np.mean(best.predict(features_test) == y_test))
    print(f"most accurate member on validation (selection='accuracy'): test accuracy "
          f"{best_acc:.4f} with {100 * best.n_active / best.genome.size:.1f}% of genes kept "
          f"({100 * (best_acc - dense_acc):+.2f} points)")
    print(f"evaluations: {clf.n_evaluations_} ({clf.n_trained_} heads trained); "
          f"backbone {clf.fit_time_['features']:.1f} s, search "
          f"{clf.fit_time_['search']:.1f} s")

    os.makedirs(args.output, exist_ok=True)
    path = os.path.abspath(os.path.join(args.output, "pareto_front.png"))
    ParetoFrontDisplay.from_estimator(clf).figure_.savefig(path, dpi=120)
    print(f"Pareto-front plot written to {path}")
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m evoprune_sklearn")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="fit on the bundled digits and print the front")
    p.add_argument("--pop-size", type=int, default=30)
    p.add_argument("--n-evaluations", type=int, default=200)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--output", default="evoprune_demo_output")
    args = parser.parse_args(argv)
    return demo(args)


if __name__ == "__main__":
    sys.exit(main())
