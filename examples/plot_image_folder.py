"""
=====================
Your own image folder
=====================

Real datasets usually come as one folder of images per class. This example
writes such a folder (synthetic shapes, so it runs anywhere), loads it with
:func:`~evoprune_sklearn.datasets.load_image_folder`, and fits on it. Point
``root`` at your own folder to do the same with your data.
"""

# %%
# Write a small class-per-folder dataset
# --------------------------------------
# Three classes, 40 PNG images each: circles, squares and triangles of random
# size, position and colour on a random background.
import os
import tempfile

import numpy as np
from PIL import Image, ImageDraw

rng = np.random.default_rng(0)
root = tempfile.mkdtemp(prefix="shapes_")


def draw_shape(kind, size=48):
    background = tuple(int(v) for v in rng.integers(0, 120, 3))
    colour = tuple(int(v) for v in rng.integers(130, 256, 3))
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    r = rng.integers(8, 16)
    cx, cy = rng.integers(r + 2, size - r - 2, 2)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif kind == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return img


for kind in ("circle", "square", "triangle"):
    os.makedirs(os.path.join(root, kind))
    for i in range(40):
        draw_shape(kind).save(os.path.join(root, kind, f"{i:03d}.png"))
print(root, "->", sorted(os.listdir(root)))

# %%
# Load it
# -------
# Subfolder names become the labels. Every image is converted to RGB and
# resized to ``size`` (pick the size the backbone will use, here 32).
from evoprune_sklearn.datasets import load_image_folder

X, y = load_image_folder(root, size=32)
print(X.shape, X.dtype, np.unique(y, return_counts=True))

# %%
# Fit and evaluate
# ----------------
# Labels can be any type, here the folder names.
from sklearn.model_selection import train_test_split

from evoprune_sklearn import EvoPruneClassifier

X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
clf = EvoPruneClassifier(
    image_size=32,
    hidden_layer_sizes=(32,),
    pop_size=8,
    n_evaluations=24,
    random_state=0,
).fit(X_train, y_train)
print("classes:", clf.classes_)
print(f"test accuracy {clf.score(X_test, y_test):.3f}")
clf.pareto_front_.to_frame()

# %%
# Predictions on test images
# --------------------------
import matplotlib.pyplot as plt

pred = clf.predict(X_test)
fig, axes = plt.subplots(2, 6, figsize=(9, 3.6))
for ax, image, label, guess in zip(axes.ravel(), X_test, y_test, pred):
    ax.imshow(image)
    ax.set_title(guess, color="tab:green" if guess == label else "tab:red", fontsize=9)
    ax.set_axis_off()
fig.suptitle("predicted class (red: wrong)")
fig.tight_layout()

# %%
# Folders too large for memory
# ----------------------------
# ``lazy=True`` returns an array-like that decodes images only when they are
# used; the classifier reads it one backbone batch at a time, so memory stays
# flat however many images the folder holds.
X_lazy, y_lazy = load_image_folder(root, size=32, lazy=True)
print(type(X_lazy).__name__, X_lazy.shape)
print("same predictions:", np.array_equal(clf.predict(X_lazy), clf.predict(X)))

# %%
# Clean up the folder we wrote.
import shutil

shutil.rmtree(root)
