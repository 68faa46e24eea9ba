"""issue 17: a case proves itself. Each attack on a case folder is reproduced and ``case
verify`` (and ``report``) must exit 4 naming the file; a clean case verifies with exit 0."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from fake_engine import make_photo
from fake_engine import run_cli as run

from forensic_app.cli import EXIT_INTEGRITY, EXIT_OK, EXIT_USAGE
from forensic_app.core.audit import read_audit


@pytest.fixture
def case(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    make_photo(Path("ev/a.jpg"), color=(200, 10, 10))
    make_photo(Path("ev/b.png"), color=(10, 10, 200))
    make_photo(Path("ev/c.png"), color=(10, 200, 10))
    rc, _, err = run(["batch", "ev", "--case", "case", "--examiner", "A. Examiner"])
    assert rc == 0, err
    return tmp_path / "case"


def verify(case_dir: Path, *extra: str):
    return run(["case", "verify", "--case", str(case_dir), *extra])


def audit_lines(case_dir: Path) -> list[bytes]:
    return (case_dir / "audit.jsonl").read_bytes().splitlines(keepends=True)


def record_of(case_dir: Path, name: str) -> Path:
    for p in sorted((case_dir / "results").glob("*.json")):
        if json.loads(p.read_text())["path"].endswith(name):
            return p
    raise AssertionError(name)


def assert_refused(case_dir: Path, *names: str) -> str:
    rc, out, err = verify(case_dir, "--no-log")
    assert rc == EXIT_INTEGRITY, out + err
    assert "NOT verified" in out
    for name in names:
        assert any(name in line and "INTEGRITY" in line for line in out.splitlines()), out
    return out


def test_clean_case_verifies_and_names_what_was_checked(case):
    rc, out, err = verify(case)
    assert rc == EXIT_OK, out + err
    assert "hash chain intact" in out
    assert "records: 3 match" in out and "annotated copies: 3 match" in out
    assert "case.json: matches" in out and "3 file(s) re-hashed" in out
    head = read_audit(case / "audit.jsonl").head
    entries = read_audit(case / "audit.jsonl").entries
    assert entries[-1]["action"] == "integrity-check"  # the check itself is logged, chained
    assert entries[-1]["prev"] == hashlib.sha256(audit_lines(case)[-2].rstrip(b"\n")).hexdigest()
    rc, out, _ = verify(case)  # the logged check keeps the case verifiable
    assert rc == EXIT_OK and f"chain head (seal): {head}" in out
    assert f"new chain head: {read_audit(case / 'audit.jsonl').head}" in out


def test_edited_audit_line_in_the_middle(case):
    lines = audit_lines(case)
    n = next(i for i, raw in enumerate(lines) if b'"action":"analysed"' in raw)
    edited = re.sub(rb'"faces":(\d+)', lambda m: b'"faces":%d' % (int(m[1]) + 1), lines[n])
    assert edited != lines[n]
    lines[n] = edited
    (case / "audit.jsonl").write_bytes(b"".join(lines))
    out = assert_refused(case, "audit.jsonl")
    assert f"line {n + 1}" in out


def test_edited_last_audit_line(case):
    lines = audit_lines(case)
    assert b"batch-finished" in lines[-1]
    lines[-1] = lines[-1].replace(b'"failed":0', b'"failed":1')
    (case / "audit.jsonl").write_bytes(b"".join(lines))
    out = assert_refused(case, "audit.jsonl")
    assert "does not match its own SHA-256" in out


def test_deleted_audit_line(case):
    lines = audit_lines(case)
    del lines[3]
    (case / "audit.jsonl").write_bytes(b"".join(lines))
    out = assert_refused(case, "audit.jsonl")
    assert "line 4: does not link" in out


def test_forged_audit_line(case):
    lines = audit_lines(case)
    forged = json.loads(lines[2])
    forged["detail"] = {"path": "ev/a.jpg", "faces": 0, "note": "nothing found"}
    forged.pop("entry_sha256")
    text = json.dumps(forged, separators=(",", ":"))
    lines.insert(3, text.encode() + b"\n")  # inserted in the middle, copying a real link
    (case / "audit.jsonl").write_bytes(b"".join(lines))
    assert_refused(case, "audit.jsonl")


def test_appended_forged_line_with_a_valid_link_but_no_valid_own_hash(case):
    last = audit_lines(case)[-1].rstrip(b"\n")
    forged = {
        "time": "2026-01-01T00:00:00.000Z",
        "action": "manual-edit",
        "sha256": None,
        "detail": {},
        "prev": hashlib.sha256(last).hexdigest(),
        "entry_sha256": "0" * 64,
    }
    with open(case / "audit.jsonl", "ab") as fh:
        fh.write(json.dumps(forged, separators=(",", ":")).encode() + b"\n")
    assert_refused(case, "audit.jsonl")


def test_edited_record(case):
    rec = record_of(case, "a.jpg")
    data = json.loads(rec.read_text())
    face = data["result"]["faces"][0]
    face["gender"] = "male" if face["gender"] == "female" else "female"
    rec.write_text(json.dumps(data))
    assert_refused(case, f"results/{rec.name}")
    rc, out, err = run(["report", "--case", str(case), "--out", "r.html", "--no-log"])
    assert rc == EXIT_INTEGRITY and rec.name in err
    html = Path("r.html").read_text()
    assert "CASE NOT VERIFIED" in html and rec.name in html


def test_swapped_annotated_images(case):
    a, b = sorted((case / "annotated").iterdir())[:2]
    tmp = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(tmp)
    assert_refused(case, f"annotated/{a.name}", f"annotated/{b.name}")


def test_edited_manifest(case):
    m = json.loads((case / "case.json").read_text())
    m["examiner"] = "Someone Else"
    (case / "case.json").write_text(json.dumps(m, indent=2))
    assert_refused(case, "case.json")


def test_deleted_audit_log(case):
    (case / "audit.jsonl").unlink()
    out = assert_refused(case, "audit.jsonl")
    assert "missing" in out


def test_deleted_audit_log_stays_detected_after_the_case_is_written_again(case):
    (case / "audit.jsonl").unlink()
    rc, _, err = run(["batch", "ev", "--case", str(case)])
    assert rc == EXIT_OK, err
    entries = read_audit(case / "audit.jsonl").entries
    assert entries[0]["action"] == "audit-log-missing"
    # The rerun re-analysed every record no entry vouched for (the old ones are kept in
    # history), so the files verify again; the lost history stays a finding for good.
    out = assert_refused(case, "audit.jsonl")
    assert "the audit log was missing" in out
    assert len(list((case / "results" / "history").glob("*.unaccounted.json"))) == 3


def test_deleted_or_damaged_manifest(case):
    (case / "case.json").unlink()
    rc, _, err = verify(case)
    assert rc == EXIT_INTEGRITY and "case.json" in err
    rc, _, err = run(["report", "--case", str(case), "--out", "r.html"])
    assert rc == EXIT_INTEGRITY and "case.json" in err
    rc, _, err = verify(case.parent / "ev")  # a folder that never was a case: bad usage
    assert rc == EXIT_USAGE


def test_deleted_record(case):
    rec = record_of(case, "b.png")
    rec.unlink()
    out = assert_refused(case, f"results/{rec.name}")
    assert "MISSING" in out


def test_added_record_not_written_by_the_tool(case):
    rec = record_of(case, "b.png")
    forged = case / "results" / ("f" * 64 + ".json")
    data = json.loads(rec.read_text())
    data["sha256"] = "f" * 64
    forged.write_text(json.dumps(data))
    out = assert_refused(case, f"results/{forged.name}")
    assert "not written by any entry" in out


def test_unparseable_record_is_listed_not_dropped(case):
    rec = record_of(case, "c.png")
    rec.write_text("{ this is not json")
    out = assert_refused(case, f"results/{rec.name}")
    assert "unusable record" in out
    rc, out, err = run(["report", "--case", str(case), "--out", "r.html", "--no-log"])
    assert rc == EXIT_INTEGRITY and f"results/{rec.name}" in err
    assert f"results/{rec.name}" in Path("r.html").read_text()


def test_record_of_the_wrong_shape_is_listed(case):
    rec = record_of(case, "c.png")
    rec.write_text(json.dumps({"path": 5, "result": []}))
    out = assert_refused(case, f"results/{rec.name}")
    assert "'path'" in out


def test_case_that_predates_the_chain_is_not_a_pass(case):
    # What an older version wrote: the same lines without chain links or file hashes.
    old = []
    for raw in audit_lines(case):
        e = json.loads(raw)
        for k in ("prev", "entry_sha256", "files"):
            e.pop(k, None)
        old.append(json.dumps(e, separators=(",", ":")).encode() + b"\n")
    (case / "audit.jsonl").write_bytes(b"".join(old))
    out = assert_refused(case, "audit.jsonl")
    assert "predates the hash chain" in out
    assert "3 file(s) re-hashed" in out  # the inputs were still checked


def test_report_prints_the_seal_and_what_was_verified(case):
    rc, out, err = run(["report", "--case", str(case), "--out", "r.html"])
    assert rc == EXIT_OK, err
    html = Path("r.html").read_text()
    assert "What was verified" in html and "hash chain intact" in html
    entries = read_audit(case / "audit.jsonl").entries
    check = next(e for e in reversed(entries) if e["action"] == "integrity-check")
    assert check["detail"]["verified_head"] in html  # the seal printed is the head it verified
    assert entries[-1]["action"] == "exported" and "r.html" in entries[-1]["detail"]["file"]
    rc, _, _ = verify(case)
    assert rc == EXIT_OK


def test_report_is_never_written_over_the_case_own_files(case):
    rec = record_of(case, "a.jpg")
    for target in (rec, case / "case.json", case / "audit.jsonl", case / "annotated" / "r.html"):
        before = target.read_bytes() if target.exists() else None
        rc, _, err = run(["report", "--case", str(case), "--out", str(target)])
        assert rc == EXIT_USAGE and "inside the case's own files" in err
        assert (target.read_bytes() if target.exists() else None) == before
    rc, _, err = verify(case, "--no-log")
    assert rc == EXIT_OK, err


def test_manifest_of_the_wrong_shape_is_a_clear_error(case):
    (case / "case.json").write_text(json.dumps({"case_name": "x", "models": "not a list"}))
    for argv, code in (
        (["report", "--case", str(case), "--out", "r.html"], EXIT_INTEGRITY),
        (["case", "verify", "--case", str(case)], EXIT_INTEGRITY),
        (["batch", "ev", "--case", str(case)], 1),
    ):
        rc, out, err = run(argv)
        assert rc == code, (argv, out, err)
        assert "not a valid case manifest" in err and "'models'" in err
        assert "Traceback" not in err
    (case / "case.json").write_text("[1, 2]")
    rc, _, err = run(["report", "--case", str(case)])
    assert rc == EXIT_INTEGRITY and "not a JSON object" in err


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (p.read_bytes() if p.is_file() else b"", st.st_mtime_ns)
    return out


@pytest.fixture
def write_blocked(monkeypatch):
    """Make every write into a folder fail as on write-blocked media (works as root too)."""
    blocked: list[Path] = []
    attempts: list[str] = []
    real_open, real_mkdir, real_replace = os.open, os.mkdir, os.replace
    real_remove, real_unlink, real_rename = os.remove, os.unlink, os.rename
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def inside(path) -> bool:
        try:
            real = os.path.realpath(path)
        except (TypeError, ValueError):
            return False
        return any(real == str(b) or real.startswith(str(b) + os.sep) for b in blocked)

    def refuse(path):
        attempts.append(str(path))
        raise OSError(30, "Read-only file system", str(path))

    def fake_open(path, flags, *a, **k):
        if flags & writes and inside(path):
            refuse(path)
        return real_open(path, flags, *a, **k)

    def guard(real):
        def fn(path, *a, **k):
            if inside(path):
                refuse(path)
            return real(path, *a, **k)

        return fn

    def guard2(real):
        def fn(src, dst, *a, **k):
            if inside(src) or inside(dst):
                refuse(dst)
            return real(src, dst, *a, **k)

        return fn

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", guard(real_mkdir))
    monkeypatch.setattr(os, "remove", guard(real_remove))
    monkeypatch.setattr(os, "unlink", guard(real_unlink))
    monkeypatch.setattr(os, "replace", guard2(real_replace))
    monkeypatch.setattr(os, "rename", guard2(real_rename))

    def block(folder: Path) -> list[str]:
        blocked.append(Path(os.path.realpath(folder)))
        return attempts

    return block


def test_case_on_write_blocked_media_verifies_and_reports_elsewhere(case, tmp_path, write_blocked):
    (case / "results" / ".x.json.abc123.tmp").write_bytes(b"left by a killed writer")
    before = _snapshot(case)
    attempts = write_blocked(case)
    rc, out, err = verify(case)
    assert rc == EXIT_OK, out + err
    assert "not logged" in err  # says why the check is not in the log; does not fail
    rc, out, err = verify(case, "--no-log")
    assert rc == EXIT_OK, out + err
    (tmp_path / "out").mkdir()
    rc, out, err = run(["report", "--case", str(case), "--out", str(tmp_path / "out" / "r.html")])
    assert rc == EXIT_OK, out + err
    assert "What was verified" in (tmp_path / "out" / "r.html").read_text()
    assert "not logged" in err
    rc, out, err = run(
        ["report", "--case", str(case), "--out", str(tmp_path / "r2.html"), "--no-log"]
    )
    assert rc == EXIT_OK and "not logged" not in err
    assert _snapshot(case) == before  # not one byte, name or time changed in the case
    assert attempts  # the logging attempts really met the write block


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores chmod")
def test_read_only_copy_of_a_case_verifies_and_reports(case, tmp_path):
    copy = tmp_path / "ro-case"
    shutil.copytree(case, copy)
    for p in [copy, *copy.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        before = _snapshot(copy)
        rc, out, err = verify(copy)
        assert rc == EXIT_OK, out + err
        rc, out, err = run(["report", "--case", str(copy), "--out", str(tmp_path / "r.html")])
        assert rc == EXIT_OK, out + err
        assert _snapshot(copy) == before
    finally:
        for p in [copy, *copy.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
