"""The shape of the files a case folder holds, checked before any field is used.

Why a module of its own: everything read back from a case is data that anyone with the folder
could have edited; a wrong shape must give a clear message naming the file (core/case.py turns
these answers into ``CaseError``/``RecordError``), never an ``AttributeError`` deep in a report.
Each function returns why a parsed object is unusable, or None.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: An annotated copy's file name in a record: one plain name (directly under the copies folder).
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
_NUMBER = (int, float)


def _is_num(v: Any, optional: bool = True) -> bool:
    if v is None:
        return optional
    return isinstance(v, _NUMBER) and not isinstance(v, bool)


def result_problem(d: Any) -> str | None:
    """Why a stored result object cannot be shown or reported, or None."""
    if not isinstance(d, dict):
        return "'result' is not an object"
    if not isinstance(d.get("path"), str):
        return "'result.path' is not text"
    for k in ("sha256", "error"):
        if d.get(k) is not None and not isinstance(d[k], str):
            return f"'result.{k}' is not text"
    for k in ("width", "height"):
        if not _is_num(d.get(k)):
            return f"'result.{k}' is not a number"
    notes = d.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        return "'result.notes' is not a list of text"
    if not isinstance(d.get("timings_ms") or {}, dict):
        return "'result.timings_ms' is not an object"
    removed = d.get("removed_boxes") or []
    if not isinstance(removed, list) or not all(
        isinstance(b, list) and len(b) == 4 and all(_is_num(v, False) for v in b) for b in removed
    ):
        return "'result.removed_boxes' is not a list of boxes"
    faces = d.get("faces") or []
    if not isinstance(faces, list):
        return "'result.faces' is not a list"
    for n, f in enumerate(faces, start=1):
        if not isinstance(f, dict):
            return f"face {n} is not an object"
        box = f.get("box")
        if not isinstance(box, list) or len(box) != 4 or not all(_is_num(v, False) for v in box):
            return f"face {n}: 'box' is not four numbers"
        if not isinstance(f.get("gender", "uncertain"), str):
            return f"face {n}: 'gender' is not text"
        for k in ("score", "p_male", "age"):
            if not _is_num(f.get(k)):
                return f"face {n}: '{k}' is not a number"
        marks = f.get("landmarks")
        if marks is not None and not (
            isinstance(marks, list)
            and all(
                isinstance(pt, list) and len(pt) == 2 and all(_is_num(v, False) for v in pt)
                for pt in marks
            )
        ):
            return f"face {n}: 'landmarks' is not a list of [x, y] points"
    return None


def record_problem(name: str, d: Any, annotated_dir: str) -> str | None:
    """Why a parsed record file is unusable, or None (checked before any field is used)."""
    if not isinstance(d, dict):
        return "not a JSON object"
    if not isinstance(d.get("path"), str) or not d["path"]:
        return "'path' is missing or not text"
    sha = d.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _HEX64.match(sha)):
        return "'sha256' is not a SHA-256"
    if sha is not None and "." not in Path(name).stem and name != f"{sha}.json":
        return f"its name does not match its SHA-256 {sha}"
    if d.get("abs_path") is not None and not isinstance(d["abs_path"], str):
        return "'abs_path' is not text"
    others = d.get("other_paths") or []
    if not isinstance(others, list) or not all(isinstance(p, str) for p in others):
        return "'other_paths' is not a list of text"
    for k in ("settings_key", "analysed_at"):
        if d.get(k) is not None and not isinstance(d[k], str):
            return f"'{k}' is not text"
    edits = d.get("manual_edits", 0)
    if not isinstance(edits, int) or isinstance(edits, bool) or edits < 0:
        return "'manual_edits' is not a count"
    ann = d.get("annotated")
    if ann is not None:
        folder, _, file = ann.partition("/") if isinstance(ann, str) else ("", "", "")
        if folder != annotated_dir or not _PLAIN_NAME.match(file):
            return f"'annotated' {ann!r} is not a file inside the case's {annotated_dir}/ folder"
    return result_problem(d.get("result"))


def manifest_problem(m: Any, newest_schema: int) -> str | None:
    """Why a parsed manifest is not a usable case manifest, or None."""
    if not isinstance(m, dict):
        return "it is not a JSON object"
    for k in ("case_name", "examiner", "created", "tool_version", "provider", "updated"):
        if m.get(k) is not None and not isinstance(m[k], str):
            return f"'{k}' is not text"
    if not isinstance(m.get("settings", {}), dict):
        return "'settings' is not an object"
    models = m.get("models", [])
    if not isinstance(models, list) or not all(isinstance(x, dict) for x in models):
        return "'models' is not a list of objects"
    for x in models:
        if not isinstance(x.get("metadata") or {}, dict):
            return "a model's 'metadata' is not an object"
    schema = m.get("schema", newest_schema)
    if not isinstance(schema, int) or schema > newest_schema:
        return f"schema {schema!r} is newer than this tool understands ({newest_schema})"
    return None
