"""issue 17, core side: audit appends on a full disk, paths read from a case, the running
batch's state, and readers that never clean up a writer's files."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from fake_engine import FakeEngine, make_photo  # noqa: E402

from forensic_app.core import audit  # noqa: E402
from forensic_app.core.audit import AuditLog, AuditWriteError, check_chain, read_audit  # noqa: E402
from forensic_app.core.batch import ERROR, UNCHANGED, BatchRunner  # noqa: E402
from forensic_app.core.case import Case, CaseError, RecordError  # noqa: E402
from forensic_app.core.casecheck import verify_case  # noqa: E402
from forensic_app.core.imaging import load_image  # noqa: E402
from forensic_app.core.settings import AnalysisSettings  # noqa: E402


def run_batch(case, engine, paths, settings=AnalysisSettings(), reanalyse=False):  # noqa: B008
    case.begin_batch(engine, settings, reanalyse=reanalyse, photos=len(paths))
    outcome = BatchRunner(engine, settings, store=case).run([str(p) for p in paths])
    case.end_batch(outcome)
    return outcome


@pytest.fixture
def photos(tmp_path):
    return [
        make_photo(tmp_path / "ev" / "red.jpg", color=(220, 10, 10)),
        make_photo(tmp_path / "ev" / "blue.png", color=(10, 10, 220)),
    ]


def half_then_enospc(monkeypatch, state: dict) -> None:
    """os.write in core/audit.py writes half of what it is given, then fails: a full disk."""
    real_write = os.write

    def write(fd, data):
        if not state.get("on", True):
            return real_write(fd, data)
        state["calls"] = state.get("calls", 0) + 1
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(audit.os, "write", write)


def test_full_disk_append_leaves_no_torn_line_and_raises_clearly(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append(audit.CASE_CREATED, case_name="c")
    log.append(audit.ANALYSED, "a" * 64, path="x.jpg")
    before = path.read_bytes()
    state: dict = {}
    half_then_enospc(monkeypatch, state)
    with pytest.raises(AuditWriteError) as exc:
        log.append(audit.ANALYSED, "b" * 64, path="y.jpg", pad="x" * 300)
    assert state["calls"] == 1  # one write of the complete line, no retry of the rest
    assert "audit entry not written" in str(exc.value) and "restored" in str(exc.value)
    assert exc.value.errno == errno.ENOSPC
    assert path.read_bytes() == before  # the half line was truncated away
    state["on"] = False
    log.append(audit.ANALYSED, "c" * 64, path="z.jpg")  # the next entry starts cleanly
    state_after = read_audit(path)
    assert state_after.ok and [e["sha256"] for e in state_after.entries][1:] == ["a" * 64, "c" * 64]
    chain = check_chain(state_after)
    assert not chain.problems and chain.chained == 3


def test_short_write_without_an_error_is_undone_too(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append(audit.CASE_CREATED)
    before = path.read_bytes()
    real_write = os.write
    monkeypatch.setattr(audit.os, "write", lambda fd, data: real_write(fd, bytes(data[:10])))
    with pytest.raises(AuditWriteError, match="short write"):
        log.append(audit.ANALYSED, "a" * 64)
    assert path.read_bytes() == before


def test_torn_line_from_a_crash_is_chained_over_and_reported(tmp_path):
    path = tmp_path / "audit.jsonl"
    AuditLog(path).append(audit.CASE_CREATED)
    with open(path, "ab") as fh:  # the machine lost power in the middle of a write
        fh.write(b'{"time":"2026-11-23T00:00:00Z","action":"anal')
    torn = check_chain(read_audit(path))
    assert any("incomplete" in p for p in torn.problems)  # until a writer acknowledges it
    AuditLog(path).append(audit.CASE_OPENED)
    log = read_audit(path)
    assert [e["action"] for e in log.entries] == [
        audit.CASE_CREATED,
        audit.LOG_TORN_LINE,
        audit.CASE_OPENED,
    ]
    chain = check_chain(log)
    assert not chain.problems and any("interrupted write" in n for n in chain.notes)
    assert log.entries[1]["prev"] == hashlib.sha256(log.lines[1].raw).hexdigest()


def test_failed_audit_append_never_replaces_a_good_record(tmp_path, photos, monkeypatch):
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", "c", "ex", engine)
    run_batch(case, engine, photos)
    records = {p.name: p.read_bytes() for p in (tmp_path / "case" / "results").glob("*.json")}
    case.begin_batch(engine, AnalysisSettings(), photos=2)
    log_before = (tmp_path / "case" / "audit.jsonl").read_bytes()
    half_then_enospc(monkeypatch, {})
    outcome = BatchRunner(engine, AnalysisSettings(), store=case).run([str(p) for p in photos])
    assert [i.status for i in outcome.items] == [ERROR, ERROR]
    assert all("audit entry not written" in i.message for i in outcome.items)
    assert all("reading" not in i.message for i in outcome.items)
    assert all("reading" not in (i.result.error or "") for i in outcome.items)
    after = {p.name: p.read_bytes() for p in (tmp_path / "case" / "results").glob("*.json")}
    assert after == records  # the good records are untouched, no error record replaced them
    assert (tmp_path / "case" / "audit.jsonl").read_bytes() == log_before
    monkeypatch.undo()
    case.end_batch(outcome)
    assert verify_case(case).ok


def test_record_pointing_outside_the_case_cannot_make_an_edit_overwrite_a_photo(tmp_path, photos):
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", "c", "ex", engine)
    run_batch(case, engine, photos[:1])
    other = make_photo(tmp_path / "elsewhere" / "evidence.jpg", color=(1, 200, 1))
    other_bytes = other.read_bytes()
    rec_path = next((tmp_path / "case" / "results").glob("*.json"))
    data = json.loads(rec_path.read_text())
    for hostile in ("../elsewhere/evidence.jpg", str(other), "annotated/../../elsewhere/x.jpg"):
        data["annotated"] = hostile
        rec_path.write_text(json.dumps(data))
        with pytest.raises(RecordError, match="annotated"):
            case.load_record(rec_path.name)
        image = load_image(photos[0])
        result = engine.analyze_image(image)
        with pytest.raises(CaseError):
            case.save_manual_edit(result, {"edit": "manual_relabel"}, rgb=image.rgb)
        assert other.read_bytes() == other_bytes
        assert not verify_case(case).ok


def test_symlinked_annotated_copy_cannot_lead_a_write_outside(tmp_path, photos):
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", "c", "ex", engine)
    run_batch(case, engine, photos[:1])
    other = make_photo(tmp_path / "elsewhere" / "evidence.jpg", color=(1, 200, 1))
    other_bytes = other.read_bytes()
    rec = case.records()[0]
    target = tmp_path / "case" / rec.annotated
    target.unlink()
    target.symlink_to(other)  # the record itself is untouched and valid
    image = load_image(photos[0])
    with pytest.raises(CaseError, match="symbolic link"):
        case.save_manual_edit(rec.result, {"edit": "manual_relabel"}, rgb=image.rgb)
    assert other.read_bytes() == other_bytes and target.is_symlink()
    check = verify_case(case)
    assert any(f.file == rec.annotated and "symbolic link" in f.problem for f in check.findings)
    # the same through a symlinked annotated/ folder
    target.unlink()
    (tmp_path / "case" / "annotated").rmdir()
    (tmp_path / "case" / "annotated").symlink_to(other.parent)
    with pytest.raises(CaseError, match="symbolic link"):
        case.save_manual_edit(rec.result, {"edit": "manual_relabel"}, rgb=image.rgb)
    assert sorted(p.name for p in other.parent.iterdir()) == ["evidence.jpg"]


def test_audit_log_replaced_by_a_link_never_leads_appends_elsewhere(tmp_path, photos):
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", "c", "ex", engine)
    other = make_photo(tmp_path / "elsewhere" / "evidence.jpg", color=(1, 200, 1))
    other_bytes = other.read_bytes()
    (tmp_path / "case" / "audit.jsonl").unlink()
    (tmp_path / "case" / "audit.jsonl").symlink_to(other)
    with pytest.raises(AuditWriteError):
        case.log(audit.EXPORTED, None, file="x")
    assert other.read_bytes() == other_bytes
    assert any(
        f.file == "audit.jsonl" and "symbolic link" in f.problem for f in verify_case(case).findings
    )


def test_window_analysis_during_a_batch_does_not_flip_the_batch(tmp_path, photos):
    """Code review: the window's one-photo analysis called begin_batch(reanalyse=True) on the
    case and turned the running batch into re-analysing every unchanged photo."""
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", "c", "ex", engine)
    run_batch(case, engine, photos)
    settings = AnalysisSettings()
    key = case.begin_batch(engine, settings, photos=2)  # a resumed batch starts...
    manifest = (tmp_path / "case" / "case.json").read_bytes()
    other = make_photo(tmp_path / "desk" / "single.png", color=(5, 5, 5))
    image = load_image(other)
    window_settings = AnalysisSettings(det_threshold=0.3)
    case.save_single(engine, window_settings, engine.analyze_image(image), image)  # ...meanwhile
    assert case._key == key and not case._reanalyse and case.wants_lookup()
    assert (tmp_path / "case" / "case.json").read_bytes() == manifest
    calls = len(engine.calls)
    outcome = BatchRunner(engine, settings, store=case).run([str(p) for p in photos])
    case.end_batch(outcome)
    assert [i.status for i in outcome.items] == [UNCHANGED, UNCHANGED]
    assert len(engine.calls) == calls  # nothing re-analysed
    entry = next(
        e for e in read_audit(case.root / "audit.jsonl").entries if e["sha256"] == image.sha256
    )
    assert entry["detail"]["source"] == "window"
    assert entry["detail"]["settings"]["det_threshold"] == 0.3
    assert verify_case(case).ok


def test_reader_never_removes_temp_files_and_writes_nothing(tmp_path, photos):
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", "c", "ex", engine)
    run_batch(case, engine, photos)
    case.close()
    tmp = tmp_path / "case" / "results" / ".abc.json.x1y2.tmp"
    tmp.write_bytes(b"a writer's file in the middle of a write")
    log = (tmp_path / "case" / "audit.jsonl").read_bytes()
    reader = Case.open(tmp_path / "case", writer=False)
    assert reader.remove_stale_temp_files() == [] and tmp.exists()
    assert not verify_case(reader).findings
    assert (tmp_path / "case" / "audit.jsonl").read_bytes() == log
    writer = Case.open(tmp_path / "case")  # a writer holding the lock cleans up and says so
    assert not tmp.exists()
    assert (
        read_audit(writer.root / "audit.jsonl").entries[-1]["action"] == "stale-temp-files-removed"
    )
    assert [i.status for i in run_batch(writer, engine, photos).items] == [UNCHANGED, UNCHANGED]


def test_names_that_are_not_utf8_are_chained_and_verified(tmp_path):
    """A lone surrogate (an undecodable byte in a file name) must not break an append, a
    record or the hashes verify recomputes."""
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", "c", "ex", engine)
    case.log(audit.PHOTO_OPENED, None, path="ev/caf\udce9.jpg")
    log = read_audit(case.root / "audit.jsonl")
    assert log.entries[-1]["detail"]["path"] == "ev/caf\udce9.jpg"
    assert not check_chain(log).problems


def test_case_folder_name_that_is_not_utf8(tmp_path):
    root = tmp_path / "caf\udce9-case"
    try:
        root.mkdir()
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system refuses undecodable names")
    case = Case.create(root, examiner="ex", engine=FakeEngine())
    assert Case.read_manifest(root)["case_name"] == "caf\udce9-case"
    assert verify_case(case).ok
