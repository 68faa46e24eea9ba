"""The code base stays ruff-clean: a lint failure fails the suite, not just a CI step."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e .[test])")
    proc = subprocess.run(
        [ruff, "check", "forensic_app", "tests", "training", "bench", "packaging", "scripts"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_clean() -> None:
    """The guide asks for ``ruff format --check`` too: unformatted code fails the suite."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e .[test])")
    proc = subprocess.run(
        [
            ruff,
            "format",
            "--check",
            "forensic_app",
            "tests",
            "training",
            "bench",
            "packaging",
            "scripts",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
