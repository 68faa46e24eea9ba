"""Result model: what an analysis found, as dataclasses that round-trip through JSON.

This is the document the CLI prints with ``--json -``, the per-photo JSON of a case folder and
what the GUI displays. Field names are part of the public format; bump ``SCHEMA_VERSION`` when
they change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from forensic_app.core.names import B64_SUFFIX, decode_name, encode_name, text_safe

SCHEMA_VERSION = 1
GENDER_LABELS = ("female", "male", "uncertain")


@dataclass
class Face:
    """One face. ``box`` is [x1, y1, x2, y2] in original-image pixels (after EXIF orientation)."""

    box: list[float]
    score: float | None = None  # detector score; None for a box drawn by hand
    landmarks: list[list[float]] | None = None  # 5 points [x, y]: eyes, nose, mouth corners
    gender: str = "uncertain"  # "female" | "male" | "uncertain"
    p_male: float | None = None  # model probability of perceived "male", 0-1
    age: float | None = None  # apparent age in years, when the model gives one
    manual_box: bool = False  # the box was drawn by the investigator
    manual_label: bool = False  # the label was set by the investigator
    model_gender: str | None = None  # the model's own label, kept when the label was corrected
    #: The face's number on screen, in exports and in reports: reading order at analysis, a new
    #: number for a box added by hand, never reused after a delete (``number_faces``).
    number: int | None = None

    @property
    def manual(self) -> bool:
        return self.manual_box or self.manual_label

    @property
    def confidence(self) -> float | None:
        """Confidence in the shown label: p_male for "male", 1 - p_male for "female"."""
        if self.p_male is None:
            return None
        if self.gender == "female":
            return 1.0 - self.p_male
        if self.gender == "male":
            return self.p_male
        return max(self.p_male, 1.0 - self.p_male)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["manual"] = self.manual
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Face:
        return cls(
            box=[float(v) for v in d["box"]],
            score=d.get("score"),
            landmarks=d.get("landmarks"),
            gender=d.get("gender", "uncertain"),
            p_male=d.get("p_male"),
            age=d.get("age"),
            manual_box=bool(d.get("manual_box", False)),
            manual_label=bool(d.get("manual_label", False)),
            model_gender=d.get("model_gender"),
            number=d.get("number"),
        )


def face_number(face: Face, index: int) -> int:
    """The number shown for ``face`` (at list position ``index``): its own, else ``index + 1``
    (results written before faces carried numbers)."""
    return face.number if face.number is not None else index + 1


def reading_order(boxes: list[list[float]]) -> list[int]:
    """Indices of ``boxes`` in reading order: rows top to bottom, each row left to right.

    Why not score order: an examiner says "face 7" and looks for it; numbers that follow the
    detector's score jump around the photo. A box joins the current row when its centre lies
    within half the row's mean box height of the row's mean centre.
    """
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][1] + boxes[i][3]) / 2)
    rows: list[list[int]] = []
    for i in order:
        cy = (boxes[i][1] + boxes[i][3]) / 2
        if rows:
            row = rows[-1]
            mean_cy = sum((boxes[j][1] + boxes[j][3]) / 2 for j in row) / len(row)
            mean_h = sum(boxes[j][3] - boxes[j][1] for j in row) / len(row)
            if abs(cy - mean_cy) <= mean_h / 2:
                row.append(i)
                continue
        rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda j: boxes[j][0])]


def number_faces(faces: list[Face]) -> list[Face]:
    """``faces`` sorted into reading order and numbered 1..n (a fresh analysis)."""
    ordered = [faces[i] for i in reading_order([f.box for f in faces])]
    for n, face in enumerate(ordered, start=1):
        face.number = n
    return ordered


def next_face_number(faces: list[Face], floor: int = 1) -> int:
    """The number for a face added now: above every number in use and at least ``floor``."""
    used = [face_number(f, i) for i, f in enumerate(faces)]
    return max([floor - 1, *used]) + 1


@dataclass
class ImageResult:
    """The analysis of one image: either ``faces`` or an ``error`` (never an exception)."""

    path: str
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    faces: list[Face] = field(default_factory=list)
    error: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. "multi-page TIFF: first page analysed"
    settings: dict[str, Any] | None = None
    #: Boxes of detections the examiner deleted: a correction too, so a re-analysis (window,
    #: batch re-run into a case) keeps them deleted (``core.corrections``).
    removed: list[list[float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        d = {
            **encode_name("path", self.path),
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "faces": [f.to_dict() for f in self.faces],
            "error": None if self.error is None else text_safe(self.error),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "notes": [text_safe(n) for n in self.notes],
            "settings": self.settings,
        }
        if self.removed:  # absent when nothing was deleted, as before
            d["removed_boxes"] = [[round(float(v), 1) for v in b] for b in self.removed]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageResult:
        return cls(
            path=decode_name(d, "path"),
            sha256=d.get("sha256"),
            width=d.get("width"),
            height=d.get("height"),
            faces=[Face.from_dict(f) for f in d.get("faces") or []],
            error=d.get("error"),
            timings_ms=dict(d.get("timings_ms") or {}),
            notes=list(d.get("notes") or []),
            settings=d.get("settings"),
            removed=[[float(v) for v in b] for b in d.get("removed_boxes") or []],
        )


@dataclass
class ModelInfo:
    """Provenance of a model file, as shown in About dialogs, reports and JSON documents."""

    role: str  # "detector" | "gender"
    name: str
    path: str
    sha256: str
    version: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: Why the file's SHA-256 was not checked against a manifest (``--gender-model`` without
    #: one); None for a verified model (then absent from the JSON).
    unverified: str | None = None
    #: "int8" (a quantized derivative, see models/manifest.json) or "fp32"; read from the file.
    precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["unverified"] is None:
            del d["unverified"]
        else:
            d["unverified"] = text_safe(d["unverified"])
        d.update(encode_name("path", self.path))  # a model file name need not be UTF-8 either
        return d


def _model_from_dict(m: dict[str, Any]) -> ModelInfo:
    """A ModelInfo from its JSON form (the exact path restored from ``path_b64``)."""
    fields = {k: v for k, v in m.items() if k != "path" + B64_SUFFIX}
    return ModelInfo(**{**fields, "path": decode_name(m, "path")})


@dataclass
class AnalysisDocument:
    """The full result document: tool, models, provider, settings and every image."""

    tool_version: str
    models: list[ModelInfo]
    provider: str
    settings: dict[str, Any]
    images: list[ImageResult] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    #: Files a folder walk passed over: {"path", "path_b64"?, "reason"} (nothing is silent).
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tool": "forensic_app",
            "tool_version": self.tool_version,
            "models": [m.to_dict() for m in self.models],
            "provider": self.provider,
            "settings": self.settings,
            "images": [i.to_dict() for i in self.images],
            "skipped": list(self.skipped),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnalysisDocument:
        return cls(
            tool_version=d["tool_version"],
            models=[_model_from_dict(m) for m in d.get("models", [])],
            provider=d.get("provider", ""),
            settings=d.get("settings", {}),
            images=[ImageResult.from_dict(i) for i in d.get("images", [])],
            schema_version=d.get("schema_version", SCHEMA_VERSION),
            skipped=list(d.get("skipped") or []),
        )
