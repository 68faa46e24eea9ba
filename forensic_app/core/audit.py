"""Append-only, hash-chained audit log of a case: one JSON object per line.

Why this shape: the log must show later exactly what the tool and the examiner did, survive a
crash, a kill or a full disk at any instant, and show when it was altered afterwards
(docs/adr/0007-tamper-evident-case.md).

* **One complete line per write.** Each entry is a single ``write`` of the whole line on a
  descriptor opened with ``O_APPEND``, then ``fsync``. A short write or an error (disk full) is
  undone by truncating the file back to its length before the write, and raises
  :class:`AuditWriteError`; the next entry therefore never starts inside a partial one. Only a
  crash of the machine in the middle of the write can leave the *last* line torn; the reader
  reports it as such, and the next writer starts on a fresh line and logs
  ``audit-torn-line-found``.
* **A hash chain.** Each entry holds ``prev``, the SHA-256 of the previous line's exact bytes
  (:data:`GENESIS` for the first line), and ends with ``entry_sha256``, the SHA-256 of its own
  line up to that field. Editing, deleting, inserting or reordering a line breaks the chain at
  that line; the SHA-256 of the last line (:func:`head_of`) is the seal an examiner notes.
* **Files.** An entry that wrote case files lists them in ``files`` (path relative to the case
  folder -> SHA-256, or null for a file removed), so ``case verify`` can check each file against
  the latest entry that wrote it.

Entry fields: ``time`` (UTC, ISO 8601 with milliseconds), ``action``, ``sha256`` (of the photo
concerned, or null), ``detail`` (a JSON object), ``examiner`` (when known), ``tool_version``,
``files`` (optional), ``prev``, ``entry_sha256``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
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
LOG_MISSING = "audit-log-missing"

#: ``prev`` of the first line of a chained log.
GENESIS = "0" * 64
_SELF_FIELD = "entry_sha256"
_SELF_SUFFIX = re.compile(rb',"entry_sha256":"([0-9a-f]{64})"\}$')
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: How far back :func:`_last_line` reads at most (an entry is a few KB; a cap keeps a damaged
#: log without newlines from being read whole on every append).
_MAX_LINE = 16 << 20


class AuditWriteError(OSError):
    """An entry could not be written (disk full, read-only); the log was left as it was."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_problem(entry: Any) -> str | None:
    """Why a parsed line is not a usable audit entry, or None when it is."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    if not isinstance(entry.get("action"), str) or not isinstance(entry.get("time"), str):
        return "no 'action' and 'time' text"
    if not isinstance(entry.get("detail", {}), dict):
        return "'detail' is not an object"
    sha = entry.get("sha256")
    if sha is not None and not isinstance(sha, str):
        return "'sha256' is not text"
    files = entry.get("files", {})
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and (v is None or (isinstance(v, str) and _HEX64.match(v)))
        for k, v in files.items()
    ):
        return "'files' is not a map of case paths to SHA-256"
    prev = entry.get("prev")
    if prev is not None and not (isinstance(prev, str) and _HEX64.match(prev)):
        return "'prev' is not a SHA-256"
    return None


def self_hash_ok(raw: bytes) -> bool:
    """True when a line's ``entry_sha256`` matches the line's own bytes before that field."""
    m = _SELF_SUFFIX.search(raw)
    if m is None:
        return False
    return sha256_hex(raw[: m.start()] + b"}") == m.group(1).decode("ascii")


@dataclass
class AuditLine:
    """One newline-terminated line: its number, exact bytes and entry (None when invalid)."""

    number: int
    raw: bytes
    entry: dict[str, Any] | None
    problem: str | None = None


@dataclass
class AuditReadResult:
    """Everything in a log: valid entries, bad lines (line number, text) and a torn tail."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    torn_tail: str | None = None  # the last line when it has no newline (a crash mid-write)
    lines: list[AuditLine] = field(default_factory=list)
    exists: bool = True
    read_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.bad_lines and self.torn_tail is None and self.read_error is None

    def problems(self) -> list[str]:
        out = [f"line {n}: not a valid audit entry: {text[:80]!r}" for n, text in self.bad_lines]
        if self.torn_tail is not None:
            out.append(f"last line is incomplete (interrupted write): {self.torn_tail[:80]!r}")
        if self.read_error is not None:
            out.append(self.read_error)
        return out

    @property
    def head(self) -> str:
        """SHA-256 of the last complete line: the value the next entry links to (the seal)."""
        return sha256_hex(self.lines[-1].raw) if self.lines else GENESIS


def parse_line(n: int, raw: bytes) -> AuditLine:
    """One line (without its newline) as an :class:`AuditLine`; ``entry`` None when invalid."""
    text = raw.decode("utf-8", "replace")
    if not text.strip():
        return AuditLine(n, raw, None, "empty line")
    try:
        entry: Any = json.loads(raw.decode("utf-8"))
    except ValueError:
        return AuditLine(n, raw, None, "not valid JSON")
    problem = entry_problem(entry)
    return AuditLine(n, raw, entry if problem is None else None, problem)


def read_audit(path: str | Path) -> AuditReadResult:
    """Parse a whole log into memory; never raises for bad content (a missing file reads as
    empty, ``exists`` False; an unreadable one sets ``read_error``). ``case verify`` streams
    the log instead (:class:`LogStream`)."""
    from forensic_app.core.imaging import read_regular

    result = AuditReadResult()
    try:
        data = read_regular(path)  # a FIFO planted as the log used to block verify forever
    except FileNotFoundError:
        result.exists = False
        return result
    except OSError as exc:
        result.read_error = f"the audit log cannot be read: {exc}"
        return result
    if not data:
        return result
    raw_lines = data.split(b"\n")
    tail = raw_lines.pop()  # b"" when the file ends with a newline
    if tail:
        result.torn_tail = tail.decode("utf-8", "replace")
    for n, raw in enumerate(raw_lines, start=1):
        line = parse_line(n, raw)
        result.lines.append(line)
        if line.entry is not None:
            result.entries.append(line.entry)
        elif raw.decode("utf-8", "replace").strip():
            result.bad_lines.append((n, raw.decode("utf-8", "replace")))
    return result


class LogStream:
    """The lines of a log, read one at a time (memory bounded by one line of at most
    :data:`_MAX_LINE`, whatever the size of the log). After iterating, ``exists``,
    ``read_error`` and ``torn_tail`` say what :func:`read_audit` would have said."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.exists = True
        self.read_error: str | None = None
        self.torn_tail: str | None = None

    def __iter__(self) -> Iterator[AuditLine]:
        from forensic_app.core.imaging import open_regular

        try:
            # Regular files only, opened without blocking (a FIFO planted as the log hung
            # verify), and never read past the size fstat gave (an endless pseudo-file).
            fh = open_regular(self.path, max_bytes=None)
            left = os.fstat(fh.fileno()).st_size
        except FileNotFoundError:
            self.exists = False
            return
        except OSError as exc:
            self.read_error = f"the audit log cannot be read: {exc}"
            return
        with fh:
            n = 0
            try:
                while raw := fh.readline(min(_MAX_LINE, left + 1)):
                    left -= len(raw)
                    if left < 0:
                        self.read_error = "the audit log gave more bytes than its size"
                        return
                    n += 1
                    if raw.endswith(b"\n"):
                        yield parse_line(n, raw[:-1])
                    elif len(raw) < _MAX_LINE:
                        self.torn_tail = raw.decode("utf-8", "replace")
                    else:  # no entry is this long: skip to its end, report it
                        while (rest := fh.readline(min(_MAX_LINE, left + 1))) and not (
                            rest.endswith(b"\n")
                        ):
                            left -= len(rest)
                            if left < 0:
                                self.read_error = "the audit log gave more bytes than its size"
                                return
                        left -= len(rest)
                        if left < 0:
                            self.read_error = "the audit log gave more bytes than its size"
                            return
                        yield AuditLine(n, raw, None, "longer than any entry (not read whole)")
            except OSError as exc:
                self.read_error = f"the audit log cannot be read past line {n}: {exc}"


def iter_entries(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, entry) of every valid line, streamed (see :class:`LogStream`)."""
    for line in LogStream(path):
        if line.entry is not None:
            yield line.number, line.entry


def latest_files(
    entries: Iterable[tuple[int, dict[str, Any]]],
) -> dict[str, tuple[str | None, int]]:
    """Every case file an entry wrote -> (SHA-256 in the latest such entry, None for removed;
    that entry's line number). The one answer to "which entry vouches for this file", used by
    ``case verify`` and by a batch deciding whether a stored record may be reused."""
    out: dict[str, tuple[str | None, int]] = {}
    for number, entry in entries:
        add_files(out, number, entry)
    return out


def add_files(
    latest: dict[str, tuple[str | None, int]], number: int, entry: dict[str, Any]
) -> None:
    """Fold one entry's ``files`` into a :func:`latest_files` map (for one-pass readers)."""
    for rel, digest in (entry.get("files") or {}).items():
        latest[rel] = (digest, number)


def head_of(path: str | Path) -> str:
    """The chain head (SHA-256 of the last complete line) of the log at ``path``."""
    return read_audit(path).head


_PATH_LOCKS: dict[str, threading.Lock] = {}
_PATH_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    """One lock per log file in this process, shared by every AuditLog on it: the chain needs
    each append to see the line written just before it."""
    key = os.path.normcase(os.path.realpath(path))
    with _PATH_LOCKS_GUARD:
        return _PATH_LOCKS.setdefault(key, threading.Lock())


def _last_line(fd: int, size: int) -> tuple[bytes, bool]:
    """(last line without its newline, True when the file ends with a newline)."""
    if size == 0:
        return b"", True
    chunk = 4096
    buf = b""
    pos = size
    ends_nl = os.pread(fd, 1, size - 1) == b"\n"
    end = size - 1 if ends_nl else size
    pos = end
    while pos > 0 and len(buf) < _MAX_LINE:
        start = max(0, pos - chunk)
        buf = os.pread(fd, pos - start, start) + buf
        pos = start
        nl = buf.rfind(b"\n")
        if nl >= 0:
            return buf[nl + 1 :], ends_nl
        chunk = min(chunk * 4, 1 << 20)
    return buf, ends_nl


def _encode(entry: dict[str, Any]) -> tuple[bytes, str]:
    """(the line of ``entry`` ending in its self-hash, that hash); ``entry`` lacks the field."""
    body = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)
    # A file name that is not valid UTF-8 holds lone surrogates: written as \udcxx JSON escapes
    # (backslashreplace), so the line is valid UTF-8, reads back exactly and hashes stably.
    raw = body.encode("utf-8", "backslashreplace")
    digest = sha256_hex(raw)
    return raw[:-1] + f',"{_SELF_FIELD}":"{digest}"}}'.encode("ascii"), digest


class AuditLog:
    """Appends chained entries to ``path``; thread-safe; one write + fsync per entry."""

    def __init__(self, path: str | Path, examiner: str | None = None) -> None:
        self.path = Path(path)
        self.examiner = examiner
        self._vouched: dict[str, str | None] | None = None
        self._vouched_size = -1  # log size the map was current for

    def vouched_files(self) -> dict[str, str | None]:
        """Case file -> SHA-256 recorded by the latest entry that wrote it (None: removed).

        Built once by streaming the log, then kept current by :meth:`append`; rebuilt when the
        log's size shows that someone else appended since.
        """
        with _lock_for(self.path):  # batch threads look up while others append
            try:
                size = os.stat(self.path).st_size
            except OSError:
                size = -1
            if self._vouched is None or size != self._vouched_size:
                latest = latest_files(iter_entries(self.path))
                self._vouched = {rel: digest for rel, (digest, _) in latest.items()}
                self._vouched_size = size
            return self._vouched

    def append(
        self,
        action: str,
        sha256: str | None = None,
        wrote: dict[str, str | None] | None = None,
        **detail: Any,
    ) -> dict[str, Any]:
        """Write one entry durably and return it.

        ``wrote`` maps the case files this entry accounts for (relative paths) to their SHA-256
        (None: removed). Raises :class:`AuditWriteError` when the disk refuses; the file is then
        exactly as it was before the call (no partial line for the next entry to be glued onto).
        """
        entry: dict[str, Any] = {
            "time": utc_now(),
            "action": action,
            "sha256": sha256,
            "detail": detail,
            "tool_version": __version__,
        }
        if self.examiner:
            entry["examiner"] = self.examiner
        if wrote:
            entry["files"] = dict(wrote)
        with _lock_for(self.path):
            try:
                # O_NOFOLLOW: a log replaced by a link must not lead appends into another file.
                flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                fd = os.open(self.path, flags, 0o644)
            except OSError as exc:
                raise AuditWriteError(
                    exc.errno,
                    f"the audit log {self.path} cannot be opened for writing: "
                    f"{exc.strerror or exc}",
                ) from exc
            try:
                size = os.fstat(fd).st_size
                last, ends_nl = _last_line(fd, size)
                prefix = b""
                prev = sha256_hex(last) if size else GENESIS
                if size and not ends_nl:
                    torn: dict[str, Any] = {
                        "time": utc_now(),
                        "action": LOG_TORN_LINE,
                        "sha256": None,
                        "detail": {
                            "note": "the previous line was cut off by an interrupted write; it "
                            "is kept as is, linked by this entry, and earlier lines are intact"
                        },
                        "tool_version": __version__,
                        "prev": prev,
                    }
                    torn_line, _ = _encode(torn)
                    prefix = b"\n" + torn_line + b"\n"
                    prev = sha256_hex(torn_line)
                entry["prev"] = prev
                line, digest = _encode(entry)
                data = prefix + line + b"\n"
                _write_once(fd, data, size, self.path)
                if self._vouched is not None and self._vouched_size == size and not prefix:
                    self._vouched.update(wrote or {})
                    self._vouched_size = size + len(data)
            finally:
                os.close(fd)
        entry[_SELF_FIELD] = digest
        entry["line_sha256"] = sha256_hex(line)  # not stored: the next entry's ``prev``
        return entry

    def read(self) -> AuditReadResult:
        return read_audit(self.path)


def _write_once(fd: int, data: bytes, size: int, path: Path) -> None:
    """One ``write`` of the complete data, then fsync; on any failure truncate back to ``size``.

    Why not a loop over partial writes: a second write after a short one could land after
    another process's line and glue the two together; a complete line or nothing is the rule.
    """
    try:
        n = os.write(fd, data)
        if n != len(data):
            raise OSError(28, f"short write ({n} of {len(data)} bytes; disk full?)")
        os.fsync(fd)
    except OSError as exc:
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
            kept = f"the log was restored to its previous {size} bytes"
        except OSError as again:
            kept = f"and the partial entry could not be removed ({again})"
        raise AuditWriteError(
            exc.errno, f"audit entry not written to {path}: {exc.strerror or exc}; {kept}"
        ) from exc


@dataclass
class ChainCheck:
    """What :func:`check_chain` found: problems (each naming a line), notes and the head."""

    lines: int = 0
    chained: int = 0  # lines carrying a chain link
    legacy: int = 0  # leading lines written before the chain existed
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    head: str = GENESIS

    @property
    def predates_chain(self) -> bool:
        """The whole log was written by a tool without the chain (nothing can be proved)."""
        return self.lines > 0 and self.chained == 0


#: Problems listed one by one at most; the rest are counted (a log of garbage stays bounded).
_MAX_PROBLEMS = 1000


class ChainChecker:
    """Checks a log line by line (fed in order): every link and every entry's own SHA-256.

    An edited line fails its own hash (or, re-hashed by a forger, the next line's link); a
    deleted, inserted or reordered line breaks the link of the line after the gap. A line cut
    off by a crash is accepted only when the next line is the ``audit-torn-line-found`` entry
    that links to it (the writer found it and chained over it). Holds one line, not the log.
    """

    def __init__(self) -> None:
        self.out = ChainCheck()
        self._prev_raw: bytes | None = None
        self._pending: AuditLine | None = None  # an invalid line waiting for the next one
        self._more = 0

    def _problem(self, text: str) -> None:
        if len(self.out.problems) < _MAX_PROBLEMS:
            self.out.problems.append(text)
        else:
            self._more += 1

    def _settle_pending(self, nxt: dict[str, Any] | None) -> None:
        line, self._pending = self._pending, None
        if line is None:
            return
        if (
            nxt is not None
            and nxt.get("action") == LOG_TORN_LINE
            and nxt.get("prev") == sha256_hex(line.raw)
        ):
            self.out.notes.append(
                f"line {line.number}: cut off by an interrupted write; the next line "
                "records this and links to it"
            )
        else:
            self._problem(f"line {line.number}: {line.problem or 'not an entry'}")

    def feed(self, line: AuditLine) -> None:
        out = self.out
        out.lines += 1
        self._settle_pending(line.entry)
        expected = GENESIS if self._prev_raw is None else sha256_hex(self._prev_raw)
        entry = line.entry
        if entry is None:
            self._pending = line
        elif "prev" not in entry:
            if out.chained:
                self._problem(
                    f"line {line.number}: has no chain link (inserted after the chain began?)"
                )
            else:
                out.legacy += 1
        else:
            out.chained += 1
            if entry["prev"] != expected:
                what = "the first line" if self._prev_raw is None else f"line {line.number - 1}"
                self._problem(
                    f"line {line.number}: does not link to {what} (a line was edited, "
                    "removed, inserted or reordered)"
                )
            if not self_hash_ok(line.raw):
                self._problem(
                    f"line {line.number}: its content does not match its own SHA-256 (edited)"
                )
        self._prev_raw = line.raw

    def finish(self, torn_tail: str | None) -> ChainCheck:
        out = self.out
        self._settle_pending(None)
        out.head = GENESIS if self._prev_raw is None else sha256_hex(self._prev_raw)
        if self._more:
            out.problems.append(f"... and {self._more} more problem(s) not listed")
        if torn_tail is not None:
            out.problems.append(
                "the last line is incomplete (an interrupted write, or the log was cut); it "
                "cannot be verified"
            )
        if out.legacy and out.chained:
            out.notes.append(
                f"the first {out.legacy} line(s) were written before the hash chain existed; "
                "only the chained lines after them are protected"
            )
        return out


def check_chain(log: AuditReadResult) -> ChainCheck:
    """:class:`ChainChecker` over a log read whole."""
    checker = ChainChecker()
    for line in log.lines:
        checker.feed(line)
    return checker.finish(log.torn_tail)
