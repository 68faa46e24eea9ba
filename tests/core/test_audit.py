"""Audit log: durable append-only JSON lines; a torn last line is detected, never spreads."""

from __future__ import annotations

import json
import os
import threading

from forensic_app.core import audit
from forensic_app.core.audit import AuditLog, read_audit


def test_each_entry_is_one_fsynced_o_append_write(tmp_path, monkeypatch):
    flags, syncs = [], []
    real_open, real_fsync = os.open, os.fsync
    monkeypatch.setattr(
        audit.os, "open", lambda p, f, *a: (flags.append(f), real_open(p, f, *a))[1]
    )
    monkeypatch.setattr(audit.os, "fsync", lambda fd: (syncs.append(fd), real_fsync(fd))[1])
    log = AuditLog(tmp_path / "audit.jsonl", examiner="ex")
    log.append(audit.ANALYSED, "a" * 64, path="x.jpg", faces=2)
    log.append(audit.EXPORTED, None, file="r.html")
    assert all(f & os.O_APPEND for f in flags) and len(flags) == 2
    assert len(syncs) == 2
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["action"] == "analysed" and first["sha256"] == "a" * 64
    assert first["detail"] == {"path": "x.jpg", "faces": 2} and first["examiner"] == "ex"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert read_audit(tmp_path / "audit.jsonl").ok


def test_torn_last_line_is_reported_and_isolated(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for i in range(3):
        log.append(audit.ANALYSED, f"{i}" * 64)
    with open(path, "ab") as fh:  # a crash in the middle of a write
        fh.write(b'{"time":"2026-11-23T00:00:00Z","action":"anal')
    state = read_audit(path)
    assert len(state.entries) == 3 and state.torn_tail.startswith('{"time"')
    assert not state.ok and "incomplete" in state.problems()[0]
    # the next writer (a restarted app) starts on a new line and says what it found
    AuditLog(path).append(audit.CASE_OPENED)
    state = read_audit(path)
    assert state.torn_tail is None
    assert [e["action"] for e in state.entries] == ["analysed"] * 3 + [
        audit.LOG_TORN_LINE,
        audit.CASE_OPENED,
    ]
    assert len(state.bad_lines) == 1 and state.bad_lines[0][0] == 4
    assert [e["sha256"] for e in state.entries[:3]] == ["0" * 64, "1" * 64, "2" * 64]


def test_concurrent_appends_never_interleave(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    other = AuditLog(tmp_path / "audit.jsonl")  # a second writer on the same file

    def work(lg, n):
        for i in range(50):
            lg.append("analysed", None, writer=n, i=i, pad="x" * 500)

    threads = [threading.Thread(target=work, args=(log if n % 2 else other, n)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = read_audit(tmp_path / "audit.jsonl")
    assert state.ok and len(state.entries) == 300


def test_missing_and_garbage_logs_read_safely(tmp_path):
    assert read_audit(tmp_path / "nope.jsonl").entries == []
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'[1,2]\n{"action":"x","time":"t"}\n\xff\xfe\n')
    state = read_audit(p)
    assert len(state.entries) == 1 and [n for n, _ in state.bad_lines] == [1, 3]


def test_iter_entries_streams_and_skips_an_over_long_line(tmp_path, monkeypatch):
    """A damaged log line without a newline is never read whole (memory stays bounded)."""
    from forensic_app.core import audit as audit_mod

    log = audit_mod.AuditLog(tmp_path / "audit.jsonl")
    log.append("first", wrote={"results/x.json": "a" * 64})
    with open(tmp_path / "audit.jsonl", "ab") as fh:
        fh.write(b"x" * 5000 + b"\n")
    log.append("second", wrote={"results/x.json": "b" * 64})
    monkeypatch.setattr(audit_mod, "_MAX_LINE", 1024)
    got = [(n, e["action"]) for n, e in audit_mod.iter_entries(tmp_path / "audit.jsonl")]
    assert got == [(1, "first"), (3, "second")]
    latest = audit_mod.latest_files(audit_mod.iter_entries(tmp_path / "audit.jsonl"))
    assert latest == {"results/x.json": ("b" * 64, 3)}
    assert log.vouched_files() == {"results/x.json": "b" * 64}
