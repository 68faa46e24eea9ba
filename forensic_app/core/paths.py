"""Per-user folders: where preferences and logs live on each platform (no Qt).

Why here and not QStandardPaths: the CLI and tests need the same answers without a Qt
application, and tests redirect everything by setting ``HOME``/``XDG_*``/``APPDATA`` in the
environment. Every call reads the environment afresh, so a changed variable takes effect at once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_DIR_NAME = "forensic_app"


def _home() -> Path:
    home = os.environ.get("HOME") or os.environ.get("USERPROFILE")
    return Path(home) if home else Path.home()


def _env_dir(name: str) -> Path | None:
    value = os.environ.get(name)
    # The XDG spec says relative paths are invalid and must be ignored.
    return Path(value) if value and os.path.isabs(value) else None


def config_dir() -> Path:
    """Folder for the user's preferences file (not created here)."""
    if sys.platform == "win32":
        base = _env_dir("APPDATA") or _home() / "AppData" / "Roaming"
    elif sys.platform == "darwin":
        base = _home() / "Library" / "Application Support"
    else:
        base = _env_dir("XDG_CONFIG_HOME") or _home() / ".config"
    return base / APP_DIR_NAME


def log_dir() -> Path:
    """Folder for the rotating log file (not created here)."""
    if sys.platform == "win32":
        base = _env_dir("LOCALAPPDATA") or _home() / "AppData" / "Local"
        return base / APP_DIR_NAME / "logs"
    if sys.platform == "darwin":
        return _home() / "Library" / "Logs" / APP_DIR_NAME
    base = _env_dir("XDG_STATE_HOME") or _home() / ".local" / "state"
    return base / APP_DIR_NAME / "logs"


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and return it."""
    path.mkdir(parents=True, exist_ok=True)
    return path
