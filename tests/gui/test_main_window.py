"""The main window with a fake engine: open, analyse, select, zoom, save, drop, cancel, errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import FAKE_FACES, FakeEngine, open_and_wait, write_photo
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QFileDialog


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def box_center_on_viewport(window, index: int) -> QPoint:
    item = window.view.box_items()[index]
    return window.view.mapFromScene(item.rect().center())


def test_open_and_analyze_shows_boxes_list_panel_and_status(qtbot, make_window, photo):
    window = make_window()
    open_and_wait(qtbot, window, photo)

    items = window.view.box_items()
    assert len(items) == len(FAKE_FACES)
    w, h = 640, 480
    (x1, y1, x2, y2), _, _ = FAKE_FACES[0]
    assert items[0].rect().getCoords() == pytest.approx((x1 * w, y1 * h, x2 * w, y2 * h))
    # Labels with perceived gender and confidence on the photo and in the list.
    assert items[0].caption.text() == "1 female 0.92"
    assert items[1].caption.text() == "2 male 0.91"
    assert window.face_list.count() == 3
    assert window.face_list.item(0).text().startswith("Face 1 \u2014 female 0.92")
    assert window.face_list.item(2).text().startswith("Face 3 \u2014 uncertain p(male) 0.50")
    assert not window.face_list.item(0).icon().isNull()  # thumbnail
    # First face selected and enlarged.
    assert window.selected_index == 0 and items[0].selected
    assert window.face_panel.has_face()
    assert window.face_panel.title_label.text() == "Face 1 \u2014 female 0.92"
    # Status bar: image size, provider, model, time.
    assert window.status_size.text() == "640\u00d7480 px"
    assert window.status_provider.text() == "FakeExecutionProvider"
    assert "FakeGender" in window.status_model.text()
    assert window.status_time.text().endswith("ms")
    assert "detected 3 face(s)" in window.log_pane.toPlainText()
    assert window.act_analyze.text() == "Re-&analyze"


def test_controls_disabled_while_analysing_and_window_stays_responsive(qtbot, make_window, photo):
    engine = FakeEngine(delay_s=0.6)
    window = make_window(engine)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.open_path(photo)
        assert engine.started.wait(5)
        assert window.busy
        for act in (
            window.act_open,
            window.act_analyze,
            window.act_next,
            window.act_save,
            window.act_add_face,
        ):
            assert not act.isEnabled(), act.text()
        assert window.act_cancel.isEnabled()
        assert window.progress.isVisible()
    timer.stop()
    assert len(ticks) >= 5, "the event loop must keep running during analysis"
    assert window.act_open.isEnabled() and window.act_analyze.isEnabled()
    assert not window.act_cancel.isEnabled()


def test_cancel_during_analysis(qtbot, make_window, photo):
    engine = FakeEngine(block_until_cancelled=True)
    window = make_window(engine)
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000) as blocker:
        window.open_path(photo)
        assert engine.started.wait(5)
        window.act_cancel.trigger()
    assert blocker.args == ["cancelled"]
    assert window.task is None  # joined and released
    assert window.view.box_items() == []
    assert "analysis cancelled" in window.log_pane.toPlainText()
    assert window.act_analyze.isEnabled()


def test_select_by_click_on_box(qtbot, make_window, photo):
    window = make_window()
    open_and_wait(qtbot, window, photo)
    qtbot.mouseClick(
        window.view.viewport(), Qt.MouseButton.LeftButton, pos=box_center_on_viewport(window, 1)
    )
    assert window.selected_index == 1
    assert window.view.box_items()[1].selected and not window.view.box_items()[0].selected
    assert window.face_list.currentRow() == 1
    assert window.face_panel.title_label.text() == "Face 2 \u2014 male 0.91"


def test_select_by_list_highlights_and_centres_box(qtbot, make_window, photo):
    window = make_window()
    open_and_wait(qtbot, window, photo)
    window.view.actual_size()
    window.view.zoom_by(4.0)  # zoomed in so that centring needs scrolling
    window.face_list.setCurrentRow(1)
    assert window.selected_index == 1
    assert window.view.box_items()[1].selected
    assert window.face_panel.title_label.text().startswith("Face 2")
    centre = window.view.mapToScene(window.view.viewport().rect().center())
    box_centre = window.view.box_items()[1].rect().center()
    assert abs(centre.x() - box_centre.x()) < 5 and abs(centre.y() - box_centre.y()) < 5


def test_zoom_actions_and_wheel(qtbot, make_window, photo):
    window = make_window()
    open_and_wait(qtbot, window, photo)
    window.act_actual.trigger()
    assert window.view.scale_factor() == pytest.approx(1.0)
    window.act_zoom_in.trigger()
    assert window.view.scale_factor() == pytest.approx(1.25)
    assert window.status_zoom.text() == "125 %"
    window.act_zoom_out.trigger()
    window.act_zoom_out.trigger()
    assert window.view.scale_factor() == pytest.approx(0.8)
    before = window.view.scale_factor()
    vp = window.view.viewport()
    centre = QPointF(vp.rect().center())
    wheel = QWheelEvent(
        centre,
        vp.mapToGlobal(centre),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, wheel)
    assert window.view.scale_factor() == pytest.approx(before * 1.25**2)
    window.act_fit.trigger()
    mapped = window.view.mapFromScene(window.view.image_rect()).boundingRect()
    assert mapped.width() <= vp.width() + 1 and mapped.height() <= vp.height() + 1
    assert mapped.width() >= vp.width() - 3 or mapped.height() >= vp.height() - 3
    # Boxes stay in image coordinates whatever the zoom.
    assert window.view.box_items()[0].rect().left() == pytest.approx(FAKE_FACES[0][0][0] * 640)
    # Shortcuts are shown in the menus.
    assert window.act_zoom_in.shortcut().toString() == "Ctrl++"
    assert window.act_open.shortcut().toString() == "Ctrl+O"


def test_save_annotated_via_context_menu(qtbot, make_window, photo, tmp_path, monkeypatch):
    window = make_window()
    open_and_wait(qtbot, window, photo)
    original = sha256(photo)
    out = tmp_path / "out" / "annotated.png"
    out.parent.mkdir()
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        staticmethod(lambda *a, **k: (str(out), "PNG image (*.png)")),
    )
    menu = window.photo_context_menu(1)
    save = next(a for a in menu.actions() if a.text().startswith("&Save annotated"))
    assert window.selected_index == 1  # right-click on a box selects it
    save.trigger()
    assert out.is_file()
    with Image.open(out) as im:
        assert im.size == (640, 480)
        annotated = np.asarray(im.convert("RGB"))
    with Image.open(photo) as im:
        assert not np.array_equal(annotated, np.asarray(im.convert("RGB")))  # boxes drawn
    assert sha256(photo) == original
    assert "saved annotated image" in window.log_pane.toPlainText()


def test_save_from_face_panel_menu_and_never_over_original(
    qtbot, make_window, photo, monkeypatch, record_dialogs
):
    window = make_window()
    open_and_wait(qtbot, window, photo)
    original = sha256(photo)
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        staticmethod(lambda *a, **k: (str(photo), "PNG image (*.png)")),
    )
    assert window.face_panel.has_face()
    menu = window.photo_context_menu(-1)  # the enlarged face's menu
    next(a for a in menu.actions() if a.text().startswith("&Save annotated")).trigger()
    assert record_dialogs and record_dialogs[0][0] == "Could not save the annotated image"
    assert "evidence is never overwritten" in record_dialogs[0][1]
    assert sha256(photo) == original


def test_drag_and_drop_opens_photo(qtbot, make_window, photo):
    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    pos = QPointF(window.rect().center())
    enter = QDragEnterEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        QApplication.sendEvent(window, drop)
    assert window.doc.image is not None and Path(window.doc.image.path) == photo
    assert len(window.view.box_items()) == 3


def test_drag_of_non_image_is_refused(qtbot, make_window, tmp_path):
    window = make_window()
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(text))])
    enter = QDragEnterEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()


def test_corrupt_file_gives_error_dialog_and_window_keeps_working(
    qtbot, make_window, tmp_path, photo, record_dialogs
):
    window = make_window()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a JPEG at all")
    assert window.open_path(bad) is False
    assert record_dialogs and record_dialogs[0][0] == "Cannot open photo"
    assert "broken.jpg" in record_dialogs[0][1]
    assert "Cannot open photo" in window.log_pane.toPlainText()
    assert bad.read_bytes() == b"this is not a JPEG at all"
    open_and_wait(qtbot, window, photo)
    assert len(window.view.box_items()) == 3


def test_engine_that_cannot_load_gives_error_not_crash(qtbot, make_window, photo, record_dialogs):
    from forensic_app.core.modelstore import ModelError

    def broken():
        raise ModelError("model file missing: /nowhere/gender_effnet_b0.onnx")

    window = make_window(engine_factory=broken)
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000) as blocker:
        window.open_path(photo)
    assert blocker.args == ["failed"]
    assert record_dialogs[0][0] == "Analysis failed"
    assert "gender_effnet_b0.onnx" in record_dialogs[0][1]
    assert window.doc.image is not None  # the photo is still shown
    assert window.status_model.text() == "Model: unavailable"


def test_next_and_previous_photo_in_folder(qtbot, make_window, tmp_path):
    folder = tmp_path / "case"
    paths = [write_photo(folder / f"p{i}.png", seed=i) for i in range(3)]
    (folder / "readme.txt").write_text("not a photo")
    window = make_window(analyze_on_open=False)
    assert window.open_path(paths[0])
    window.act_next.trigger()
    assert Path(window.doc.image.path) == paths[1]
    window.act_next.trigger()
    window.act_next.trigger()  # stays on the last one
    assert Path(window.doc.image.path) == paths[2]
    window.act_prev.trigger()
    assert Path(window.doc.image.path) == paths[1]
    assert window.act_next.shortcut().toString() == "PgDown"


def test_recent_files_are_remembered(qtbot, make_window, photo):
    window = make_window(analyze_on_open=False)
    window.open_path(photo)
    assert window.prefs.recent_files[0] == str(photo.resolve())
    window._fill_recent_menu()
    assert [a.text() for a in window.recent_menu.actions()] == [str(photo.resolve())]
    window.close()
    again = make_window(analyze_on_open=False)
    assert again.prefs.recent_files[0] == str(photo.resolve())


def test_export_results_json_and_csv_beside_image(
    qtbot, make_window, photo, tmp_path, record_dialogs
):
    import csv
    import json

    window = make_window()
    open_and_wait(qtbot, window, photo)
    window.select_face(0)
    window.relabel_selected("male")
    (tmp_path / "export").mkdir()
    written = window.export_to(tmp_path / "export" / "scene_annotated.jpg")
    assert record_dialogs == []
    assert written is not None
    assert written["image"].is_file() and written["json"].is_file() and written["csv"].is_file()
    doc = json.loads(written["json"].read_text())
    faces = doc["images"][0]["faces"]
    assert len(faces) == 3 and faces[0]["manual_label"] is True and faces[0]["manual"] is True
    assert faces[0]["model_gender"] == "female"
    rows = list(csv.DictReader(written["csv"].open()))
    assert [r["gender"] for r in rows] == ["male", "male", "uncertain"]
    assert rows[0]["manual"] == "1" and rows[1]["manual"] == "0"
    assert rows[0]["sha256"] == sha256(photo)
