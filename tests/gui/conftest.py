"""GUI test set-up: headless Qt, a private home for every test, a fake engine, photo files.

``QT_QPA_PLATFORM=offscreen`` is set before anything imports Qt. Each test gets its own HOME,
XDG/APPDATA folders and QSettings path under ``tmp_path``, so preferences, geometry and log files
never touch the developer's. The ``make_window`` fixture closes every window it made and joins
its worker threads, so no thread outlives a test.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from gui_helpers import FakeEngine, write_photo  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every user folder, and QSettings, under tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    for var, sub in (
        ("HOME", ""),
        ("USERPROFILE", ""),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
        ("APPDATA", "AppData/Roaming"),
        ("LOCALAPPDATA", "AppData/Local"),
    ):
        monkeypatch.setenv(var, str(home / sub) if sub else str(home))
    return home


@pytest.fixture
def qsettings_dir(qapp, isolated_home: Path) -> Path:
    from PySide6.QtCore import QSettings

    folder = isolated_home / "qsettings"
    folder.mkdir()
    qapp.setOrganizationName("forensic_app_tests")
    qapp.setApplicationName("forensic_app_tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_photo(tmp_path / "photos" / "scene.png")


@pytest.fixture
def make_window(qtbot, qsettings_dir) -> Callable:
    """Factory: ``make_window(engine=None, **kw)`` -> shown MainWindow; closed and joined after."""
    from forensic_app.gui.main_window import MainWindow

    windows = []

    def factory(engine=None, engine_factory=None, analyze_on_open: bool | None = True):
        eng = engine if engine is not None else FakeEngine()
        win = MainWindow(engine_factory=engine_factory or (lambda: eng))
        if analyze_on_open is not None:  # None: keep what the preferences file says
            win.prefs.analyze_on_open = analyze_on_open
        qtbot.addWidget(win)
        win.show()
        windows.append(win)
        return win

    yield factory
    for win in windows:
        win.ask_unsaved = lambda *args: "discard"  # a test may have left "cancel" as the answer
        if win.task is not None:
            win.task.cancel()
            assert win.task is None or win.task.wait(10_000), "worker thread did not stop"
        win.close()
    for win in windows:
        assert win.task is None or not win.task.is_running()


@pytest.fixture(autouse=True)
def unsaved_answers(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Answer the unsaved-corrections question without a modal dialog.

    Tests set ``answers["next"]`` (default "discard") and read ``answers["asked"]``: one
    ``(photo, what, case_open)`` per question.
    """
    from forensic_app.gui import unsaved

    answers: dict = {"next": unsaved.DISCARD, "asked": []}

    def ask(parent, photo, what, case_open):
        answers["asked"].append((photo, what, case_open))
        return answers["next"]

    monkeypatch.setattr(unsaved, "ask", ask)
    return answers


@pytest.fixture(autouse=True)
def record_dialogs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Replace QMessageBox.critical/warning with recorders: a modal dialog would hang a test."""
    from PySide6.QtWidgets import QMessageBox

    seen: list[tuple[str, str]] = []

    def record(parent, title, text, *args, **kwargs):
        seen.append((title, text))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "critical", staticmethod(record))
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(record))

    def question(parent, title, text, *args, **kwargs):
        seen.append((title, text))
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return seen
