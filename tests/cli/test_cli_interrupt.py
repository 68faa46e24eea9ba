"""Ctrl-C (SIGINT) stops a CLI batch, pipelined and multi-worker, exits 130 and says so in the
case's audit log. A real subprocess gets a real signal; the only time bound is a hang guard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_engine import make_photo

from forensic_app.core.audit import read_audit

HANG_GUARD_S = 60  # generous: the run must stop, not be fast

RUNNER = """
import sys
sys.path.insert(0, {tests!r})
from fake_engine import FakeEngine
from forensic_app.cli import main
sys.exit(main(sys.argv[1:], engine_factory=lambda a: FakeEngine(delay_s=0.2)))
"""


def _wait_for(predicate, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not predicate():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the batch ended or stalled before it could be interrupted")
        time.sleep(0.05)


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process is a POSIX test")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigint_stops_a_case_batch_and_logs_interrupted(tmp_path: Path, workers: str) -> None:
    for i in range(120):
        make_photo(tmp_path / "ev" / f"p{i:03d}.jpg", color=(200, i, 30))  # distinct bytes
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    case = tmp_path / "case"
    argv = ["batch", str(tmp_path / "ev"), "--case", str(case), "--workers", workers, "-q"]
    script = RUNNER.format(tests=str(Path(__file__).parent))
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *argv],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    results = case / "results"
    _wait_for(lambda: results.is_dir() and len(list(results.glob("*.json"))) >= 3, proc)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("Ctrl-C did not stop the batch")
    assert proc.returncode == 130, err.decode(errors="replace")
    assert b"interrupted" in err
    entries = read_audit(case / "audit.jsonl").entries
    actions = [e["action"] for e in entries]
    assert "interrupted" in actions and "batch-finished" not in actions
    saved = list(results.glob("*.json"))
    assert 3 <= len(saved) < 120  # stopped early; what was saved is complete JSON
    for record in saved:
        json.loads(record.read_text(encoding="utf-8"))


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process is a POSIX test")
def test_sigint_stops_analyze_into_an_output_folder(tmp_path: Path) -> None:
    for i in range(120):
        make_photo(tmp_path / "ev" / f"p{i:03d}.jpg", color=(200, i, 30))
    repo = Path(__file__).resolve().parents[2]
    out_dir = tmp_path / "out"
    argv = ["analyze", str(tmp_path / "ev"), "--out", str(out_dir), "--workers", "2", "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER.format(tests=str(Path(__file__).parent)), *argv],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(repo)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for(lambda: len(list(out_dir.glob("*.annotated.jpg"))) >= 3, proc)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("Ctrl-C did not stop the run")
    assert proc.returncode == 130, err.decode(errors="replace")
    assert len(list(out_dir.glob("*.annotated.jpg"))) < 120
