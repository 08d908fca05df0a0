"""Peak memory of a fit on an image folder: lazy (streamed) vs eager loading.

Generates class-per-folder JPEG images at full resolution (224x224 by
default), then fits ``EvoPruneClassifier`` on them in a fresh process per
setting and reports the process's peak resident memory (``ru_maxrss``). With
``load_image_folder(..., lazy=True)`` images are decoded one backbone batch
at a time, so the peak should stay roughly flat as the image count grows;
eager loading holds every decoded image (``n * 224 * 224 * 3`` bytes).

The search is deliberately tiny (the backbone pass over every image is what
this measures); ``image_size=32`` keeps the backbone cheap while images are
still decoded at full resolution.

Usage::

    PYTHONPATH=. python benchmarks/bench_streaming.py            # 2000 and 8000
    PYTHONPATH=. python benchmarks/bench_streaming.py --counts 500 2000 --no-eager
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

_CHILD = r"""
import json, resource, sys, time
from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn.datasets import load_image_folder

folder, lazy, size = sys.argv[1], sys.argv[2] == "lazy", int(sys.argv[3])
t0 = time.perf_counter()
X, y = load_image_folder(folder, size=size, lazy=lazy)
clf = EvoPruneClassifier(
    image_size=32, objectives=("accuracy", "complexity"), hidden_layer_sizes=(16,),
    pop_size=4, n_evaluations=4, max_epochs=2, random_state=0,
).fit(X, y)
print(json.dumps({
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "seconds": time.perf_counter() - t0,
    "n_images_forwarded": clf.backbone_.n_images_forwarded,
}))
"""


def make_folder(root, n_images, size):
    """``n_images`` JPEGs in two class folders; reused when already there."""
    from PIL import Image

    done = os.path.join(root, f".complete-{n_images}-{size}")
    if os.path.exists(done):
        return root
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n_images):
        label = "ab"[i % 2]
        os.makedirs(os.path.join(root, label), exist_ok=True)
        # smooth colour gradients plus noise: JPEG sizes like photos'
        phase = rng.uniform(0, 2 * np.pi, 3)
        freq = rng.uniform(0.01, 0.05, 3) * (2 if label == "b" else 1)
        img = np.stack([127 + 100 * np.sin(freq[c] * (xx + yy) + phase[c])
                        for c in range(3)], axis=-1)
        img += rng.normal(0, 12, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            os.path.join(root, label, f"{i:05d}.jpg"), quality=90)
    open(done, "w").close()
    return root


def measure(folder, mode, size):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
         env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, folder, mode, str(size)],
        env=env, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--no-eager", action="store_true",
                        help="measure lazy loading only")
    parser.add_argument("--root", default=os.path.join(
        tempfile.gettempdir(), "evoprune_bench_streaming"))
    args = parser.parse_args()

    modes = ["lazy"] if args.no_eager else ["lazy", "eager"]
    print(f"{'images':>7} {'mode':>6} {'peak RSS (MB)':>14} {'seconds':>8}")
    for n in args.counts:
        t0 = time.perf_counter()
        folder = make_folder(os.path.join(args.root, f"{n}-{args.size}"), n, args.size)
        gen = time.perf_counter() - t0
        if gen > 1:
            print(f"(generated {n} images of {args.size}x{args.size} in {gen:.0f} s)")
        for mode in modes:
            r = measure(folder, mode, args.size)
            assert r["n_images_forwarded"] == n
            print(f"{n:>7} {mode:>6} {r['peak_rss_mb']:>14.0f} {r['seconds']:>8.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
