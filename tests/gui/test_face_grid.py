"""The Faces view: every face of a batch or case as thumbnails, filter/sort, keyboard review,
bulk relabel, undo, Enter opens the photo, case records and audit entries, lazy thumbnails."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import write_photo
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from forensic_app.core.audit import MANUAL_EDIT, read_audit
from forensic_app.core.case import Case
from forensic_app.core.face_index import SORTS, FaceIndex
from forensic_app.core.results import Face, ImageResult
from forensic_app.gui import unsaved
from forensic_app.gui.face_grid import FACE_FILTERS, FaceGridWidget
from forensic_app.gui.thumbnails import ThumbnailLoader

REAL_PHOTOS = [
    "12--Group/12_Group_Team_Organized_Group_12_Group_Team_Organized_Group_12_330.jpg",
    "19--Couple/19_Couple_Couple_19_110.jpg",
    "1--Handshaking/1_Handshaking_Handshaking_1_380.jpg",
]


def filter_index(name: str) -> int:
    return [n for n, _ in FACE_FILTERS].index(name)


def sort_index(key: str) -> int:
    return list(SORTS).index(key)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "seized"
    for i in range(3):
        write_photo(root / f"img{i}.png", seed=i)
    return root


def batch_grid(qtbot, window, folder: Path):
    """Run a batch over ``folder``, show the Faces tab; returns (ui, grid widget)."""
    with qtbot.waitSignal(window.casework.batch.finished, timeout=60_000):
        assert window.open_folder(folder)
    ui = window.casework.faces
    ui.show_faces()
    qtbot.waitUntil(lambda: not ui._dirty and ui.grid.model.rowCount() > 0, timeout=5_000)
    return ui, ui.grid


def shown(grid) -> list[tuple[str, int, str, bool]]:
    """(photo name, face number, label, manual) of every row in view order."""
    out = []
    for row in range(grid.model.rowCount()):
        e = grid.model.entry(row)
        out.append((Path(grid.index.photos[e.photo].path).name, e.face + 1, e.gender, e.manual))
    return out


def row_face(window, grid, row: int) -> Face:
    e = grid.model.entry(row)
    kind, k = grid.index.photos[e.photo].key
    return window.casework.panel.model.rows[k].result.faces[e.face]


def test_grid_lists_every_face_of_a_real_batch(qtbot, make_window, engine, dev_eval_dir, tmp_path):
    folder = tmp_path / "dev-eval-batch"
    folder.mkdir()
    for rel in REAL_PHOTOS:
        shutil.copy(dev_eval_dir / "images" / rel, folder / Path(rel).name)
    window = make_window(engine)
    ui, grid = batch_grid(qtbot, window, folder)
    rows = window.casework.panel.model.rows
    expected = {(Path(r.path).name, i + 1) for r in rows for i in range(len(r.result.faces))}
    assert len(expected) >= 4  # the group photo alone has several faces
    grid.sort_box.setCurrentIndex(sort_index("photo"))
    assert {(name, n) for name, n, _, _ in shown(grid)} == expected
    assert grid.model.rowCount() == len(expected)
    for row in range(grid.model.rowCount()):  # each entry carries its face's real label and box
        e = grid.model.entry(row)
        f = row_face(window, grid, row)
        assert e.gender == f.gender and list(e.box) == [float(v) for v in f.box]
    assert f"{len(expected)} of {len(expected)} faces shown" in grid.count_label.text()
    # the visible thumbnails are cut from the real photos, off the GUI thread
    qtbot.waitUntil(lambda: grid.loader.thumbs_made >= min(len(expected), 4), timeout=20_000)
    assert 1 <= grid.loader.photos_decoded <= len(REAL_PHOTOS)


def test_filter_and_sort_change_the_order(qtbot, make_window, folder):
    window = make_window()
    ui, grid = batch_grid(qtbot, window, folder)
    assert grid.model.rowCount() == 9  # three fake faces in each of three photos
    # default: uncertain first
    assert [g for _, _, g, _ in shown(grid)] == ["uncertain"] * 3 + ["male"] * 3 + ["female"] * 3
    grid.sort_box.setCurrentIndex(sort_index("photo"))
    assert [(p, n) for p, n, _, _ in shown(grid)] == [
        (f"img{i}.png", n) for i in range(3) for n in (1, 2, 3)
    ]
    grid.sort_box.setCurrentIndex(sort_index("gender"))
    assert [g for _, _, g, _ in shown(grid)] == ["female"] * 3 + ["male"] * 3 + ["uncertain"] * 3
    grid.sort_box.setCurrentIndex(sort_index("size"))  # fake faces: uncertain 64, female 128 px
    assert [g for _, _, g, _ in shown(grid)] == ["uncertain"] * 3 + ["female"] * 3 + ["male"] * 3
    grid.reverse_box.setChecked(True)
    assert [g for _, _, g, _ in shown(grid)][:3] == ["male"] * 3
    grid.filter_box.setCurrentIndex(filter_index("Perceived male"))
    assert [g for _, _, g, _ in shown(grid)] == ["male"] * 3
    assert grid.count_label.text().startswith("3 of 9 faces shown")


def test_f_and_m_keys_label_by_hand_and_undo_restores(qtbot, make_window, folder):
    window = make_window()
    ui, grid = batch_grid(qtbot, window, folder)
    view = grid.view
    view.setFocus()
    grid.set_current_row(0)
    first = grid.model.entry(0)
    assert first.gender == "uncertain" and not first.manual
    qtbot.keyClick(view, Qt.Key.Key_F)
    f = row_face(window, grid, 0)
    assert (f.gender, f.manual_label, f.model_gender) == ("female", True, "uncertain")
    assert grid.model.entry(0).gender == "female" and grid.model.entry(0).manual
    assert view.currentIndex().row() == 1  # one face labelled: on to the next
    qtbot.keyClick(view, Qt.Key.Key_M)
    assert row_face(window, grid, 1).gender == "male" and row_face(window, grid, 1).manual_label
    assert shown(grid)[0][2] == "female"  # the order stays put while reviewing
    assert window.undo_stack.count() == 2
    window.act_undo.trigger()
    assert row_face(window, grid, 1).gender == "uncertain"
    assert not row_face(window, grid, 1).manual_label
    window.act_undo.trigger()
    f = row_face(window, grid, 0)
    assert (f.gender, f.manual_label) == ("uncertain", False)
    assert not grid.model.entry(0).manual
    window.act_redo.trigger()
    assert row_face(window, grid, 0).gender == "female"


def test_bulk_relabel_of_a_multi_selection_is_one_undo(qtbot, make_window, folder):
    window = make_window()
    ui, grid = batch_grid(qtbot, window, folder)
    grid.filter_box.setCurrentIndex(filter_index("Uncertain"))
    view = grid.view
    view.setFocus()
    grid.set_current_row(0)
    qtbot.keyClick(view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert len(grid.selected_positions()) == 3
    qtbot.keyClick(view, Qt.Key.Key_M)
    rows = window.casework.panel.model.rows
    labels = [[(f.gender, f.manual_label) for f in r.result.faces] for r in rows]
    assert all(lab[2] == ("male", True) for lab in labels)  # every uncertain face, each photo
    assert all(lab[0] == ("female", False) for lab in labels)  # the rest untouched
    assert window.undo_stack.count() == 1
    assert "Manual" in window.casework.panel.model.headerData(7, Qt.Orientation.Horizontal)
    assert all(r.manual() == 1 for r in rows)
    window.act_undo.trigger()
    assert all(
        r.result.faces[2].gender == "uncertain" and not r.result.faces[2].manual for r in rows
    )
    # Ctrl+A and the button do the same for a whole filtered view
    qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert len(grid.selected_positions()) == 3
    grid.label_buttons["female"].click()
    assert all(r.result.faces[2].gender == "female" for r in rows)
    # ... and the right-click menu
    menu = grid.context_menu()
    [act] = [a for a in menu.actions() if a.text().startswith("Label as uncertain")]
    act.trigger()
    assert all(
        r.result.faces[2].gender == "uncertain" and r.result.faces[2].manual_label for r in rows
    )
    assert window.undo_stack.count() == 2  # the undone command was replaced, then one more


def test_enter_opens_the_photo_with_that_face_selected(
    qtbot, make_window, folder, unsaved_answers, tmp_path, monkeypatch
):
    window = make_window()
    ui, grid = batch_grid(qtbot, window, folder)
    grid.sort_box.setCurrentIndex(sort_index("photo"))
    grid.set_current_row(7)  # img2.png, face 2 (male)
    grid.view.setFocus()
    qtbot.keyClick(grid.view, Qt.Key.Key_Return)
    assert ui.tabs.currentWidget() is ui.photo_page
    assert Path(window.doc.image.path).name == "img2.png"
    assert window.selected_index == 1
    assert window.doc.faces[1].gender == "male"
    assert window.casework.review_row == 2
    # a relabel in the grid shows on the open photo at once, and back
    ui.show_faces()
    grid.set_current_row(7)
    for key in (Qt.Key.Key_PageDown, Qt.Key.Key_Delete, Qt.Key.Key_A):  # the grid's, not
        qtbot.keyClick(grid.view, key)  # the photo's: no next photo, no face deleted, no box
    assert Path(window.doc.image.path).name == "img2.png" and len(window.doc.faces) == 3
    assert not window.act_add_face.isChecked()
    grid.set_current_row(7)
    qtbot.keyClick(grid.view, Qt.Key.Key_F)
    assert window.doc.faces[1].gender == "female" and window.doc.faces[1].manual_label
    window.select_face(1)
    window.relabel_selected("uncertain")
    qtbot.waitUntil(lambda: grid.model.entry(7).gender == "uncertain", timeout=3_000)

    # Enter on another photo keeps the Faces view's edits undoable (opening clears the
    # photo's own history) ... (the Photo-tab edit is exported on leaving: kept, not discarded)
    out = tmp_path / "out" / "img2_annotated.png"
    out.parent.mkdir()
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "PNG (*.png)"))
    )
    unsaved_answers["next"] = unsaved.EXPORT
    ui.show_faces()
    grid.set_current_row(0)  # img0.png, face 1 (female)
    qtbot.keyClick(grid.view, Qt.Key.Key_M)
    grid.set_current_row(4)  # img1.png, face 2
    qtbot.keyClick(grid.view, Qt.Key.Key_Return)
    assert Path(window.doc.image.path).name == "img1.png" and window.selected_index == 1
    assert window.undo_stack.count() == 2 and window.act_undo.isEnabled()
    window.act_undo.trigger()  # the M on img0's face 1
    rows = window.casework.panel.model.rows
    assert rows[0].result.faces[0].gender == "female" and not rows[0].result.faces[0].manual
    # ... but an undo never overwrites a change made since: img2's face 2 was set to
    # "uncertain" in the Photo tab after the grid's F, so undoing the F leaves it alone
    window.act_undo.trigger()
    assert rows[2].result.faces[1].gender == "uncertain" and rows[2].result.faces[1].manual_label
    assert "changed since" in window.statusBar().currentMessage()


def manual_edits(case: Case) -> list[dict]:
    return [a for a in read_audit(case.root / "audit.jsonl").entries if a["action"] == MANUAL_EDIT]


def test_in_a_case_each_change_lands_in_the_record_and_the_audit_log(
    qtbot, make_window, folder, tmp_path
):
    window = make_window()
    case = window.casework.cases.new_case(tmp_path / "case", "Grid case", "J. Doe")
    ui, grid = batch_grid(qtbot, window, folder)
    grid.filter_box.setCurrentIndex(filter_index("Uncertain"))
    grid.set_current_row(0)
    e = grid.model.entry(0)
    sha = grid.index.photos[e.photo].sha256
    grid.view.setFocus()
    qtbot.keyClick(grid.view, Qt.Key.Key_F)
    ui.writer.wait()
    rec = case.record_for(sha)
    assert rec is not None and rec.manual_edits == 1
    f = rec.result.faces[e.face]
    assert (f.gender, f.manual_label, f.model_gender) == ("female", True, "uncertain")
    audit = manual_edits(case)
    assert audit[-1]["sha256"] == sha
    entry = audit[-1]["detail"]
    assert entry["edit"] == "manual_relabel"
    assert entry["via"] == "faces view" and entry["face_numbers"] == [e.face + 1]
    assert f"face {e.face + 1}: uncertain -> female" in entry["changes"]
    window.act_undo.trigger()
    ui.writer.wait()
    rec = case.record_for(sha)
    assert rec.result.faces[e.face].gender == "uncertain" and rec.manual_edits == 2
    assert manual_edits(case)[-1]["detail"]["edit"] == "undo_manual_relabel"

    # batch and case both open: the examiner can list the whole case instead; an edit there
    # shows in the batch list too
    assert grid.source_box.isVisibleTo(grid)
    grid.source_box.setCurrentIndex(grid.source_box.findData("case"))
    qtbot.waitUntil(lambda: ui.source == "case" and grid.model.rowCount() == 3, timeout=10_000)
    grid.filter_box.setCurrentIndex(filter_index("All faces"))
    assert grid.model.rowCount() == 9
    grid.sort_box.setCurrentIndex(sort_index("photo"))
    grid.set_current_row(0)
    qtbot.keyClick(grid.view, Qt.Key.Key_M)  # face 1 of the first photo, female -> male
    ui.writer.wait()
    first = grid.index.photos[grid.model.entry(0).photo]
    [row] = [r for r in window.casework.panel.model.rows if r.result.sha256 == first.sha256]
    assert row.result.faces[0].gender == "male" and row.result.faces[0].manual_label
    assert case.record_for(first.sha256).result.faces[0].gender == "male"
    window.act_undo.trigger()
    ui.writer.wait()
    assert window.casework.panel.model.rows[row.index].result.faces[0].gender == "female"
    assert case.record_for(first.sha256).result.faces[0].gender == "female"

    # the case alone (no batch in this window): its records are the Faces view's source
    other = make_window()
    other.casework.cases.open_case(case.root)
    oui = other.casework.faces
    oui.show_faces()
    qtbot.waitUntil(lambda: oui.source == "case" and oui.grid.model.rowCount() == 9, timeout=10_000)
    oui.grid.filter_box.setCurrentIndex(filter_index("Perceived male"))
    oui.grid.view.selectAll()
    qtbot.keyClick(oui.grid.view, Qt.Key.Key_U)
    oui.writer.wait()
    records = Case.open(case.root, log_open=False).records()
    assert all(
        r.result.faces[1].gender == "uncertain" and r.result.faces[1].manual_label for r in records
    )
    assert len(manual_edits(case)) == 4 + 3  # one per photo for the bulk change
    # Enter opens a case photo with its stored result and that face selected
    oui.grid.set_current_row(0)
    qtbot.keyClick(oui.grid.view, Qt.Key.Key_Enter)
    assert other.doc.image is not None and other.selected_index == 1
    assert other.doc.faces[1].gender == "uncertain" and other.doc.faces[1].manual_label


class CountingDecoder:
    """Stands in for the photo loader; counts what is decoded (the worker thread calls it)."""

    def __init__(self) -> None:
        self.calls = 0
        self.rgb = np.full((400, 400, 3), 128, dtype=np.uint8)

    def __call__(self, path: str) -> tuple[np.ndarray, str]:
        self.calls += 1
        return self.rgb, f"sha-{Path(path).stem}"


def synthetic_index(photos: int, per_photo: int) -> FaceIndex:
    rng = np.random.default_rng(3)
    items = []
    for p in range(photos):
        faces = []
        for _i in range(per_photo):
            x, y, s = rng.uniform(0, 300), rng.uniform(0, 300), rng.uniform(12, 90)
            pm = float(rng.uniform(0, 1))
            g = "female" if pm < 0.4 else "male" if pm > 0.6 else "uncertain"
            faces.append(Face(box=[x, y, x + s, y + s], score=0.9, gender=g, p_male=pm))
        path = f"/synthetic/photo{p:04d}.jpg"
        items.append(
            (("row", p), path, ImageResult(path=path, sha256=f"sha-photo{p:04d}", faces=faces))
        )
    return FaceIndex.from_results(items)


def visible_rows(grid) -> int:
    vp = grid.view.viewport().rect()
    return sum(
        1
        for r in range(grid.model.rowCount())
        if grid.view.visualRect(grid.model.index(r, 0)).intersects(vp)
    )


def test_ten_thousand_faces_decode_only_what_is_shown(qtbot):
    decoder = CountingDecoder()
    loader = ThumbnailLoader(decode=decoder, capacity=150)
    grid = FaceGridWidget(loader)
    qtbot.addWidget(grid)
    grid.resize(900, 700)
    index = synthetic_index(photos=500, per_photo=20)
    assert len(index) == 10_000
    grid.set_index(index, "synthetic")
    grid.sort_box.setCurrentIndex(sort_index("size"))  # neighbours come from many photos
    grid.show()
    qtbot.waitExposed(grid)
    try:
        qtbot.waitUntil(lambda: loader.thumbs_made > 0 and loader.pending() == 0, timeout=10_000)
        qtbot.wait(100)
        on_screen = visible_rows(grid)
        assert 0 < on_screen < 150
        # Nothing beyond what was shown is cut or decoded. The first paint may come before the
        # vertical scroll bar narrows the viewport (one column more, a different set of rows on
        # a loaded machine), so the bound is two layouts' worth of one screen, not 10,000.
        assert loader.thumbs_made <= 2 * on_screen
        assert decoder.calls <= 2 * on_screen
        assert len(loader.cache) <= 150
        grid.view.scrollToBottom()
        qtbot.waitUntil(
            lambda: loader.pending() == 0 and loader.thumbs_made > on_screen, timeout=10_000
        )
        qtbot.wait(100)
        second = visible_rows(grid)
        assert loader.thumbs_made <= 2 * on_screen + second  # only the screens shown
        assert decoder.calls <= 2 * on_screen + second < 10_000 // 20
        assert len(loader.cache) <= 150  # bounded, however far it scrolls
    finally:
        loader.stop()


def test_a_rebuild_keeps_the_current_and_selected_faces(qtbot, make_window, folder):
    """New batch results rebuild the list; what the examiner selected stays selected."""
    window = make_window()
    ui, grid = batch_grid(qtbot, window, folder)
    vp = grid.view.viewport()
    centre = [grid.view.visualRect(grid.model.index(r, 0)).center() for r in (3, 5)]
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=centre[0])
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, centre[1])
    before = [shown(grid)[r] for r in sorted(i.row() for i in grid.view.selectedIndexes())]
    current = shown(grid)[grid.view.currentIndex().row()]
    assert len(before) == 2
    ui.rebuild()
    after = [shown(grid)[r] for r in sorted(i.row() for i in grid.view.selectedIndexes())]
    assert after == before and shown(grid)[grid.view.currentIndex().row()] == current
    grid.sort_box.setCurrentIndex(sort_index("photo"))  # a new order: the same faces
    after = sorted(shown(grid)[r] for r in (i.row() for i in grid.view.selectedIndexes()))
    assert after == sorted(before)


def test_a_case_write_that_fails_is_shown_not_lost(
    qtbot, make_window, folder, tmp_path, record_dialogs, monkeypatch
):
    window = make_window()
    case = window.casework.cases.new_case(tmp_path / "case", "Grid case", "J. Doe")
    ui, grid = batch_grid(qtbot, window, folder)

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(case, "save_manual_edit", refuse)
    grid.set_current_row(0)
    qtbot.keyClick(grid.view, Qt.Key.Key_F)
    ui.writer.wait()
    qtbot.waitUntil(
        lambda: any(t == "Case record not written" for t, _ in record_dialogs), timeout=5_000
    )
    [(_, text)] = [d for d in record_dialogs if d[0] == "Case record not written"]
    assert "No space left on device" in text
    assert row_face(window, grid, 0).gender == "female"  # the correction itself is kept


def test_thumbnails_say_why_a_photo_cannot_be_shown(qtbot, tmp_path):
    from forensic_app.core.imaging import sha256_path
    from forensic_app.gui.thumbnails import thumb_key

    photo = write_photo(tmp_path / "p.png")
    loader = ThumbnailLoader()
    try:
        good = thumb_key(str(photo), sha256_path(photo), (10, 10, 90, 90))
        changed = thumb_key(str(photo), "0" * 64, (10, 10, 90, 90))  # not the analysed bytes
        missing = thumb_key(str(tmp_path / "gone.png"), "1" * 64, (0, 0, 5, 5))
        for key in (good, changed, missing):
            assert loader.thumbnail(key) is None  # asked for, not decoded here
        qtbot.waitUntil(
            lambda: all(loader.cache.get(k) is not None for k in (good, changed, missing)),
            timeout=10_000,
        )
        img = loader.cache.get(good)
        assert not isinstance(img, str) and (img.width(), img.height()) == (96, 96)
        loader.set_scale(2.0)  # a HiDPI screen: twice the pixels, the same size on screen
        assert loader.cache.get(good) is None and loader.thumbnail(good) is None
        qtbot.waitUntil(lambda: loader.cache.get(good) is not None, timeout=10_000)
        img = loader.cache.get(good)
        assert (img.width(), img.height(), img.devicePixelRatio()) == (192, 192, 2.0)
        for key in (changed, missing):
            loader.thumbnail(key)
        qtbot.waitUntil(
            lambda: all(loader.cache.get(k) is not None for k in (changed, missing)),
            timeout=10_000,
        )
        assert loader.cache.get(changed) == "photo changed since it was analysed"
        assert "not found" in loader.cache.get(missing)
    finally:
        loader.stop()
