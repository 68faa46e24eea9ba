"""Settings dialog and persistence, window geometry, About, crash handling and Qt log routing."""

from __future__ import annotations

import json
import logging

from gui_helpers import open_and_wait
from PySide6.QtCore import QByteArray, QSettings

from forensic_app.core.preferences import preferences_path
from forensic_app.core.settings import AnalysisSettings
from forensic_app.gui.settings_dialog import SettingsDialog


def test_settings_dialog_edits_and_validates(qtbot):
    dlg = SettingsDialog(AnalysisSettings(), analyze_on_open=True, model_band=(0.4, 0.6))
    qtbot.addWidget(dlg)
    dlg.threshold.setValue(0.7)
    dlg.min_face.setValue(30)
    dlg.detect_size.setValue(1280)
    dlg.mode.setCurrentIndex(dlg.mode.findData("thorough"))
    dlg.custom_band.setChecked(True)
    dlg.band_low.setValue(0.3)
    dlg.band_high.setValue(0.7)
    s = dlg.settings()
    assert (s.det_threshold, s.min_face, s.detect_size, s.detection_mode) == (
        0.7,
        30,
        1280,
        "thorough",
    )
    assert s.uncertain_band == (0.3, 0.7)
    dlg.band_low.setValue(0.9)  # low above high: core validation refuses it
    dlg.accept()
    assert dlg.result() != SettingsDialog.DialogCode.Accepted
    assert "uncertain_band" in dlg.error_label.text()
    dlg.restore_defaults()
    assert dlg.settings() == AnalysisSettings()


def test_settings_persist_across_windows_and_reanalyze_applies_them(qtbot, make_window, photo):
    window = make_window()
    open_and_wait(qtbot, window, photo)
    assert len(window.doc.faces) == 3
    new = AnalysisSettings(
        det_threshold=0.7,
        min_face=20,
        detect_size=1024,
        detection_mode="fast",
        uncertain_band=(0.2, 0.8),
    )
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.apply_settings(new, analyze_on_open=False, reanalyze=True)
    # The fake's third face has detector score 0.6 < 0.7: re-analysis applied the threshold.
    assert len(window.doc.faces) == 2
    saved = json.loads(preferences_path().read_text())
    assert saved["schema_version"] == 1 and saved["analysis"]["det_threshold"] == 0.7
    window.close()

    again = make_window(analyze_on_open=None)
    assert again.prefs.analysis == new
    assert again.prefs.analyze_on_open is False


def again_default_size():
    from PySide6.QtCore import QSize

    return QSize(1400, 900)


def test_window_geometry_and_dock_state_are_remembered(qtbot, make_window, qsettings_dir):
    window = make_window()
    window.resize(700, 560)
    window.log_dock.hide()
    size = window.size()
    assert size != again_default_size()
    window.close()
    qs = QSettings()
    assert isinstance(qs.value("window/geometry"), QByteArray)
    assert str(qsettings_dir) in qs.fileName()  # redirected, never the user's own settings
    again = make_window()
    assert not again.log_dock.isVisible()
    assert again.size() == size


def test_about_shows_version_models_hashes_provider_licences(qtbot, make_window, photo):
    from forensic_app import __version__
    from forensic_app.gui.about_dialog import AboutDialog, about_html

    window = make_window()
    text = about_html(None)
    assert "not loaded yet" in text
    open_and_wait(qtbot, window, photo)
    dlg = AboutDialog(window.engines.engine, None, window)
    qtbot.addWidget(dlg)
    plain = dlg.browser.toPlainText()
    assert __version__ in plain
    assert "FakeGender" in plain and "e" * 64 in plain and "d" * 64 in plain
    assert "FakeExecutionProvider" in plain
    assert "LGPL-3.0" in plain and "perceived gender" in plain


def test_excepthook_logs_to_rotating_file_and_shows_dialog(qtbot, isolated_home, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from forensic_app.gui import app

    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: shown.append(self.text()) or 0)
    monkeypatch.setattr(app, "_file_handler", None)
    path = app.setup_logging()
    try:
        assert path is not None and str(isolated_home) in str(path)
        try:
            raise ValueError("boom in a slot")
        except ValueError as exc:
            app.excepthook(type(exc), exc, exc.__traceback__)
        for h in logging.getLogger("forensic_app").handlers:
            h.flush()
        text = path.read_text()
        assert "unhandled exception" in text and "ValueError: boom in a slot" in text
        assert shown and "boom in a slot" in shown[0] and str(path) in shown[0]
    finally:
        logging.getLogger("forensic_app").removeHandler(app._file_handler)
        app._file_handler.close()
        monkeypatch.setattr(app, "_file_handler", None)


def test_qt_messages_go_to_python_logging(qtbot, caplog):
    from PySide6.QtCore import qInstallMessageHandler, qWarning

    from forensic_app.gui.app import qt_message_handler

    previous = qInstallMessageHandler(qt_message_handler)
    try:
        with caplog.at_level(logging.WARNING, logger="forensic_app.qt"):
            qWarning("a warning from Qt")
    finally:
        qInstallMessageHandler(previous)
    assert any(
        r.name == "forensic_app.qt" and "a warning from Qt" in r.getMessage()
        for r in caplog.records
    )


def test_run_gui_starts_window_opens_path_and_quits(
    qtbot, qsettings_dir, photo, tmp_path, monkeypatch
):
    import sys

    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from forensic_app.gui import app as gui_app
    from forensic_app.gui.main_window import MainWindow

    seen = {}

    def fake_exec(*_args):
        windows = [
            w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()
        ]
        seen["windows"] = windows
        seen["image"] = windows[0].doc.image.path if windows and windows[0].doc.image else None
        for w in windows:
            if w.task is not None:
                w.task.wait(30_000)
            w.close()
        return 0

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    monkeypatch.setattr(gui_app, "_file_handler", None)
    monkeypatch.setattr(QApplication, "exec", fake_exec)
    empty_models = tmp_path / "no_models"
    empty_models.mkdir()
    try:
        rc = gui_app.run_gui([str(photo), "--models-dir", str(empty_models)])
    finally:
        qInstallMessageHandler(None)
        handler = gui_app._file_handler
        if handler is not None:
            logging.getLogger("forensic_app").removeHandler(handler)
            handler.close()
    assert rc == 0
    assert len(seen["windows"]) == 1 and seen["image"] == str(photo)
    assert sys.excepthook is gui_app.excepthook


def test_precision_setting_persists_and_reloads_models_at_that_precision(
    qtbot, make_window, photo, monkeypatch
):
    from gui_helpers import FakeEngine

    from forensic_app.gui import main_window

    asked: list[str | None] = []

    def factory(precision: str | None = None):
        asked.append(precision)
        return FakeEngine()

    window = make_window(engine_factory=factory)
    open_and_wait(qtbot, window, photo)
    assert asked == [None]  # the per-model default

    def choose_int8(dlg):
        assert dlg.precision() is None
        dlg.precision_box.setCurrentIndex(dlg.precision_box.findData("int8"))
        return main_window.SettingsDialog.DialogCode.Accepted

    monkeypatch.setattr(main_window.SettingsDialog, "exec", choose_int8)
    window.settings_dialog()
    assert window.prefs.precision == "int8"
    assert json.loads(preferences_path().read_text())["precision"] == "int8"
    assert window.engines.engine is None  # dropped; reloads at int8 on next use
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.analyze()
    assert asked == [None, "int8"]
    window.close()
    again = make_window(engine_factory=factory)
    assert again.engines.precision == "int8"
