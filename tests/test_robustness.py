"""The robustness report and the averaged-logits network it attacks."""

import numpy as np
import pytest
import torch

from evoprune_sklearn import EvoPruneClassifier

TWO = ("accuracy", "complexity")


# ------------------------------------------------------------------ report
def test_report_on_features(ood_fit):
    from evoprune_sklearn.robustness import COLUMNS, robustness_report

    clf, X, y = ood_fit
    report = robustness_report(clf, X, y, X_far=-X, ensembles=["front"])
    assert list(report.columns) == list(COLUMNS)
    assert report.loc["logistic regression", "kind"] == "baseline"
    assert report.loc["ensemble front", "n_members"] == len(clf.pareto_front_)
    ours = report[report["kind"] != "baseline"]
    assert ours["auroc_far"].between(0.9, 1.0).all()
    assert 0 <= report.loc["logistic regression", "auroc_far"] <= 1
    assert report["auroc_near"].isna().all()
    assert report["fgsm"].isna().all()  # no pixels to attack with feature input
    assert report.attrs["eps"] is None
    member = report.index[0]
    i = int(member.split()[1])
    expected = np.mean(clf.ensemble_predict(X, members=i) == y)
    assert report.loc[member, "accuracy"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="attacks"):
        robustness_report(clf, X, y, attacks=("cw",))
    with pytest.raises(ValueError, match="eps"):
        robustness_report(clf, X, y, eps=-1.0)


@pytest.fixture(scope="module")
def image_fit():
    from evoprune_sklearn.datasets import load_digits_images

    X, y = load_digits_images(size=32, n_per_class=8)
    X, y = X[y < 3], y[y < 3]
    clf = EvoPruneClassifier(image_size=32, objectives=TWO, pop_size=4, n_evaluations=8,
                             random_state=0).fit(X[::2], y[::2])
    return clf, X[1::2], y[1::2]


@pytest.mark.parametrize("eps", ["auto", 2 / 255])
def test_report_attacks_images(image_fit, eps):
    pytest.importorskip(
        "torchattacks",
        reason="torchattacks is the [attacks] extra (make install and CI install it)",
    )
    from evoprune_sklearn.robustness import robustness_report

    clf, X, y = image_fit
    report = robustness_report(clf, X, y, X_near=255 - X, members=("top", 2),
                               ensembles=[("top", 2)], eps=eps, n_attack=4)
    cols = ["fgsm", "pgd", "fgsm_transfer", "pgd_transfer"]
    assert report[cols].notna().all().all()
    assert report[cols].apply(lambda c: c.between(0, 1)).all().all()
    if eps != "auto":
        assert report.attrs["eps"] == eps
    # the transfer source attacked by its own crafted images: white-box FGSM
    src = report.attrs["transfer_source"]
    assert report.loc[src, "fgsm_transfer"] == report.loc[src, "fgsm"]
    fgsm_only = robustness_report(clf, X, y, members=0, ensembles=[], attacks=("fgsm",),
                                  eps=eps, n_attack=4, baseline=False)
    assert fgsm_only["pgd"].isna().all() and fgsm_only["fgsm"].notna().all()


def test_averaged_logits_is_the_mean():
    from evoprune_sklearn.robustness import AveragedLogits

    heads = [torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)]
    x = torch.randn(4, 3)
    net = AveragedLogits(None, heads)
    torch.testing.assert_close(net(x), (heads[0](x) + heads[1](x)) / 2)


def test_display(ood_fit):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evoprune_sklearn.plotting import RobustnessDisplay

    clf, X, y = ood_fit
    disp = RobustnessDisplay.from_estimator(clf, X, y, X_near=X * 1.5, X_far=-X)
    assert [a.get_xlabel() for a in disp.axes_] == [
        "test accuracy", "OoD AUROC, near", "OoD AUROC, far"]
    assert len(disp.bars_[0]) == len(disp.report)
    fig, ax = plt.subplots()
    disp.plot(ax=ax, metrics=["accuracy"])
    assert disp.ax_ is ax
    with pytest.raises(ValueError, match="metrics"):
        disp.plot(metrics=["speed"])
    with pytest.raises(TypeError, match="DataFrame"):
        RobustnessDisplay([1, 2])
    plt.close("all")
