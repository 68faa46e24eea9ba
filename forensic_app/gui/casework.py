"""The open case, seen from the window: records and audit entries for what the examiner does.

The window reports events (photo opened, analysed, manual edit, export) through its edit hooks;
this controller turns them into ``core.case.Case`` calls, so the audit trail is written by the
same core code the CLI uses. Reports are ``core.report``'s HTML; PDF is that HTML printed by Qt
(``gui.pdf_report``), written atomically.

An open case is a writer session: the window holds the case's writer lock from opening to
closing (a CLI ``batch`` on the same case then exits naming this window's process), and its own
batches and single-photo analyses share that one lock.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from forensic_app.core import audit
from forensic_app.core.case import Case
from forensic_app.core.report import write_report
from forensic_app.gui.pdf_report import write_pdf_report
from forensic_app.gui.qt_compat import emit

log = logging.getLogger(__name__)

#: Window events that are manual corrections (including their undo/redo).
EDIT_ACTIONS = {
    "manual_add",
    "manual_delete",
    "manual_relabel",
    "undo_manual_add",
    "undo_manual_delete",
    "undo_manual_relabel",
    "undo_reanalyze",
    "redo_reanalyze",
}


def _corrected(result: Any) -> bool:
    """Whether a result holds an examiner's correction."""
    return bool(result.removed) or any(f.manual for f in result.faces)


class CaseController(QObject):
    caseChanged = Signal(object)  # Case | None

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.case: Case | None = None
        window.edit_hooks.append(self.on_event)

    # ---- open / close ------------------------------------------------------------------
    def new_case(
        self, folder: str | Path, name: str | None = None, examiner: str | None = None
    ) -> Case:
        engine = self.window.engines.engine
        case = Case.create(
            folder,
            name=name or None,
            examiner=examiner or None,
            engine=engine,
            settings=self.window.prefs.analysis,
        )
        self._replace(case)
        log.info("case %r created in %s", case.name, case.root)
        return case

    def open_case(self, folder: str | Path, examiner: str | None = None) -> Case:
        case = Case.open(folder, examiner=examiner or None)  # CaseBusyError names the holder
        self._replace(case)
        records, problems = case.scan_records()
        log.info("case %r opened (%d photo record(s))", case.name, len(records))
        if problems:  # never dropped silently: the examiner is told which files
            for problem in problems:
                log.error("unusable case record: %s", problem)
            self.window.show_error(
                "Unusable case records",
                f"{len(problems)} record file(s) of case {case.name} cannot "
                "be used; Case verify and the report list them:\n\n" + "\n".join(problems[:20]),
            )
        return case

    def close_case(self) -> None:
        if self.case is not None:
            log.info("case %r closed", self.case.name)
            self.case.close()  # releases the writer lock
        self._set(None)

    def _replace(self, case: Case) -> None:
        """Make ``case`` the open case; the previous one (if any) is closed only now, so a
        case that cannot be opened leaves the current one open."""
        previous = self.case
        self._set(case)
        if previous is not None and previous is not case:
            log.info("case %r closed", previous.name)
            previous.close()

    def _set(self, case: Case | None) -> None:
        self.case = case
        self.window.prefs.last_case_dir = str(case.root) if case is not None else ""
        emit(self.caseChanged, case)

    # ---- events from the window --------------------------------------------------------
    def on_event(self, action: str, detail: dict[str, Any]) -> None:
        case = self.case
        doc = self.window.doc
        if case is None or doc.image is None:
            return
        sha = detail.get("sha256")
        try:
            if action == "open":
                case.log(
                    audit.PHOTO_OPENED,
                    sha,
                    path=detail.get("path"),
                    width=detail.get("width"),
                    height=detail.get("height"),
                )
                stored = self.stored_result()
                if stored is not None and not doc.faces:
                    doc.set_result(stored)  # the case's truth, corrections and all
            elif action == "analyze" and doc.result is not None:
                self._store_analysis()
            elif action in EDIT_ACTIONS and doc.result is not None:
                entry = {k: v for k, v in detail.items() if k not in ("sha256",)}
                entry["edit"] = action
                case.save_manual_edit(copy.deepcopy(doc.result), entry, rgb=doc.image.rgb)
                self.window.corrections_saved()
            elif action in ("export_annotated", "export_results"):
                files = {k: v for k, v in detail.items() if k not in ("path", "sha256")}
                case.log(
                    audit.EXPORTED,
                    sha,
                    kind=action.replace("export_", ""),
                    photo=detail.get("path"),
                    **files,
                )
        except Exception as exc:  # noqa: BLE001 - the examiner must know the trail has a gap
            self.window.show_error(
                "Case record not written",
                f"{action} could not be recorded in case {case.name}: {exc}",
            )

    def stored_result(self) -> Any | None:
        """A copy of the open case's record for the photo under review (None without one).

        Why: the case record is where the examiner's corrections live; a photo opened, or
        reviewed from a batch row (whose result is the batch's fresh one), must show that, or
        the next edit stores the uncorrected faces over it."""
        case, image = self.case, self.window.doc.image
        if case is None or image is None or not image.sha256:
            return None
        try:
            rec = case.record_for(image.sha256)
        except Exception as exc:  # noqa: BLE001 - an unusable record is listed on opening
            log.error("case record for %s unusable: %s", image.path, exc)
            return None
        if rec is None or not rec.ok:
            return None
        result = copy.deepcopy(rec.result)
        result.path = image.path
        return result

    def save_corrections(self, why: str) -> bool:
        """Store the photo's corrected result in the open case now; False when it failed."""
        case, doc = self.case, self.window.doc
        if case is None or doc.result is None or doc.image is None:
            return False
        try:
            case.save_manual_edit(
                copy.deepcopy(doc.result), {"edit": why, "path": doc.image.path}, rgb=doc.image.rgb
            )
        except Exception as exc:  # noqa: BLE001 - the examiner is asked instead
            log.error("could not save the corrections into case %s: %s", case.name, exc)
            return False
        log.info("corrections to %s saved into case %r", Path(doc.image.path).name, case.name)
        self.window.corrections_saved()
        return True

    def _store_analysis(self) -> None:
        """Store a single-photo analysis from the window (``Case.save_single``).

        Never through ``begin_batch``: a batch of this case may be running in the background,
        and its resume key and re-analyse flag must stay as that batch set them.
        """
        case, doc = self.case, self.window.doc
        engine = self.window.engines.engine
        if case is None or engine is None or doc.result is None or doc.image is None:
            return
        rec = case.save_single(
            engine, self.window.prefs.analysis, copy.deepcopy(doc.result), doc.image
        )
        self.window.corrections_saved()  # the stored result carries the corrections
        if (
            rec is not None
            and rec.result.ok
            and _corrected(rec.result)
            and not _corrected(doc.result)
        ):
            # The photo came back (PgUp, Open) and was analysed afresh: the case carried the
            # examiner's earlier corrections onto the new result. Show that result, or the
            # next edit would store the window's uncorrected faces over them.
            shown = copy.deepcopy(rec.result)
            shown.path = doc.image.path
            doc.set_result(shown)
            log.info(
                "showing %d earlier correction(s) from case %r",
                sum(1 for f in shown.faces if f.manual),
                case.name,
            )

    # ---- reports -----------------------------------------------------------------------
    def write_html_report(self, out_path: str | Path | None = None):
        """Re-hash the inputs and write the HTML report; returns core's ReportOutcome."""
        assert self.case is not None
        outcome = write_report(self.case, out_path, generated_by=self._examiner())
        log.info(
            "report written: %s (SHA-256 %s, %d photo(s), %d face(s))",
            outcome.path,
            outcome.sha256,
            outcome.photos,
            outcome.faces,
        )
        return outcome

    def write_pdf_report(self, out_path: str | Path):
        """Print the report to PDF (``gui.pdf_report``: A4, text in points); its PdfOutcome."""
        assert self.case is not None
        outcome = write_pdf_report(self.case, out_path, generated_by=self._examiner())
        log.info(
            "PDF report written: %s (%d page(s), SHA-256 %s)",
            outcome.path,
            outcome.pages,
            outcome.sha256,
        )
        return outcome

    def _examiner(self) -> str | None:
        return self.case.examiner if self.case is not None else None
