"""Attacks on "never lose a correction" that went through every prompt and still lost one."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from gui_helpers import FakeEngine, open_and_wait, write_photo

from forensic_app.core.settings import AnalysisSettings
from forensic_app.gui import unsaved


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return [write_photo(tmp_path / "ev" / f"p{i}.png", seed=i) for i in range(2)]


def _record(window, path: Path):
    case = window.casework.cases.case
    return next(r for r in case.records() if Path(r.abs_path) == path.resolve())


def test_coming_back_to_a_corrected_photo_in_a_case_shows_and_keeps_the_correction(
    qtbot, make_window, photos, tmp_path
):
    # A relabel saved into the case, PgDown, PgUp: the photo is analysed afresh on opening.
    # The window showed the model's labels and the next edit (a delete) overwrote the record,
    # dropping the relabel from the case (and so from the report).
    window = make_window()
    window.casework.cases.new_case(tmp_path / "case", "Harbour", "Examiner")
    open_and_wait(qtbot, window, photos[0])
    window.select_face(0)
    window.relabel_selected("male")
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.act_next.trigger()
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.act_prev.trigger()
    assert Path(window.doc.image.path) == photos[0]
    face = window.doc.faces[0]
    assert face.gender == "male" and face.manual_label  # on screen again
    window.select_face(1)
    window.delete_selected()
    faces = _record(window, photos[0]).result.faces
    assert len(faces) == 2 and faces[0].gender == "male" and faces[0].manual_label


def test_a_deleted_detection_stays_deleted_when_the_photo_comes_back_in_a_case(
    qtbot, make_window, photos, tmp_path
):
    # Deletions were kept only in the undo stack: after PgDown/PgUp (a fresh analysis) the
    # false detection was back on screen and in the case record, so in the report.
    window = make_window()
    window.casework.cases.new_case(tmp_path / "case", "Harbour", "Examiner")
    open_and_wait(qtbot, window, photos[0])
    window.select_face(1)
    window.delete_selected()
    assert len(_record(window, photos[0]).result.faces) == 2
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.act_next.trigger()
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.act_prev.trigger()
    assert [f.gender for f in window.doc.faces] == ["female", "uncertain"]
    assert [f.gender for f in _record(window, photos[0]).result.faces] == ["female", "uncertain"]


def test_a_batch_rerun_with_new_settings_keeps_a_deletion_in_the_case(
    qtbot, make_window, photos, tmp_path
):
    window = make_window(analyze_on_open=False)
    window.casework.cases.new_case(tmp_path / "case", "Harbour", "Examiner")
    with qtbot.waitSignal(window.casework.batch.finished, timeout=20_000):
        assert window.open_folder(photos[0].parent)
    window.casework.open_review(0)
    qtbot.waitUntil(lambda: window.doc.image is not None and len(window.doc.faces) == 3)
    window.select_face(1)  # the male detection: a false one
    window.delete_selected()
    assert len(_record(window, photos[0]).result.faces) == 2
    window.prefs.analysis = AnalysisSettings(det_threshold=0.5)  # re-run with new settings
    with qtbot.waitSignal(window.casework.batch.finished, timeout=20_000):
        assert window.open_folder(photos[0].parent)
    faces = _record(window, photos[0]).result.faces
    assert [f.gender for f in faces] == ["female", "uncertain"]


def test_a_box_drawn_for_a_missed_face_is_not_counted_twice_after_lowering_the_threshold(
    qtbot, make_window, photos
):
    # The examiner draws the face the detector missed at 0.7, then lowers the threshold and
    # re-analyses: the fresh detection of that face came in beside the hand-drawn box, and the
    # one person was counted twice (on screen, in exports and reports).
    window = make_window(analyze_on_open=False)
    window.prefs.analysis = AnalysisSettings(det_threshold=0.7)
    assert window.open_path(photos[0], analyze=False)
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.analyze()
    assert len(window.doc.faces) == 2
    with qtbot.waitSignal(window.faceAdded, timeout=10_000):
        window.add_face_box([270.0, 50.0, 333.0, 121.0])  # the third person (fake face 3)
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.apply_settings(AnalysisSettings(det_threshold=0.5), True, reanalyze=True)
    faces = window.doc.faces
    assert len(faces) == 3
    assert sum(f.manual_box for f in faces) == 1


def test_reviewing_a_batch_row_after_a_rerun_shows_and_keeps_the_case_corrections(
    qtbot, make_window, photos, tmp_path
):
    # The batch row holds the batch's fresh result; the case record holds it with the
    # examiner's corrections carried. Double-clicking the row showed the uncorrected one, and
    # the next edit stored it over the record.
    window = make_window(analyze_on_open=False)
    window.casework.cases.new_case(tmp_path / "case", "Harbour", "Examiner")
    with qtbot.waitSignal(window.casework.batch.finished, timeout=20_000):
        assert window.open_folder(photos[0].parent)
    window.casework.open_review(0)
    qtbot.waitUntil(lambda: len(window.doc.faces) == 3)
    window.select_face(0)
    window.relabel_selected("male")
    window.prefs.analysis = AnalysisSettings(det_threshold=0.5)
    with qtbot.waitSignal(window.casework.batch.finished, timeout=20_000):
        assert window.open_folder(photos[0].parent)
    window.casework.open_review(1)
    qtbot.waitUntil(lambda: Path(window.doc.image.path) == photos[1])
    window.casework.open_review(0)  # double-click the corrected photo's row
    qtbot.waitUntil(lambda: Path(window.doc.image.path) == photos[0])
    assert window.doc.faces[0].gender == "male" and window.doc.faces[0].manual_label
    window.select_face(2)
    window.delete_selected()
    faces = _record(window, photos[0]).result.faces
    assert faces[0].gender == "male" and faces[0].manual_label and len(faces) == 2


def test_a_box_drawn_on_a_photo_not_yet_re_analysed_keeps_the_case_record(
    qtbot, make_window, photos, tmp_path
):
    # With "analyse on open" off, a photo of the case opened empty; drawing a box stored just
    # that box as the photo's record: its detections and the earlier relabel left the report.
    window = make_window()
    window.casework.cases.new_case(tmp_path / "case", "Harbour", "Examiner")
    open_and_wait(qtbot, window, photos[0])
    window.select_face(0)
    window.relabel_selected("male")
    window.prefs.analyze_on_open = False
    assert window.open_path(photos[1])
    assert window.open_path(photos[0])
    assert window.doc.faces[0].gender == "male" and window.doc.faces[0].manual_label
    with qtbot.waitSignal(window.faceAdded, timeout=10_000):
        window.add_face_box([400.0, 40.0, 460.0, 110.0])
    faces = _record(window, photos[0]).result.faces
    assert len(faces) == 4 and faces[0].manual_label and faces[-1].manual_box


def test_undoing_an_exported_correction_asks_before_quitting(
    qtbot, make_window, photos, tmp_path, unsaved_answers
):
    # Relabel, export, Ctrl+Z: the screen no longer has the relabel but the export on disk
    # says "manual". The undo stack was back at its first (clean) state, so Ctrl+Q quit
    # without asking and the export kept claiming a correction the examiner had taken back.
    window = make_window()
    open_and_wait(qtbot, window, photos[0])
    window.select_face(0)
    window.relabel_selected("male")
    (tmp_path / "out").mkdir()
    assert window.export_to(tmp_path / "out" / "p0_annotated.png") is not None
    assert not window.has_unsaved_corrections()
    window.act_undo.trigger()
    assert window.doc.faces[0].gender == "female"
    assert window.has_unsaved_corrections()
    unsaved_answers["next"] = unsaved.CANCEL
    window.act_quit.trigger()
    assert unsaved_answers["asked"] == [("p0.png", "quitting", False)]
    assert window.isVisible()
    window.act_redo.trigger()  # back to what was exported: nothing to ask
    assert not window.has_unsaved_corrections()


def test_undoing_a_reanalysis_in_a_case_stores_what_the_screen_shows(
    qtbot, make_window, photos, tmp_path
):
    # Re-analyse at 0.7 (a face drops out), decide it was wrong, Ctrl+Z: the screen was back
    # to three faces but the case record (and report) kept the 0.7 result with two.
    window = make_window()
    window.casework.cases.new_case(tmp_path / "case", "Harbour", "Examiner")
    open_and_wait(qtbot, window, photos[0])
    window.select_face(0)
    window.relabel_selected("male")
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.apply_settings(AnalysisSettings(det_threshold=0.7), True, reanalyze=True)
    assert len(_record(window, photos[0]).result.faces) == 2
    window.act_undo.trigger()
    assert len(window.doc.faces) == 3
    faces = _record(window, photos[0]).result.faces
    assert len(faces) == 3 and faces[0].manual_label
    window.act_redo.trigger()
    assert len(_record(window, photos[0]).result.faces) == 2


def test_face_numbers_stay_put_after_a_delete_on_a_result_stored_without_numbers(
    qtbot, make_window, photos
):
    # Results stored before faces carried numbers (and this fake engine's) number faces by
    # position: deleting face 1 renamed face 2 "face 1", so "face 2" in the notes and in an
    # earlier export now pointed at another person.
    window = make_window()
    open_and_wait(qtbot, window, photos[0])
    window.select_face(0)
    window.delete_selected()
    assert [window.face_list.item(i).text().split(" \u2014")[0] for i in range(2)] == [
        "Face 2",
        "Face 3",
    ]
    window.act_undo.trigger()
    assert [f.number for f in window.doc.faces] == [1, 2, 3]


def test_quitting_while_a_drawn_box_is_being_classified_asks_and_keeps_the_box(
    qtbot, make_window, photos, unsaved_answers
):
    # The first drawn box loads the models (seconds). Ctrl+Q meanwhile quit without a
    # question: the box was not on the photo yet, so nothing counted as unsaved.
    class SlowClassify(FakeEngine):
        def classify_boxes(self, rgb, boxes, settings=AnalysisSettings()):  # noqa: B008
            self.started_classify.set()
            self.release.wait(10)
            return super().classify_boxes(rgb, boxes, settings)

    engine = SlowClassify()
    engine.started_classify, engine.release = threading.Event(), threading.Event()
    window = make_window(engine=engine)
    open_and_wait(qtbot, window, photos[0])
    window.add_face_box([400.0, 40.0, 460.0, 110.0])
    assert engine.started_classify.wait(10)
    engine.release.set()
    unsaved_answers["next"] = unsaved.CANCEL
    window.act_quit.trigger()
    assert unsaved_answers["asked"] == [("p0.png", "quitting", False)]
    assert window.isVisible() and window.doc.faces[-1].manual_box
