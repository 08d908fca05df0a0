"""Cost and signal of each robustness mode, before and after the calibrated budget.

For each mode this runs the search of issue 15: the bundled digits at 64 px
(``image_size=64``), default settings except ``pop_size=8`` and
``n_evaluations=24``, three objectives, ``random_state=0``. It prints one
table per mode with these columns:

- ``s/eval``: seconds of the whole fit divided by the evaluations (wall);
- ``search s/eval``: the same without the feature pass (``fit_time_["search"]``),
  which is paid once per fit whatever the number of evaluations;
- ``cpu s/eval``: CPU seconds of this process for the fit, divided likewise
  (less sensitive than wall time to other jobs on a shared machine);
- ``rob cpu s/cand``: CPU seconds of the robustness objective alone per
  candidate it scored (calibration excluded);
- ``fwd/cand``, ``bwd/cand``: images pushed forward / backward through the
  backbone per candidate (a measure of work that no machine load changes;
  after only);
- ``eps``: the budget in 1/255 units; ``front``: front size;
  ``min``/``max``/``spread``: the robustness values over the front.

``--before PATH`` also runs the chosen modes with the package found at PATH,
for example a worktree of the code before issue 15::

    git worktree add /tmp/robust-before b658162
    PYTHONPATH=. python benchmarks/bench_robustness.py --before /tmp/robust-before \\
        --before-modes fgsm

"Before" and "after" run the same number of evaluations (``--n-evaluations``)
unless ``--before-evaluations`` says otherwise, so that the fixed feature pass
is spread over equally many evaluations in both rows; ``search s/eval`` leaves
it out altogether. The old PGD costs about 34 s per evaluation on a quiet
2-core machine, so by default "before" runs FGSM only.

Run: ``PYTHONPATH=. python benchmarks/bench_robustness.py [--modes odin,fgsm,pgd]``.
"""

import argparse
import json
import os
import subprocess
import sys
import time

#: Mode -> (registered objective name, its parameters): the third objective.
MODES = {
    "odin": ("odin", {}),
    "fgsm": ("fgsm", {}),
    "pgd": ("pgd", {}),
    "fgsm@8/255": ("fgsm", {"eps": 8 / 255}),
    "pgd@8/255": ("pgd", {"eps": 8 / 255}),
}


def run_mode(mode, n_evaluations, pop_size, threads):
    """One search; returns the table row as a dict (runs in this process)."""
    import torch

    from evoprune_sklearn import EvoPruneClassifier
    from evoprune_sklearn.datasets import load_digits_images
    from evoprune_sklearn.objectives import ODIN, Adversarial, get_objective

    if threads:
        torch.set_num_threads(threads)
    box = {"cpu": 0.0, "calls": 0, "fwd": None, "bwd": None}

    def timed(cls):
        original = cls.evaluate

        def evaluate(self, heads, data):
            c0 = time.process_time()
            out = original(self, heads, data)
            box["cpu"] += time.process_time() - c0
            box["calls"] += len(heads)
            box["fwd"] = getattr(self, "n_forward_", None)
            box["bwd"] = getattr(self, "n_backward_", None)
            box["eps"] = getattr(self, "eps_", getattr(self, "eps", None))
            box["calib_fwd"] = getattr(self, "_calib_counts", (0, 0))
            return out

        cls.evaluate = evaluate

    timed(ODIN)
    timed(Adversarial)
    original_prepare = Adversarial.prepare

    def prepare(self, context):  # counts of the calibration, kept apart
        original_prepare(self, context)
        self._calib_counts = (getattr(self, "n_forward_", 0), getattr(self, "n_backward_", 0))

    Adversarial.prepare = prepare
    X, y = load_digits_images(size=64)
    name, params = MODES[mode]
    robustness = get_objective(name).set_params(**params)
    clf = EvoPruneClassifier(image_size=64, pop_size=pop_size, n_evaluations=n_evaluations,
                             objectives=("accuracy", "complexity", robustness),
                             random_state=0)
    c0, t0 = time.process_time(), time.perf_counter()
    clf.fit(X, y)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    rob = clf.pareto_front_.to_frame()["robustness"].to_numpy()
    n_eval = clf.n_evaluations_
    calls = max(box["calls"], 1)
    row = {
        "s/eval": wall / n_eval,
        "search s/eval": getattr(clf, "fit_time_", {}).get("search", float("nan")) / n_eval,
        "cpu s/eval": cpu / n_eval,
        "rob cpu s/cand": box["cpu"] / calls,
        "fwd/cand": None,
        "bwd/cand": None,
        "eps": None,
        "front": len(rob),
        "min": float(rob.min()),
        "max": float(rob.max()),
        "spread": float(rob.max() - rob.min()),
        "evaluations": n_eval,
    }
    if mode != "odin":
        row["eps"] = float(clf.objectives_[2].eps_) * 255
        if box["fwd"] is not None:
            f0, b0 = box["calib_fwd"]
            row["fwd/cand"] = (box["fwd"] - f0) / calls
            row["bwd/cand"] = (box["bwd"] - b0) / calls
    return row


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="odin,fgsm,pgd",
                        help=f"comma-separated, from {sorted(MODES)}")
    parser.add_argument("--pop-size", type=int, default=8)
    parser.add_argument("--n-evaluations", type=int, default=24)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--before", default=None, help="path of the code before")
    parser.add_argument("--before-modes", default="fgsm")
    parser.add_argument("--before-evaluations", type=int, default=None,
                        help="evaluations of the 'before' runs (default: --n-evaluations)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        row = run_mode(args.child, args.n_evaluations, args.pop_size, args.threads)
        print("ROW " + json.dumps(row))
        return None

    import pandas as pd

    def child(mode, path, n_evaluations):
        env = dict(os.environ, PYTHONPATH=path)
        cmd = [sys.executable, os.path.abspath(__file__), "--child", mode,
               "--n-evaluations", str(n_evaluations), "--pop-size", str(args.pop_size)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                             cwd=path).stdout
        return json.loads(out.split("ROW ", 1)[1])

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"digits at 64 px (image_size=64), pop_size={args.pop_size}, defaults "
          f"otherwise; load average at start {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    for mode in args.modes.split(","):
        rows = {}
        if args.before and mode in args.before_modes.split(","):
            rows["before"] = child(mode, args.before,
                                   args.before_evaluations or args.n_evaluations)
        rows["after"] = child(mode, here, args.n_evaluations)
        table = pd.DataFrame(rows).T
        print(f"\nrobustness mode {mode}")
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(table.to_string(float_format=lambda v: f"{v:.3g}"), flush=True)


if __name__ == "__main__":
    main()
