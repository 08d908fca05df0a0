"""The demo command runs end to end (with a tiny budget)."""

from evoprune_sklearn.__main__ import main


def test_demo_prints_front_and_writes_plot(tmp_path, capsys):
    rc = main(["demo", "--pop-size", "4", "--n-evaluations", "8", "--image-size", "32",
               "--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Pareto front" in out and "dense head" in out and "<- predict()" in out
    assert "L1 path at the selected member's budget" in out
    assert (tmp_path / "pareto_front.png").stat().st_size > 1000
