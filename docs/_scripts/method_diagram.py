"""The MO-EvoPruneDeepTL pipeline as evoprune_sklearn runs it (drawn for the docs)."""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

BOXES = [
    # (x, y, w, h, title, detail, colour)
    (0.0, 2.2, 1.7, 1.1, "images", "(n, H, W, C)\nuint8 or [0, 1]", "#dbe9f6"),
    (2.2, 2.2, 1.9, 1.1, "frozen backbone", "pretrained CNN\nrun ONCE per fit", "#dbe9f6"),
    (4.6, 2.2, 1.9, 1.1, "cached features", "(n, d) float32\ntrain / validation", "#dbe9f6"),
    (7.0, 2.2, 2.0, 1.1, "NSGA-II", "pymoo ask / tell\npopulation of genomes", "#fde2c8"),
    (7.0, 0.3, 2.0, 1.2, "genome", "one bit a gene\n1 = kept, 0 = pruned", "#fde2c8"),
    (4.4, 0.3, 2.2, 1.2, "sparse head", "features -> FC(ReLU)\n-> linear(C), masked", "#fde2c8"),
    (1.6, 0.3, 2.4, 1.2, "objectives", "accuracy (validation)\ncomplexity, robustness", "#fde2c8"),
    (9.6, 2.2, 1.8, 1.1, "Pareto front", "non-dominated\ntrained heads", "#d8f0d8"),
    (9.6, 0.3, 1.8, 1.2, "use", "predict (selection)\nensemble, explain\nexport", "#d8f0d8"),
]

ARROWS = [
    ((1.7, 2.75), (2.2, 2.75), ""),
    ((4.1, 2.75), (4.6, 2.75), ""),
    ((6.5, 2.75), (7.0, 2.75), "features"),
    ((8.0, 2.2), (8.0, 1.5), "ask"),
    ((7.0, 0.9), (6.6, 0.9), "mask"),
    ((4.4, 0.9), (4.0, 0.9), "train"),
    ((2.8, 1.5), (6.9, 2.35), "tell: scores"),
    ((9.0, 2.75), (9.6, 2.75), "archive"),
    ((10.5, 2.2), (10.5, 1.5), ""),
]


def draw():
    fig, ax = plt.subplots(figsize=(11.5, 4.0))
    for x, y, w, h, title, detail, colour in BOXES:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04,rounding_size=0.12",
                                    fc=colour, ec="#444444", lw=1.2))
        ax.text(x + w / 2, y + h - 0.24, title, ha="center", va="center",
                fontsize=13, weight="bold")
        ax.text(x + w / 2, y + (h - 0.35) / 2, detail, ha="center", va="center",
                fontsize=10.5, linespacing=1.2)
    for start, end, label in ARROWS:
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14,
                                     lw=1.3, color="#333333",
                                     connectionstyle="arc3,rad=0.0"))
        if label:
            mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
            ax.text(mx + 0.05, my + 0.09, label, fontsize=10, color="#333333",
                    ha="left" if start[0] == end[0] else "center", style="italic")
    ax.text(0.0, 3.55, "once per fit", fontsize=11, color="#1f4e79")
    ax.text(1.6, -0.05, "every generation (features reused, nothing re-extracted)",
            fontsize=11, color="#8a4b08")
    ax.set_xlim(-0.1, 11.5)
    ax.set_ylim(-0.2, 3.8)
    ax.set_axis_off()
    fig.tight_layout()
    return fig


draw()
