"""Analysis settings and their defaults: the one place that owns every threshold.

The GUI, the CLI, batches and reports all read these defaults from here; nothing else
hard-codes a threshold. See docs/adr/0003-detection-defaults.md for why they are what they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

DETECTION_MODES = ("fast", "standard", "thorough")

#: Default CenterFace score threshold (see ADR 0003).
DEFAULT_DET_THRESHOLD = 0.4
#: Faces whose shorter box side is below this many original-image pixels are dropped.
DEFAULT_MIN_FACE = 12
#: Longest image side fed to the detector's main pass; larger photos are scaled down for it
#: (small-face passes/tiles in "thorough" mode see full resolution).
DEFAULT_DETECT_SIZE = 1920
DEFAULT_DETECTION_MODE = "standard"
#: IoU above which two detections are the same face when passes are merged.
DEFAULT_NMS_IOU = 0.4
#: A detection lying this much (share of its own area) inside a larger detection is the same
#: face found twice and is dropped (``core.nms.suppress_nested``; ADR 0003).
NESTED_BOX_INSIDE = 0.8


#: How each setting is named where people read it (reports); the keys are the JSON names.
SETTING_NAMES = {
    "det_threshold": "face detection threshold (detector score)",
    "min_face": "smallest face analysed (shorter side, px)",
    "detect_size": "detection size (longest side, px)",
    "detection_mode": "detection mode",
    "nms_iou": "same-face overlap for merging boxes (IoU)",
    "no_detect": "face detection",
}


def describe_settings(settings: dict[str, Any], band: Any = None) -> list[tuple[str, str]]:
    """Settings as (name, value) rows for a reader: plain names, no empty rows, the uncertain
    band in use (``band``: the settings' override, else the model's own)."""
    rows: list[tuple[str, str]] = []
    for key, value in settings.items():
        if key in ("extra", "uncertain_band", "uncertain_band_in_use") or value in (None, ""):
            continue
        if key == "no_detect":
            value = "off: each whole image was classified as one face" if value else "on"
        rows.append((SETTING_NAMES.get(key, key.replace("_", " ")), str(value)))
    name = "uncertain band on P(male)"
    if band:
        lo, hi = (float(v) for v in (band.split(",") if isinstance(band, str) else band))
        source = "set by the examiner" if settings.get("uncertain_band") else "the model's own"
        rows.append((name, f"{lo:.2f} to {hi:.2f} ({source})"))
    else:
        rows.append((name, "the model's own (its model file does not state it)"))
    return rows


@dataclass(frozen=True)
class AnalysisSettings:
    """Everything that changes an analysis result. Serialised into every result document."""

    det_threshold: float = DEFAULT_DET_THRESHOLD
    min_face: int = DEFAULT_MIN_FACE
    detect_size: int = DEFAULT_DETECT_SIZE
    detection_mode: str = DEFAULT_DETECTION_MODE
    nms_iou: float = DEFAULT_NMS_IOU
    #: (low, high) on p_male; inside it the label is "uncertain". None = the model's own band.
    uncertain_band: tuple[float, float] | None = None
    #: Treat each whole image as one face crop (the original script's ``-d False``).
    no_detect: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.det_threshold < 1.0:
            raise ValueError(f"det_threshold must be in (0, 1), got {self.det_threshold}")
        if self.min_face < 1:
            raise ValueError(f"min_face must be >= 1 pixel, got {self.min_face}")
        if self.detect_size < 64:
            raise ValueError(f"detect_size must be >= 64 pixels, got {self.detect_size}")
        if self.detection_mode not in DETECTION_MODES:
            raise ValueError(f"detection_mode must be one of {DETECTION_MODES}")
        if self.uncertain_band is not None:
            lo, hi = self.uncertain_band
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"uncertain_band must satisfy 0 <= low <= high <= 1, got {lo, hi}")
            object.__setattr__(self, "uncertain_band", (float(lo), float(hi)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["uncertain_band"] = list(self.uncertain_band) if self.uncertain_band else None
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisSettings:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if kwargs.get("uncertain_band") is not None:
            kwargs["uncertain_band"] = tuple(kwargs["uncertain_band"])
        return cls(**kwargs)
