"""Exports of the photo under review: annotated image, JSON document and CSV table (no Qt).

Everything goes through ``core.annotate.save_annotated`` and ``core.atomic`` (atomic writes,
never over the evidence file). Manual corrections are part of every export: the JSON keeps the
``manual_box``/``manual_label``/``model_gender`` fields, the CSV has columns for them and the
annotated image captions say "manual".
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

from forensic_app.core.annotate import save_annotated
from forensic_app.core.atomic import refuse_overwrite_of, write_text_atomic
from forensic_app.core.imaging import LoadedImage
from forensic_app.core.ownership import record_exports
from forensic_app.core.results import ImageResult, face_number

log = logging.getLogger(__name__)

ANNOTATED_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
CSV_COLUMNS = [
    "image",
    "sha256",
    "face",
    "x1",
    "y1",
    "x2",
    "y2",
    "detector_score",
    "gender",
    "p_male",
    "confidence",
    "manual",
    "manual_box",
    "manual_label",
    "model_gender",
]


def default_annotated_path(image_path: str | Path, suffix: str = ".jpg") -> Path:
    """``<folder>/<stem>_annotated.jpg`` beside the photo (never the photo itself)."""
    p = Path(image_path)
    return p.with_name(f"{p.stem}_annotated{suffix}")


def free_export_path(annotated_path: str | Path) -> Path:
    """``annotated_path``, or ``<stem>-2``, ``-3``... when its image, JSON or CSV already exists
    and is not the tool's own earlier export (core/ownership.py's ledger): a file merely named
    like an export (``x_annotated.jpg`` in an evidence folder) is evidence, never replaced."""
    from forensic_app.core.ownership import OwnedFolders, may_replace

    first = Path(annotated_path)
    owned = OwnedFolders()
    n = 1
    while True:
        target = first if n == 1 else first.with_name(f"{first.stem}-{n}{first.suffix}")
        trio = (target, target.with_suffix(".json"), target.with_suffix(".csv"))
        if all(may_replace(target.parent, p, owned) for p in trio):
            return target
        n += 1


def results_csv(result: ImageResult) -> str:
    """One row per face (1-based numbers, as on the image)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i, f in enumerate(result.faces):
        conf = f.confidence
        writer.writerow(
            [
                result.path,
                result.sha256 or "",
                face_number(f, i),
                *(f"{v:.1f}" for v in f.box),
                "" if f.score is None else f"{f.score:.4f}",
                f.gender,
                "" if f.p_male is None else f"{f.p_male:.4f}",
                "" if conf is None else f"{conf:.4f}",
                int(f.manual),
                int(f.manual_box),
                int(f.manual_label),
                f.model_gender or "",
            ]
        )
    return buf.getvalue()


def export_results(
    image: LoadedImage,
    result: ImageResult,
    annotated_path: str | Path,
    document_json: str,
    selected: int | None = None,
) -> dict[str, Path]:
    """Write the annotated image and, beside it, ``<stem>.json`` and ``<stem>.csv``.

    ``document_json`` is the engine's ``AnalysisDocument`` as JSON (models, settings, faces).
    Returns the written paths by kind. Refuses to touch the original photo.
    """
    target = Path(annotated_path)
    if target.suffix.lower() not in ANNOTATED_SUFFIXES:
        raise ValueError(f"annotated image must end with one of {ANNOTATED_SUFFIXES}")
    json_path = target.with_suffix(".json")
    csv_path = target.with_suffix(".csv")
    protected = [image.path]
    for p in (target, json_path, csv_path):
        refuse_overwrite_of(p, protected)
    save_annotated(image.rgb, result.faces, target, protected=protected, selected=selected)
    write_text_atomic(json_path, document_json)
    write_text_atomic(csv_path, results_csv(result))
    note_exported([target, json_path, csv_path])
    return {"image": target, "json": json_path, "csv": csv_path}


def note_exported(paths: list[Path]) -> None:
    """Record exports in their folder's ownership ledger (core/ownership.py): a folder batch
    then never re-ingests them as evidence, and a photo merely named ``*_annotated.jpg`` still
    is analysed. A folder refusing the ledger only loses that knowledge, never the export."""
    try:
        record_exports(paths)
    except OSError as exc:
        log.warning("exports not recorded as the tool's own (%s): %s", paths[0].parent, exc)


def summary(result: ImageResult) -> dict[str, Any]:
    """Counts for log lines and the status bar."""
    faces = result.faces
    return {
        "faces": len(faces),
        "female": sum(f.gender == "female" for f in faces),
        "male": sum(f.gender == "male" for f in faces),
        "uncertain": sum(f.gender == "uncertain" for f in faces),
        "manual": sum(f.manual for f in faces),
    }
