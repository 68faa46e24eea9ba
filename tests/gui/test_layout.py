"""What the window shows when there is little to show, and how it shares out its space."""

from __future__ import annotations

from pathlib import Path

from gui_helpers import FakeEngine, open_and_wait, write_photo
from PySide6.QtCore import QSettings, Qt

from forensic_app.core.settings import AnalysisSettings
from forensic_app.gui.batch_panel import FILTERS, REASON_COLUMN


def test_empty_states(qtbot, make_window, photo):
    window = make_window()
    assert "drop a photo" in window.view.placeholder()
    assert not window.act_next.isEnabled() and not window.act_prev.isEnabled()
    window.prefs.analysis = AnalysisSettings(det_threshold=0.99)  # the fake engine finds none
    open_and_wait(qtbot, window, photo)
    assert window.doc.faces == [] and window.view.placeholder() == "No faces found"
    assert window.act_next.isEnabled() and window.act_prev.isEnabled()
    window.prefs.analysis = AnalysisSettings()
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.act_analyze.trigger()
    assert len(window.doc.faces) == 3 and window.view.placeholder() == ""


def test_photo_gets_most_of_a_small_screen(qtbot, make_window, photo):
    window = make_window()
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window._docks_checked, timeout=5_000)
    qtbot.wait(50)
    open_and_wait(qtbot, window, photo)
    view = window.view.viewport().size()
    assert view.width() >= 0.7 * window.width() and view.height() >= 0.6 * window.height()
    assert window.log_dock.height() <= window.height() // 5
    # the face list runs the full height of the window's right side: many rows, not two
    assert window.face_list.height() >= 0.45 * window.height()


def test_a_huge_saved_log_dock_comes_back_small(qtbot, make_window, photo):
    first = make_window()
    first.resize(1280, 720)
    qtbot.wait(50)
    first.resizeDocks([first.log_dock], [500], Qt.Orientation.Vertical)
    qtbot.wait(50)
    first.close()
    assert QSettings().value("window/state") is not None
    again = make_window()
    qtbot.waitUntil(lambda: again._docks_checked, timeout=5_000)
    qtbot.wait(50)
    assert again.log_dock.height() <= again.height() // 5


def test_batch_reason_column_and_status_bar(qtbot, make_window, tmp_path):
    folder = _folder(tmp_path)
    window = make_window()
    ui = window.casework
    with qtbot.waitSignal(ui.batch.finished, timeout=20_000):
        assert window.open_folder(folder)
    panel = ui.panel
    broken = next(r for r in panel.model.rows if Path(r.path).name == "broken.jpg")
    reason = panel.model.data(panel.model.index(broken.index, REASON_COLUMN))
    assert reason and reason == broken.message  # its own column, not only a tooltip
    assert window.status_model.text() == "Model: FakeGender"  # not "not loaded"


def test_new_batch_clears_the_filter_and_cancel_clears_the_eta(qtbot, make_window, tmp_path):
    folder = _folder(tmp_path)
    engine = FakeEngine(block_until_cancelled=True)
    window = make_window(engine)
    ui = window.casework
    panel = ui.panel
    panel.set_filter_index([n for n, _ in FILTERS].index("Errors"))  # left on from before
    with qtbot.waitSignal(ui.batch.finished, timeout=20_000) as blocker:
        assert window.open_folder(folder)  # the folder is listed in the background
        qtbot.waitUntil(lambda: ui.batch.running, timeout=10_000)
        assert panel.filter_box.currentIndex() == 0 and len(panel.visible_rows()) == 3
        qtbot.waitUntil(engine.started.is_set, timeout=10_000)
        ui.batch.cancel()
    assert blocker.args[0] == "cancelled"
    assert "ETA" not in panel.eta_label.text() and "cancelled" in panel.eta_label.text()
    assert "batch cancelled" in window.log_pane.toPlainText()


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "seized"
    for i in range(2):
        write_photo(folder / f"img{i}.png", seed=i)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return folder


def test_save_starts_in_the_last_output_folder_and_refuses_an_input_first(
    qtbot, make_window, photo, tmp_path, monkeypatch, record_dialogs
):
    from PySide6.QtWidgets import QFileDialog

    window = make_window()
    open_and_wait(qtbot, window, photo)
    out = tmp_path / "exports" / "a.png"
    out.parent.mkdir()
    starts, answers = [], iter([str(out), str(photo), str(out)])

    def dialog(parent, title, start, filters, *args, **kwargs):
        starts.append(Path(start))
        return next(answers), "PNG image (*.png)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
    window.save_annotated_dialog()
    assert out.is_file() and starts[0].parent == photo.parent
    before = photo.read_bytes()
    window.save_annotated_dialog()  # the evidence itself: refused before any "replace it?"
    assert starts[1].parent == out.parent  # starts where the last output went
    assert [t for t, _ in record_dialogs] == ["Could not save the annotated image"]
    assert photo.read_bytes() == before
    window.export_dialog()  # an existing output: our own "replace it?" question
    assert record_dialogs[-1][0] == "Replace file?"


def test_a_large_photo_is_decoded_off_the_ui_thread(qtbot, make_window, photo, monkeypatch):
    import threading

    from forensic_app.gui import main_window

    threads = []
    real_load = main_window.load_image

    def load(path, *args, **kwargs):
        threads.append(threading.current_thread())
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(main_window, "load_image", load)
    monkeypatch.setattr(main_window, "LARGE_PHOTO_PIXELS", 100)  # the test photo is "large"
    window = make_window()
    with qtbot.waitSignal(window.analysisFinished, timeout=15_000):
        assert window.open_path(photo)
        assert window.doc.image is None and window.busy  # still loading; the window is live
    assert threads and threads[0] is not threading.main_thread()
    assert window.doc.image is not None and len(window.doc.faces) == 3
