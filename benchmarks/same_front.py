"""Same seed, same front: a behaviour reference for changes that must not change results.

Fits 14 settings through the public estimator (the default; the papers'
operators; Adam; hidden-layer L-BFGS; the neurons encoding with L-BFGS and
Adam; skorch; ``n_folds=3``; ``n_jobs=2``; ``refit=False``; sample weights;
a checkpoint resumed from 20 to 40 evaluations; a warm start; and, without
``--quick``, the demo's own efficientnet_lite0 fit on digits) and writes per
setting the hashes of the front's genomes, its objective values (exact float
bits), the best index, the counters, the history's hypervolumes and the
``predict_proba`` of the estimator, of every member and of ``baseline_``.

Record on the commit before a refactoring, again after it, and compare::

    git stash; OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/same_front.py before.json
    git stash pop; OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/same_front.py after.json
    python benchmarks/same_front.py --compare before.json after.json

Every line must say SAME (exit status 0). About 80 s on 2 cores.
"""
import hashlib
import json
import os
import sys
import tempfile

import numpy as np


def h(a):
    """A short digest of an array's bytes, dtype and shape."""
    a = np.ascontiguousarray(np.asarray(a))
    blob = a.tobytes() + str(a.dtype).encode() + str(a.shape).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def summary(clf, Xq):
    """The digests of one fitted estimator (``Xq``: a few inputs to predict)."""
    front = clf.pareto_front_
    F = clf.extract_features(Xq) if clf.backbone is not None else Xq

    def proba(model):
        return np.asarray(model.predict_proba(F), dtype=np.float64)

    return {
        "genomes": h(np.asarray([m.genome for m in front])),
        "F": h(np.asarray(front.F, dtype=np.float64)),
        "n_front": len(front),
        "best_index": int(clf.best_index_),
        "proba": h(np.asarray(clf.predict_proba(Xq), dtype=np.float64)),
        "members_proba": h(np.concatenate([proba(m) for m in front])),
        "baseline_proba": h(proba(clf.baseline_)),
        "n_evaluations": int(clf.n_evaluations_),
        "n_trained": int(clf.n_trained_),
        "history_hv": h(np.asarray([r["hypervolume"] for r in clf.history_])),
    }


def settings():
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=600, n_features=120, n_informative=12,
                               n_classes=4, random_state=0)
    X = X.astype(np.float32)
    base = dict(backbone=None, pop_size=10, n_evaluations=40, random_state=0)
    cases = {
        "default": {},
        "papers_ops": dict(init="random", mutation="bitflip"),
        "adam": dict(solver="adam", max_epochs=30),
        "hidden_lbfgs": dict(hidden_layer_sizes=(32,)),
        "neurons": dict(encoding="neurons", hidden_layer_sizes=(32,)),
        "neurons_adam": dict(encoding="neurons", hidden_layer_sizes=(16,), solver="adam",
                              max_epochs=20),
        "skorch": dict(engine="skorch", solver="adam", max_epochs=10, n_evaluations=20,
                       pop_size=6),
        "folds3": dict(n_folds=3),
        "njobs2": dict(n_jobs=2),
        "no_refit": dict(refit=False),
    }
    for name, extra in cases.items():
        yield name, dict(base, **extra), X, y, {}
    w = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    yield "weighted", base, X, y, {"sample_weight": w}


def run(out, quick=False):
    from evoprune_sklearn import EvoPruneClassifier
    res = {}
    for name, params, X, y, fit_kw in settings():
        clf = EvoPruneClassifier(**params).fit(X, y, **fit_kw)
        res[name] = summary(clf, X[:50])
        print(name, res[name]["genomes"], flush=True)
    # checkpoint: interrupted-by-budget then resumed == one run
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=600, n_features=120, n_informative=12,
                               n_classes=4, random_state=0)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "s.ckpt")
        EvoPruneClassifier(backbone=None, pop_size=10, n_evaluations=20, random_state=0,
                           checkpoint=p).fit(X, y)
        clf = EvoPruneClassifier(backbone=None, pop_size=10, n_evaluations=40,
                                 random_state=0, checkpoint=p).fit(X, y)
        res["checkpoint_resume"] = summary(clf, X[:50])
    clf = EvoPruneClassifier(backbone=None, pop_size=10, n_evaluations=20, random_state=0,
                             warm_start=True).fit(X, y)
    clf.set_params(n_evaluations=40).fit(X, y)
    res["warm_start"] = summary(clf, X[:50])
    if not quick:
        # the demo's own fit
        from sklearn.model_selection import train_test_split

        from evoprune_sklearn.datasets import load_digits_images
        X, y = load_digits_images(size=32)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, stratify=y, random_state=0)
        clf = EvoPruneClassifier(backbone="efficientnet_lite0", image_size=64, pop_size=30,
                                 n_evaluations=200, random_state=0).fit(X_train, y_train)
        res["demo"] = summary(clf, X_test[:50])
        print("demo", res["demo"]["genomes"], flush=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)


def compare(a, b):
    A, B = json.load(open(a)), json.load(open(b))
    bad = 0
    for k in sorted(set(A) | set(B)):
        if k not in A or k not in B:
            print(f"{k}: only in one file")
            bad += 1
            continue
        diff = [f for f in A[k] if A[k][f] != B[k].get(f)]
        print(f"{k}: {'SAME' if not diff else 'DIFFERENT ' + ', '.join(diff)}")
        bad += bool(diff)
    return bad


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    run(sys.argv[1], quick="--quick" in sys.argv)
