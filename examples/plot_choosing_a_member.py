"""
=================
Choosing a member
=================

``predict`` uses one member of the Pareto front, chosen by the ``selection``
parameter. This example spells out what each rule does, on the validation
values it is allowed to see, then shows how to switch members after ``fit``,
export the one you prefer and save the whole estimator.
"""

# %%
# Fit once
# --------
# Two objectives keep the picture simple. Selection never changes the search:
# the same ``random_state`` gives the same front whatever ``selection`` is.
import numpy as np
from sklearn.model_selection import train_test_split

from evoprune_sklearn import EvoPruneClassifier
from evoprune_sklearn.datasets import load_digits_images

X, y = load_digits_images(size=32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
clf = EvoPruneClassifier(
    image_size=32,
    hidden_layer_sizes=(32,),
    objectives=("accuracy", "complexity"),
    pop_size=10,
    n_evaluations=40,
    random_state=0,
).fit(X_train, y_train)
frame = clf.pareto_front_.to_frame()

# %%
# The rules, by hand
# ------------------
# ``"accuracy"`` takes the most accurate member and ``"complexity"`` the
# smallest one. ``"knee"`` (the default) first keeps the members whose
# validation accuracy is within one binomial standard error of the best,
# ``sqrt(a (1 - a) / n_validation)``: on this many validation images their
# accuracies cannot be told apart. Among those it takes the one closest to
# the ideal in the other objectives, here simply the smallest.
# ``"tradeoff"`` rescales both objectives to [0, 1] over the whole front and
# takes the member closest to the ideal corner, accuracy counting no more than
# size.
n_validation = int(np.ceil(clf.validation_fraction * len(X_train)))
acc, comp = frame["accuracy"].to_numpy(), frame["complexity"].to_numpy()
best = acc.max()
standard_error = np.sqrt(best * (1 - best) / n_validation)
eligible = np.flatnonzero(acc >= best - standard_error - 1e-12)


def rescaled(v):
    span = v.max() - v.min()
    return (v - v.min()) / span if span > 0 else np.zeros_like(v)


choice = {
    "accuracy": int(np.lexsort((comp, -acc))[0]),
    "complexity": int(np.lexsort((-acc, comp))[0]),
    "knee": int(eligible[np.argmin(comp[eligible])]),
    "tradeoff": int(np.argmin(np.hypot(rescaled(-acc), rescaled(comp)))),
}
print(f"{n_validation} validation images; best accuracy {best:.3f}, "
      f"one standard error {standard_error:.3f}: {len(eligible)} eligible members")
print("chosen by each rule:", choice)
print("the fitted estimator's knee (best_index_):", clf.best_index_)
# The front applies the same rules itself (they are the objects of
# ``evoprune_sklearn.selection``), so no estimator is needed to choose.
print("front.select(rule):", {rule: clf.pareto_front_.select(rule) for rule in choice})

# %%
# Where they land on the front
# ----------------------------
# Test accuracy is computed here **for illustration only**: choosing by it
# would turn the test set into a second validation set. Each member's head
# takes backbone features, so we extract the test features once.
import matplotlib.pyplot as plt

test_features = clf.extract_features(X_test)
frame["test_accuracy"] = [np.mean(m.predict(test_features) == y_test)
                          for m in clf.pareto_front_]
for i in choice.values():
    frame.loc[i, "chosen by"] = ", ".join(r for r, j in choice.items() if j == i)
frame.fillna({"chosen by": ""})

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.2))
ax.plot(comp, acc, "o-", color="tab:blue", label="validation accuracy")
ax.plot(comp, frame["test_accuracy"], "s", color="tab:gray", alpha=0.6,
        label="test accuracy (illustration)")
ax.axhspan(best - standard_error, best, color="tab:green", alpha=0.15,
           label="within one standard error")
for i in sorted(set(choice.values())):
    rules = [rule for rule, j in choice.items() if j == i]
    ax.scatter(comp[i], acc[i], s=260, facecolors="none", edgecolors="tab:red",
               linewidths=2)
    right = comp[i] > 0.6 * comp.max()  # keep labels inside the axes
    ax.annotate(" + ".join(rules), (comp[i], acc[i]), textcoords="offset points",
                xytext=(-10 if right else 10, -16), ha="right" if right else "left",
                color="tab:red", weight="bold")
ax.set_xlabel("complexity (fraction of features kept)")
ax.set_ylabel("accuracy")
ax.legend(loc="lower right", fontsize="small")
ax.grid(alpha=0.3)
fig.tight_layout()

# %%
# Using the member you prefer
# ---------------------------
# ``selection`` only decides which member predicts, so it may change after
# ``fit``: ``best_index_`` is computed from the current ``selection`` each
# time, and ``predict`` follows at once, without fitting again (a member
# not used before is retrained on all the training rows the first time it
# predicts, a single head: see ``refit``).
print("n_trained_ before:", clf.n_trained_)
clf.set_params(selection="tradeoff")
i = clf.best_index_
member = clf.pareto_front_[i]
print(f"selection='tradeoff' -> member {i} (by hand: {choice['tradeoff']}): "
      f"{member.n_active} features, test accuracy {clf.score(X_test, y_test):.3f}")
clf.set_params(selection=choice["accuracy"])  # an integer picks a member by index
print(f"member {clf.best_index_}: test accuracy {clf.score(X_test, y_test):.3f}")
# A rule object works as well. ``WithinBudget`` takes a size budget, here at
# most 30 % of the features: among the members of that size whose validation
# accuracy cannot be told from the best of them (one standard error), the one
# keeping the most features, the better bet on unseen data.
from evoprune_sklearn.selection import SelectionRule, WithinBudget

clf.set_params(selection=WithinBudget(0.3))
print(f"WithinBudget(0.3) -> member {clf.best_index_} "
      f"({clf.pareto_front_[clf.best_index_].n_active} features): "
      f"test accuracy {clf.score(X_test, y_test):.3f}")


# Your own rule: subclass ``SelectionRule``; here the sparsest member that is
# at least 90 % accurate on validation.
class SparsestAbove90(SelectionRule):
    def _select(self, front):
        good = np.flatnonzero(front.F[:, 0] >= 0.9)
        if len(good) == 0:
            return int(np.argmax(front.F[:, 0]))
        return int(good[np.argmin(front.F[good, 1])])


clf.set_params(selection=SparsestAbove90())
print(f"SparsestAbove90 -> member {clf.best_index_}: "
      f"test accuracy {clf.score(X_test, y_test):.3f}")
clf.set_params(selection="knee")  # back to the default
print("n_trained_ after:", clf.n_trained_, "(no refit)")

# %%
# Exporting it
# ------------
# :meth:`~evoprune_sklearn.EvoPruneClassifier.export_model` turns a member
# into a plain torch module in which the pruned features are removed, not
# masked: the first layer really is smaller. ``head_only=True`` gives the head
# alone (backbone features in, logits out); the default includes the frozen
# backbone and takes images.
import torch

head = clf.export_model(member=clf.best_index_, head_only=True)
print(head.summary())
with torch.no_grad():
    logits = head(torch.as_tensor(test_features))
print("same predictions as the estimator:",
      np.array_equal(clf.classes_[logits.argmax(1).numpy()], clf.predict(X_test)))

# %%
# The exported modules are plain PyTorch (no TorchScript), so the current
# exporters take them: :func:`torch.export.export` here, and
# ``torch.onnx.export(head, (example,), dynamo=True)`` for ONNX runtimes
# (with the ``onnxscript`` package installed).
example = torch.as_tensor(test_features[:1])
program = torch.export.export(head, (example,))
print("torch.export program: same logits:",
      torch.allclose(program.module()(example), head(example), atol=1e-6))

# %%
# Saving the whole estimator
# --------------------------
# To keep the whole front (to change ``selection`` later, vote, explain),
# :meth:`~evoprune_sklearn.EvoPruneClassifier.save` writes a safetensors file
# that :meth:`~evoprune_sklearn.EvoPruneClassifier.load` reads back without
# running any code from it, unlike pickle.
import os
import tempfile

path = os.path.join(tempfile.mkdtemp(), "digits.safetensors")
clf.save(path)
loaded = EvoPruneClassifier.load(path)
print(f"{os.path.getsize(path) / 1e6:.1f} MB; same predictions after load:",
      np.array_equal(loaded.predict(X_test), clf.predict(X_test)))
