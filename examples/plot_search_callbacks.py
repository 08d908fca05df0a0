"""
=====================================================
Logging, stopping and continuing a search
=====================================================

A search is a loop of generations. This example watches that loop from the
outside: it logs every generation to a CSV file through a callback, stops the
search with a time budget and when the front stops improving, and continues a
finished search with a larger budget instead of starting again.
"""

# %%
# Data
# ----
# To keep the loop itself in view (and this page fast), the search runs on
# ready-made features: the 64 pixel intensities of scikit-learn's 8x8
# digits, with ``backbone=None``. Everything below works the same with images
# and a backbone; only each generation takes longer.
import os
import tempfile

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16.0, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# A search that writes its own log
# --------------------------------
# :class:`~evoprune_sklearn.callbacks.CSVLogger` appends one row per
# generation to a CSV file and flushes it, so another program (or
# ``tail -f``) can follow a long search while it runs. Callbacks are ordinary
# estimator parameters; a callback can also be a small class of your own:
# here one that prints a line per generation. ``warm_start=True`` keeps the
# search state after ``fit``, so that it can be continued later.
from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn.callbacks import CSVLogger, SearchCallback


class PrintGeneration(SearchCallback):
    """Print the size of the front and its best accuracy after each generation."""

    def on_generation_end(self, record, front):
        print(f"generation {record['generation']}: {len(front)} members, "
              f"best validation accuracy {record['best_accuracy']:.3f}")


log_path = os.path.join(tempfile.mkdtemp(), "search.csv")
clf = EvoPruneClassifier(
    backbone=None,
    hidden_layer_sizes=(32,),
    objectives=("accuracy", "complexity"),
    pop_size=10,
    n_evaluations=20,
    random_state=0,
    warm_start=True,
    callbacks=[CSVLogger(log_path), PrintGeneration()],
)
clf.fit(X_train, y_train)
print("stopped because:", clf.stop_reason_)

# %%
# The log is a plain CSV file: one column per field of ``history_``.
import pandas as pd

log = pd.read_csv(log_path)
log.round(3)

# %%
# Continue the search
# -------------------
# The front is still improving. Rather than refitting from scratch with a
# larger budget, raise ``n_evaluations`` and fit again: with
# ``warm_start=True`` the search goes on from its last generation, with its
# population, random state, evaluation cache and front. Because the first
# fit ended on a generation boundary (20 evaluations are 2 generations of
# 10), the continued search is exactly the one a single fit would have run:
# the same genomes in the same order, the same front after every generation.
#
# This time two stop criteria watch it as well: ``n_iter_no_change=2`` ends it
# once the front's hypervolume has not grown by more than
# ``hypervolume_tol`` for two generations, and ``max_time`` caps the fit's
# wall-clock time (checked between generations). ``stop_reason_`` says which
# one ended it.
clf.set_params(n_evaluations=60, n_iter_no_change=2, hypervolume_tol=5e-3,
               max_time=300)
clf.fit(X_train, y_train)
print("stopped because:", clf.stop_reason_, "after", clf.n_evaluations_,
      "evaluations")
print(f"test accuracy of the selected member: {clf.score(X_test, y_test):.3f}")

# %%
# The CSV file now holds the whole history: the logger of a continued search
# writes the earlier generations first, so the file always matches
# ``history_``. The dashed line marks where the second ``fit`` took over.
#
# With a tolerance of 0.005 the gains after it were too small to count, so
# the search stopped before spending its budget. Early stopping trades a
# possible late improvement for time; if the curve still rises, fit again:
# a stopped search continues exactly like one whose budget ran out.
import matplotlib.pyplot as plt

log = pd.read_csv(log_path)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
ax1.plot(log["n_evaluations"], log["hypervolume"], marker="o")
ax1.set_xlabel("evaluations")
ax1.set_ylabel("hypervolume")
ax2.plot(log["n_evaluations"], log["best_accuracy"], marker="o", label="best accuracy")
ax2.plot(log["n_evaluations"], log["best_complexity"], marker="s", label="best complexity")
ax2.set_xlabel("evaluations")
ax2.legend()
for ax in (ax1, ax2):
    ax.axvline(20, color="grey", linestyle="--")

# %%
# Stopping on your own criterion
# ------------------------------
# :class:`~evoprune_sklearn.callbacks.ThresholdStopping` ends a search once a
# field of the generation record reaches a value, here a validation accuracy
# of 0.95. Any callback can do the same by returning True from
# ``on_generation_end`` or raising
# :class:`~evoprune_sklearn.callbacks.StopSearch`; ``stop_reason_`` then holds
# the callback's name. Callbacks survive :func:`~sklearn.base.clone`, so they
# work inside ``GridSearchCV`` and ``cross_val_score`` too.
from evoprune_sklearn.callbacks import ThresholdStopping

quick = EvoPruneClassifier(
    backbone=None,
    hidden_layer_sizes=(32,),
    objectives=("accuracy", "complexity"),
    pop_size=10,
    n_evaluations=200,
    random_state=0,
    callbacks=[ThresholdStopping(0.95, metric="best_accuracy")],
).fit(X_train, y_train)
print("stopped because:", quick.stop_reason_, "after", quick.n_evaluations_,
      "of 200 evaluations; best accuracy",
      round(quick.history_[-1]["best_accuracy"], 3))
