"""Corrections held only in a folder batch's rows (no case) are never lost without a question:
quitting and starting a new batch ask, Export writes them out, Discard on leaving a reviewed
photo puts its row back as the model left it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gui_helpers import write_photo
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from forensic_app.gui import unsaved


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "seized"
    for i in range(2):
        write_photo(root / f"img{i}.png", seed=i)
    return root


def run_batch(qtbot, window, folder: Path) -> None:
    with qtbot.waitSignal(window.casework.batch.finished, timeout=60_000):
        assert window.open_folder(folder)


def grid_relabel(qtbot, window) -> tuple[int, int, str]:
    """Label the Faces view's first face female by hand: (batch row, face index, its photo)."""
    ui = window.casework.faces
    ui.show_faces()
    qtbot.waitUntil(lambda: not ui._dirty and ui.grid.model.rowCount() > 0, timeout=5_000)
    grid = ui.grid
    grid.view.setFocus()
    grid.set_current_row(0)
    e = grid.model.entry(0)
    assert e.gender != "female" and not e.manual
    qtbot.keyClick(grid.view, Qt.Key.Key_F)
    _kind, row = grid.index.photos[e.photo].key
    face = window.casework.panel.model.rows[row].result.faces[e.face]
    assert face.gender == "female" and face.manual_label
    return row, e.face, window.casework.panel.model.rows[row].path


def test_closing_after_a_faces_view_correction_asks_and_cancel_keeps_it(
    qtbot, make_window, folder, unsaved_answers, tmp_path, monkeypatch
):
    window = make_window(analyze_on_open=False)
    run_batch(qtbot, window, folder)
    row, face, path = grid_relabel(qtbot, window)
    unsaved_answers["next"] = unsaved.CANCEL
    assert not window.close()
    assert unsaved_answers["asked"] == [("1 photo of the batch", "quitting", False)]
    assert window.isVisible()
    assert window.casework.panel.model.rows[row].result.faces[face].manual_label

    out = tmp_path / "exported"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(out)))
    unsaved_answers["next"] = unsaved.EXPORT
    window.act_quit.trigger()  # Ctrl+Q: exports, then quits
    assert not window.isVisible()
    stem = Path(path).stem
    doc = json.loads((out / f"{stem}_annotated.json").read_text())
    exported = doc["images"][0]["faces"][face]
    assert exported["gender"] == "female" and exported["manual_label"] is True
    assert (out / f"{stem}_annotated.jpg").stat().st_size > 0
    rows = (out / f"{stem}_annotated.csv").read_text().splitlines()
    assert rows[0].split(",")[-3:] == ["manual_box", "manual_label", "model_gender"]
    assert rows[1 + face].split(",")[-2] == "1"  # manual_label of that face
    assert len(unsaved_answers["asked"]) == 2


def test_discard_quits(qtbot, make_window, folder, unsaved_answers):
    window = make_window(analyze_on_open=False)
    run_batch(qtbot, window, folder)
    grid_relabel(qtbot, window)
    unsaved_answers["next"] = unsaved.DISCARD
    assert window.close()
    assert [a[1] for a in unsaved_answers["asked"]] == ["quitting"]


def test_a_new_batch_asks_first_and_cancel_keeps_the_rows(
    qtbot, make_window, folder, unsaved_answers
):
    window = make_window(analyze_on_open=False)
    run_batch(qtbot, window, folder)
    row, face, _path = grid_relabel(qtbot, window)
    unsaved_answers["next"] = unsaved.CANCEL
    assert not window.open_folder(folder)
    assert unsaved_answers["asked"][-1][1] == "starting a new batch"
    assert window.casework.panel.model.rows[row].result.faces[face].manual_label
    unsaved_answers["next"] = unsaved.DISCARD
    run_batch(qtbot, window, folder)  # discarded: the new batch runs, nothing asked at quit
    n = len(unsaved_answers["asked"])
    assert window.close() and len(unsaved_answers["asked"]) == n


def test_undoing_a_faces_view_correction_leaves_nothing_to_ask(
    qtbot, make_window, folder, unsaved_answers
):
    window = make_window(analyze_on_open=False)
    run_batch(qtbot, window, folder)
    grid_relabel(qtbot, window)
    window.act_undo.trigger()
    assert window.close() and unsaved_answers["asked"] == []


def test_discarding_a_reviewed_photo_puts_its_row_back(qtbot, make_window, folder, unsaved_answers):
    window = make_window(analyze_on_open=False)
    run_batch(qtbot, window, folder)
    window.casework.open_review(0)
    qtbot.waitUntil(lambda: window.doc.image is not None and len(window.doc.faces) == 3)
    model_gender = window.doc.faces[0].gender
    window.select_face(0)
    relabel = "male" if model_gender != "male" else "female"
    window.relabel_selected(relabel)
    assert window.casework.panel.model.rows[0].result.faces[0].manual_label  # the row took it
    unsaved_answers["next"] = unsaved.DISCARD
    window.act_next.trigger()  # PgDown: asked, discarded
    assert Path(window.doc.image.path).name == "img1.png"
    assert unsaved_answers["asked"] == [("img0.png", "opening another photo", False)]
    window.act_prev.trigger()  # PgUp: the model's label again, not the discarded one
    assert Path(window.doc.image.path).name == "img0.png"
    face = window.doc.faces[0]
    assert face.gender == model_gender and not face.manual_label
    assert not window.casework.panel.model.rows[0].result.faces[0].manual_label
    assert window.close() and len(unsaved_answers["asked"]) == 1  # Ctrl+Q: nothing to ask


def test_exporting_a_reviewed_photo_keeps_its_row_and_quitting_does_not_ask_again(
    qtbot, make_window, folder, unsaved_answers, tmp_path, monkeypatch
):
    window = make_window(analyze_on_open=False)
    run_batch(qtbot, window, folder)
    window.casework.open_review(0)
    qtbot.waitUntil(lambda: window.doc.image is not None and len(window.doc.faces) == 3)
    window.select_face(0)
    window.relabel_selected("uncertain")
    out = tmp_path / "out" / "img0_annotated.png"
    out.parent.mkdir()
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        staticmethod(lambda *a, **k: (str(out), "PNG image (*.png)")),
    )
    unsaved_answers["next"] = unsaved.EXPORT
    window.act_next.trigger()
    assert Path(window.doc.image.path).name == "img1.png"
    window.act_prev.trigger()
    assert window.doc.faces[0].gender == "uncertain" and window.doc.faces[0].manual_label
    assert window.close() and len(unsaved_answers["asked"]) == 1


def test_discarding_a_reviewed_photo_keeps_the_faces_view_edits_to_it(
    qtbot, make_window, folder, unsaved_answers
):
    window = make_window(analyze_on_open=False)
    run_batch(qtbot, window, folder)
    window.casework.open_review(0)
    qtbot.waitUntil(lambda: window.doc.image is not None and len(window.doc.faces) == 3)
    ui = window.casework.faces
    ui.show_faces()
    qtbot.waitUntil(lambda: not ui._dirty and ui.grid.model.rowCount() > 0, timeout=5_000)
    grid = ui.grid
    target = next(
        r
        for r in range(grid.model.rowCount())
        if grid.index.photos[grid.model.entry(r).photo].key == ("row", 0)
        and grid.model.entry(r).face == 2
    )
    grid.view.setFocus()
    grid.set_current_row(target)
    qtbot.keyClick(grid.view, Qt.Key.Key_M)  # the grid's edit to face 3 of the reviewed photo
    ui.show_photo()
    window.select_face(0)
    window.relabel_selected("uncertain")  # the photo's own, unsaved edit to face 1
    unsaved_answers["next"] = unsaved.DISCARD
    window.act_next.trigger()
    faces = window.casework.panel.model.rows[0].result.faces
    assert not faces[0].manual_label  # the photo's edit: discarded
    assert faces[2].gender == "male" and faces[2].manual_label  # the grid's: kept
    unsaved_answers["next"] = unsaved.CANCEL
    assert not window.close()  # and still asked about at quit
    assert unsaved_answers["asked"][-1] == ("1 photo of the batch", "quitting", False)


def test_batch_export_never_replaces_a_file_merely_named_like_an_export(
    qtbot, make_window, folder, unsaved_answers, tmp_path, monkeypatch
):
    """Attack: the chosen folder holds evidence named ``<stem>_annotated.jpg``; the export of
    the corrections must go beside it under another name, leaving its bytes as they were."""
    window = make_window(analyze_on_open=False)
    run_batch(qtbot, window, folder)
    _row, face, path = grid_relabel(qtbot, window)
    out = tmp_path / "evidence-too"
    out.mkdir()
    stem = Path(path).stem
    planted = out / f"{stem}_annotated.jpg"
    planted.write_bytes(b"\xff\xd8 evidence that only looks like an export")
    before = planted.read_bytes()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(out)))
    unsaved_answers["next"] = unsaved.EXPORT
    window.act_quit.trigger()
    assert not window.isVisible()
    assert planted.read_bytes() == before
    doc = json.loads((out / f"{stem}_annotated-2.json").read_text())
    assert doc["images"][0]["faces"][face]["manual_label"] is True
    assert (out / f"{stem}_annotated-2.jpg").stat().st_size > 0
