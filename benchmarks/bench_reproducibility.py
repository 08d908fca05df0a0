"""Same front for any thread setting, and what it costs: ``make demo``'s search.

The demo's setting (digits at ``image_size=64``, ``pop_size=30``,
``n_evaluations=200``, ``random_state=0``) on features extracted once and
cached, so that every run searches the same features. Each run is a fresh
process (``torch.set_num_threads`` and ``n_jobs`` as in the table); with
``--reference PATH`` every setting is also run with the package found at
``PATH`` (e.g. a checkout of an older version), runs of the two versions
alternating, so that both see the same machine load.

For each run: search seconds (``fit_time_["search"]``: the search, the dense
baseline and the refit), front size, the selected member's validation
accuracy and a hash of the front (genomes, objective values and refitted
parameters, bit for bit). Equal hashes within a version mean the same front.

Run ``python benchmarks/bench_reproducibility.py --reference /tmp/main_ref``
(about 10 minutes on 2 CPU cores; ``--help`` for the knobs). The first run
extracts the features (one backbone pass) into ``--cache``.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r"""
import hashlib, json, sys, time
import numpy as np, torch
threads, n_jobs, pop, n_eval, cache = json.loads(sys.argv[1])
torch.set_num_threads(threads)
from evoprune_sklearn import EvoPruneClassifier
data = np.load(cache)
clf = EvoPruneClassifier(backbone=None, pop_size=pop, n_evaluations=n_eval,
                         random_state=0, n_jobs=n_jobs)
clf.fit(data["X"], data["y"])
h = hashlib.sha1()
for m in [*clf.pareto_front_, clf.baseline_]:
    h.update(m.genome.tobytes())
    h.update(np.array(list(m.objectives.values())).tobytes())
    for w, b in m.params:
        h.update(w.numpy().tobytes()); h.update(b.numpy().tobytes())
sel = clf.pareto_front_[clf.best_index_]
print(json.dumps(dict(seconds=clf.fit_time_["search"], front=len(clf.pareto_front_),
                      accuracy=sel.objectives["accuracy"], hash=h.hexdigest()[:10])))
"""


def cached_features(path, image_size, random_state):
    """The demo's training features, extracted once (as ``make demo`` splits)."""
    if os.path.exists(path):
        return
    import numpy as np
    from sklearn.model_selection import train_test_split

    sys.path.insert(0, ROOT)
    from evoprune_sklearn._backbones import get_backbone
    from evoprune_sklearn.datasets import load_digits_images

    X, y = load_digits_images(size=32)
    X_train, _, y_train, _ = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state)
    backbone = get_backbone("efficientnet_lite0", "DEFAULT", image_size)
    np.savez(path, X=np.asarray(backbone.extract(X_train)), y=y_train)


def run(package, threads, n_jobs, args):
    env = dict(os.environ, PYTHONPATH=package)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
    spec = json.dumps([threads, n_jobs, args.pop_size, args.n_evaluations, args.cache])
    out = subprocess.run([sys.executable, "-c", CHILD, spec], env=env, check=True,
                         capture_output=True, text=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=None,
                        help="directory holding another version's evoprune_sklearn")
    parser.add_argument("--threads", default="2,1", help="torch threads, comma-separated")
    parser.add_argument("--n-jobs", default="None,2", help="n_jobs values, comma-separated")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--pop-size", type=int, default=30)
    parser.add_argument("--n-evaluations", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                      "evoprune_digits64_features.npz"))
    args = parser.parse_args(argv)
    cached_features(args.cache, args.image_size, 0)
    versions = {"this": ROOT}
    if args.reference:
        versions["reference"] = os.path.abspath(args.reference)
    settings = [(int(t), None if j == "None" else int(j))
                for j in args.n_jobs.split(",") for t in args.threads.split(",")]
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"pop_size={args.pop_size}, n_evaluations={args.n_evaluations}")
    print(f"{'version':<10} {'threads':>7} {'n_jobs':>6} {'search s':>9} {'front':>5} "
          f"{'sel. acc':>8}  hash")
    totals = {v: 0.0 for v in versions}
    hashes = {v: set() for v in versions}
    for _ in range(args.repeats):
        for threads, n_jobs in settings:
            for version, path in versions.items():
                r = run(path, threads, n_jobs, args)
                totals[version] += r["seconds"]
                hashes[version].add(r["hash"])
                print(f"{version:<10} {threads:>7} {str(n_jobs):>6} {r['seconds']:>9.1f} "
                      f"{r['front']:>5} {r['accuracy']:>8.4f}  {r['hash']}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    for version in versions:
        print(f"{version}: {len(hashes[version])} distinct front(s) over "
              f"{len(settings) * args.repeats} runs; search seconds in total "
              f"{totals[version]:.1f}")
    if args.reference:
        ratio = totals["this"] / totals["reference"]
        print(f"time this / reference: {ratio:.3f}")
    digest = hashlib.sha1(json.dumps(sorted(hashes["this"])).encode()).hexdigest()[:10]
    print(f"fronts of this version: {digest}")
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"total {time.perf_counter() - t0:.0f} s")
    sys.exit(code)
