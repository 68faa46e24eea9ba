"""User preferences file and per-user folders (Qt-free): redirection, round trip, damage."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from forensic_app.core import paths
from forensic_app.core.preferences import (
    MAX_RECENT,
    Preferences,
    load_preferences,
    preferences_path,
    save_preferences,
)
from forensic_app.core.settings import AnalysisSettings


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("APPDATA", str(tmp_path / "appdata"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "localappdata"))
    return tmp_path


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG layout is Linux's")
def test_folders_follow_xdg_variables(home: Path, monkeypatch: pytest.MonkeyPatch):
    assert paths.config_dir() == home / "cfg" / "forensic_app"
    assert paths.log_dir() == home / "state" / "forensic_app" / "logs"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the spec says: ignore
    assert paths.config_dir() == home / ".config" / "forensic_app"
    assert paths.log_dir() == home / ".local" / "state" / "forensic_app" / "logs"


def test_windows_folders_follow_appdata(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(paths.sys, "platform", "win32")
    assert paths.config_dir() == home / "appdata" / "forensic_app"
    assert paths.log_dir() == home / "localappdata" / "forensic_app" / "logs"


def test_missing_file_gives_defaults():
    prefs = load_preferences()
    assert prefs.analysis == AnalysisSettings() and prefs.recent_files == []


def test_round_trip_with_schema_version(home: Path):
    prefs = Preferences(
        analysis=AnalysisSettings(
            det_threshold=0.6, uncertain_band=(0.3, 0.7), detection_mode="thorough"
        ),
        analyze_on_open=False,
    )
    prefs.add_recent(home / "a.jpg")
    written = save_preferences(prefs)
    assert written == preferences_path()
    assert str(home / "cfg") in str(written)
    data = json.loads(written.read_text())
    assert data["schema_version"] == 1
    assert load_preferences() == prefs
    assert not list(written.parent.glob("*.tmp"))  # atomic write left no temp file


def test_recent_list_is_unique_newest_first_and_bounded(home: Path):
    prefs = Preferences()
    for i in range(MAX_RECENT + 3):
        prefs.add_recent(home / f"{i}.jpg")
    prefs.add_recent(home / "5.jpg")
    assert len(prefs.recent_files) == MAX_RECENT
    assert prefs.recent_files[0] == str((home / "5.jpg").resolve())
    assert len(set(prefs.recent_files)) == MAX_RECENT


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"schema_version": 99}),
        json.dumps({"schema_version": 1, "analysis": {"det_threshold": 7}}),
    ],
)
def test_damaged_file_is_set_aside_and_defaults_used(content: str):
    path = preferences_path()
    path.parent.mkdir(parents=True)
    path.write_text(content)
    prefs = load_preferences()
    assert prefs == Preferences()
    assert path.with_name(path.name + ".bad").read_text() == content
    assert not path.exists()


def test_precision_round_trips_and_unknown_value_falls_back_to_default(tmp_path) -> None:
    path = tmp_path / "preferences.json"
    prefs = Preferences(precision="int8")
    save_preferences(prefs, path)
    assert load_preferences(path).precision == "int8"
    data = json.loads(path.read_text())
    data["precision"] = "fp4"
    data["last_dir"] = "/evidence"
    path.write_text(json.dumps(data))
    loaded = load_preferences(path)
    assert loaded.precision is None and loaded.last_dir == "/evidence"  # nothing else lost
