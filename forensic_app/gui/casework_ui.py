"""Casework in the window: open a folder as a batch, review its photos, keep a case, report.

Kept apart from ``main_window.py`` so the single-photo window stays small: this class adds its
actions, the "Case" menu, the batch dock and a status-bar label to the window it is given, and
wires the batch controller, the case controller and the batch list together.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QWidget,
)

from forensic_app.core import audit
from forensic_app.core import batch as core_batch
from forensic_app.core.inputs import scan_inputs
from forensic_app.core.names import display
from forensic_app.gui.batch_controller import BatchController
from forensic_app.gui.batch_corrections import BatchCorrections
from forensic_app.gui.batch_panel import BatchPanel, BatchRow
from forensic_app.gui.casework import EDIT_ACTIONS, CaseController
from forensic_app.gui.qt_compat import emit
from forensic_app.gui.workers import Task

log = logging.getLogger("forensic_app.gui")


class NewCaseDialog(QDialog):
    def __init__(self, folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New case")
        self.name = QLineEdit(Path(folder).name)
        self.examiner = QLineEdit()
        self.examiner.setPlaceholderText("your name (recorded in every audit entry)")
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        folder_label = QLabel(folder)
        folder_label.setWordWrap(True)
        folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Case folder", folder_label)
        form.addRow("Case name", self.name)
        form.addRow("Examiner", self.examiner)
        # Wide enough for the placeholder and (up to a limit) the folder, so nothing is cut.
        fm = self.fontMetrics()
        text_w = max(
            fm.horizontalAdvance(self.examiner.placeholderText()) + 40,
            min(fm.horizontalAdvance(folder) + 20, 640),
        )
        self.setMinimumWidth(text_w + fm.horizontalAdvance("Case folder") + 60)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class CaseworkUi(QObject):
    #: A report finished: its kind ("HTML"/"PDF") and its outcome (None when it failed).
    reportFinished = Signal(str, object)

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.w = window
        self.report_task: Task | None = None
        self.walk_task: Task | None = None
        self.batch = BatchController(window.engines, self)
        self.cases = CaseController(window)
        self.panel = BatchPanel()
        self.review_row = -1
        #: Corrections held only in the batch rows (asked about before they would be lost).
        self.corrections = BatchCorrections(self)
        self.dock = QDockWidget("Batch", window)
        self.dock.setObjectName("dock_batch")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        window.tabifyDockWidget(window.log_dock, self.dock)
        window.log_dock.raise_()
        self.case_label = QLabel("No case")
        window.statusBar().addWidget(self.case_label)
        self._build_actions()
        self._connect()
        self.update_actions()
        from forensic_app.gui.face_grid_ui import FaceGridUi

        self.faces = FaceGridUi(window, self)  # the Faces tab over this batch or case

    # ---- construction ------------------------------------------------------------------
    def _act(self, text: str, slot, shortcut: str | None = None, tip: str = "") -> QAction:
        act = QAction(text, self.w)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        act.setStatusTip(tip)
        act.triggered.connect(slot)
        self.w.addAction(act)
        return act

    def _build_actions(self) -> None:
        w = self.w
        self.act_open_folder = self._act(
            "Open &folder (batch)…",
            self.open_folder_dialog,
            "Ctrl+Shift+O",
            "Analyse every photo in a folder",
        )
        self.act_open_folder.setIconText("Folder\u2026")
        self.act_cancel_batch = self._act(
            "Cancel &batch",
            self.batch.cancel,
            "Ctrl+Shift+Esc",
            "Stop the batch after the current photo",
        )
        self.act_new_case = self._act(
            "&New case…",
            self.new_case_dialog,
            "Ctrl+Shift+N",
            "Create a case folder with an audit log",
        )
        self.act_open_case = self._act(
            "&Open case…", self.open_case_dialog, None, "Open an existing case folder"
        )
        self.act_close_case = self._act("&Close case", self.cases.close_case)
        self.act_report_html = self._act(
            "Export case report (&HTML)…",
            self.report_html_dialog,
            "Ctrl+Shift+R",
            "Self-contained HTML report; input hashes re-checked",
        )
        self.act_report_pdf = self._act("Export case report (&PDF)…", self.report_pdf_dialog)
        w.file_menu.insertAction(w.recent_menu.menuAction(), self.act_open_folder)
        w.file_menu.insertAction(w.act_next, self.act_cancel_batch)
        case_menu = QMenu("&Case", w)
        w.menuBar().insertMenu(w.help_menu.menuAction(), case_menu)
        for act in (
            self.act_new_case,
            self.act_open_case,
            self.act_close_case,
            None,
            self.act_report_html,
            self.act_report_pdf,
        ):
            if act is None:
                case_menu.addSeparator()
            else:
                case_menu.addAction(act)
        self.case_menu = case_menu
        w.toolbar.insertAction(w.act_prev, self.act_open_folder)
        w.view_menu.addAction(self.dock.toggleViewAction())

    def _connect(self) -> None:
        self.batch.itemUpdated.connect(self._item_updated)
        self.batch.progressed.connect(self.panel.set_progress)
        self.batch.finished.connect(self._batch_finished)
        self.panel.photoActivated.connect(self.open_review)
        self.panel.cancelRequested.connect(self.batch.cancel)
        self.cases.caseChanged.connect(self._case_changed)
        self.w.edit_hooks.append(self._window_event)

    # ---- batch -------------------------------------------------------------------------
    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self.w, "Open folder of photos", self.w.prefs.last_dir or str(Path.home())
        )
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> bool:
        """List the folder's photos (recursively) and analyse them, both in the background.

        The walk itself is off the UI thread too: a seized disk's folder tree can take
        seconds to list."""
        if self.batch.running or self.walk_task is not None:
            self.w.statusBar().showMessage("A batch is already running.", 5000)
            return False
        if not self.corrections.confirm_leave("starting a new batch"):
            return False
        case = self.cases.case
        excluded = [case.root] if case is not None else []

        def work(cancelled, progress):
            return scan_inputs(
                [folder],
                recursive=True,
                exclude_dirs=excluded,
                exclude_reason="inside the open case folder",
            )

        task = Task(work, name="folder walk", parent=self)
        task.succeeded.connect(lambda scan: self._folder_listed(folder, scan, case))
        task.failed.connect(
            lambda message, _details: self.w.show_error("Cannot read the folder", message)
        )
        task.finished.connect(self._walk_finished)
        self.walk_task = task
        self.w.statusBar().showMessage(f"Listing the photos in {folder}…")
        self.update_actions()
        task.start()
        return True

    def _walk_finished(self) -> None:
        task, self.walk_task = self.walk_task, None
        if task is not None:
            task.wait()
            task.deleteLater()
        self.update_actions()

    def _folder_listed(self, folder: str | Path, scan: Any, case: Any) -> None:
        photos = scan.photos
        for skipped in scan.skipped:  # nothing is skipped silently: the log pane lists each
            log.info("not analysed: %s (%s)", display(skipped.path), skipped.reason)
        if case is not None and scan.skipped:
            case.log(audit.INPUTS_SKIPPED, files=[s.to_dict() for s in scan.skipped])
        if not photos:
            self.w.show_error("No photos found", f"{folder} holds no image files the app opens.")
            return
        rows = [BatchRow(i, p.path, p.relative) for i, p in enumerate(photos)]
        self.corrections.reset()  # asked in open_folder; the old rows go now
        self.panel.start(folder, rows)
        self.review_row = -1
        self.dock.show()
        self.dock.raise_()
        # Room for the rows there are, never more than a third of the window.
        wanted = min(self.panel.rows_height(), self.w.height() // 3)
        if abs(self.dock.height() - wanted) > 20:
            self.w.resizeDocks([self.dock], [wanted], Qt.Orientation.Vertical)
        self.w.prefs.last_dir = str(Path(folder).resolve())
        log.info("folder %s: %d photo(s)", folder, len(photos))
        self.batch.start(photos, self.w.prefs.analysis, case)
        self.panel.set_running(True)
        self.update_actions()

    def _item_updated(self, index: int, status: str, message: str, result) -> None:
        self.panel.model.update(index, status, message, result)
        if status == core_batch.ERROR:
            log.warning("%s: %s", self.panel.model.rows[index].relative, message)

    def _batch_finished(self, outcome: str) -> None:
        self.panel.finish(outcome)
        self.update_actions()
        self.w._update_status()
        if outcome == "failed":
            self.w.show_error("Batch failed", getattr(self.batch, "last_error", "unknown error"))

    def open_review(self, index: int) -> None:
        """Open a batch photo in the main view with its batch result (no re-analysis)."""
        rows = self.panel.model.rows
        if not 0 <= index < len(rows) or self.w.busy:
            return
        row = rows[index]
        stored = self.panel.model.result_of(index)  # read back from disk, a fresh copy
        has_result = stored is not None and stored.error is None

        def show_result() -> None:  # once the photo is shown (a large one loads in background)
            self.review_row = index
            self.corrections.review_opened(index)
            doc = self.w.doc
            if has_result and doc.image is not None and stored.sha256 == doc.image.sha256:
                # In a case, its record (corrections carried) wins over the batch's fresh result.
                result = self.cases.stored_result() or stored
                result.path = doc.image.path
                doc.set_result(result)
                if doc.faces:
                    self.w.select_face(0, source="auto")
            elif has_result and doc.image is not None:
                self.w.show_error(
                    "Photo changed since the batch",
                    f"{row.path}: its SHA-256 is now {doc.image.sha256}, the batch "
                    f"analysed {stored.sha256}. Re-analyse it.",
                )
            self.panel.select_row(index)
            self.w._update_actions()

        self.w.open_path(row.path, analyze=False if has_result else None, then=show_result)

    def step_review(self, step: int) -> bool:
        """Next/previous photo in the batch list as shown (sorted, filtered); False if the photo
        under review is not from the batch."""
        doc = self.w.doc
        rows = self.panel.model.rows
        if not 0 <= self.review_row < len(rows) or doc.image is None:
            return False
        if Path(rows[self.review_row].path).resolve() != Path(doc.image.path).resolve():
            return False
        visible = [r.index for r in self.panel.visible_rows()]
        if self.review_row not in visible:
            return False
        j = visible.index(self.review_row) + step
        if 0 <= j < len(visible):
            self.open_review(visible[j])
        else:
            self.w.statusBar().showMessage("No more photos in this batch view.", 3000)
        return True

    def _window_event(self, action: str, detail: dict[str, Any]) -> None:
        """Keep the batch row of the photo under review in step with corrections."""
        if action not in EDIT_ACTIONS and action != "analyze":
            return
        rows = self.panel.model.rows
        doc = self.w.doc
        if not 0 <= self.review_row < len(rows) or doc.result is None or doc.image is None:
            return
        if Path(rows[self.review_row].path).resolve() != Path(doc.image.path).resolve():
            return
        self.panel.model.set_result(self.review_row, copy.deepcopy(doc.result))

    # ---- case --------------------------------------------------------------------------
    def new_case_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.w, "Choose an empty folder for the case")
        if not folder:
            return
        dlg = NewCaseDialog(folder, self.w)
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            self.cases.new_case(folder, dlg.name.text().strip(), dlg.examiner.text().strip())
        except Exception as exc:  # noqa: BLE001
            self.w.show_error("Cannot create the case", str(exc))

    def open_case_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self.w, "Open case folder", self.w.prefs.last_case_dir or ""
        )
        if not folder:
            return
        try:
            self.cases.open_case(folder)
        except Exception as exc:  # noqa: BLE001
            self.w.show_error("Cannot open the case", str(exc))

    def _case_changed(self, case) -> None:
        self.case_label.setText(f"Case: {case.name}" if case is not None else "No case")
        self.case_label.setToolTip(str(case.root) if case is not None else "")
        self.update_actions()

    def report_html_dialog(self) -> None:
        case = self.cases.case
        if case is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self.w,
            "Export case report (HTML)",
            str(case.root / "report.html"),
            "HTML report (*.html)",
        )
        if path:
            self.export_html(path)

    def export_html(self, path: str | Path) -> Task | None:
        """Write the HTML report in the background; ``reportFinished`` says how it went."""
        return self._run_report("HTML", lambda: self.cases.write_html_report(path))

    def report_pdf_dialog(self) -> None:
        case = self.cases.case
        if case is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self.w, "Export case report (PDF)", str(case.root / "report.pdf"), "PDF (*.pdf)"
        )
        if path:
            self.export_pdf(path)

    def export_pdf(self, path: str | Path) -> Task | None:
        """Print the PDF report in the background; ``reportFinished`` says how it went."""
        return self._run_report("PDF", lambda: self.cases.write_pdf_report(path))

    def _run_report(self, kind: str, write: Callable[[], Any]) -> Task | None:
        """Reports re-hash every input and render every photo (minutes for thousands): never on
        the UI thread. One report at a time; the window stays usable meanwhile."""
        if self.report_task is not None:
            self.w.statusBar().showMessage("A report is already being written.", 5000)
            return None
        task = Task(lambda cancelled, progress: write(), name=f"{kind} report", parent=self)
        task.succeeded.connect(lambda outcome: self._report_done(kind, outcome))
        task.failed.connect(lambda message, _details: self._report_failed(kind, message))
        task.finished.connect(self._report_task_finished)
        self.report_task = task
        self.w.statusBar().showMessage(f"Writing the {kind} report (re-hashing every photo)…")
        self.update_actions()
        task.start()
        return task

    def _report_done(self, kind: str, outcome: Any) -> None:
        self._warn_integrity(outcome.issues)
        self._warn_case_findings(outcome.verification)
        self.w.statusBar().showMessage(f"{kind} report written: {outcome.path}", 8000)
        emit(self.reportFinished, kind, outcome)

    def _report_failed(self, kind: str, message: str) -> None:
        self.w.show_error(f"Could not write the {kind} report", message)
        emit(self.reportFinished, kind, None)

    def _report_task_finished(self) -> None:
        task, self.report_task = self.report_task, None
        if task is not None:
            task.wait()
            task.deleteLater()
        self.update_actions()

    def _warn_integrity(self, issues) -> None:
        if not issues:
            return
        text = "\n".join(i.describe() for i in issues[:20])
        more = f"\n… and {len(issues) - 20} more" if len(issues) > 20 else ""
        log.error(
            "INTEGRITY: %d input photo(s) changed or missing since they were opened", len(issues)
        )
        QMessageBox.warning(
            self.w,
            "Input photos changed or missing",
            "The SHA-256 of these photos no longer matches the hash taken when "
            f"they were opened. The report says so.\n\n{text}{more}",
        )

    def _warn_case_findings(self, check) -> None:
        """The case's own files (audit log, manifest, records, copies) did not verify."""
        if check is None or not check.findings:
            return
        text = "\n".join(f.describe() for f in check.findings[:20])
        more = f"\n… and {len(check.findings) - 20} more" if len(check.findings) > 20 else ""
        log.error("INTEGRITY: %d case file problem(s)", len(check.findings))
        QMessageBox.warning(
            self.w,
            "Case files do not verify",
            "These files of the case are not as the tool recorded them in the "
            f"audit log. The report says so.\n\n{text}{more}",
        )

    # ---- state -------------------------------------------------------------------------
    def update_actions(self) -> None:
        running = self.batch.running or self.walk_task is not None
        has_case = self.cases.case is not None
        self.act_open_folder.setEnabled(not running)
        self.act_cancel_batch.setEnabled(running)
        self.act_new_case.setEnabled(not running)
        self.act_open_case.setEnabled(not running)
        self.act_close_case.setEnabled(has_case and not running)
        reporting = self.report_task is not None
        self.act_report_html.setEnabled(has_case and not running and not reporting)
        self.act_report_pdf.setEnabled(has_case and not running and not reporting)

    def shutdown(self) -> None:
        if self.walk_task is not None:
            self.walk_task.wait(60_000)
        self.batch.cancel()
        self.batch.wait(60_000)
        if self.report_task is not None:
            self.report_task.wait(120_000)  # a report half written is never left behind
        self.faces.shutdown()
