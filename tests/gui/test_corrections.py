"""Manual corrections through the window: add a box by dragging, delete, relabel, undo/redo."""

from __future__ import annotations

import pytest
from gui_helpers import open_and_wait
from PySide6.QtCore import QPointF, Qt

from forensic_app.core.settings import AnalysisSettings


@pytest.fixture
def analysed(qtbot, make_window, photo):
    window = make_window()
    open_and_wait(qtbot, window, photo)
    window.view.actual_size()
    return window


def drag(qtbot, window, a: QPointF, b: QPointF) -> None:
    vp = window.view.viewport()
    pa, pb = window.view.mapFromScene(a), window.view.mapFromScene(b)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=pa)
    qtbot.mouseMove(vp, pos=(pa + pb) / 2)
    qtbot.mouseMove(vp, pos=pb)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=pb)


def test_add_face_by_dragging_is_classified_marked_manual_and_undoable(qtbot, analysed):
    window = analysed
    window.act_add_face.trigger()
    assert window.act_add_face.isChecked() and window.view.add_mode()
    with qtbot.waitSignal(window.faceAdded, timeout=10_000):  # classified off the UI thread
        drag(qtbot, window, QPointF(300, 300), QPointF(360, 380))
    qtbot.waitUntil(lambda: not window.busy, timeout=10_000)
    faces = window.doc.faces
    assert len(faces) == 4
    new = faces[3]
    assert new.manual_box and new.manual
    assert new.box == pytest.approx([300, 300, 360, 380], abs=1.5)
    assert new.gender == "male" and new.p_male == pytest.approx(0.8)  # fake classify_boxes
    assert window.selected_index == 3
    assert not window.view.add_mode()  # one box per click on "Add face"
    # Marked manual in the list and on the image (manual colour, dashed outline).
    assert "manual box" in window.face_list.item(3).text()
    item = window.view.box_items()[3]
    assert item.pen().style() == Qt.PenStyle.DashLine
    from forensic_app.core.annotate import BOX_COLORS

    assert item.pen().color().getRgb()[:3] == BOX_COLORS["manual"]
    assert "manual_add" in window.log_pane.toPlainText().replace(" ", "_")
    assert window.windowTitle().startswith("scene.png \u2022 corrected")

    window.act_undo.trigger()
    assert len(window.doc.faces) == 3 and len(window.view.box_items()) == 3
    assert window.face_list.count() == 3
    window.act_redo.trigger()
    assert len(window.doc.faces) == 4 and window.doc.faces[3].manual_box


def test_tiny_drag_adds_nothing(qtbot, analysed):
    window = analysed
    window.act_add_face.trigger()
    drag(qtbot, window, QPointF(100, 100), QPointF(101, 101))
    assert len(window.doc.faces) == 3


def test_delete_detection_and_undo_restores_it(qtbot, analysed):
    window = analysed
    window.select_face(1)
    box = list(window.doc.faces[1].box)
    window.act_delete.trigger()
    assert len(window.doc.faces) == 2
    assert all(f.box != box for f in window.doc.faces)
    assert len(window.view.box_items()) == 2 and window.face_list.count() == 2
    window.act_undo.trigger()
    assert len(window.doc.faces) == 3 and window.doc.faces[1].box == box
    window.act_redo.trigger()
    assert len(window.doc.faces) == 2


def test_relabel_by_hand_keeps_model_label_and_undoes(qtbot, analysed):
    window = analysed
    window.select_face(0)
    assert window.doc.faces[0].gender == "female"
    window.label_actions["uncertain"].trigger()
    face = window.doc.faces[0]
    assert face.gender == "uncertain" and face.manual_label and face.model_gender == "female"
    # "manual" with the model's own answer beside it: on the photo, in the list, in the panel.
    assert window.view.box_items()[0].caption.text() == "1 uncertain manual (model: female 0.92)"
    assert (
        window.face_list.item(0)
        .text()
        .startswith("Face 1 \u2014 uncertain manual (model: female 0.92)\nlabel set by hand")
    )
    assert window.face_panel.title_label.text() == (
        "Face 1 \u2014 uncertain manual (model: female 0.92)"
    )
    window.label_actions["male"].trigger()  # a second correction keeps the model's label
    assert window.doc.faces[0].model_gender == "female"
    window.act_undo.trigger()
    window.act_undo.trigger()
    face = window.doc.faces[0]
    assert face.gender == "female" and not face.manual
    assert window.view.box_items()[0].caption.text() == "1 female 0.92"
    assert window.undo_stack.isClean()


def test_corrections_disabled_without_selection_and_in_context_menu(qtbot, analysed):
    window = analysed
    window.select_face(-1)
    assert not window.act_delete.isEnabled()
    assert not any(a.isEnabled() for a in window.label_actions.values())
    menu = window.photo_context_menu(2)
    texts = [a.text() for a in menu.actions()]
    assert "Label as &female" in texts and "&Delete face" in texts
    assert window.selected_index == 2 and window.act_delete.isEnabled()


def test_reanalysis_keeps_hand_drawn_boxes_labels_deletions_and_undo_history(qtbot, analysed):
    window = analysed
    window.act_add_face.trigger()
    with qtbot.waitSignal(window.faceAdded, timeout=10_000):
        drag(qtbot, window, QPointF(300, 300), QPointF(360, 380))
    qtbot.waitUntil(lambda: not window.busy, timeout=10_000)
    window.select_face(0)
    window.label_actions["male"].trigger()  # the model said female 0.92
    window.select_face(2)
    window.act_delete.trigger()  # the uncertain detection is a false one
    assert [f.number for f in window.doc.faces] == [1, 2, 4]  # as shown, kept
    window.prefs.analysis = AnalysisSettings(uncertain_band=(0.05, 0.95))  # new settings
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.act_analyze.trigger()  # F5
    faces = {f.number: f for f in window.doc.faces}
    assert sorted(faces) == [1, 2, 4]  # the deleted face 3 stays deleted; numbers kept
    relabelled = faces[1]
    assert relabelled.gender == "male" and relabelled.manual_label
    # the model's fresh answer (p 0.08 is inside the new band) beside the examiner's label
    assert relabelled.model_gender == "uncertain" and relabelled.p_male == pytest.approx(0.08)
    assert faces[2].gender == "uncertain" and not faces[2].manual  # p 0.91: inside the new band
    assert faces[4].manual_box and faces[4].gender == "uncertain"  # re-classified, new band
    assert window.view.box_items()[0].caption.text() == (
        "1 male manual (model: uncertain p(male) 0.08)"
    )
    # the history is kept: the re-analysis is one more step, and everything before it undoes
    assert window.undo_stack.count() == 4
    for _ in range(4):
        window.act_undo.trigger()
    assert len(window.doc.faces) == 3 and not any(f.manual for f in window.doc.faces)
    assert window.undo_stack.isClean()
