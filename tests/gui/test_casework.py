"""Casework in the window: folder batch with statuses/progress/cancel, review, filters, case
folder with audit entries for the examiner's actions, HTML and PDF reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gui_helpers import FakeEngine, open_and_wait, write_photo
from pdf_text import body_size, pdf_text

from forensic_app.core.audit import read_audit
from forensic_app.gui.batch_panel import FILTERS


def write_report_and_wait(qtbot, export, path):
    """Reports are written in a worker thread; wait for ``reportFinished`` (the outcome)."""
    window_ui = export.__self__
    with qtbot.waitSignal(window_ui.reportFinished, timeout=60_000) as blocker:
        assert export(path) is not None
    qtbot.waitUntil(lambda: window_ui.report_task is None, timeout=10_000)  # thread joined
    return blocker.args[1]


def filter_index(name: str) -> int:
    return [n for n, _ in FILTERS].index(name)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "seized"
    for i in range(3):
        write_photo(root / f"img{i}.png", seed=i)
    write_photo(root / "sub" / "deeper.png", seed=7)
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "notes.txt").write_text("not a photo")
    return root


def run_batch(qtbot, window, folder: Path, timeout: int = 20_000) -> str:
    with qtbot.waitSignal(window.casework.batch.finished, timeout=timeout) as blocker:
        assert window.open_folder(folder)
    return blocker.args[0]


def test_folder_batch_lists_statuses_progress_and_results(qtbot, make_window, folder):
    window = make_window()
    ui = window.casework
    assert run_batch(qtbot, window, folder) == "done"
    rows = ui.panel.model.rows
    assert len(rows) == 5  # recursive, images only
    by_name = {Path(r.path).name: r for r in rows}
    assert by_name["broken.jpg"].status == "error"
    assert by_name["broken.jpg"].status_text() == "error" and by_name["broken.jpg"].message
    for name in ("img0.png", "img1.png", "img2.png", "deeper.png"):
        assert by_name[name].status == "done" and by_name[name].status_text() == "3 faces"
    assert ui.panel.progress.value() == 5 and ui.panel.progress.maximum() == 5
    assert "done in" in ui.panel.eta_label.text() and "1 failed" in ui.panel.eta_label.text()
    assert not ui.panel.cancel_button.isEnabled() and ui.batch.task is None  # joined
    assert ui.act_open_folder.isEnabled()


def test_results_arrive_while_the_batch_runs(qtbot, make_window, folder):
    window = make_window(FakeEngine(delay_s=0.3))
    ui = window.casework
    arrivals = []
    ui.batch.itemUpdated.connect(lambda i, status, *_: arrivals.append(status))
    with qtbot.waitSignal(ui.batch.finished, timeout=20_000):
        window.open_folder(folder)
        qtbot.waitUntil(lambda: "done" in arrivals, timeout=10_000)
        assert ui.batch.running  # a finished photo shows before the batch ends
        assert not ui.act_open_folder.isEnabled() and ui.act_cancel_batch.isEnabled()
        assert window.act_open.isEnabled()  # review stays possible during a batch


def test_cancel_batch(qtbot, make_window, folder):
    engine = FakeEngine(block_until_cancelled=True)
    window = make_window(engine)
    ui = window.casework
    with qtbot.waitSignal(ui.batch.finished, timeout=20_000) as blocker:
        window.open_folder(folder)
        qtbot.waitUntil(engine.started.is_set, timeout=10_000)  # listed, then started
        ui.panel.cancel_button.click()
    assert blocker.args == ["cancelled"]
    statuses = [r.status for r in ui.panel.model.rows]
    assert "done" not in statuses and statuses.count("cancelled") >= 3
    assert ui.batch.task is None


def test_review_filters_and_correction_updates_batch_row(qtbot, make_window, folder):
    window = make_window()
    ui = window.casework
    run_batch(qtbot, window, folder)
    ui.panel.set_filter_index(filter_index("Errors"))
    assert [Path(r.path).name for r in ui.panel.visible_rows()] == ["broken.jpg"]
    ui.panel.set_filter_index(filter_index("With uncertain faces"))
    assert len(ui.panel.visible_rows()) == 4
    ui.panel.set_filter_index(filter_index("With manual corrections"))
    assert ui.panel.visible_rows() == []

    index = next(r.index for r in ui.panel.model.rows if r.path.endswith("img1.png"))
    engine_calls = window.engines.engine.calls
    ui.open_review(index)
    assert Path(window.doc.image.path).name == "img1.png"
    assert len(window.view.box_items()) == 3
    assert window.engines.engine.calls == engine_calls  # shown from the batch, not re-analysed
    window.select_face(2)
    window.relabel_selected("female")
    assert [Path(r.path).name for r in ui.panel.visible_rows()] == ["img1.png"]
    ui.panel.set_filter_index(filter_index("All photos"))
    assert len(ui.panel.visible_rows()) == 5

    # Next/previous follow the batch list (sorted by #) while reviewing a batch.
    names = [Path(r.path).name for r in ui.panel.visible_rows()]
    window.act_next.trigger()
    assert Path(window.doc.image.path).name == names[names.index("img1.png") + 1]
    window.act_prev.trigger()
    window.act_prev.trigger()
    assert Path(window.doc.image.path).name == names[names.index("img1.png") - 1]


def test_case_folder_records_batch_edits_exports_and_reports(
    qtbot, make_window, folder, tmp_path, record_dialogs
):
    window = make_window()
    ui = window.casework
    case_dir = tmp_path / "case"
    ui.cases.new_case(case_dir, "Operation Test", "Examiner A")
    assert ui.case_label.text() == "Case: Operation Test"
    assert run_batch(qtbot, window, folder) == "done"
    records = list((case_dir / "results").glob("*.json"))
    assert len(records) == 5  # 4 results + 1 unreadable photo
    assert len(list((case_dir / "annotated").iterdir())) == 4

    index = next(r.index for r in ui.panel.model.rows if r.path.endswith("img0.png"))
    ui.open_review(index)
    sha = window.doc.image.sha256
    window.select_face(0)
    window.relabel_selected("male")
    stored = json.loads((case_dir / "results" / f"{sha}.json").read_text())
    assert stored["manual_edits"] == 1 and stored["result"]["faces"][0]["manual_label"] is True
    out = tmp_path / "exports" / "img0_annotated.png"
    out.parent.mkdir()
    assert window.save_annotated_to(out) == out

    report = write_report_and_wait(qtbot, ui.export_html, tmp_path / "exports" / "report.html")
    assert report is not None and report.path.is_file() and not report.issues
    html = report.path.read_text(encoding="utf-8")
    assert "Operation Test" in html and "data:image/jpeg;base64" in html
    assert 'src="http' not in html  # opens without network access
    pdf = write_report_and_wait(qtbot, ui.export_pdf, tmp_path / "exports" / "report.pdf")
    assert pdf is not None and pdf.path.read_bytes().startswith(b"%PDF")
    assert "Operation Test" in pdf_text(pdf.path) and body_size(pdf.path) >= 9.0
    assert record_dialogs == []

    log = read_audit(case_dir / "audit.jsonl")
    assert log.ok
    actions = [e["action"] for e in log.entries]
    for expected in (
        "case-created",
        "batch-started",
        "analysed",
        "analysis-failed",
        "batch-finished",
        "photo-opened",
        "manual-edit",
        "exported",
        "integrity-check",
    ):
        assert expected in actions, expected
    edit = next(e for e in log.entries if e["action"] == "manual-edit")
    assert edit["sha256"] == sha and edit["examiner"] == "Examiner A"
    assert edit["detail"]["edit"] == "manual_relabel"
    kinds = [e["detail"].get("kind") for e in log.entries if e["action"] == "exported"]
    assert {"annotated", "html-report", "pdf-report"} <= set(kinds)


def test_changed_input_is_reported_loudly(qtbot, make_window, folder, tmp_path, record_dialogs):
    window = make_window()
    ui = window.casework
    ui.cases.new_case(tmp_path / "case", "Integrity", "Examiner B")
    run_batch(qtbot, window, folder)
    write_photo(folder / "img2.png", seed=99)  # the evidence changed after it was analysed
    report = write_report_and_wait(qtbot, ui.export_html, tmp_path / "report.html")
    assert report is not None and report.issues
    assert record_dialogs and record_dialogs[-1][0] == "Input photos changed or missing"
    assert "img2.png" in record_dialogs[-1][1]


def test_single_photo_analysis_is_stored_in_the_open_case(qtbot, make_window, photo, tmp_path):
    window = make_window()
    case = window.casework.cases.new_case(tmp_path / "case", "Single", None)
    open_and_wait(qtbot, window, photo)
    sha = window.doc.image.sha256
    assert (case.root / "results" / f"{sha}.json").is_file()
    actions = [e["action"] for e in read_audit(case.root / "audit.jsonl").entries]
    assert actions.index("photo-opened") < actions.index("analysed")
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000):
        window.act_analyze.trigger()
    actions = [e["action"] for e in read_audit(case.root / "audit.jsonl").entries]
    assert "re-analysed" in actions


def test_dropping_a_folder_starts_a_batch(qtbot, make_window, folder):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
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
    with qtbot.waitSignal(window.casework.batch.finished, timeout=20_000):
        QApplication.sendEvent(window, drop)
    assert len(window.casework.panel.model.rows) == 5
    assert window.casework.dock.isVisible()


def test_folder_batch_analyses_one_photo_per_core_on_its_own_engine(
    qtbot, make_window, folder, monkeypatch
):
    """Like the CLI, a window batch runs one single-threaded engine worker per core."""
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    window = make_window()
    made: list[tuple[int | None, FakeEngine]] = []

    def batch_factory(threads):
        made.append((threads, FakeEngine()))
        return made[-1][1]

    window.engines.batch_factory = batch_factory
    ui = window.casework
    assert run_batch(qtbot, window, folder) == "done"
    assert ui.batch.last_workers == 2
    assert [t for t, _ in made] == [1]  # one batch engine, single-threaded sessions
    assert made[0][1].calls == 4  # it analysed every readable photo...
    assert window.engines.engine is None or window.engines.engine.calls == 0  # ...not the UI's
    done = [r for r in ui.panel.model.rows if r.status == "done"]
    assert len(done) == 4 and all(r.status_text() == "3 faces" for r in done)


def test_batch_of_one_photo_uses_the_window_engine(make_window):
    window = make_window()
    window.engines.batch_factory = lambda threads: pytest.fail("no batch engine for one photo")
    engine, workers = window.engines.for_batch(1, cores=4)
    assert workers == 1 and engine is window.engines.get()


def test_window_case_verifies_after_batch_edit_and_exports(qtbot, make_window, folder, tmp_path):
    from forensic_app.core.case import Case
    from forensic_app.core.casecheck import verify_case

    window = make_window()
    ui = window.casework
    ui.cases.new_case(tmp_path / "case", "Verify", "Examiner A")
    assert run_batch(qtbot, window, folder) == "done"
    index = next(r.index for r in ui.panel.model.rows if r.path.endswith("img1.png"))
    ui.open_review(index)
    window.select_face(0)
    window.relabel_selected("female")
    report = write_report_and_wait(qtbot, ui.export_html, tmp_path / "report.html")
    assert report is not None and report.ok and report.not_logged is None
    pdf = write_report_and_wait(qtbot, ui.export_pdf, tmp_path / "report.pdf")
    assert pdf is not None and pdf.ok and pdf.not_logged is None
    check = verify_case(Case.open(tmp_path / "case", writer=False))
    assert check.ok, check.problems()
    assert check.history_ok == 1 and check.records_ok == 5 and check.annotated_ok == 4
    assert check.head == read_audit(tmp_path / "case" / "audit.jsonl").head


def test_one_photo_analysis_during_a_batch_leaves_the_batch_alone(
    qtbot, make_window, photo, folder, tmp_path
):
    """Code review: analysing one photo while a case batch runs called
    begin_batch(reanalyse=True) and flipped the running batch into re-analysing."""
    window = make_window()
    ui = window.casework
    case = ui.cases.new_case(tmp_path / "case", "Busy", None)
    assert run_batch(qtbot, window, folder) == "done"
    engine = window.engines.get()
    key = case.begin_batch(engine, window.prefs.analysis, photos=5)  # a resumed batch runs...
    assert case.wants_lookup()
    open_and_wait(qtbot, window, photo)  # ...and the examiner analyses a photo meanwhile
    sha = window.doc.image.sha256
    assert (case.root / "results" / f"{sha}.json").is_file()
    assert case._key == key and case._reanalyse is False and case.wants_lookup()


def test_open_case_holds_the_writer_lock_for_the_window(qtbot, make_window, tmp_path):
    import os
    import subprocess
    import sys

    script = (
        "import sys\nfrom forensic_app.core.case import Case\n"
        "from forensic_app.core.caselock import CaseBusyError\n"
        "try:\n    Case.open(sys.argv[1]).close()\n    print('opened')\n"
        "except CaseBusyError as exc:\n    print('busy', exc)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))

    def other_process() -> str:
        return subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "case")],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        ).stdout

    window = make_window()
    window.casework.cases.new_case(tmp_path / "case", "Locked", None)
    seen = other_process()
    assert seen.startswith("busy") and f"pid {os.getpid()}" in seen
    window.casework.cases.close_case()
    assert other_process().startswith("opened")


def test_window_batches_get_a_batch_engine_from_the_app(qtbot, monkeypatch):
    """Code review: gui/app.py passed only an engine factory, so batch_factory was None and
    every window batch ran on one worker."""
    from forensic_app.core import analysis
    from forensic_app.gui.app import engine_factories, parse_args
    from forensic_app.gui.engine_holder import EngineHolder
    from forensic_app.gui.main_window import MainWindow

    made = []
    monkeypatch.setattr(
        analysis.Engine, "create", classmethod(lambda cls, **kw: made.append(kw) or FakeEngine())
    )
    opts = parse_args(["--models-dir", "mymodels"])
    factory, batch_factory = engine_factories(opts)
    assert EngineHolder(factory).batch_factory is None  # the old wiring: one worker
    window = MainWindow(engine_factory=factory, batch_engine_factory=batch_factory)
    qtbot.addWidget(window)
    engine, workers = window.engines.for_batch(8, cores=4)
    assert workers == 4 and isinstance(engine, FakeEngine)
    assert made == [
        {
            "models_dir": Path("mymodels"),
            "gender_model": None,
            "threads": 1,
            "precision": None,
            "detector_threads": 4,  # the detector's runs take turns on all 4 cores (ADR 0009)
        }
    ]  # precision None: each model's default (the window's setting, ADR 0011)


def test_opening_a_case_with_an_unusable_record_says_so(
    qtbot, make_window, folder, tmp_path, record_dialogs
):
    window = make_window()
    ui = window.casework
    ui.cases.new_case(tmp_path / "case", "Damaged", None)
    assert run_batch(qtbot, window, folder) == "done"
    ui.cases.close_case()
    bad = sorted((tmp_path / "case" / "results").glob("*.json"))[0]
    bad.write_text('{"path": ["not", "text"]}')
    case = ui.cases.open_case(tmp_path / "case")
    assert len(case.records()) == 4
    assert record_dialogs and record_dialogs[-1][0] == "Unusable case records"
    assert bad.name in record_dialogs[-1][1]
