"""issue 17: one writer per case, proved with real processes (an OS lock held for the run)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_engine import FakeEngine, make_photo
from fake_engine import run_cli as run

from forensic_app.cli import EXIT_OK, EXIT_USAGE, main
from forensic_app.core.audit import read_audit

REPO = Path(__file__).resolve().parents[2]

HOLDER = """
import sys
from forensic_app.core.case import Case
case = Case.open(sys.argv[1], examiner="holder")
print("locked", flush=True)
sys.stdin.readline()
case.close()
print("released", flush=True)
"""

CREATOR = """
import os, sys, time
from forensic_app.core.case import Case
from forensic_app.core.caselock import CaseBusyError
from forensic_app.core.case import CaseError
while not os.path.exists(sys.argv[3]):
    time.sleep(0.001)
try:
    Case.create(sys.argv[1], name=sys.argv[2], examiner=sys.argv[2]).close()
    print("created", flush=True)
except (CaseError, CaseBusyError) as exc:
    print("refused:", exc, flush=True)
"""


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


@pytest.fixture
def case(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    make_photo(Path("ev/a.jpg"), color=(200, 10, 10))
    make_photo(Path("ev/b.png"), color=(10, 10, 200))
    rc, _, err = run(["batch", "ev", "--case", "case"])
    assert rc == 0, err
    return tmp_path / "case"


@pytest.fixture
def holder(case):
    """Another process that holds the case as a writer until told to stop."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(case)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
    )
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)


def release(proc) -> None:
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "released"
    proc.wait(timeout=30)


def test_second_writer_is_refused_naming_the_holder(case, holder):
    rc, out, err = run(["batch", "ev", "--case", "case"])
    assert rc == EXIT_USAGE, out + err
    assert "in use by another writer" in err
    assert f"pid {holder.pid}" in err and socket.gethostname() in err
    release(holder)
    rc, out, err = run(["batch", "ev", "--case", "case"])
    assert rc == EXIT_OK, err


def test_readers_work_beside_a_writer_and_never_delete_its_temp_files(case, holder):
    tmp = case / "results" / ".0123.json.k3j4h5.tmp"
    tmp.write_bytes(b"the live writer's half-written record")
    log = (case / "audit.jsonl").read_bytes()
    rc, out, err = run(["case", "verify", "--case", "case"])
    assert rc == EXIT_OK, out + err
    assert "not logged" in err and f"pid {holder.pid}" in err  # never forks the writer's chain
    rc, out, err = run(["report", "--case", "case", "--out", "r.html"])
    assert rc == EXIT_OK, out + err
    assert tmp.exists() and (case / "audit.jsonl").read_bytes() == log
    release(holder)


def test_batch_wait_waits_for_the_holder(case, holder):
    result: dict = {}
    err = io.StringIO()

    def work():
        out = io.StringIO()
        result["rc"] = main(
            ["batch", "ev", "--case", "case", "--wait"],
            engine_factory=lambda a: FakeEngine(),
            stdout=out,
            stderr=err,
        )

    t = threading.Thread(target=work)
    t.start()
    deadline = time.monotonic() + 60
    while "waiting for the case's writer" not in err.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"pid {holder.pid}" in err.getvalue()
    assert t.is_alive()  # it is waiting, not failed
    release(holder)
    t.join(60)
    assert result["rc"] == EXIT_OK, err.getvalue()
    actions = [e["action"] for e in read_audit(case / "audit.jsonl").entries]
    assert actions[-1] == "batch-finished"


def test_two_processes_creating_one_case_never_overwrite_a_manifest(tmp_path):
    root, go = tmp_path / "new-case", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CREATOR, str(root), f"examiner-{i}", str(go)],
            stdout=subprocess.PIPE,
            text=True,
            env=env(),
        )
        for i in range(2)
    ]
    time.sleep(0.5)  # both processes started and spinning (not a measured threshold)
    go.write_text("go")
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(o.split(":")[0] for o in outs) == ["created", "refused"], outs
    winner = f"examiner-{[o.startswith('created') for o in outs].index(True)}"
    manifest = json.loads((root / "case.json").read_text())
    assert manifest["examiner"] == winner and manifest["case_name"] == winner
    entries = read_audit(root / "audit.jsonl").entries
    assert [e["action"] for e in entries] == ["case-created"]


def test_deleting_the_lock_file_never_lets_a_second_writer_in(case, holder):
    """Attack: `.case.lock` deleted while a writer holds it ("it looked stale"); the next writer
    created a new lock file, locked it and ran beside the first (two writers, one chain)."""
    (case / ".case.lock").unlink()
    log = (case / "audit.jsonl").read_bytes()
    rc, out, err = run(["batch", "ev", "--case", "case"])
    assert rc == EXIT_USAGE, out + err
    assert "in use by another writer" in err and f"pid {holder.pid}" in err
    assert (case / "audit.jsonl").read_bytes() == log  # nothing written beside the holder
    release(holder)
    rc, out, err = run(["batch", "ev", "--case", "case"])
    assert rc == EXIT_OK, out + err


def test_lock_of_a_killed_writer_is_no_obstacle(case, holder):
    """kill -9 of a writer (pid gone, lock files left behind): the next writer just proceeds."""
    holder.kill()
    holder.wait(timeout=30)
    assert (case / ".case.lock").exists() and (case / ".case.lock.json").exists()
    rc, out, err = run(["batch", "ev", "--case", "case"])
    assert rc == EXIT_OK, out + err
    rc, out, err = run(["case", "verify", "--case", "case", "--no-log"])
    assert rc == EXIT_OK, out + err
