"""``forensic-app batch/report/case verify`` over a case folder (fake engine)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fake_engine import FakeEngine, make_photo

from forensic_app.cli import EXIT_INTEGRITY, main
from forensic_app.core.audit import read_audit


def run(argv, engine):
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, engine_factory=lambda a: engine, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def ev(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_photo(Path("ev/a.jpg"), color=(200, 10, 10))
    make_photo(Path("ev/deep/b.png"), color=(10, 10, 200))
    return tmp_path


def test_batch_report_verify_roundtrip(ev):
    engine = FakeEngine()
    rc, out, err = run(
        ["batch", "ev", "-r", "--case", "case", "--name", "Op", "--examiner", "Ex"], engine
    )
    assert rc == 0, err
    assert "2 analysed" in out
    manifest = json.loads(Path("case/case.json").read_text())
    assert manifest["case_name"] == "Op" and manifest["examiner"] == "Ex"
    assert len(list(Path("case/results").glob("*.json"))) == 2
    assert len(list(Path("case/annotated").iterdir())) == 2
    rc, out, _ = run(["batch", "ev", "-r", "--case", "case"], engine)
    assert rc == 0 and "2 unchanged" in out and len(engine.calls) == 2
    rc, out, err = run(["report", "--case", "case"], engine)
    assert rc == 0, err
    assert Path("case/report.html").is_file() and "report written" in out
    rc, out, _ = run(["case", "verify", "--case", "case"], engine)
    assert rc == 0 and "all input photos match" in out
    assert read_audit("case/audit.jsonl").ok


def test_case_folder_inside_evidence_is_not_analysed(ev):
    rc, _, _ = run(["batch", "ev", "-r", "--case", "ev/case"], FakeEngine())
    assert rc == 0
    rc, out, _ = run(["batch", "ev", "-r", "--case", "ev/case"], FakeEngine())
    assert "2 photos" in out  # annotated copies in ev/case are not picked up as evidence


def test_changed_evidence_makes_report_exit_nonzero(ev):
    engine = FakeEngine()
    run(["batch", "ev", "-r", "--case", "case"], engine)
    make_photo(Path("ev/a.jpg"), color=(1, 1, 1))
    rc, out, err = run(["report", "--case", "case", "--out", "r.html"], engine)
    assert rc == EXIT_INTEGRITY
    assert "INTEGRITY WARNING" in err and "ev/a.jpg" in err
    assert "INTEGRITY WARNING" in Path("r.html").read_text()
    rc, out, _ = run(["case", "verify", "--case", "case"], engine)
    assert rc == EXIT_INTEGRITY and "CHANGED" in out


def test_batch_with_failures_exits_1_and_report_lists_them(ev):
    Path("ev/bad.jpg").write_text("not an image")
    rc, _, err = run(["batch", "ev", "--case", "case"], FakeEngine())
    assert rc == 1 and "bad.jpg" in err
    rc, _, _ = run(["report", "--case", "case"], FakeEngine())
    assert rc == 0
    assert "not a recognised image format" in Path("case/report.html").read_text()


def test_report_on_a_non_case_is_usage_error(ev):
    rc, _, err = run(["report", "--case", "ev"], FakeEngine())
    assert rc == 2 and "not a case folder" in err
