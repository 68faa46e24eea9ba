"""``case verify``: prove a whole case folder, not just its input photos.

Why: an examiner is asked whether the results could have been altered. The audit log is a hash
chain (core/audit.py) and every entry that wrote a case file recorded that file's SHA-256, so
this check can say, file by file, that the manifest, every record (current and historical) and
every annotated copy are exactly what the tool wrote, that no line of the log was edited,
removed or inserted, and that every input photo still has the SHA-256 taken when it was opened.
Anything else (a mismatch, a file missing, unreadable, unexpected or unsafe) is a finding that
names the file. It only reads: write-blocked media can be verified.
See docs/adr/0007-tamper-evident-case.md.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from forensic_app.core.audit import (
    LOG_MISSING,
    AuditLine,
    ChainCheck,
    ChainChecker,
    LogStream,
    add_files,
    sha256_hex,
)
from forensic_app.core.case import (
    ANNOTATED_DIR,
    AUDIT_FILE,
    CASE_FILE,
    HISTORY_DIR,
    RESULTS_DIR,
    UNACCOUNTED,
    Case,
    CaseError,
    IntegrityIssue,
    PhotoRecord,
)
from forensic_app.core.caselock import HOLDER_FILE, describe_holder, held_here, read_holder


@dataclass
class Finding:
    """One thing that could not be proved, naming the case file (relative) it concerns."""

    file: str
    problem: str

    def describe(self) -> str:
        return f"{self.file}: {self.problem}"


@dataclass
class CaseVerification:
    """Everything ``verify_case`` checked and found."""

    case_name: str
    audit_lines: int = 0
    chain: ChainCheck = field(default_factory=ChainCheck)
    manifest_ok: bool = False
    records_ok: int = 0
    history_ok: int = 0
    annotated_ok: int = 0
    inputs_checked: int = 0
    inputs_rehashed: bool = False
    findings: list[Finding] = field(default_factory=list)
    input_issues: list[IntegrityIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: list[PhotoRecord] = field(default_factory=list)
    seal_found: bool | None = None  # None: no seal given to check

    @property
    def head(self) -> str:
        """The chain head: SHA-256 of the last audit line, the seal to note down."""
        return self.chain.head

    @property
    def predates_chain(self) -> bool:
        return self.chain.predates_chain

    @property
    def ok(self) -> bool:
        return not self.findings and not self.input_issues

    def problems(self) -> list[str]:
        return [f.describe() for f in self.findings] + [i.describe() for i in self.input_issues]

    def verified(self) -> list[str]:
        """What was checked, in words (the CLI prints it, the report shows it)."""
        c = self.chain
        if self.predates_chain:
            chain = (
                f"audit log: {self.audit_lines} line(s) written before the hash chain existed; "
                "NOT verifiable (the case predates tamper evidence)"
            )
        else:
            bad = sum(f.file == AUDIT_FILE for f in self.findings) - (self.seal_found is False)
            state = "intact" if not bad else "BROKEN"
            chain = (
                f"audit log: {self.audit_lines} line(s), hash chain {state} "
                f"({c.chained} chained, {c.legacy} before the chain)"
            )
        out = [
            chain,
            f"manifest {CASE_FILE}: "
            + ("matches the SHA-256 in the audit log" if self.manifest_ok else "NOT verified"),
            f"records: {self.records_ok} match the SHA-256 recorded when they were written",
            f"earlier versions (history): {self.history_ok} match",
            f"annotated copies: {self.annotated_ok} match",
        ]
        if self.inputs_rehashed:
            bad = len(self.input_issues)
            out.append(
                f"input photos: {self.inputs_checked} file(s) re-hashed, "
                + (f"{bad} do NOT match" if bad else "all match the SHA-256 taken at opening")
            )
        if self.seal_found is not None:
            out.append(
                "noted seal: "
                + ("found in the log" if self.seal_found else "NOT in the log (cut or rewritten)")
            )
        out.append(f"chain head (seal): {self.head} (line {self.audit_lines})")
        return out


def _hash_file(path: Path) -> str:
    """The one hashing function (core/imaging.py): regular files only, opened without
    blocking, read no further than their size. A FIFO planted as an annotated copy made
    ``case verify`` hang forever in ``open``."""
    from forensic_app.core.imaging import sha256_path

    return sha256_path(path)


def _present_files(case: Case, v: CaseVerification) -> set[str]:
    """Case files that must be accounted for: the manifest, records, history, annotated."""
    present: set[str] = set()
    if (case.root / CASE_FILE).exists() or os.path.islink(case.root / CASE_FILE):
        present.add(CASE_FILE)
    for folder in (RESULTS_DIR, f"{RESULTS_DIR}/{HISTORY_DIR}", ANNOTATED_DIR):
        path = case.root / folder
        try:
            with os.scandir(path) as it:
                listed = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        except FileNotFoundError:
            continue
        except OSError as exc:
            v.findings.append(Finding(f"{folder}/", f"cannot be listed: {exc}"))
            continue
        names = sorted(name for name, is_dir in listed if not is_dir)
        for name in sorted(name for name, is_dir in listed if is_dir):
            if folder == RESULTS_DIR and name == HISTORY_DIR:
                continue
            # The tool never makes a folder here: whatever it holds is no case file, cannot be
            # vouched for, and would otherwise sit in the case unseen.
            v.findings.append(
                Finding(f"{folder}/{name}/", "a folder the tool never writes (added?)")
            )
        for name in names:
            if name.startswith("."):
                if name.endswith(".tmp"):
                    v.notes.append(
                        f"{folder}/{name}: temporary file of a write in progress or interrupted "
                        "(not part of the case)"
                    )
                    continue
            present.add(f"{folder}/{name}")
    return present


@dataclass
class _SealSearch:
    """Looks for a seal noted earlier (the head a report or a check printed) while the log
    streams past, and counts by action what was logged after it.

    Why: cutting entries off the end, or rewriting the whole log consistently with this tool's
    own code, leaves a chain that checks; only a value kept outside the case exposes it. Every
    line after the seal is counted, since an entry forged after the seal looks like any later
    work of the tool.
    """

    seal: str
    line: int = 0  # the sealed line's number; 0 until found
    later: Counter[str] = field(default_factory=Counter)

    def feed(self, line: AuditLine) -> None:
        if self.line:
            self.later[str(line.entry.get("action")) if line.entry else "(invalid line)"] += 1
        elif sha256_hex(line.raw) == self.seal:
            self.line = line.number

    def report(self, v: CaseVerification) -> None:
        v.seal_found = bool(self.line)
        if not self.line:
            v.findings.append(
                Finding(
                    AUDIT_FILE,
                    f"the noted seal {self.seal} is not the SHA-256 of any line: the log was cut "
                    "off or rewritten after the seal was noted",
                )
            )
            return
        n = sum(self.later.values())
        v.notes.append(
            f"the noted seal is line {self.line} of {v.audit_lines}: "
            + (
                f"{n} line(s) logged after it ("
                + ", ".join(f"{k} {action}" for action, k in sorted(self.later.items()))
                + "); check that they are work you expect"
                if n
                else "nothing was logged after it"
            )
        )


def verify_case(case: Case, inputs: bool = True, seal: str | None = None) -> CaseVerification:
    """Check the chain, every case file against the latest entry that wrote it, and (with
    ``inputs``) re-hash every input photo; with ``seal`` (a head noted earlier, outside the
    case) also prove the log still holds that line. Reads only; never raises for bad content."""
    v = CaseVerification(case.name)
    if not held_here(case.root) and (case.root / HOLDER_FILE).exists():
        v.notes.append(
            f"a writer was active during this check ({describe_holder(read_holder(case.root))}); "
            "a file it was writing just then may not verify until it has finished"
        )
    # One streamed pass over the log (memory bounded by a line, plus one hash per case file).
    log = LogStream(case.root / AUDIT_FILE)
    checker = ChainChecker()
    search = _SealSearch(seal.strip().lower()) if seal is not None else None
    expected: dict[str, tuple[str | None, int]] = {}
    lost: list[Finding] = []
    for line in log:
        checker.feed(line)
        if search is not None:
            search.feed(line)
        if line.entry is None:
            continue
        add_files(expected, line.number, line.entry)
        archived = (line.entry.get("detail") or {}).get("archived")
        if isinstance(archived, str) and archived.endswith(f".{UNACCOUNTED}.json"):
            # Healed, not hidden: a kill before an entry and a hand edit look alike here.
            v.notes.append(
                f"line {line.number}: a stored record no entry vouched for (a writer killed "
                f"before logging it, or an edit) was replaced; its bytes are kept in {archived}"
            )
        if line.entry.get("action") == LOG_MISSING:
            # Permanent: a rerun re-analyses (and so re-vouches) every file, but the history
            # before this line is gone for good.
            lost.append(
                Finding(
                    AUDIT_FILE,
                    f"line {line.number}: the audit log was missing when the case was opened "
                    f"at {line.entry.get('time')}; everything that happened before is lost",
                )
            )
    v.chain = checker.finish(log.torn_tail)
    v.audit_lines = v.chain.lines
    if not log.exists:
        v.findings.append(
            Finding(
                AUDIT_FILE,
                "missing: the case's history, and every file it vouches for, cannot be verified",
            )
        )
    elif log.read_error:
        v.findings.append(Finding(AUDIT_FILE, log.read_error))
    if os.path.islink(case.root / AUDIT_FILE):
        v.findings.append(Finding(AUDIT_FILE, "is a symbolic link, not the case's own log"))
    v.findings += [Finding(AUDIT_FILE, p) for p in v.chain.problems]
    v.notes += v.chain.notes
    if search is not None:
        search.report(v)
    if v.predates_chain:
        v.findings.append(
            Finding(
                AUDIT_FILE,
                "the case predates the hash chain (written by an older version): its log, "
                "records and annotated copies cannot be proved; only the input photos were "
                "re-hashed",
            )
        )
    v.findings += lost

    present = _present_files(case, v)
    records, record_problems = case.scan_records()
    v.records = records
    bad_records = set()
    for problem in record_problems:
        rel = problem.split(":", 1)[0]
        bad_records.add(rel)
        v.findings.append(Finding(rel, "unusable record: " + problem.split(":", 1)[-1].strip()))

    for rel in sorted(present | set(expected)):
        want, line_no = expected.get(rel, (None, 0))
        known = rel in expected
        if rel not in present:
            if want is not None:
                v.findings.append(
                    Finding(rel, f"MISSING (deleted?); written per audit line {line_no}")
                )
            continue
        try:
            path = case.inside(rel)
            actual = _hash_file(path)
        except CaseError as exc:
            v.findings.append(Finding(rel, str(exc)))
            continue
        except OSError as exc:
            v.findings.append(Finding(rel, f"UNREADABLE: {exc}"))
            continue
        if v.predates_chain and not known:
            continue
        if not known:
            v.findings.append(
                Finding(rel, "not written by any entry of the audit log (added or renamed?)")
            )
        elif want is None:
            v.findings.append(
                Finding(rel, f"present, but audit line {line_no} records it as removed")
            )
        elif actual != want:
            v.findings.append(
                Finding(
                    rel,
                    f"CHANGED: SHA-256 is {actual}, audit line {line_no} recorded {want}",
                )
            )
        elif rel not in bad_records:
            if rel == CASE_FILE:
                v.manifest_ok = True
            elif rel.startswith(f"{RESULTS_DIR}/{HISTORY_DIR}/"):
                v.history_ok += 1
            elif rel.startswith(f"{RESULTS_DIR}/"):
                v.records_ok += 1
            elif rel.startswith(f"{ANNOTATED_DIR}/"):
                v.annotated_ok += 1

    for rec in records:
        if rec.annotated:
            try:
                case.inside(rec.annotated)
            except CaseError as exc:
                v.findings.append(Finding(f"{RESULTS_DIR}/{rec.name}", str(exc)))

    if inputs:
        v.inputs_rehashed = True
        v.input_issues = case.verify_inputs(log_result=False, records=records)
        v.inputs_checked = sum(1 + len(r.other_paths) for r in records if r.sha256)
    return v
