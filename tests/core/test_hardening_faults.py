"""Faults: read-only or vanishing output, disk full, bad models, the app killed mid-batch.

After each fault: the batch finishes (or the next run does), nothing already written is lost or
half-written, and the audit log stays valid JSON lines.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from PIL import Image

CLI_DIR = Path(__file__).resolve().parents[1] / "cli"
sys.path.insert(0, str(CLI_DIR))
from fake_engine import FakeEngine, make_photo  # noqa: E402

from forensic_app.cli import EXIT_MODEL, main  # noqa: E402
from forensic_app.core import atomic  # noqa: E402
from forensic_app.core.audit import read_audit  # noqa: E402
from forensic_app.core.settings import AnalysisSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _run(argv, engine):
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, engine_factory=lambda a: engine, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def evidence(tmp_path):
    colors = [(200, 20, 20), (20, 20, 200), (90, 90, 90)]
    return [
        make_photo(tmp_path / "ev" / f"p{i:02d}.jpg", colors[i % 3], (160 + i, 120))
        for i in range(8)
    ]  # all different bytes


class _FailingWriter:
    """A file whose every write fails as on a full disk."""

    def __init__(self, fh, err: int):
        self.fh, self.err = fh, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()
        return False

    def write(self, data):
        raise OSError(self.err, os.strerror(self.err))

    def __getattr__(self, name):
        return getattr(self.fh, name)


def inject_write_failures(monkeypatch, allow: int, err: int = errno.ENOSPC) -> dict:
    """Make core/atomic.py's writes fail with ``err`` after ``allow`` successful ones."""
    state = {"writes": 0}
    proxy = types.SimpleNamespace(**{n: getattr(os, n) for n in dir(os) if not n.startswith("__")})

    def fdopen(fd, *args, **kwargs):
        fh = os.fdopen(fd, *args, **kwargs)
        state["writes"] += 1
        return fh if state["writes"] <= allow else _FailingWriter(fh, err)

    proxy.fdopen = fdopen
    monkeypatch.setattr(atomic, "os", proxy)
    return state


def assert_case_consistent(case: Path, max_bad_lines: int = 0, allow_temp: bool = False) -> dict:
    """Every stored file is complete: JSON parses, images decode, log lines valid.

    ``max_bad_lines``: torn lines that earlier kills may have left (each isolated on its line).
    """
    records = {}
    for p in (case / "results").glob("*.json"):
        records[p.name] = json.loads(p.read_text(encoding="utf-8"))
    for p in (case / "annotated").iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            # an atomic write cut short by a kill: never a result file, removed on reopen
            assert allow_temp, f"temp file left: {p}"
            continue
        with Image.open(p) as im:
            im.load()
    json.loads((case / "case.json").read_text(encoding="utf-8"))
    state = read_audit(case / "audit.jsonl")
    assert len(state.bad_lines) <= max_bad_lines, state.problems()
    assert state.entries and all(e["time"] and e["action"] for e in state.entries)
    return records


def test_disk_full_mid_batch_then_resume(tmp_path, evidence, monkeypatch):
    case = tmp_path / "case"
    state = inject_write_failures(monkeypatch, allow=7)
    rc, out, err = _run(
        ["batch", str(tmp_path / "ev"), "--case", str(case), "--quiet"], FakeEngine()
    )
    assert rc == 1
    assert state["writes"] > 7
    assert "No space left on device" in err
    records = assert_case_consistent(case)
    done = len(records)
    assert 0 < done < len(evidence)
    assert not list(case.rglob("*.tmp"))  # failed writes cleaned up after themselves
    assert read_audit(case / "audit.jsonl").ok
    # space freed: the rerun keeps what was written and completes the rest
    monkeypatch.undo()
    engine = FakeEngine()
    rc, out, err = _run(["batch", str(tmp_path / "ev"), "--case", str(case)], engine)
    assert rc == 0, err
    assert len(assert_case_consistent(case)) == len(evidence)
    assert len(engine.calls) <= len(evidence) - done + 1


def test_read_only_output_folder(tmp_path, evidence, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".forensic_app" / "results").mkdir(parents=True)
    for d in (out, out / ".forensic_app", out / ".forensic_app" / "results"):
        d.chmod(0o555)
    try:
        if os.access(out, os.W_OK):  # root ignores modes: fail the writes like a read-only fs
            inject_write_failures(monkeypatch, allow=0, err=errno.EROFS)
        rc, stdout, err = _run(
            ["analyze", str(tmp_path / "ev"), "--out", str(out), "--json", "-", "--quiet"],
            FakeEngine(),
        )
    finally:
        for d in (out, out / ".forensic_app", out / ".forensic_app" / "results"):
            d.chmod(0o755)
    assert rc == 1
    images = json.loads(stdout)["images"]
    assert len(images) == len(evidence)
    assert all(i["faces"] for i in images)  # the analysis itself is in the JSON
    assert all(any("result not saved" in n for n in i["notes"]) for i in images)
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_output_folder_vanishing_mid_batch(tmp_path, evidence):
    case = tmp_path / "case"
    engine = FakeEngine()
    seen = []

    def vanish(item):
        seen.append(item.status)
        if seen.count("done") == 2 and case.exists():
            shutil.rmtree(case)

    from forensic_app.core.batch import BatchRunner
    from forensic_app.core.case import Case

    c = Case.create(case, engine=engine)
    c.begin_batch(engine, AnalysisSettings())
    outcome = BatchRunner(engine, store=c, on_item=vanish, pipelined=False).run(
        [str(p) for p in evidence]
    )
    statuses = [i.status for i in outcome.items]
    assert statuses[:2] == ["done", "done"]
    assert statuses[2:] == ["error"] * (len(evidence) - 2)
    assert all("result not saved" in i.message for i in outcome.items[2:])
    # the investigator restores the folder: a new run rebuilds a consistent case
    rc, _, err = _run(["batch", str(tmp_path / "ev"), "--case", str(case)], FakeEngine())
    assert rc == 0, err
    assert len(assert_case_consistent(case)) == len(evidence)


def test_input_folder_vanishing_mid_batch(tmp_path, evidence):
    from forensic_app.core.batch import BatchRunner

    def vanish(item):
        if item.index == 1 and item.status == "done" and (tmp_path / "ev").exists():
            shutil.rmtree(tmp_path / "ev")

    outcome = BatchRunner(FakeEngine(), on_item=vanish, pipelined=False).run(
        [str(p) for p in evidence]
    )
    statuses = [i.status for i in outcome.items]
    assert statuses[:2] == ["done", "done"] and set(statuses[2:]) == {"error"}
    assert all("not found" in i.message for i in outcome.items[2:])


def test_missing_or_altered_model_stops_before_touching_the_case(tmp_path, evidence):
    manifest = REPO / "models" / "manifest.json"
    if not manifest.is_file():
        pytest.skip("models/manifest.json not present")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(manifest, models / "manifest.json")
    for content in (None, b"altered model bytes"):
        if content is not None:
            (models / "centerface.onnx").write_bytes(content)
        out, err = io.StringIO(), io.StringIO()
        rc = main(
            [
                "batch",
                str(tmp_path / "ev"),
                "--case",
                str(tmp_path / "case"),
                "--models",
                str(models),
            ],
            stdout=out,
            stderr=err,
        )
        assert rc == EXIT_MODEL
        assert "centerface.onnx" in err.getvalue()
        assert ("missing" if content is None else "altered") in err.getvalue()
        assert not (tmp_path / "case").exists()


KILLABLE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {cli_dir!r})
    from fake_engine import FakeEngine
    from forensic_app.cli import main
    raise SystemExit(main(sys.argv[1:], engine_factory=lambda a: FakeEngine(delay_s=0.03)))
    """
)


def test_killed_mid_batch_then_resumed(tmp_path):
    """SIGKILL a real CLI batch process twice, then rerun: nothing lost or half-written."""
    n = 40
    for i in range(n):
        make_photo(
            tmp_path / "ev" / f"img{i:03d}.jpg",
            [(200, 20, 20), (20, 20, 200)][i % 2],
            (320 + i, 240),
        )  # all different bytes
    script = tmp_path / "run_cli.py"
    script.write_text(KILLABLE.format(cli_dir=str(CLI_DIR)))
    case = tmp_path / "case"
    argv = [sys.executable, str(script), "batch", str(tmp_path / "ev"), "--case", str(case)]
    done_before = 0
    for kill_after in (3, 9):
        proc = subprocess.Popen(
            argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path
        )
        seen = 0
        for line in proc.stderr:
            if " done " in line:
                seen += 1
                if seen >= kill_after:
                    proc.send_signal(signal.SIGKILL)
                    break
        proc.wait(timeout=60)
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        records = assert_case_consistent(case, max_bad_lines=1, allow_temp=True)
        assert done_before < len(records) < n  # progress kept, run really was cut short
        done_before = len(records)
        state = read_audit(case / "audit.jsonl")
        assert len(state.bad_lines) <= 1  # at most the torn line of an earlier kill
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"{n} photos" in result.stdout
    records = assert_case_consistent(case, max_bad_lines=2)
    assert len(records) == n
    assert not list(case.rglob("*.tmp"))
    state = read_audit(case / "audit.jsonl")
    assert state.torn_tail is None and len(state.bad_lines) <= 2
    actions = [e["action"] for e in state.entries]
    assert actions.count("analysed") + actions.count("re-analysed") >= n
    assert actions[-1] == "batch-finished"
