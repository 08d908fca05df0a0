"""The README's figure: a front on the digits, and what it is worth on test data.

Left: the Pareto front as the search saw it (validation accuracy against the
fraction of genes kept, coloured by the robustness objective), with the
member ``predict`` uses circled. Right: every member's test accuracy against
its size, beside logistic regression on all the same features (the simplest
alternative) and refitted on the support of an L1 path at several sizes.

Run (about two minutes on two cores): ``PYTHONPATH=. python
docs/_scripts/readme_figure.py`` writes ``docs/_static/readme_front.png``.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from evoprune_sklearn import EvoPruneClassifier  # noqa: E402
from evoprune_sklearn.datasets import load_digits_images  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "_static", "readme_front.png")


def l1_path_points(F_tr, y_tr, F_te, y_te, n_points=8):
    """(fraction kept, test accuracy) of LR refitted on L1-path supports."""
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import l1_min_c

    Z = StandardScaler().fit_transform(F_tr)
    points = []
    for C in l1_min_c(Z, y_tr, loss="log") * np.logspace(0.5, 2.5, n_points):
        ovr = OneVsRestClassifier(LogisticRegression(
            l1_ratio=1.0, solver="liblinear", C=C, max_iter=2000, random_state=0)).fit(Z, y_tr)
        support = np.flatnonzero(np.any(np.vstack([e.coef_ for e in ovr.estimators_]), 0))
        lr = LogisticRegression(max_iter=5000).fit(F_tr[:, support], y_tr)
        points.append((len(support) / F_tr.shape[1], lr.score(F_te[:, support], y_te)))
    return np.array(points)


def main():
    X, y = load_digits_images(size=32)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y,
                                              random_state=0)
    clf = EvoPruneClassifier(image_size=64, random_state=0).fit(X_tr, y_tr)
    F_tr, F_te = clf.extract_features(X_tr), clf.extract_features(X_te)
    front = clf.pareto_front_.to_frame()
    test_acc = [np.mean(m.predict(F_te) == y_te) for m in clf.pareto_front_]
    lr_acc = LogisticRegression(max_iter=5000).fit(F_tr, y_tr).score(F_te, y_te)
    l1 = l1_path_points(F_tr, y_tr, F_te, y_te)

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    points = left.scatter(front["complexity"], front["accuracy"], c=front["robustness"],
                          cmap="viridis", s=28)
    fig.colorbar(points, ax=left, label="robustness (OoD AUROC)")
    best = clf.best_index_
    left.scatter(front["complexity"][best], front["accuracy"][best], s=160,
                 facecolors="none", edgecolors="crimson", lw=2, label="selected member")
    left.set(xlabel="fraction of genes kept", ylabel="validation accuracy",
             title="Pareto front found by the search")
    left.legend(loc="lower right")
    right.scatter(front["complexity"], test_acc, s=28, label="front members")
    right.scatter(front["complexity"][best], test_acc[best], s=160, facecolors="none",
                  edgecolors="crimson", lw=2, label="selected member")
    right.plot(l1[:, 0], l1[:, 1], "s--", color="gray", ms=4,
               label="L1 path support + LogisticRegression")
    right.axhline(lr_acc, color="black", ls=":", label="LogisticRegression, all features")
    right.set(xlabel="fraction of genes kept", ylabel="test accuracy",
              title="On held-out test digits", ylim=(max(0.5, min(test_acc) - 0.02), 1.0))
    right.legend(loc="lower right", fontsize=8)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
