"""A real photo folder at 224 px, end to end, and a grid search over it.

The data: ``--n-images`` JPEG files (5000 by default) in 10 class folders,
generated (once, into ``--data``) as 320x240 crops of photographs shipped
with scikit-image (``skimage.data``: astronaut, coffee, chelsea, rocket,
hubble_deep_field, immunohistochemistry, retina, camera) and scikit-learn
(``load_sample_images``: china, flower), one photograph per class. Each crop
is a random window (a quarter to all of the photograph's shorter side, any
position, mirrored half of the time) resized to 320x240, saved at JPEG
quality 90. No download: both packages ship these files.

What is measured, in one run:

1. **Decoding**: images/s decoding the folder's files to 224 px (Pillow),
   with one thread and with ``load_image_folder``'s worker threads.
2. **Extraction** on ``--probe-images`` decoded photos: images/s of a bare
   eager float32 torch forward of the same network (NCHW input, what
   ``torch.from_numpy(X).permute(0, 3, 1, 2).contiguous()`` gives), of the
   package's extraction (``Backbone.extract``: channels-last, batch norms
   folded into the convolutions) and of
   ``precision="bf16"`` (where the CPU has native bfloat16), interleaved,
   best of ``--repeats``; with the largest relative difference of the
   features from the bare forward's.
3. **One fit from the folder**: ``load_image_folder(lazy=True)`` then
   ``EvoPruneClassifier()`` at its defaults (``efficientnet_lite0`` at its
   224 px, linear head, pop 30, 200 evaluations): images/s extracted in the
   fit, search seconds and total seconds.
4. **GridSearchCV**, 4 candidates (``alpha`` x ``crossover_rate``) x 3 folds,
   on ``--grid-images`` photos (a stratified subset, decoded in memory: the
   grid search slices ``X``) with ``memory=`` (a fresh folder), and unless
   ``--no-plain-grid`` on ``--plain-grid-images`` photos without it (a
   smaller subset keeps it affordable), each against one fit of the same
   estimator on the same photos (``--grid-pop``, ``--grid-evaluations``:
   the search budget of these fits, the defaults by default), with the
   number of images that went through the backbone (training, scoring and
   the ODIN objective's synthetic OoD images; a fit from the store counts
   none).

Run: ``PYTHONPATH=. python benchmarks/bench_photos.py [--n-images 5000]
[--grid-images 1000] [--data /tmp/evoprune_photos]``.
"""

import argparse
import copy
import os
import tempfile
import time

import numpy as np

CLASSES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
           "immunohistochemistry", "retina", "camera", "china", "flower")


def photographs():
    """The 10 source photographs, RGB uint8, by class name."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    out = {}
    for name in CLASSES[:8]:
        image = getattr(skimage.data, name)()
        out[name] = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]
    china, flower = load_sample_images().images
    out["china"], out["flower"] = china, flower
    return out


def generate(root, n_images, seed=0):
    """Write ``n_images`` 320x240 JPEG crops into 10 class folders."""
    from PIL import Image

    done = os.path.join(root, f".complete-{n_images}")
    if os.path.exists(done):
        return
    rng = np.random.default_rng(seed)
    for k, (name, photo) in enumerate(photographs().items()):
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        source = Image.fromarray(photo)
        h, w = photo.shape[:2]
        for i in range(k, n_images, len(CLASSES)):
            side = int(rng.uniform(0.25, 1.0) * min(h, w))
            cw, ch = min(w, int(side * 4 / 3)), side
            x0, y0 = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
            crop = source.crop((x0, y0, x0 + cw, y0 + ch)).resize((320, 240), Image.BILINEAR)
            if rng.random() < 0.5:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            crop.save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)
    open(done, "w").close()


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def decoding(X, n, repeats):
    """Images/s decoding ``n`` files to the folder's size: 1 thread, default threads."""
    from evoprune_sklearn.datasets import ImageFolderArray

    sub = X.take(np.arange(min(n, len(X))))
    rates = {}
    for label, workers in (("1 thread", 1), (f"{sub._workers()} threads (default)", None)):
        one = ImageFolderArray(sub.files, sub.size, sub.height, sub.width, n_workers=workers)
        t, _ = best(lambda one=one: sum(len(b) for _, _, b in one.batches(64)), repeats)
        rates[label] = len(sub) / t
    return rates


def extraction(X, backbone, repeats):
    """Images/s: bare eager fp32 NCHW forward, Backbone.extract, bf16."""
    import torch

    from evoprune_sklearn._backbones._extractor import native_bf16

    bare_module = copy.deepcopy(backbone.module).to(memory_format=torch.contiguous_format)

    def bare():
        out = []
        with torch.inference_mode():
            for start in range(0, len(X), 64):
                x = torch.from_numpy(X[start:start + 64]).permute(0, 3, 1, 2).contiguous()
                out.append(bare_module(backbone.normalize(x.float() / 255)))
        return torch.cat(out).numpy()

    bf16 = copy.copy(backbone)
    bf16.precision = "bf16"
    paths = {"bare eager fp32 forward (NCHW)": bare,
             "Backbone.extract (default: fp32, channels-last, batch norms folded)":
             lambda: backbone.extract(X)}
    if native_bf16("cpu"):
        paths["Backbone.extract, precision='bf16'"] = lambda: bf16.extract(X)
    times = {k: [] for k in paths}
    feats = {}
    for _ in range(repeats):  # interleaved: the machine's load falls on every path
        for k, fn in paths.items():
            t = time.perf_counter()
            feats[k] = fn()
            times[k].append(time.perf_counter() - t)
    ref = feats["bare eager fp32 forward (NCHW)"]
    return {k: (len(X) / min(times[k]),
                float(np.abs(feats[k] - ref).max() / np.abs(ref).max())) for k in paths}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=5000)
    parser.add_argument("--grid-images", type=int, default=1000)
    parser.add_argument("--probe-images", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(),
                                                       "evoprune_photos"))
    parser.add_argument("--no-plain-grid", action="store_true",
                        help="skip the grid search without memory=")
    parser.add_argument("--plain-grid-images", type=int, default=None,
                        help="photos of the grid search without memory= (and its one-fit "
                             "reference); --grid-images when not given")
    parser.add_argument("--grid-pop", type=int, default=30)
    parser.add_argument("--grid-evaluations", type=int, default=200)
    parser.add_argument("--skip-fit", action="store_true",
                        help="skip the end-to-end fit from the folder")
    parser.add_argument("--skip-grid", action="store_true",
                        help="skip the grid searches")
    args = parser.parse_args(argv)

    import torch
    from sklearn.model_selection import GridSearchCV

    from evoprune_sklearn import EvoPruneClassifier, get_backbone
    from evoprune_sklearn.datasets import load_image_folder

    print(f"torch threads: {torch.get_num_threads()}, CPUs: {os.cpu_count()}, "
          f"load average: {os.getloadavg()[0]:.1f}", flush=True)
    data = os.path.join(args.data, str(args.n_images))
    t = time.perf_counter()
    generate(data, args.n_images)
    print(f"data: {args.n_images} JPEG crops (320x240) of 10 photographs in {data} "
          f"({time.perf_counter() - t:.1f} s to generate or find)", flush=True)

    X, y = load_image_folder(data, size=224, lazy=True)
    print("\n| decoding 320x240 JPEG to 224 px | images/s |\n|---|---|")
    for label, rate in decoding(X, args.probe_images, args.repeats).items():
        print(f"| {label} | {rate:.0f} |", flush=True)

    backbone = get_backbone("efficientnet_lite0")
    probe = X.load(np.arange(min(args.probe_images, len(X)))).data
    rates = extraction(probe, backbone, args.repeats)
    bare = rates["bare eager fp32 forward (NCHW)"][0]
    print(f"\n| extraction, {len(probe)} photos at 224 px | images/s | x bare | "
          "max relative difference from bare |\n|---|---|---|---|")
    for label, (rate, diff) in rates.items():
        print(f"| {label} | {rate:.1f} | {rate / bare:.2f} | {diff:.1e} |", flush=True)

    if not args.skip_fit:
        t = time.perf_counter()
        X, y = load_image_folder(data, size=224, lazy=True)
        listed = time.perf_counter() - t
        clf = EvoPruneClassifier(random_state=0).fit(X, y)
        total = time.perf_counter() - t
        ft = clf.fit_time_
        print(f"\n| one fit from the folder, {len(y)} photos at 224 px | value |\n|---|---|"
              f"\n| folder listed and headers checked, s | {listed:.1f} |"
              f"\n| feature extraction in the fit, s | {ft['features']:.1f} |"
              f"\n| images/s extracted (decoding included) | {len(y) / ft['features']:.1f} |"
              f"\n| search (and what follows extraction), s | {ft['search']:.1f} |"
              f"\n| total, s | {total:.1f} |"
              f"\n| training accuracy of the selected member | {clf.score(X, y):.3f} |",
              flush=True)

    if args.skip_grid:
        return
    count_forwards()
    X, y = load_image_folder(data, size=224, lazy=True)
    grid = {"alpha": [0.3, 1.0], "crossover_rate": [0.9, 1.0]}
    params = dict(random_state=0, pop_size=args.grid_pop, n_evaluations=args.grid_evaluations)
    runs = [(args.grid_images, True)]
    if not args.no_plain_grid:
        runs.append((args.plain_grid_images or args.grid_images, False))
    for n, with_memory in runs:
        Xg, yg = subset(X, y, min(n, len(y)))
        before = FORWARDED[0]
        t1, _ = best(lambda Xg=Xg, yg=yg: EvoPruneClassifier(**params).fit(Xg, yg), 1)
        n1, before = FORWARDED[0] - before, FORWARDED[0]
        with tempfile.TemporaryDirectory() as memory:
            est = EvoPruneClassifier(**params, memory=memory if with_memory else None)
            tg, _ = best(lambda est=est, Xg=Xg, yg=yg: GridSearchCV(est, grid, cv=3).fit(
                Xg, yg), 1)
        ng = FORWARDED[0] - before
        label = "memory=" if with_memory else "no memory"
        print(f"\n| {len(yg)} photos at 224 px, pop {args.grid_pop}, "
              f"{args.grid_evaluations} evaluations | seconds | x one fit | "
              "images through the backbone |\n|---|---|---|---|"
              f"\n| one fit | {t1:.1f} | 1.00 | {n1} |"
              f"\n| GridSearchCV 4 x 3, {label} | {tg:.1f} | {tg / t1:.2f} | {ng} |",
              flush=True)


# Images through the network in Backbone.extract (training, scoring and the
# ODIN objective's OoD images; not the one-image probe of each new backbone).
FORWARDED = [0]


def count_forwards():
    from evoprune_sklearn._backbones._extractor import Backbone

    forward = Backbone._forward

    def counted(self, X, *args, **kwargs):
        FORWARDED[0] += len(X)
        return forward(self, X, *args, **kwargs)

    Backbone._forward = counted


def subset(X, y, n):
    """A stratified subset of ``n`` photos, decoded (the grid search slices X)."""
    from sklearn.model_selection import train_test_split

    index = (np.arange(len(y)) if n == len(y) else
             np.sort(train_test_split(np.arange(len(y)), train_size=n, stratify=y,
                                      random_state=0)[0]))
    return np.asarray(X.take(index)), y[index]


if __name__ == "__main__":
    main()
