"""A case folder: manifest, one JSON result per photo, annotated copies and the audit log.

Why a folder of small files: every file is written atomically on its own, so a crash or a kill at
any instant leaves each result either complete or absent, never half-written, and a rerun picks
up where it stopped (a photo whose SHA-256 and settings match its stored result is skipped).
Nothing is ever deleted: a result that is replaced (re-analysis, manual edit) is first moved to
``results/history/``.

Layout (see docs/adr/0004-case-folder-and-audit-log.md)::

    case.json                  manifest: name, examiner, created, tool version, models, settings
    audit.jsonl                append-only audit log (core/audit.py)
    results/<sha256>.json      one record per photo content (paths, result, settings key, edits)
    results/error-<id>.json    a photo that could not even be read (no SHA-256)
    results/history/           earlier versions of records that were replaced
    annotated/<sha16>_<name>   annotated copies
    .case.lock, .case.lock.json  the writer lock and who holds it (core/caselock.py)

The class is also the batch runner's ResultStore, so ``BatchRunner(engine, store=case)`` is a
resumable, audited batch.

Tamper evidence (docs/adr/0007-tamper-evident-case.md): every audit entry that writes a case
file lists it with its SHA-256 (``wrote``), so ``core/casecheck.py`` can verify every file
against the latest entry that wrote it. Everything read back from the folder (manifest, records,
paths inside records) is validated first: a damaged or hostile file gives a :class:`CaseError`
naming it, never a crash, and a path in a record can never lead a write out of the case.

One writer at a time: a writer (:meth:`Case.create`, :meth:`Case.open`) holds the case lock until
:meth:`Case.close`; a reader (``Case.open(..., writer=False)``) writes nothing and may log through
:meth:`Case.try_log` only when the lock is free.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensic_app import __version__
from forensic_app.core import atomic, audit, ownership
from forensic_app.core.audit import AuditLog, AuditWriteError, sha256_hex, utc_now
from forensic_app.core.caselock import HOLDER_FILE, LOCK_FILE, CaseBusyError, CaseLock
from forensic_app.core.caseschema import manifest_problem, record_problem
from forensic_app.core.imaging import read_regular
from forensic_app.core.names import display
from forensic_app.core.results import ImageResult, face_number
from forensic_app.core.settings import AnalysisSettings

CASE_FILE = "case.json"
AUDIT_FILE = "audit.jsonl"
RESULTS_DIR = "results"
HISTORY_DIR = "history"
ANNOTATED_DIR = "annotated"
CASE_SCHEMA = 1
#: History name part of a record replaced while no audit entry vouched for it.
UNACCOUNTED = "unaccounted"
RECORD_SCHEMA = 1


#: Temp-file names core/atomic.py uses: ``.<target name>.<random>.tmp``.
_TEMP_NAME = re.compile(r"^\..+\.tmp$")


class CaseError(Exception):
    """The folder is not a usable case (no manifest, unreadable, not writable)."""


class RecordError(CaseError):
    """A record file that cannot be used (unreadable, not JSON, wrong shape, unsafe path)."""


__all__ = ["CaseBusyError", "CaseError", "RecordError", "AuditWriteError"]


def _validate_manifest(path: Path, m: Any) -> dict[str, Any]:
    problem = manifest_problem(m, CASE_SCHEMA)
    if problem is not None:
        raise CaseError(f"case manifest {path} is not a valid case manifest: {problem}")
    return m


def _safe_stem(name: str, limit: int = 40) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._") or "photo"
    return stem[:limit]


def annotated_suffix(path: str) -> str:
    """File suffix of a photo's annotated copy: JPEG stays JPEG, anything else becomes PNG."""
    return ".jpg" if Path(path).suffix.lower() in (".jpg", ".jpeg") else ".png"


def _path_id(path: str) -> str:
    return hashlib.sha256(os.path.abspath(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass
class PhotoRecord:
    """One photo's stored outcome. ``sha256`` is the hash taken when the photo was opened."""

    name: str  # file name under results/
    sha256: str | None
    path: str  # as given or found when last analysed
    abs_path: str  # absolute, for re-hashing from any working folder
    result: ImageResult
    settings_key: str | None = None
    analysed_at: str = ""
    annotated: str | None = None  # relative to the case folder
    manual_edits: int = 0
    other_paths: list[str] = field(default_factory=list)  # same bytes found elsewhere (absolute)

    @property
    def ok(self) -> bool:
        return self.result.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": RECORD_SCHEMA,
            "sha256": self.sha256,
            "path": self.path,
            "abs_path": self.abs_path,
            "other_paths": self.other_paths,
            "settings_key": self.settings_key,
            "analysed_at": self.analysed_at,
            "annotated": self.annotated,
            "manual_edits": self.manual_edits,
            "result": self.result.to_dict(),
        }

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> PhotoRecord:
        """Build from a parsed record file; raises :class:`RecordError` for a wrong shape."""
        problem = record_problem(name, d, ANNOTATED_DIR)
        if problem is not None:
            raise RecordError(f"{RESULTS_DIR}/{name}: {problem}")
        return cls(
            name=name,
            sha256=d.get("sha256"),
            path=d["path"],
            abs_path=d.get("abs_path") or os.path.abspath(d["path"]),
            result=ImageResult.from_dict(d["result"]),
            settings_key=d.get("settings_key"),
            analysed_at=d.get("analysed_at", ""),
            annotated=d.get("annotated"),
            manual_edits=int(d.get("manual_edits", 0)),
            other_paths=list(d.get("other_paths") or []),
        )


@dataclass
class IntegrityIssue:
    """An input photo whose bytes no longer match the SHA-256 taken when it was opened."""

    path: str
    expected: str
    actual: str | None  # None when the file is gone or unreadable
    problem: str  # "changed" | "missing" | "unreadable"

    def describe(self) -> str:
        if self.problem == "changed":
            return (
                f"{self.path}: CHANGED since it was opened "
                f"(SHA-256 was {self.expected}, now {self.actual})"
            )
        return f"{self.path}: {self.problem.upper()} (SHA-256 at opening {self.expected})"


def _models_of(engine: Any) -> list[dict[str, Any]]:
    models = []
    for m in getattr(engine, "models", []) or []:
        models.append(m.to_dict() if hasattr(m, "to_dict") else dict(m))
    return models


def _release_lock(lock: CaseLock) -> None:
    lock.release()


def _refuse_other_files(root: Path) -> None:
    """Raise CaseError when ``root`` holds no case yet but other files: a case made in an
    evidence folder appended its log to an evidence ``audit.jsonl`` and its report replaced an
    evidence ``report.html``. What a failed create or a concurrent creator leaves is allowed."""
    own = {RESULTS_DIR, ANNOTATED_DIR, ownership.STATE_DIR, LOCK_FILE, HOLDER_FILE}
    with contextlib.suppress(OSError):
        others = [
            e.name
            for e in os.scandir(root)
            if e.name not in own and not (e.name.startswith(".") and e.name.endswith(".tmp"))
        ]
        if others and not (root / CASE_FILE).exists():
            raise CaseError(
                f"{display(root)} is not empty ({len(others)} entries, e.g. "
                f"{display(sorted(others)[0])}): a new case needs a new or empty folder, so "
                "case files never mix with or replace other files (evidence included)"
            )


def _locked(root: Path, wait: bool) -> CaseLock:
    """The case's writer lock, held; a refusal is a :class:`CaseError` naming the folder."""
    lock = CaseLock(root)
    try:
        lock.acquire(wait)
    except OSError as exc:
        raise CaseError(f"cannot lock case folder {root}: {exc}") from exc
    return lock


class Case:
    """A case folder: :meth:`create`, :meth:`open` or :meth:`open_or_create` it."""

    def __init__(self, root: str | Path, manifest: dict[str, Any], examiner: str | None = None):
        self.root = Path(root)
        self.manifest = manifest
        self.examiner = examiner or manifest.get("examiner")
        self.audit = AuditLog(self.root / AUDIT_FILE, self.examiner)
        self.lock = CaseLock(self.root)
        self._finalizer = weakref.finalize(self, _release_lock, self.lock)
        self._lock = threading.RLock()
        self._key: str | None = None
        self._reanalyse = False
        self._has_records: bool | None = None

    # -- paths -------------------------------------------------------------------------------
    @property
    def results_dir(self) -> Path:
        return self.root / RESULTS_DIR

    @property
    def annotated_dir(self) -> Path:
        return self.root / ANNOTATED_DIR

    @property
    def name(self) -> str:
        return str(self.manifest.get("case_name") or self.root.name)

    @property
    def is_writer(self) -> bool:
        """True while this object holds the case's writer lock."""
        return self.lock.held

    def inside(self, rel: str) -> Path:
        """The file a case-relative path names, refused unless it stays inside the case.

        Why: paths in records are data anyone could edit; following one blindly let a manual
        edit overwrite a photo outside the case. The path must be relative, without ``..``, and
        neither it nor a folder on the way may be a symbolic link (checked again here, at use,
        not only when the record was read).
        """
        if not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")) or "\\" in rel:
            raise CaseError(f"refusing case path {rel!r}: not a plain relative path")
        parts = rel.split("/")
        if any(p in ("", ".", "..") for p in parts) or ":" in parts[0]:
            raise CaseError(f"refusing case path {rel!r}: it leaves the case folder")
        root_real = os.path.realpath(self.root)
        current = self.root
        for part in parts:
            current = current / part
            if os.path.islink(current):
                raise CaseError(
                    f"refusing case path {rel!r}: {current} is a symbolic link (it could lead "
                    "outside the case)"
                )
        real = os.path.realpath(current)
        if os.path.commonpath([root_real, real]) != root_real:
            raise CaseError(f"refusing case path {rel!r}: it resolves outside the case folder")
        return current

    # -- create / open -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: str | Path,
        name: str | None = None,
        examiner: str | None = None,
        engine: Any | None = None,
        settings: AnalysisSettings | None = None,
        wait: bool | float = False,
    ) -> Case:
        """Make a new case folder (it may exist but must not already hold a case or any other
        file: a case made in an evidence folder appended its audit log to an evidence file
        named ``audit.jsonl`` and its report replaced an evidence ``report.html``).

        The writer lock is taken before the manifest is looked for, so two processes creating
        the same case cannot both write one: the second finds the first's manifest (or waits)
        and gets a :class:`CaseError`.
        """
        root = Path(root)
        _refuse_other_files(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaseError(f"cannot create case folder {root}: {exc}") from exc
        lock = _locked(root, wait)
        try:
            if (root / CASE_FILE).exists():
                raise CaseError(f"{root} already holds a case; open it instead")
            try:
                (root / RESULTS_DIR / HISTORY_DIR).mkdir(parents=True, exist_ok=True)
                (root / ANNOTATED_DIR).mkdir(exist_ok=True)
                ownership.mark(root, ownership.KIND_CASE, owned=[RESULTS_DIR, ANNOTATED_DIR])
            except OSError as exc:
                raise CaseError(f"cannot create case folder {root}: {exc}") from exc
            manifest = {
                "schema": CASE_SCHEMA,
                "case_name": name or root.resolve().name,
                "examiner": examiner,
                "created": utc_now(),
                "tool_version": __version__,
                "models": _models_of(engine) if engine is not None else [],
                "provider": getattr(engine, "provider", None),
                "settings": (settings or AnalysisSettings()).to_dict(),
            }
            case = cls(root, manifest, examiner)
            case.lock.acquire()  # shares the OS lock taken above
            try:
                wrote = case._write_manifest()
                case.audit.append(
                    audit.CASE_CREATED,
                    wrote=wrote,
                    case_name=manifest["case_name"],
                    folder=str(root.resolve()),
                )
            except BaseException:
                case.close()
                raise
            return case
        finally:
            lock.release()

    @staticmethod
    def read_manifest(root: str | Path) -> dict[str, Any]:
        """The validated manifest of the case at ``root`` (raises :class:`CaseError`)."""
        root = Path(root)
        path = root / CASE_FILE
        try:
            manifest = json.loads(read_regular(path).decode("utf-8"))  # never blocks on a FIFO
        except FileNotFoundError:
            raise CaseError(f"{root} is not a case folder (no {CASE_FILE})") from None
        except (OSError, ValueError) as exc:
            raise CaseError(f"case manifest {path} is unreadable: {exc}") from exc
        return _validate_manifest(path, manifest)

    @classmethod
    def open(
        cls,
        root: str | Path,
        examiner: str | None = None,
        log_open: bool = True,
        *,
        writer: bool = True,
        wait: bool | float = False,
    ) -> Case:
        """Open a case. A writer takes the lock (:class:`CaseBusyError` when another process
        has it; ``wait`` to wait), logs the opening and removes temp files a killed writer left.
        A reader (``writer=False``) writes nothing into the folder."""
        root = Path(root)
        manifest = cls.read_manifest(root)
        case = cls(root, manifest, examiner)
        if not writer:
            return case
        try:
            case.lock.acquire(wait)
        except OSError as exc:
            raise CaseError(f"cannot lock case folder {root} for writing: {exc}") from exc
        try:
            case.manifest = cls.read_manifest(root)  # as it is now that we hold the lock
            if not (root / AUDIT_FILE).exists():
                case.audit.append(
                    audit.LOG_MISSING,
                    note="this case had no audit log when it was opened; the log starts again "
                    "here and case verify reports every earlier file as unaccounted for",
                )
            if log_open:
                with contextlib.suppress(OSError):  # a case made before markers
                    ownership.mark(root, ownership.KIND_CASE, owned=[RESULTS_DIR, ANNOTATED_DIR])
                case.audit.append(audit.CASE_OPENED, case_name=case.name)
                removed = case.remove_stale_temp_files()
                if removed:
                    case.audit.append(audit.STALE_TEMP_REMOVED, files=removed)
        except BaseException:
            case.close()
            raise
        return case

    def close(self) -> None:
        """Release the writer lock (a no-op for a reader or a closed case)."""
        self.lock.release()

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def try_log(
        self, action: str, sha256: str | None = None, **detail: Any
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Log an entry if this process may write the case now: (entry, None) or (None, why).

        Why not always: a reader must work on write-blocked media and beside a live writer
        (whose chain it must not fork); it then says why its check was not logged.
        """
        if self.lock.held:
            try:
                return self.audit.append(action, sha256, **detail), None
            except OSError as exc:
                return None, str(exc)
        lock = CaseLock(self.root)
        try:
            lock.acquire()
        except CaseBusyError as exc:
            return None, str(exc)
        except OSError as exc:
            return None, f"the case folder cannot be written ({exc})"
        try:
            return self.audit.append(action, sha256, **detail), None
        except OSError as exc:
            return None, str(exc)
        finally:
            lock.release()

    def remove_stale_temp_files(self) -> list[str]:
        """Delete temp files an interrupted atomic write left behind (never a finished file).

        They are named ``.<target>.<random>.tmp`` by core/atomic.py; the file they were meant to
        replace is intact, so removing them loses nothing. Only a writer holding the case lock
        does this: a reader could otherwise delete a live writer's file in the middle of a write.
        """
        if not self.lock.held:
            return []
        removed = []
        for folder in (
            self.root,
            self.results_dir,
            self.results_dir / HISTORY_DIR,
            self.annotated_dir,
        ):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if _TEMP_NAME.match(name):
                    try:
                        os.remove(folder / name)
                        removed.append(str((folder / name).relative_to(self.root)))
                    except OSError:
                        pass
        return sorted(removed)

    @classmethod
    def open_or_create(
        cls,
        root: str | Path,
        name: str | None = None,
        examiner: str | None = None,
        engine: Any | None = None,
        settings: AnalysisSettings | None = None,
        wait: bool | float = False,
    ) -> Case:
        """Open the case at ``root`` as a writer, creating it when it holds none yet.

        The lock is taken first, so "is there a case?" and "create it" are one step for every
        other process.
        """
        root = Path(root)
        if not root.exists():
            return cls.create(root, name, examiner, engine, settings, wait)
        _refuse_other_files(root)  # before the lock file is made among them
        lock = _locked(root, wait)
        try:
            if (root / CASE_FILE).exists():
                return cls.open(root, examiner)
            return cls.create(root, name, examiner, engine, settings)
        finally:
            lock.release()

    def _write_manifest(self) -> dict[str, str]:
        self.manifest["updated"] = utc_now()
        # backslashreplace: a folder name that is not valid UTF-8 is kept as \udcxx escapes
        data = json.dumps(self.manifest, indent=2, ensure_ascii=False).encode(
            "utf-8", "backslashreplace"
        )
        atomic.write_bytes_atomic(self.root / CASE_FILE, data)
        return {CASE_FILE: sha256_hex(data)}

    def log(self, action: str, sha256: str | None = None, **detail: Any) -> dict[str, Any]:
        """Add an audit entry (the GUI logs e.g. ``photo-opened`` or ``exported`` through this)."""
        return self.audit.append(action, sha256, **detail)

    # -- batches -----------------------------------------------------------------------------
    def begin_batch(
        self,
        engine: Any,
        settings: AnalysisSettings,
        *,
        reanalyse: bool = False,
        photos: int | None = None,
    ) -> str:
        """Record the engine and settings of a batch; returns the settings key used for resume."""
        from forensic_app.core.batch import settings_key

        key = settings_key(settings, getattr(engine, "models", []) or [])
        models = _models_of(engine)
        changed = self.manifest.get("settings") != settings.to_dict() or (
            self.manifest.get("models") and self.manifest.get("models") != models
        )
        if changed:
            self.audit.append(
                audit.SETTINGS_CHANGED,
                old=self.manifest.get("settings"),
                new=settings.to_dict(),
                models=[m.get("sha256") for m in models],
            )
        self.manifest.update(
            settings=settings.to_dict(),
            models=models,
            provider=getattr(engine, "provider", None),
            tool_version=__version__,
        )
        wrote = self._write_manifest()
        self._key = key
        self._reanalyse = reanalyse
        self.audit.append(
            audit.BATCH_STARTED,
            wrote=wrote,
            photos=photos,
            settings_key=key,
            provider=getattr(engine, "provider", None),
            reanalyse=reanalyse,
        )
        return key

    def end_batch(self, outcome: Any) -> None:
        from forensic_app.core.batch import summarize

        s = summarize(outcome.items)
        self.audit.append(
            audit.BATCH_FINISHED,
            photos=s.total,
            analysed=s.analysed,
            unchanged=s.unchanged,
            failed=s.failed,
            cancelled=s.cancelled,
            faces=s.faces,
        )

    # -- records -----------------------------------------------------------------------------
    def _record_path(self, name: str) -> Path:
        return self.results_dir / name

    def load_record(self, name: str) -> PhotoRecord | None:
        """The record ``results/<name>``; None when absent, :class:`RecordError` when unusable."""
        path = self._record_path(name)
        try:
            data = json.loads(read_regular(path).decode("utf-8"))  # never blocks on a FIFO
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RecordError(f"{RESULTS_DIR}/{name}: cannot be read: {exc}") from exc
        except ValueError as exc:
            raise RecordError(f"{RESULTS_DIR}/{name}: not valid JSON: {exc}") from exc
        return PhotoRecord.from_dict(name, data)

    def record_for(self, sha256: str) -> PhotoRecord | None:
        try:
            return self.load_record(f"{sha256}.json")
        except RecordError:
            return None

    def scan_records(self) -> tuple[list[PhotoRecord], list[str]]:
        """(every usable record sorted by path, one problem line per record file that is not).

        Why both: an unparseable record must never silently vanish from a report or a verify;
        callers list the problems beside the records.
        """
        out: list[PhotoRecord] = []
        problems: list[str] = []
        try:
            names = sorted(os.listdir(self.results_dir))
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            return [], [f"{RESULTS_DIR}/: cannot be listed: {exc}"]
        for name in names:
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:
                rec = self.load_record(name)
            except RecordError as exc:
                problems.append(str(exc))
                continue
            if rec is not None:
                out.append(rec)
        out.sort(key=lambda r: (r.path, r.name))
        return out, problems

    def records(self) -> list[PhotoRecord]:
        """Every usable stored photo (successes and failures), sorted by path; see
        :meth:`scan_records` for the ones that are not usable."""
        return self.scan_records()[0]

    def results(self) -> list[ImageResult]:
        return [r.result for r in self.records()]

    def _archive_bytes(self, stem: str, why: str, data: bytes) -> tuple[str, str]:
        stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
        rel = f"{RESULTS_DIR}/{HISTORY_DIR}/{stem}.{stamp}.{why}.json"
        atomic.write_bytes_atomic(self.inside(rel), data)
        return rel, sha256_hex(data)

    def _archive(self, rec: PhotoRecord, why: str, wrote: dict[str, str | None]) -> str:
        data = json.dumps(rec.to_dict()).encode("ascii")
        rel, digest = self._archive_bytes(Path(rec.name).stem, why, data)
        wrote[rel] = digest
        return rel

    def _previous(self, name: str, wrote: dict[str, str | None]) -> PhotoRecord | None:
        """The record about to be replaced; an unusable one is kept byte for byte in history
        (it is evidence of what happened to the case) and counts as absent."""
        try:
            return self.load_record(name)
        except RecordError:
            try:
                data = read_regular(self._record_path(name))
            except OSError:
                return None
            rel, digest = self._archive_bytes(Path(name).stem, "unreadable", data)
            wrote[rel] = digest
            return None

    def _write_record(self, rec: PhotoRecord, wrote: dict[str, str | None]) -> None:
        # ensure_ascii: names that are not valid UTF-8 round-trip exactly (\udcxx escapes)
        data = json.dumps(rec.to_dict()).encode("ascii")
        rel = f"{RESULTS_DIR}/{rec.name}"
        atomic.write_bytes_atomic(self.inside(rel), data)
        wrote[rel] = sha256_hex(data)
        self._has_records = True

    def _annotated_name(self, sha256: str, path: str) -> str:
        suffix = annotated_suffix(path)
        return f"{ANNOTATED_DIR}/{sha256[:16]}_{_safe_stem(Path(path).name)}{suffix}"

    def _write_annotated(self, rec: PhotoRecord, rgb: Any, wrote: dict[str, str | None]) -> None:
        from forensic_app.core.annotate import save_annotated
        from forensic_app.core.imaging import sha256_path

        name = rec.annotated or self._annotated_name(rec.sha256 or "nohash", rec.path)
        (self.root / ANNOTATED_DIR).mkdir(exist_ok=True)
        target = self.inside(name)
        protected = [rec.abs_path, *rec.other_paths]
        save_annotated(rgb, rec.result.faces, target, protected=protected)
        rec.annotated = name
        wrote[name] = sha256_path(target)

    # -- ResultStore (used by BatchRunner) ---------------------------------------------------
    def wants_lookup(self) -> bool:
        if self._reanalyse:
            return False
        if self._has_records is None:
            try:
                with os.scandir(self.results_dir) as it:
                    self._has_records = any(e.name.endswith(".json") for e in it)
            except OSError:
                self._has_records = False
        return self._has_records

    def lookup(self, path: str, sha256: str) -> ImageResult | None:
        rec = self.record_for(sha256)
        if rec is None or not rec.ok or rec.settings_key != self._key:
            return None
        if not self._vouched_for(rec):
            return None  # analysed again: the new entry accounts for the files it rewrites
        if rec.annotated:
            try:
                if not self.inside(rec.annotated).is_file():
                    return None
            except CaseError:
                return None  # analysed again; saving then refuses the unsafe path loudly
        abs_path = os.path.abspath(path)
        wrote: dict[str, str | None] = {}
        with self._lock:
            if abs_path != rec.abs_path and abs_path not in rec.other_paths:
                rec.other_paths.append(abs_path)
                try:
                    self._write_record(rec, wrote)
                except (OSError, CaseError):
                    return None  # analyse it again; saving then reports the real problem
        self.audit.append(audit.SKIPPED_UNCHANGED, sha256, wrote=wrote, path=path, record=rec.name)
        result = rec.result
        result.path = path
        return result

    def _vouched_for(self, rec: PhotoRecord) -> bool:
        """True when the record and its annotated copy are exactly what the audit log says was
        written. Why: a record left by a writer killed before its entry (or planted by hand)
        must not be reused as "unchanged"; that kept the case failing ``case verify`` after
        every rerun, and adopted a result no entry vouches for."""
        from forensic_app.core.imaging import sha256_path

        vouched = self.audit.vouched_files()
        for rel in (f"{RESULTS_DIR}/{rec.name}", rec.annotated):
            if rel is None:
                continue
            want = vouched.get(rel)
            try:
                if want is None or sha256_path(self.inside(rel)) != want:
                    return False
            except (OSError, CaseError):
                return False
        return True

    def save(self, item: Any, result: ImageResult, image: Any | None) -> None:
        self._save(item.path, result, image, self._key)

    def save_single(
        self, engine: Any, settings: AnalysisSettings, result: ImageResult, image: Any | None
    ) -> PhotoRecord | None:
        """Store one photo analysed in the window, beside (not inside) any running batch.

        Why not ``begin_batch``: that sets the resume key and re-analyse flag of *the* batch of
        this case; a window analysis during a batch used to flip a running batch into
        re-analysing every unchanged photo. The photo's own settings key and models go into its
        record and audit entry; the manifest (the settings of the latest batch) is unchanged.
        """
        from forensic_app.core.batch import settings_key

        key = settings_key(settings, getattr(engine, "models", []) or [])
        return self._save(
            result.path,
            result,
            image,
            key,
            source="window",
            settings=settings.to_dict(),
            models=[m.get("sha256") for m in _models_of(engine)],
        )

    def _save(
        self,
        path: str,
        result: ImageResult,
        image: Any | None,
        key: str | None,
        **extra: Any,
    ) -> PhotoRecord | None:
        abs_path = os.path.abspath(path)
        wrote: dict[str, str | None] = {}
        with self._lock:
            if result.sha256 is None:
                name = f"error-{_path_id(path)}.json"
            else:
                name = f"{result.sha256}.json"
            previous = self._previous(name, wrote)
            if result.error is not None and previous is not None and previous.ok:
                # The same bytes were analysed successfully before: this failure is not about
                # the photo (disk full, a store error); the good record stays as it is.
                self.audit.append(
                    audit.ANALYSIS_FAILED,
                    result.sha256,
                    wrote=wrote,
                    path=path,
                    error=result.error,
                    kept_record=name,
                    **extra,
                )
                return None
            if result.sha256 is not None:
                self._drop_error_record(path, wrote)
            result, kept = _keep_corrections(previous, result)
            rec = PhotoRecord(
                name=name,
                sha256=result.sha256,
                path=path,
                abs_path=abs_path,
                result=result,
                settings_key=key,
                analysed_at=utc_now(),
                manual_edits=previous.manual_edits if kept and previous else 0,
            )
            archived = None
            if previous is not None:
                rec.other_paths = [
                    p for p in previous.other_paths + [previous.abs_path] if p != abs_path
                ]
                rec.other_paths = sorted(set(rec.other_paths))
                if previous.manual_edits or previous.ok:
                    why = "replaced" if self._vouched_for(previous) else UNACCOUNTED
                    archived = self._archive(previous, why, wrote)
            if image is not None and result.error is None and result.sha256:
                self._write_annotated(rec, image.rgb, wrote)
            self._write_record(rec, wrote)
        if result.error is not None:
            self.audit.append(
                audit.ANALYSIS_FAILED,
                result.sha256,
                wrote=wrote,
                path=path,
                error=result.error,
                **extra,
            )
            return rec
        detail: dict[str, Any] = {
            "path": path,
            "faces": len(result.faces),
            "settings_key": key,
            "annotated": rec.annotated,
            **extra,
        }
        if result.notes:
            detail["notes"] = result.notes
        if kept:
            detail["manual_corrections_kept"] = kept
        if previous is not None and previous.ok:
            detail.update(
                previous_settings_key=previous.settings_key,
                previous_manual_edits=previous.manual_edits,
                archived=archived,
            )
            self.audit.append(audit.REANALYSED, result.sha256, wrote=wrote, **detail)
        else:
            self.audit.append(audit.ANALYSED, result.sha256, wrote=wrote, **detail)
        return rec

    def _drop_error_record(self, path: str, wrote: dict[str, str | None]) -> None:
        """A photo that once failed to open and now analyses: keep its old record in history."""
        name = f"error-{_path_id(path)}.json"
        old = self._previous(name, wrote)
        if old is not None:
            self._archive(old, "failed-earlier", wrote)
        try:
            os.remove(self._record_path(name))
            wrote[f"{RESULTS_DIR}/{name}"] = None
        except FileNotFoundError:
            pass
        except OSError:
            pass

    # -- manual edits ------------------------------------------------------------------------
    def save_manual_edit(
        self,
        result: ImageResult,
        detail: dict[str, Any] | None = None,
        rgb: Any | None = None,
        examiner: str | None = None,
    ) -> PhotoRecord:
        """Store an investigator's corrected result for a photo, with an audit entry.

        ``result`` is the whole corrected ImageResult (faces with ``manual_box``/``manual_label``
        set by the editor). The previous record is kept in ``results/history/``. The annotated
        copy is redrawn from ``rgb`` (the displayed pixels) or, when not given, from the photo
        file if its SHA-256 still matches. ``detail`` describes the edit in the audit log; the
        face-level changes are computed and added. A previous record that is unusable or whose
        annotated path is unsafe is refused (:class:`CaseError`) before anything is written.
        """
        if not result.sha256:
            raise CaseError("a photo that could not be read cannot be edited")
        wrote: dict[str, str | None] = {}
        with self._lock:
            name = f"{result.sha256}.json"
            previous = self.load_record(name)  # RecordError: refuse, never overwrite blindly
            if previous is not None and previous.annotated:
                self.inside(previous.annotated)  # CaseError before any write
            abs_path = previous.abs_path if previous else os.path.abspath(result.path)
            rec = PhotoRecord(
                name=name,
                sha256=result.sha256,
                path=previous.path if previous else result.path,
                abs_path=abs_path,
                result=result,
                settings_key=previous.settings_key if previous else None,
                analysed_at=previous.analysed_at if previous else utc_now(),
                annotated=previous.annotated if previous else None,
                manual_edits=(previous.manual_edits if previous else 0) + 1,
                other_paths=previous.other_paths if previous else [],
            )
            archived = self._archive(previous, "before-edit", wrote) if previous else None
            note = None
            if rgb is None:
                rgb, note = self._pixels_for(rec)
            if rgb is not None:
                self._write_annotated(rec, rgb, wrote)
            self._write_record(rec, wrote)
        changes = face_changes(previous.result if previous else None, result)
        entry = dict(detail or {})
        entry.update(
            path=rec.path,
            changes=changes,
            faces=len(result.faces),
            manual_faces=sum(1 for f in result.faces if f.manual),
            archived=archived,
        )
        if note:
            entry["annotated_not_redrawn"] = note
        if examiner and examiner != self.examiner:
            entry["by"] = examiner
        self.audit.append(audit.MANUAL_EDIT, result.sha256, wrote=wrote, **entry)
        return rec

    def _pixels_for(self, rec: PhotoRecord) -> tuple[Any | None, str | None]:
        from forensic_app.core.imaging import ImageLoadError, load_image

        try:
            image = load_image(rec.abs_path)
        except ImageLoadError as exc:
            return None, str(exc)
        if image.sha256 != rec.sha256:
            return None, "the photo file changed since it was opened"
        return image.rgb, None

    # -- integrity ---------------------------------------------------------------------------
    def verify_inputs(
        self, log_result: bool = True, records: list[PhotoRecord] | None = None
    ) -> list[IntegrityIssue]:
        """Re-hash every input photo against the SHA-256 taken when it was opened."""
        from forensic_app.core.imaging import sha256_path

        issues: list[IntegrityIssue] = []
        checked = 0
        for rec in self.records() if records is None else records:
            if not rec.sha256:
                continue
            for p in [rec.abs_path, *rec.other_paths]:
                checked += 1
                shown = rec.path if p == rec.abs_path else p
                try:
                    actual = sha256_path(p)
                except FileNotFoundError:
                    issues.append(IntegrityIssue(shown, rec.sha256, None, "missing"))
                    continue
                except OSError:
                    issues.append(IntegrityIssue(shown, rec.sha256, None, "unreadable"))
                    continue
                if actual != rec.sha256:
                    issues.append(IntegrityIssue(shown, rec.sha256, actual, "changed"))
        if log_result:
            self.try_log(
                audit.INTEGRITY_CHECK, None, files=checked, problems=[i.describe() for i in issues]
            )
        return issues


def _keep_corrections(previous: PhotoRecord | None, result: ImageResult) -> tuple[ImageResult, int]:
    """A re-run keeps the examiner's corrections of the current record (the old record is still
    archived): ``core.corrections`` puts them on the fresh result. A result that already holds
    manual faces (the window merged them itself) is stored as it is."""
    if (
        previous is None
        or not previous.ok
        or result.error is not None
        or any(f.manual for f in result.faces)
        or result.removed
        or not (any(f.manual for f in previous.result.faces) or previous.result.removed)
    ):
        return result, 0
    from forensic_app.core.corrections import carry_corrections

    return carry_corrections(previous.result, result)


def face_changes(before: ImageResult | None, after: ImageResult) -> list[str]:
    """Human-readable differences between two versions of a photo's faces (by box)."""

    def key(box: Iterable[float]) -> tuple[int, ...]:
        return tuple(int(round(v)) for v in box)

    old = {key(f.box): f for f in (before.faces if before else [])}
    new = {key(f.box): f for f in after.faces}
    changes = []
    for i, f in enumerate(after.faces):
        n = face_number(f, i)
        prev = old.get(key(f.box))
        if prev is None:
            changes.append(f"face {n}: box added ({f.gender})")
        elif prev.gender != f.gender:
            changes.append(f"face {n}: {prev.gender} -> {f.gender}")
    removed = [k for k in old if k not in new]
    for k in removed:
        changes.append(f"box {list(k)} removed ({old[k].gender})")
    return changes
