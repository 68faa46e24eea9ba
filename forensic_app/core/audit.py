"""Append-only audit log of a case: one JSON object per line, each line durable on its own.

Why this shape: the log must show later exactly what the tool and the examiner did, and it must
survive a crash or a kill at any instant. Each entry is a single ``write`` on a descriptor
opened with ``O_APPEND`` (the kernel positions it at the end, so concurrent writers never
overwrite each other), followed by ``fsync``. A crash can therefore at worst leave the *last*
line torn (no newline). The reader detects that and reports it; the writer starts its next entry
on a fresh line and records that it found a torn line, so earlier entries are never touched.

Entry fields: ``time`` (UTC, ISO 8601 with milliseconds), ``action``, ``sha256`` (of the photo
concerned, or null), ``detail`` (a JSON object), ``examiner`` (when known), ``tool_version``.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forensic_app import __version__

#: Actions written by the app. Others are allowed (the GUI may add its own), these are standard.
CASE_CREATED = "case-created"
CASE_OPENED = "case-opened"
PHOTO_OPENED = "photo-opened"
ANALYSED = "analysed"
REANALYSED = "re-analysed"
SKIPPED_UNCHANGED = "skipped-unchanged"
ANALYSIS_FAILED = "analysis-failed"
MANUAL_EDIT = "manual-edit"
EXPORTED = "exported"
INTEGRITY_CHECK = "integrity-check"
SETTINGS_CHANGED = "settings-changed"
BATCH_STARTED = "batch-started"
BATCH_FINISHED = "batch-finished"
INTERRUPTED = "interrupted"  # Ctrl-C (SIGINT) stopped a run
INPUTS_SKIPPED = "inputs-skipped"  # files a folder walk passed over, each with its reason
LOG_TORN_LINE = "audit-torn-line-found"
STALE_TEMP_REMOVED = "stale-temp-files-removed"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class AuditReadResult:
    """Everything in a log: valid entries, bad lines (line number, text) and a torn tail."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    torn_tail: str | None = None  # the last line when it has no newline (a crash mid-write)

    @property
    def ok(self) -> bool:
        return not self.bad_lines and self.torn_tail is None

    def problems(self) -> list[str]:
        out = [f"line {n}: not a valid audit entry: {text[:80]!r}" for n, text in self.bad_lines]
        if self.torn_tail is not None:
            out.append(f"last line is incomplete (interrupted write): {self.torn_tail[:80]!r}")
        return out


def read_audit(path: str | Path) -> AuditReadResult:
    """Parse a log; never raises for bad content (a missing file reads as empty)."""
    result = AuditReadResult()
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return result
    if not data:
        return result
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail:
        result.torn_tail = tail.decode("utf-8", "replace")
    for n, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", "replace")
        if not text.strip():
            continue
        try:
            entry = json.loads(text)
        except ValueError:
            result.bad_lines.append((n, text))
            continue
        if not isinstance(entry, dict) or "action" not in entry or "time" not in entry:
            result.bad_lines.append((n, text))
            continue
        result.entries.append(entry)
    return result


class AuditLog:
    """Appends entries to ``path``; thread-safe; one write + fsync per entry."""

    def __init__(self, path: str | Path, examiner: str | None = None) -> None:
        self.path = Path(path)
        self.examiner = examiner
        self._lock = threading.Lock()
        self._checked_tail = False

    def _needs_newline(self, fd: int) -> bool:
        """True when the file does not end with a newline (a torn last line)."""
        size = os.fstat(fd).st_size
        if size == 0:
            return False
        return os.pread(fd, 1, size - 1) != b"\n"

    def append(self, action: str, sha256: str | None = None, **detail: Any) -> dict[str, Any]:
        """Write one entry durably and return it. Raises OSError when the disk refuses."""
        entry: dict[str, Any] = {
            "time": utc_now(),
            "action": action,
            "sha256": sha256,
            "detail": detail,
            "tool_version": __version__,
        }
        if self.examiner:
            entry["examiner"] = self.examiner
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
        # A file name that is not valid UTF-8 holds lone surrogates: written as \udcxx JSON
        # escapes (backslashreplace), so the entry is valid UTF-8 and reads back exactly.
        data = line.encode("utf-8", "backslashreplace")
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if not self._checked_tail:
                    self._checked_tail = True
                    if self._needs_newline(fd):
                        torn = {
                            "time": utc_now(),
                            "action": LOG_TORN_LINE,
                            "sha256": None,
                            "detail": {
                                "note": "the previous line was cut off by an interrupted "
                                "write; it is kept as is and earlier lines are intact"
                            },
                            "tool_version": __version__,
                        }
                        fix = "\n" + json.dumps(torn, separators=(",", ":")) + "\n"
                        _write_all(fd, fix.encode("utf-8"))
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def read(self) -> AuditReadResult:
        return read_audit(self.path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError("write returned no progress")
        view = view[n:]
