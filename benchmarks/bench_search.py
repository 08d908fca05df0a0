"""Speed and memory of the search: one run, one table.

All rows use the same data: random but learnable features (2000 samples,
1280-d like EfficientNet-Lite0's, 10 classes; class means plus noise, after
a ReLU) and a head with one hidden layer of 512.

Rows:

- evaluations/s of the default recipe (``solver="lbfgs"``, linear head and
  hidden 512): the engine (linear heads: a stacked L-BFGS, a pool of
  candidates sharing every product with the feature matrix; hidden 512: each
  candidate alone on its kept features) vs one skorch net per candidate with
  the same loss and L-BFGS settings, and how well the two agree (mean
  validation accuracy of each, largest per-head difference);
- a fit at the estimator's defaults from cached features (pop 30, 200
  evaluations, refit included);
- matmul peak: fp32 ``(2048, 2048) @ (2048, 2048)`` (8192 on a GPU, TF32 off),
  best of several, measured in this run;
- evaluations/s at pop 30 with ``solver="adam"`` (the same 30 genomes, densities spread over (0, 1]
  as the search's first population, the same epochs, training plus
  validation accuracy): the batched engine vs the naive reference, one skorch
  net per candidate over the full masked feature matrix, trained one after
  the other;
- achieved GFLOP/s of head training (the matrix products a dense
  implementation of each pruned head needs, padding not counted) and its
  share of the peak;
- the paper protocol end to end from cached features: ``EvoPruneClassifier``
  with pop 30, 200 evaluations, ``encoding="features"``, hidden 512, the
  objectives accuracy, complexity and robustness (ODIN, eps=0), each head
  trained by the estimator's default recipe (``solver="lbfgs"``,
  ``alpha=1``, ``max_iter=50``; not the papers' Adam, which
  ``solver="adam"`` gives): the fit's seconds, then the seconds of reading
  ``pareto_front_`` (the refit of the members the fit left for their first
  use), and the front's hypervolume; again with ``head_precision="bf16"``
  where bfloat16 is native;
- backbone forward passes per fit, counted by ``Backbone.n_images_forwarded``
  on a small image fit (a randomly initialised resnet18, 32 px: weights do
  not change the count), against one per training image plus, for ODIN,
  the synthetic out-of-distribution images;
- peak RSS of the same search with 60 and 240 evaluations (each in a fresh
  process, L-BFGS with ``max_iter=5`` a head): bounded by the front and one
  generation, not growing with ``n_evaluations``.

Every engine is warmed up (a tiny training) before its timed rows, so that
neither pays one-off costs (thread pools, first-call allocations) the other
does not.

Run: ``PYTHONPATH=. python benchmarks/bench_search.py`` (or ``make bench``).
``--device cuda`` runs everything on a GPU; ``--quick`` shrinks every budget
(a smoke run, not the reported figures); ``--whole-fit-only`` times only
the whole default fit against the same fit with ``engine="skorch"``;
``--lbfgs-only`` stops after the default recipe's engine vs skorch rows.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

N, D, C, HIDDEN = 2000, 1280, 10, 512


def features(seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(C, size=N)
    centers = rng.normal(size=(C, D)) * 0.15
    X = np.maximum(rng.normal(size=(N, D)) + centers[y], 0.0)
    return X.astype(np.float32), y


def first_population(n, seed=1):
    """The search's initialisation: density ~ U(0, 1), at least one gene."""
    rng = np.random.default_rng(seed)
    G = np.zeros((n, D), dtype=bool)
    for i in range(n):
        k = max(1, int(round(rng.random() * D)))
        G[i, rng.choice(D, size=k, replace=False)] = True
    return G


def _sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    n = 8192 if str(device).startswith("cuda") else 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def throughput(device, epochs, pop, batch_size):
    """Evaluations/s and GFLOP/s of both engines on one population."""
    from evoprune_sklearn._engines import TrainingConfig, train_heads

    X, y = features()
    X_tr, y_tr, X_val, y_val = X[:1600], y[:1600], X[1600:], y[1600:]
    genomes = first_population(pop)
    config = TrainingConfig(
        encoding="features", n_features=D, hidden_layer_sizes=(HIDDEN,), n_classes=C,
        max_epochs=epochs, batch_size=batch_size, patience=epochs, device=str(device),
    )
    for engine in ("batched", "skorch"):  # warm-up: both engines, not only the timed first
        train_heads(genomes[:2], X_tr[:256], y_tr[:256], config, engine=engine)
    out = {}
    for engine in ("batched", "skorch"):
        _sync(device)
        t0 = time.perf_counter()
        heads = train_heads(genomes, X_tr, y_tr, config, engine=engine)
        _sync(device)
        t_train = time.perf_counter() - t0
        acc = (heads.logits(X_val).argmax(-1).numpy() == y_val[None]).mean(axis=1)
        seconds = time.perf_counter() - t0
        out[engine] = {
            "seconds": seconds,
            "evals_per_s": pop / seconds,
            "train_gflops": heads.flops / t_train / 1e9,
            "executed_gflops": heads.executed_flops / t_train / 1e9,
            "mean_accuracy": float(acc.mean()),
        }
    return out


def throughput_default(device, pop, hidden):
    """Evaluations/s of the default recipe (``solver="lbfgs"``, ``alpha=1``).

    The engine trains linear heads with the stacked L-BFGS and heads with
    hidden layers one at a time on their kept features, the first layer
    preconditioned in both; the reference is one skorch net per
    candidate on the full masked feature matrix with the same loss, the same
    L-BFGS settings and the same initial weights, trained one after the other.
    """
    from evoprune_sklearn._engines import TrainingConfig, train_heads

    X, y = features()
    X_tr, y_tr, X_val, y_val = X[:1600], y[:1600], X[1600:], y[1600:]
    genomes = first_population(pop)
    config = TrainingConfig(
        encoding="features", n_features=D, hidden_layer_sizes=hidden, n_classes=C,
        solver="lbfgs", alpha=1.0, max_iter=50, device=str(device),
    )
    for engine in ("batched", "skorch"):  # warm-up: both engines, not only the timed first
        train_heads(genomes[:2], X_tr[:256], y_tr[:256], config, engine=engine)
    out = {}
    for engine in ("batched", "skorch"):
        _sync(device)
        t0 = time.perf_counter()
        heads = train_heads(genomes, X_tr, y_tr, config, engine=engine)
        acc = (heads.logits(X_val).argmax(-1).numpy() == y_val[None]).mean(axis=1)
        _sync(device)
        seconds = time.perf_counter() - t0
        out[engine] = {"seconds": seconds, "evals_per_s": pop / seconds,
                       "mean_accuracy": float(acc.mean()), "accuracy": acc.tolist(),
                       "evaluations": _mean_evaluations(heads)}
    return out


def _mean_evaluations(heads):
    """Loss and gradient evaluations a head (torch's LBFGS counts skorch's)."""
    if hasattr(heads, "nets"):
        counts = [next(iter(net.optimizer_.state.values()))["func_evals"]
                  for net in heads.nets]
    else:
        counts = [len(c) for c in heads.train_loss]
    return float(np.mean(counts))


def run_default(device, engine="batched"):
    """A fit at the estimator's defaults from cached features (pop 30, 200 evaluations).

    Everything a fit does is timed: the dense baseline, the search, the
    objectives, the refit of the front. Both engines are warmed up first by
    a tiny fit.
    """
    from evoprune_sklearn import EvoPruneClassifier

    X, y = features()
    EvoPruneClassifier(backbone=None, device=device, random_state=0, engine=engine,
                       pop_size=4, n_evaluations=8).fit(X[:200], y[:200])
    clf = EvoPruneClassifier(backbone=None, device=device, random_state=0, engine=engine)
    t0 = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - t0
    front = clf.pareto_front_  # retrains the members fit left for later
    return {"seconds": seconds, "front_seconds": time.perf_counter() - t0 - seconds,
            "n_evaluations": clf.n_evaluations_, "front_size": len(front)}


def _search_in_subprocess(args, pop, n_evaluations, max_iter, objectives,
                          head_precision="fp32"):
    """Run one search in a fresh process; return its wall time and peak RSS."""
    call = (f"run_protocol({args.device!r}, {int(pop)}, {int(n_evaluations)}, "
            f"{int(max_iter)}, {tuple(objectives)!r}, {head_precision!r})")
    code = (
        "import json, resource, sys, time\n"
        f"sys.path.insert(0, {os.getcwd()!r})\n"
        "from benchmarks.bench_search import run_protocol\n"
        f"r = {call}\n"
        "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print('RESULT' + json.dumps(r))\n"
    )
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONPATH=os.getcwd() + (os.pathsep + path if path else ""))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[6:])
    raise RuntimeError(proc.stderr[-3000:])


def run_protocol(device, pop, n_evaluations, max_iter, objectives, head_precision="fp32"):
    """The paper protocol on cached features, L-BFGS heads (called in a subprocess)."""
    from evoprune_sklearn import EvoPruneClassifier

    X, y = features()
    clf = EvoPruneClassifier(
        backbone=None, encoding="features", hidden_layer_sizes=(HIDDEN,),
        objectives=objectives, solver="lbfgs", alpha=1.0, max_iter=max_iter,
        head_precision=head_precision,
        pop_size=pop, n_evaluations=n_evaluations,
        device=device, random_state=0,
    )
    t0 = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - t0
    front = clf.pareto_front_  # retrains the members fit left for later
    return {
        "seconds": seconds,
        "front_seconds": time.perf_counter() - t0 - seconds,
        "n_evaluations": clf.n_evaluations_,
        "n_trained": clf.n_trained_,
        "front_size": len(front),
        "hypervolume": clf.history_[-1]["hypervolume"],
    }


def _protocol_row(args, pop, n_eval, objectives, precision, row):
    """The paper protocol's row (a fit in a fresh process) at one head_precision."""
    try:
        proto = _search_in_subprocess(args, pop, n_eval, 50, objectives, precision)
    except Exception as exc:  # report the failure in the table, go on
        row(f"paper protocol ({precision})", f"failed: {str(exc).strip().splitlines()[-1]}")
        return None
    row(f"paper protocol from cached features: pop {pop}, {proto['n_evaluations']} "
        "evaluations, hidden 512, L-BFGS (max_iter=50), accuracy + complexity + "
        f"ODIN (eps=0), head_precision={precision!r}",
        f"{proto['seconds']:.0f} s ({proto['n_trained']} heads trained, front "
        f"{proto['front_size']}, hypervolume {proto['hypervolume']:.4f}, peak RSS "
        f"{proto['peak_rss_mb']:.0f} MB); then every front member retrained: "
        f"+{proto['front_seconds']:.0f} s",
        "<= 300 s")
    return proto


def backbone_passes(device, objectives):
    """Counted backbone forward passes of one image fit, and the expected count."""
    from evoprune_sklearn import EvoPruneClassifier
    from evoprune_sklearn._ood import synthetic_ood_size
    from evoprune_sklearn.datasets import load_digits_images

    X, y = load_digits_images(size=32)
    X, y = X[:300], y[:300]
    clf = EvoPruneClassifier(
        backbone="resnet18", weights=None, image_size=32, hidden_layer_sizes=(32,),
        objectives=objectives, pop_size=4, n_evaluations=8, max_epochs=2,
        device=device, random_state=0,
    ).fit(X, y)
    expected = len(X)
    if "robustness" in objectives:
        n_val = len(X) - len(clf._train_index)
        expected += synthetic_ood_size(n_val)
    return clf.backbone_.n_images_forwarded, expected


def main(argv=None):
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="smoke run, tiny budgets")
    parser.add_argument("--epochs", type=int, default=5,
                        help="epochs a head in the evaluations/s rows")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--lbfgs-only", action="store_true",
                        help="only the default recipe's engine vs skorch rows")
    parser.add_argument("--whole-fit-only", action="store_true",
                        help="stop after the whole default fit against engine='skorch'")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    pop = 6 if args.quick else 30
    epochs = 1 if args.quick else args.epochs
    n_eval, n_small, n_large = (12, 12, 24) if args.quick else (200, 60, 240)
    rss_iter = 1 if args.quick else 5
    objectives = ("accuracy", "complexity", "robustness")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows, figures = [], {}

    def row(item, value, target=""):
        rows.append((item, value, target))
        print(f"  {item}: {value}", file=sys.stderr, flush=True)

    print(f"device {device}, torch threads {torch.get_num_threads()}, "
          f"cores {os.cpu_count()}, load average {load:.2f}", file=sys.stderr)
    if not args.quick:
        default, reference = run_default(args.device), run_default(args.device, "skorch")
        row(f"estimator defaults from cached features: pop {pop}, "
            f"{default['n_evaluations']} evaluations, linear head, L-BFGS, refit",
            f"{default['seconds']:.0f} s (front {default['front_size']})", "<= 60 s")
        row("  the whole fit: default vs the same fit with engine='skorch'",
            f"{default['seconds']:.1f} s vs {reference['seconds']:.1f} s = "
            f"{reference['seconds'] / default['seconds']:.1f}x "
            f"(fronts {default['front_size']} vs {reference['front_size']})", ">= 5x")
        total = {k: v["seconds"] + v["front_seconds"] for k, v in
                 (("default", default), ("skorch", reference))}
        row("  the same, then every front member retrained (reading pareto_front_)",
            f"{total['default']:.1f} s vs {total['skorch']:.1f} s = "
            f"{total['skorch'] / total['default']:.1f}x")
        figures["default_fit"], figures["default_fit_skorch"] = default, reference
    if args.whole_fit_only:
        _print_table(rows, device, load, args)
        return 0
    peak = matmul_peak(device)
    row("fp32 matmul peak (this run)", f"{peak:.0f} GFLOP/s")
    figures["peak_gflops"] = peak
    for hidden in ((), (HIDDEN,)):
        tp = throughput_default(device, pop, hidden)
        fast, ref = tp["batched"], tp["skorch"]
        label = "linear head (default)" if not hidden else f"hidden {hidden[0]}"
        row(f"evaluations/s, pop {pop}, default recipe (L-BFGS, alpha=1, max_iter=50), "
            f"{label}: engine vs sequential skorch, same recipe",
            f"{fast['evals_per_s']:.2f} vs {ref['evals_per_s']:.2f} = "
            f"{fast['evals_per_s'] / ref['evals_per_s']:.1f}x "
            f"({fast['seconds']:.1f} s vs {ref['seconds']:.1f} s)", ">= 5x")
        gap = np.abs(np.subtract(fast["accuracy"], ref["accuracy"])).max()
        row(f"  agreement, {label}: mean validation accuracy engine vs skorch "
            "(largest per-head difference); function evaluations a head",
            f"{fast['mean_accuracy']:.4f} vs {ref['mean_accuracy']:.4f} "
            f"({100 * gap:.2f} points); {fast['evaluations']:.1f} vs {ref['evaluations']:.1f}")
        figures[f"default_{len(hidden)}"] = tp
    if args.lbfgs_only:
        _print_table(rows, device, load, args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=1, default=float)
        return 0
    for bs in (128, 32):
        tp = throughput(device, epochs, pop, bs)
        fast, ref = tp["batched"], tp["skorch"]
        speedup = fast["evals_per_s"] / ref["evals_per_s"]
        tag = "estimator default" if bs == 128 else "paper's batch size"
        row(f"evaluations/s, pop {pop}, {epochs} epochs, batch {bs} ({tag}): "
            "engine vs sequential skorch",
            f"{fast['evals_per_s']:.2f} vs {ref['evals_per_s']:.2f} = {speedup:.1f}x",
            ">= 5x")
        row(f"head training GFLOP/s, batch {bs} (engine; skorch)",
            f"{fast['train_gflops']:.0f} = {100 * fast['train_gflops'] / peak:.0f}% of peak "
            f"({fast['executed_gflops']:.0f} executed with padding); "
            f"{ref['train_gflops']:.0f}",
            ">= 50% of peak")
        figures[f"batch{bs}"] = tp
    from evoprune_sklearn._backbones._extractor import native_bf16

    for precision in ("fp32", "bf16") if native_bf16(device) else ("fp32",):
        proto = _protocol_row(args, pop, n_eval, objectives, precision, row)
        figures["protocol" if precision == "fp32" else "protocol_bf16"] = proto
    for objs in (("accuracy", "complexity"), objectives):
        try:
            counted, expected = backbone_passes(args.device, objs)
        except Exception as exc:
            row("backbone forward passes", f"failed: {exc!r}"[:200])
            continue
        label = "+ ODIN" if "robustness" in objs else "2 objectives"
        row(f"backbone forward passes per fit (300 images, {label})",
            f"{counted} counted, {expected} expected",
            "one per image (+ OoD set)")
        figures[f"backbone_{len(objs)}"] = (counted, expected)
    try:
        small = _search_in_subprocess(args, pop, n_small, rss_iter, objectives)
        large = _search_in_subprocess(args, pop, n_large, rss_iter, objectives)
    except Exception as exc:
        row("peak RSS", f"failed: {str(exc).strip().splitlines()[-1]}")
        small = large = None
    if small is not None:
        row(f"peak RSS, {small['n_evaluations']} vs {large['n_evaluations']} evaluations",
            f"{small['peak_rss_mb']:.0f} MB vs {large['peak_rss_mb']:.0f} MB "
            f"({large['peak_rss_mb'] - small['peak_rss_mb']:+.0f} MB; fronts of "
            f"{small['front_size']} vs {large['front_size']} members at "
            f"{4 * (D * HIDDEN + HIDDEN + HIDDEN * C + C) / 2**20:.1f} MB each)",
            "not growing")
    figures["rss"] = (small, large)

    _print_table(rows, device, load, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1, default=float)
    return 0


def _print_table(rows, device, load, args):
    import torch

    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nbench_search on {device} ({os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads, load average at start {load:.2f}, "
          f"at end {end:.2f})\n")
    print(f"| {'item'.ljust(width)} | {'measured'.ljust(vwidth)} | target |")
    print(f"|{'-' * (width + 2)}|{'-' * (vwidth + 2)}|--------|")
    for item, value, target in rows:
        print(f"| {item.ljust(width)} | {value.ljust(vwidth)} | {target} |")


if __name__ == "__main__":
    sys.exit(main())
