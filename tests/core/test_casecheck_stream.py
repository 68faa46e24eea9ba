"""Attack: a huge audit log (hundreds of MB). ``case verify`` read it whole and kept every line
and entry: about 1 GB of memory for a 237 MB log. It now streams the log: memory stays bounded
by one line (plus one hash per case file), whatever the number of entries."""

from __future__ import annotations

import tracemalloc

from forensic_app.core.audit import _encode, read_audit, sha256_hex
from forensic_app.core.case import Case
from forensic_app.core.casecheck import verify_case


def _pad_log(path, lines: int) -> int:
    prev = read_audit(path).head
    with open(path, "ab") as fh:
        for i in range(lines):
            entry = {
                "time": "2026-01-01T00:00:00.000Z",
                "action": "photo-opened",
                "sha256": None,
                "detail": {"n": i, "pad": "x" * 900},
                "tool_version": "test",
                "prev": prev,
            }
            line, _ = _encode(entry)
            fh.write(line + b"\n")
            prev = sha256_hex(line)
    return path.stat().st_size


def test_verify_streams_a_huge_log_in_bounded_memory(tmp_path):
    Case.create(tmp_path / "case", name="big").close()
    size = _pad_log(tmp_path / "case" / "audit.jsonl", 20_000)
    case = Case.open(tmp_path / "case", writer=False)
    tracemalloc.start()
    try:
        check = verify_case(case, inputs=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert check.ok, check.problems()
    assert check.audit_lines == 20_001 and check.head == read_audit(case.root / "audit.jsonl").head
    assert peak < size / 10, (peak, size)  # reading it whole needs more than the log's size


def test_streamed_check_still_names_a_broken_line_in_a_huge_log(tmp_path):
    Case.create(tmp_path / "case", name="big").close()
    log = tmp_path / "case" / "audit.jsonl"
    _pad_log(log, 3_000)
    data = bytearray(log.read_bytes())
    at = data.index(b'"n":1500,')
    data[at : at + 9] = b'"n":1501,'
    log.write_bytes(bytes(data))
    check = verify_case(Case.open(tmp_path / "case", writer=False), inputs=False)
    assert {p.file for p in check.findings} == {"audit.jsonl"}
    assert "line 1502: its content does not match its own SHA-256" in check.problems()[0]
    assert "line 1503: does not link to line 1502" in check.problems()[1]
