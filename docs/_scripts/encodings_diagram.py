"""The two genome encodings on a toy head: 6 features, 4 hidden neurons, 3 classes."""

import matplotlib.pyplot as plt
import numpy as np

N_IN, N_HID, N_OUT = 6, 4, 3


def _layer(n, x):
    ys = np.linspace(0.9, 0.1, n)
    return [(x, y) for y in ys]


def _panel(ax, title, in_on, hid_on, genes_label):
    inp, hid, out = _layer(N_IN, 0.1), _layer(N_HID, 0.5), _layer(N_OUT, 0.9)
    for i, a in enumerate(inp):
        for j, b in enumerate(hid):
            on = in_on[i] and hid_on[j]
            ax.plot([a[0], b[0]], [a[1], b[1]], color="#333333" if on else "#dddddd",
                    lw=1.0 if on else 0.6, zorder=1, ls="-" if on else ":")
    for j, a in enumerate(hid):
        for b in out:
            on = hid_on[j]
            ax.plot([a[0], b[0]], [a[1], b[1]], color="#333333" if on else "#dddddd",
                    lw=1.0 if on else 0.6, zorder=1, ls="-" if on else ":")
    for pts, on, _gene in ((inp, in_on, True), (hid, hid_on, False), (out, [1] * N_OUT, False)):
        for k, (x, y) in enumerate(pts):
            ax.scatter(x, y, s=320, zorder=2, color="#2b6cb0" if on[k] else "white",
                       edgecolors="#2b6cb0" if on[k] else "#999999", lw=1.5)
    genes = in_on if genes_label == "features" else hid_on
    ax.text(0.5, -0.06, "genome = " + "".join(str(int(g)) for g in genes),
            ha="center", fontsize=11, family="monospace", transform=ax.transAxes)
    ax.text(0.1, 1.0, "backbone\nfeatures", ha="center", fontsize=9)
    ax.text(0.5, 1.0, "sparse FC\n(ReLU)", ha="center", fontsize=9)
    ax.text(0.9, 1.0, "classes", ha="center", fontsize=9)
    ax.set_title(title, fontsize=11)
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.12, 1.12)
    ax.set_axis_off()


fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
_panel(axes[0], 'encoding="features": one gene per feature',
       [1, 0, 1, 1, 0, 1], [1, 1, 1, 1], "features")
_panel(axes[1], 'encoding="neurons": one gene per hidden neuron',
       [1] * N_IN, [1, 0, 1, 0], "neurons")
fig.tight_layout()
