"""User preferences: one readable JSON file with a schema version (no Qt).

Why a file of our own and not QSettings: preferences change analysis results (thresholds), so
they must be readable by a person, diffable and usable from the CLI. QSettings keeps only window
geometry and dock state (STYLE.md, "settings split"). A damaged file never stops the app: it is
set aside as ``preferences.json.bad`` and defaults are used, with a message for the log.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensic_app.core.atomic import write_text_atomic
from forensic_app.core.paths import config_dir, ensure_dir
from forensic_app.core.settings import AnalysisSettings

log = logging.getLogger(__name__)

PREFERENCES_FILE = "preferences.json"
SCHEMA_VERSION = 1
MAX_RECENT = 10


@dataclass
class Preferences:
    """What the user chose, kept between runs."""

    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    recent_files: list[str] = field(default_factory=list)
    last_dir: str = ""
    analyze_on_open: bool = True
    #: Folder for a case (issue 5); empty when no case is open.
    last_case_dir: str = ""
    #: Where the last annotated image or export was saved (Save/Export start there).
    last_output_dir: str = ""
    #: Model precision ("int8", "fp32" or "detector=int8,..."); None = each model's default
    #: (ADR 0011).
    precision: str | None = None

    def add_recent(self, path: str | Path) -> None:
        """Put ``path`` first in the recent list, without duplicates, at most MAX_RECENT."""
        p = str(Path(path).resolve())
        self.recent_files = [p] + [r for r in self.recent_files if r != p]
        del self.recent_files[MAX_RECENT:]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "analysis": self.analysis.to_dict(),
            "recent_files": list(self.recent_files),
            "last_dir": self.last_dir,
            "analyze_on_open": self.analyze_on_open,
            "last_case_dir": self.last_case_dir,
            "last_output_dir": self.last_output_dir,
            "precision": self.precision,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preferences:
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(f"unsupported preferences schema_version {version!r}")
        analysis = data.get("analysis") or {}
        return cls(
            analysis=AnalysisSettings.from_dict(analysis) if analysis else AnalysisSettings(),
            recent_files=[str(p) for p in data.get("recent_files") or []][:MAX_RECENT],
            last_dir=str(data.get("last_dir") or ""),
            analyze_on_open=bool(data.get("analyze_on_open", True)),
            last_case_dir=str(data.get("last_case_dir") or ""),
            last_output_dir=str(data.get("last_output_dir") or ""),
            precision=_precision(data.get("precision")),
        )


def _precision(value: Any) -> str | None:
    """A stored precision, checked against the ones the models ship in (None = default).

    An unknown value falls back to the default with a log message rather than setting the
    whole file aside: it changes speed, not what the user chose to see.
    """
    from forensic_app.core.modelstore import parse_precision

    if value in (None, ""):
        return None
    try:
        parse_precision(str(value))
    except ValueError:
        log.warning("unknown model precision %r in preferences; using the default", value)
        return None
    return str(value)


def preferences_path() -> Path:
    return config_dir() / PREFERENCES_FILE


def load_preferences(path: Path | None = None) -> Preferences:
    """Read preferences; missing file -> defaults; damaged file -> set aside, defaults."""
    path = path or preferences_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Preferences()
    except OSError as exc:
        log.warning("cannot read preferences %s (%s); using defaults", path, exc)
        return Preferences()
    try:
        return Preferences.from_dict(json.loads(text))
    except (ValueError, TypeError, KeyError) as exc:
        bad = path.with_name(path.name + ".bad")
        log.warning("preferences %s are invalid (%s); kept as %s, using defaults", path, exc, bad)
        try:
            os.replace(path, bad)
        except OSError:
            pass
        return Preferences()


def save_preferences(prefs: Preferences, path: Path | None = None) -> Path:
    """Write preferences atomically; returns the path written."""
    path = path or preferences_path()
    ensure_dir(path.parent)
    write_text_atomic(path, json.dumps(prefs.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return path
