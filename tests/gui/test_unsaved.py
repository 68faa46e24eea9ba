"""No correction is ever lost: quit, PgDown, open and drop ask first; an open case saves them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gui_helpers import open_and_wait, write_photo
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog

from forensic_app.core import audit
from forensic_app.core.audit import read_audit
from forensic_app.core.settings import AnalysisSettings
from forensic_app.gui import unsaved


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return [write_photo(tmp_path / "ev" / f"p{i}.png", seed=i) for i in range(2)]


@pytest.fixture
def corrected(qtbot, make_window, photos):
    window = make_window()
    open_and_wait(qtbot, window, photos[0])
    window.select_face(0)
    window.relabel_selected("male")
    assert window.has_unsaved_corrections()
    assert "\u2022 corrected" in window.windowTitle()
    return window


def test_quit_asks_and_cancel_keeps_the_window_and_the_corrections(
    qtbot, corrected, unsaved_answers
):
    window = corrected
    unsaved_answers["next"] = unsaved.CANCEL
    window.act_quit.trigger()  # Ctrl+Q
    assert unsaved_answers["asked"] == [("p0.png", "quitting", False)]
    assert window.isVisible() and window.doc.faces[0].manual_label
    unsaved_answers["next"] = unsaved.DISCARD
    assert window.close()
    assert not window.isVisible()


def test_page_down_asks_and_export_saves_before_moving_on(
    qtbot, corrected, unsaved_answers, photos, tmp_path, monkeypatch
):
    window = corrected
    unsaved_answers["next"] = unsaved.CANCEL
    window.act_next.trigger()  # PgDown
    assert Path(window.doc.image.path) == photos[0]  # stayed
    out = tmp_path / "out" / "p0_annotated.png"
    out.parent.mkdir()
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        staticmethod(lambda *a, **k: (str(out), "PNG image (*.png)")),
    )
    unsaved_answers["next"] = unsaved.EXPORT
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.act_next.trigger()
    assert Path(window.doc.image.path) == photos[1]
    faces = json.loads(out.with_suffix(".json").read_text())["images"][0]["faces"]
    assert faces[0]["gender"] == "male" and faces[0]["manual_label"] is True
    assert len(unsaved_answers["asked"]) == 2


def test_dropping_a_photo_asks_first(qtbot, corrected, unsaved_answers, photos):
    window = corrected
    unsaved_answers["next"] = unsaved.CANCEL
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photos[1]))])
    pos = QPointF(window.rect().center())
    args = (
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, QDragEnterEvent(*args))
    QApplication.sendEvent(window, QDropEvent(*args))
    assert unsaved_answers["asked"][0][1] == "opening another photo"
    assert Path(window.doc.image.path) == photos[0] and window.doc.faces[0].manual_label


def test_no_question_without_corrections_or_after_undoing_them(
    qtbot, corrected, unsaved_answers, photos
):
    window = corrected
    window.act_undo.trigger()
    assert not window.has_unsaved_corrections()
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.act_next.trigger()
    assert unsaved_answers["asked"] == []


def test_an_open_case_saves_corrections_automatically(
    qtbot, corrected, unsaved_answers, photos, tmp_path
):
    window = corrected
    # the case is opened after the correction was made: saved into it on leaving the photo
    case = window.casework.cases.new_case(tmp_path / "case", "Auto", "Examiner")
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.act_next.trigger()
    assert unsaved_answers["asked"] == []
    rec = case.record_for(window.casework.cases.case.records()[0].sha256)
    assert rec.result.faces[0].gender == "male" and rec.result.faces[0].manual_label
    entries = read_audit(case.root / "audit.jsonl").entries
    assert any(e["action"] == audit.MANUAL_EDIT for e in entries)
    # and while the case is open, every correction is saved as it is made
    window.select_face(0)
    window.relabel_selected("female")
    assert not window.has_unsaved_corrections()
    assert "corrected" not in window.windowTitle()


def test_save_and_reanalyze_keeps_the_hand_set_label(qtbot, corrected):
    window = corrected
    settings = AnalysisSettings(det_threshold=0.5)
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.apply_settings(settings, analyze_on_open=True, reanalyze=True)
    face = window.doc.faces[0]
    assert face.gender == "male" and face.manual_label and face.model_gender == "female"
    assert window.undo_stack.count() == 2 and window.has_unsaved_corrections()


def test_new_case_dialog_fits_its_text(qtbot):
    from forensic_app.gui.casework_ui import NewCaseDialog

    folder = "/home/investigator/cases/2026-11 Operation Harbour (seized phone 3)"
    dialog = NewCaseDialog(folder)
    qtbot.addWidget(dialog)
    dialog.show()
    fm = dialog.fontMetrics()
    assert dialog.width() >= fm.horizontalAdvance(folder)
    assert dialog.examiner.width() >= fm.horizontalAdvance(dialog.examiner.placeholderText())
