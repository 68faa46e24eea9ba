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

The class is also the batch runner's ResultStore, so ``BatchRunner(engine, store=case)`` is a
resumable, audited batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensic_app import __version__
from forensic_app.core import atomic, audit, ownership
from forensic_app.core.audit import AuditLog, utc_now
from forensic_app.core.results import ImageResult
from forensic_app.core.settings import AnalysisSettings

CASE_FILE = "case.json"
AUDIT_FILE = "audit.jsonl"
RESULTS_DIR = "results"
HISTORY_DIR = "history"
ANNOTATED_DIR = "annotated"
CASE_SCHEMA = 1
RECORD_SCHEMA = 1


#: Temp-file names core/atomic.py uses: ``.<target name>.<random>.tmp``.
_TEMP_NAME = re.compile(r"^\..+\.tmp$")


class CaseError(Exception):
    """The folder is not a usable case (no manifest, unreadable, not writable)."""


def _safe_stem(name: str, limit: int = 40) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._") or "photo"
    return stem[:limit]


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


class Case:
    """A case folder: :meth:`create`, :meth:`open` or :meth:`open_or_create` it."""

    def __init__(self, root: str | Path, manifest: dict[str, Any], examiner: str | None = None):
        self.root = Path(root)
        self.manifest = manifest
        self.examiner = examiner or manifest.get("examiner")
        self.audit = AuditLog(self.root / AUDIT_FILE, self.examiner)
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
        return str(self.manifest.get("case_name", self.root.name))

    # -- create / open -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: str | Path,
        name: str | None = None,
        examiner: str | None = None,
        engine: Any | None = None,
        settings: AnalysisSettings | None = None,
    ) -> Case:
        """Make a new case folder (it may exist but must not already hold a case)."""
        root = Path(root)
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
        case._write_manifest()
        case.audit.append(
            audit.CASE_CREATED, case_name=manifest["case_name"], folder=str(root.resolve())
        )
        return case

    @classmethod
    def open(cls, root: str | Path, examiner: str | None = None, log_open: bool = True) -> Case:
        root = Path(root)
        path = root / CASE_FILE
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CaseError(f"{root} is not a case folder (no {CASE_FILE})") from None
        except (OSError, ValueError) as exc:
            raise CaseError(f"case manifest {path} is unreadable: {exc}") from exc
        case = cls(root, manifest, examiner)
        if log_open:
            with contextlib.suppress(OSError):  # a case made before markers; read-only media
                ownership.mark(root, ownership.KIND_CASE, owned=[RESULTS_DIR, ANNOTATED_DIR])
            case.audit.append(audit.CASE_OPENED, case_name=case.name)
            removed = case.remove_stale_temp_files()
            if removed:
                case.audit.append(audit.STALE_TEMP_REMOVED, files=removed)
        return case

    def remove_stale_temp_files(self) -> list[str]:
        """Delete temp files an interrupted atomic write left behind (never a finished file).

        They are named ``.<target>.<random>.tmp`` by core/atomic.py; the file they were meant to
        replace is intact, so removing them loses nothing.
        """
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
    ) -> Case:
        if (Path(root) / CASE_FILE).exists():
            return cls.open(root, examiner)
        return cls.create(root, name, examiner, engine, settings)

    def _write_manifest(self) -> None:
        self.manifest["updated"] = utc_now()
        atomic.write_text_atomic(
            self.root / CASE_FILE, json.dumps(self.manifest, indent=2, ensure_ascii=False)
        )

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
        self._write_manifest()
        self._key = key
        self._reanalyse = reanalyse
        self.audit.append(
            audit.BATCH_STARTED,
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
        try:
            data = json.loads(self._record_path(name).read_text(encoding="utf-8"))
            return PhotoRecord.from_dict(name, data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def record_for(self, sha256: str) -> PhotoRecord | None:
        return self.load_record(f"{sha256}.json")

    def records(self) -> list[PhotoRecord]:
        """Every stored photo (successes and failures), sorted by path."""
        out = []
        try:
            names = sorted(os.listdir(self.results_dir))
        except FileNotFoundError:
            return []
        for name in names:
            if not name.endswith(".json") or name.startswith("."):
                continue
            rec = self.load_record(name)
            if rec is not None:
                out.append(rec)
        out.sort(key=lambda r: (r.path, r.name))
        return out

    def results(self) -> list[ImageResult]:
        return [r.result for r in self.records()]

    def _archive(self, rec: PhotoRecord, why: str) -> str:
        stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
        name = f"{Path(rec.name).stem}.{stamp}.{why}.json"
        atomic.write_text_atomic(self.results_dir / HISTORY_DIR / name, json.dumps(rec.to_dict()))
        return f"{RESULTS_DIR}/{HISTORY_DIR}/{name}"

    def _write_record(self, rec: PhotoRecord) -> None:
        # ensure_ascii: names that are not valid UTF-8 round-trip exactly (\udcxx escapes)
        atomic.write_text_atomic(self._record_path(rec.name), json.dumps(rec.to_dict()))
        self._has_records = True

    def _annotated_name(self, sha256: str, path: str) -> str:
        suffix = ".jpg" if Path(path).suffix.lower() in (".jpg", ".jpeg") else ".png"
        return f"{ANNOTATED_DIR}/{sha256[:16]}_{_safe_stem(Path(path).name)}{suffix}"

    def _write_annotated(self, rec: PhotoRecord, rgb: Any) -> None:
        from forensic_app.core.annotate import save_annotated

        name = rec.annotated or self._annotated_name(rec.sha256 or "nohash", rec.path)
        (self.root / ANNOTATED_DIR).mkdir(exist_ok=True)
        save_annotated(rgb, rec.result.faces, self.root / name, protected=[rec.abs_path])
        rec.annotated = name

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
        if rec.annotated and not (self.root / rec.annotated).is_file():
            return None
        abs_path = os.path.abspath(path)
        with self._lock:
            if abs_path != rec.abs_path and abs_path not in rec.other_paths:
                rec.other_paths.append(abs_path)
                try:
                    self._write_record(rec)
                except OSError:
                    return None  # analyse it again; saving then reports the real problem
        self.audit.append(audit.SKIPPED_UNCHANGED, sha256, path=path, record=rec.name)
        result = rec.result
        result.path = path
        return result

    def save(self, item: Any, result: ImageResult, image: Any | None) -> None:
        path = item.path
        abs_path = os.path.abspath(path)
        with self._lock:
            if result.sha256 is None:
                name = f"error-{_path_id(path)}.json"
            else:
                name = f"{result.sha256}.json"
                self._drop_error_record(path)
            previous = self.load_record(name)
            rec = PhotoRecord(
                name=name,
                sha256=result.sha256,
                path=path,
                abs_path=abs_path,
                result=result,
                settings_key=self._key,
                analysed_at=utc_now(),
            )
            archived = None
            if previous is not None:
                rec.other_paths = [
                    p for p in previous.other_paths + [previous.abs_path] if p != abs_path
                ]
                rec.other_paths = sorted(set(rec.other_paths))
                if previous.manual_edits or previous.ok:
                    archived = self._archive(previous, "replaced")
            if image is not None and result.error is None and result.sha256:
                self._write_annotated(rec, image.rgb)
            self._write_record(rec)
        if result.error is not None:
            self.audit.append(audit.ANALYSIS_FAILED, result.sha256, path=path, error=result.error)
            return
        detail: dict[str, Any] = {
            "path": path,
            "faces": len(result.faces),
            "settings_key": self._key,
            "annotated": rec.annotated,
        }
        if result.notes:
            detail["notes"] = result.notes
        if previous is not None and previous.ok:
            detail.update(
                previous_settings_key=previous.settings_key,
                previous_manual_edits=previous.manual_edits,
                archived=archived,
            )
            self.audit.append(audit.REANALYSED, result.sha256, **detail)
        else:
            self.audit.append(audit.ANALYSED, result.sha256, **detail)

    def _drop_error_record(self, path: str) -> None:
        """A photo that once failed to open and now analyses: keep its old record in history."""
        old = self.load_record(f"error-{_path_id(path)}.json")
        if old is None:
            return
        self._archive(old, "failed-earlier")
        try:
            os.remove(self._record_path(old.name))
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
        face-level changes are computed and added.
        """
        if not result.sha256:
            raise CaseError("a photo that could not be read cannot be edited")
        with self._lock:
            name = f"{result.sha256}.json"
            previous = self.load_record(name)
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
            archived = self._archive(previous, "before-edit") if previous else None
            note = None
            if rgb is None:
                rgb, note = self._pixels_for(rec)
            if rgb is not None:
                self._write_annotated(rec, rgb)
            self._write_record(rec)
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
        self.audit.append(audit.MANUAL_EDIT, result.sha256, **entry)
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
    def verify_inputs(self, log_result: bool = True) -> list[IntegrityIssue]:
        """Re-hash every input photo against the SHA-256 taken when it was opened."""
        from forensic_app.core.imaging import sha256_path

        issues: list[IntegrityIssue] = []
        checked = 0
        for rec in self.records():
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
            self.audit.append(
                audit.INTEGRITY_CHECK, None, files=checked, problems=[i.describe() for i in issues]
            )
        return issues


def face_changes(before: ImageResult | None, after: ImageResult) -> list[str]:
    """Human-readable differences between two versions of a photo's faces (by box)."""

    def key(box: Iterable[float]) -> tuple[int, ...]:
        return tuple(int(round(v)) for v in box)

    old = {key(f.box): f for f in (before.faces if before else [])}
    new = {key(f.box): f for f in after.faces}
    changes = []
    for n, f in enumerate(after.faces, start=1):
        prev = old.get(key(f.box))
        if prev is None:
            changes.append(f"face {n}: box added ({f.gender})")
        elif prev.gender != f.gender:
            changes.append(f"face {n}: {prev.gender} -> {f.gender}")
    removed = [k for k in old if k not in new]
    for k in removed:
        changes.append(f"box {list(k)} removed ({old[k].gender})")
    return changes
