"""The code passes the linter configured in pyproject.toml ([tool.ruff])."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_check_passes():
    # ruff is in the dev extra; `python -m ruff` runs the one installed
    # beside this interpreter.
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
        cwd=REPO, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
