"""Case folder: manifest, per-photo records, resume, re-analysis history, manual edits."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from fake_engine import FakeEngine, make_photo  # noqa: E402

from forensic_app import __version__  # noqa: E402
from forensic_app.core import audit  # noqa: E402
from forensic_app.core.audit import read_audit  # noqa: E402
from forensic_app.core.batch import DONE, ERROR, UNCHANGED, BatchRunner  # noqa: E402
from forensic_app.core.case import Case, CaseError, face_changes  # noqa: E402
from forensic_app.core.results import Face  # noqa: E402
from forensic_app.core.settings import AnalysisSettings  # noqa: E402


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def run_batch(case, engine, paths, settings=AnalysisSettings(), reanalyse=False):  # noqa: B008
    case.begin_batch(engine, settings, reanalyse=reanalyse, photos=len(paths))
    outcome = BatchRunner(engine, settings, store=case).run([str(p) for p in paths])
    case.end_batch(outcome)
    return outcome


@pytest.fixture
def photos(tmp_path):
    return [
        make_photo(tmp_path / "ev" / "red.jpg", color=(220, 10, 10)),
        make_photo(tmp_path / "ev" / "blue.png", color=(10, 10, 220)),
        make_photo(tmp_path / "ev" / "grey.png", color=(90, 90, 90)),
    ]


def actions(case):
    return [e["action"] for e in read_audit(case.root / "audit.jsonl").entries]


def test_create_writes_manifest_and_audit(tmp_path):
    engine = FakeEngine()
    case = Case.create(
        tmp_path / "case",
        "Operation Test",
        "A. Examiner",
        engine,
        AnalysisSettings(det_threshold=0.4),
    )
    m = json.loads((tmp_path / "case" / "case.json").read_text())
    assert m["case_name"] == "Operation Test" and m["examiner"] == "A. Examiner"
    assert m["tool_version"] == __version__ and m["created"].endswith("Z")
    assert [x["sha256"] for x in m["models"]] == ["d" * 64, "e" * 64]
    assert m["settings"]["det_threshold"] == 0.4
    assert actions(case) == [audit.CASE_CREATED]
    with pytest.raises(CaseError):
        Case.create(tmp_path / "case")
    with pytest.raises(CaseError):
        Case.open(tmp_path / "elsewhere")
    reopened = Case.open(tmp_path / "case", examiner="B. Second")
    assert reopened.name == "Operation Test"
    entries = read_audit(tmp_path / "case" / "audit.jsonl").entries
    assert entries[-1]["action"] == audit.CASE_OPENED and entries[-1]["examiner"] == "B. Second"


def test_batch_stores_one_record_per_photo_and_annotated_copies(tmp_path, photos):
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", "c", "ex", engine)
    outcome = run_batch(case, engine, photos)
    assert outcome.all_ok
    names = sorted(p.name for p in (tmp_path / "case" / "results").glob("*.json"))
    assert names == sorted(f"{sha(p)}.json" for p in photos)
    rec = case.record_for(sha(photos[0]))
    assert rec.path == str(photos[0]) and rec.result.faces[0].gender == "male"
    assert (case.root / rec.annotated).is_file()
    assert actions(case) == [audit.CASE_CREATED, audit.BATCH_STARTED] + [audit.ANALYSED] * 3 + [
        audit.BATCH_FINISHED
    ]
    analysed = [
        e for e in read_audit(case.root / "audit.jsonl").entries if e["action"] == audit.ANALYSED
    ]
    assert {e["sha256"] for e in analysed} == {sha(p) for p in photos}
    assert all(e["detail"]["faces"] == 1 for e in analysed)


def test_rerun_skips_unchanged_and_reanalysis_keeps_history(tmp_path, photos):
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", "c", "ex", engine)
    run_batch(case, engine, photos)
    engine.calls.clear()
    case = Case.open(tmp_path / "case")
    outcome = run_batch(case, engine, photos)
    assert engine.calls == [] and [i.status for i in outcome.items] == [UNCHANGED] * 3
    assert actions(case).count(audit.SKIPPED_UNCHANGED) == 3
    # new settings: re-analysed, the old records archived, never lost
    outcome = run_batch(case, engine, photos, AnalysisSettings(det_threshold=0.7))
    assert [i.status for i in outcome.items] == [DONE] * 3
    assert actions(case).count(audit.REANALYSED) == 3
    assert actions(case).count(audit.SETTINGS_CHANGED) == 1
    assert len(list((case.root / "results" / "history").glob("*.json"))) == 3
    assert case.manifest["settings"]["det_threshold"] == 0.7
    # --reanalyse forces it even with unchanged settings
    engine.calls.clear()
    run_batch(case, engine, photos, AnalysisSettings(det_threshold=0.7), reanalyse=True)
    assert len(engine.calls) == 3


def test_same_bytes_at_two_paths_is_one_record(tmp_path, photos):
    copy = tmp_path / "ev2" / "copy.jpg"
    copy.parent.mkdir()
    copy.write_bytes(photos[0].read_bytes())
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", engine=engine)
    run_batch(case, engine, [photos[0], copy])
    recs = case.records()
    assert len(recs) == 1
    # whichever was analysed first holds the record; the other path is listed with it
    assert {recs[0].abs_path, *recs[0].other_paths} == {str(photos[0]), str(copy)}


def test_failed_photo_is_recorded_and_retried(tmp_path, photos):
    engine = FakeEngine()
    missing = tmp_path / "ev" / "later.png"
    case = Case.create(tmp_path / "case", engine=engine)
    outcome = run_batch(case, engine, [photos[0], missing])
    assert [i.status for i in outcome.items] == [DONE, ERROR]
    err = [r for r in case.records() if not r.ok]
    assert len(err) == 1 and err[0].name.startswith("error-") and "not found" in err[0].result.error
    assert audit.ANALYSIS_FAILED in actions(case)
    make_photo(missing, color=(10, 200, 10))
    outcome = run_batch(case, engine, [photos[0], missing])
    assert [i.status for i in outcome.items] == [UNCHANGED, DONE]
    assert all(r.ok for r in case.records()) and len(case.records()) == 2
    assert any("failed-earlier" in p.name for p in (case.root / "results" / "history").iterdir())


def test_manual_edit_is_saved_audited_and_survives_a_rerun(tmp_path, photos):
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", "c", "ex", engine)
    run_batch(case, engine, photos)
    rec = case.record_for(sha(photos[0]))
    annotated_before = (case.root / rec.annotated).read_bytes()
    edited = rec.result
    f = edited.faces[0]
    edited.faces[0] = Face(
        box=f.box,
        score=f.score,
        gender="female",
        p_male=f.p_male,
        manual_label=True,
        model_gender=f.gender,
    )
    edited.faces.append(Face(box=[1, 1, 9, 9], gender="uncertain", manual_box=True))
    new = case.save_manual_edit(edited, {"reason": "examiner review"})
    assert new.manual_edits == 1
    stored = case.record_for(sha(photos[0]))
    assert stored.result.faces[0].gender == "female" and stored.result.faces[0].manual_label
    assert stored.result.faces[1].manual_box
    assert (case.root / rec.annotated).read_bytes() != annotated_before  # redrawn
    entry = read_audit(case.root / "audit.jsonl").entries[-1]
    assert entry["action"] == audit.MANUAL_EDIT and entry["sha256"] == sha(photos[0])
    assert "face 1: male -> female" in entry["detail"]["changes"]
    assert any("box added" in c for c in entry["detail"]["changes"])
    assert entry["detail"]["reason"] == "examiner review"
    assert any("before-edit" in p.name for p in (case.root / "results" / "history").iterdir())
    # a rerun with the same settings keeps the correction
    engine.calls.clear()
    run_batch(case, engine, photos)
    assert engine.calls == []
    assert case.record_for(sha(photos[0])).result.faces[0].gender == "female"
    # a rerun with NEW settings refreshes the model's answers and keeps the corrections in the
    # current record (the report shows it); the record before it is archived as before
    history = len(list((case.root / "results" / "history").iterdir()))
    run_batch(case, engine, photos, AnalysisSettings(det_threshold=0.3), reanalyse=True)
    current = case.record_for(sha(photos[0]))
    kept = [f for f in current.result.faces if f.manual]
    assert [(f.gender, f.manual_label, f.manual_box) for f in kept] == [
        ("female", True, False),
        ("uncertain", False, True),
    ]
    assert kept[0].model_gender == f.gender  # the model's fresh answer beside the label
    assert current.manual_edits == 1
    assert len(list((case.root / "results" / "history").iterdir())) > history
    entry = [
        e
        for e in read_audit(case.root / "audit.jsonl").entries
        if e["action"] == audit.REANALYSED and e["sha256"] == sha(photos[0])
    ][-1]
    assert entry["detail"]["manual_corrections_kept"] == 2


def test_verify_inputs_finds_changed_and_missing(tmp_path, photos):
    engine = FakeEngine()
    case = Case.create(tmp_path / "case", engine=engine)
    run_batch(case, engine, photos)
    assert case.verify_inputs() == []
    make_photo(photos[0], color=(0, 0, 0))
    photos[1].unlink()
    issues = {Path(i.path).name: i for i in case.verify_inputs()}
    assert issues["red.jpg"].problem == "changed" and issues["red.jpg"].actual == sha(photos[0])
    assert issues["blue.png"].problem == "missing"
    assert "CHANGED" in issues["red.jpg"].describe()
    last = read_audit(case.root / "audit.jsonl").entries[-1]
    assert last["action"] == audit.INTEGRITY_CHECK and len(last["detail"]["problems"]) == 2


def test_face_changes_lists_label_box_changes():
    from forensic_app.core.results import ImageResult

    a = ImageResult(
        "x",
        faces=[
            Face(box=[0, 0, 10, 10], gender="male"),
            Face(box=[20, 20, 30, 30], gender="female"),
        ],
    )
    b = ImageResult(
        "x",
        faces=[
            Face(box=[0, 0, 10, 10], gender="uncertain"),
            Face(box=[40, 40, 50, 50], gender="male", manual_box=True),
        ],
    )
    assert face_changes(a, b) == [
        "face 1: male -> uncertain",
        "face 2: box added (male)",
        "box [20, 20, 30, 30] removed (female)",
    ]
