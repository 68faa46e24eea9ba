"""The Faces view in the window: a "Faces" tab beside the photo, over the open batch or case.

Why a controller of its own: the grid shows faces of many photos, not the one photo the window's
document holds, so its corrections need a store that reaches every copy of a face: the batch
row's result, the open photo (when it is that photo) and the case record. This class is that
store (``commands.FaceStore``); edits arrive as ``FacesRelabelCommand``s on the window's undo
stack, so Ctrl+Z undoes them like any other correction, in order with the photo's own edits.

Case records are written by one background writer, in the order the edits were made, through
``Case.save_manual_edit`` (the same call the window uses: record archived, annotated copy
redrawn, a ``manual-edit`` audit entry); the window's own edits wait for that queue first, so two
writers never reorder one photo's history.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QTabWidget

from forensic_app.core.case import Case
from forensic_app.core.face_index import FaceIndex
from forensic_app.core.results import Face, ImageResult, face_number
from forensic_app.gui.casework import EDIT_ACTIONS
from forensic_app.gui.commands import FacesRelabelCommand
from forensic_app.gui.face_grid import FaceGridWidget
from forensic_app.gui.qt_compat import emit
from forensic_app.gui.workers import Task

log = logging.getLogger("forensic_app.gui")

ROW, RECORD = "row", "record"  # photo keys: ("row", batch row index), ("record", record name)


def _same_box(a: Face, b: Face) -> bool:
    return [round(float(v), 1) for v in a.box] == [round(float(v), 1) for v in b.box]


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


class CaseWriter(QObject):
    """One thread that writes the Faces view's corrections into the case, in order."""

    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="case-writer")
        self._last: Future | None = None

    def submit(
        self, case: Case, result: ImageResult, entry: dict[str, Any], rgb: Any | None
    ) -> None:
        self._last = self._pool.submit(self._write, case, result, entry, rgb)

    def _write(self, case: Case, result: ImageResult, entry: dict[str, Any], rgb: Any) -> None:
        try:
            case.save_manual_edit(result, entry, rgb=rgb)
        except Exception as exc:  # noqa: BLE001 - the examiner must know the trail has a gap
            log.exception("face grid: case record not written")
            emit(self.failed, f"{Path(result.path).name}: {exc}")

    def wait(self) -> None:
        """Return once every correction submitted so far is written (FIFO, one thread)."""
        last = self._last
        if last is not None:
            last.result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class FaceGridUi(QObject):
    """Adds the Faces tab and its View-menu action to ``window``; fed by ``casework``."""

    def __init__(self, window: Any, casework: Any) -> None:
        super().__init__(window)
        self.w, self.cw = window, casework
        self.grid = FaceGridWidget()
        self.photo_page = window.takeCentralWidget()
        self.tabs = QTabWidget()
        self.tabs.setObjectName("central_tabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.photo_page, "Photo")
        self.tabs.addTab(self.grid, "Faces view")
        window.setCentralWidget(self.tabs)
        self.source = ""  # "batch" | "case" | ""
        self._case_results: dict[str, ImageResult] = {}
        self._case_task: Task | None = None
        self._dirty = True
        self.writer = CaseWriter(self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(1500)  # while a batch runs: rebuild at most every 1.5 s
        self._timer.timeout.connect(self.rebuild)

        self.act_faces = QAction("&Faces view (every face of the batch or case)", window)
        self.act_faces.setShortcut(QKeySequence("Ctrl+Shift+F"))
        self.act_faces.setStatusTip("Review every face of the open batch or case as thumbnails")
        self.act_faces.triggered.connect(self.toggle)
        window.addAction(self.act_faces)
        first = window.view_menu.actions()[0] if window.view_menu.actions() else None
        window.view_menu.insertAction(first, self.act_faces)
        window.view_menu.insertSeparator(first)

        model = casework.panel.model
        model.modelReset.connect(self.schedule)
        model.dataChanged.connect(self._rows_changed)
        casework.cases.caseChanged.connect(lambda _case: self.schedule())
        self.tabs.currentChanged.connect(self._tab_changed)
        self.grid.relabelRequested.connect(self.relabel)
        self.grid.openRequested.connect(self.open_face)
        self.grid.sourceChanged.connect(lambda _kind: self.rebuild())
        self.writer.failed.connect(lambda m: window.show_error("Case record not written", m))
        window.edit_hooks.insert(0, self._before_window_edit)
        window.edit_hooks.append(self._after_window_edit)
        self.grid.set_index(FaceIndex(), "No batch or case open.")

    # ---- showing ---------------------------------------------------------------------------
    def show_faces(self) -> None:
        self.tabs.setCurrentWidget(self.grid)
        self.grid.view.setFocus()

    def show_photo(self) -> None:
        self.tabs.setCurrentWidget(self.photo_page)

    def toggle(self) -> None:
        if self.tabs.currentWidget() is self.grid:
            self.show_photo()
        else:
            self.show_faces()

    @property
    def visible(self) -> bool:
        return self.tabs.currentWidget() is self.grid

    def _tab_changed(self, _i: int) -> None:
        if self.visible and self._dirty:
            self.rebuild()

    def schedule(self, *_: Any) -> None:
        """The batch or case changed: rebuild soon if the grid is shown, else when it is."""
        self._dirty = True
        if self.visible and not self._timer.isActive():
            self._timer.start()

    def wanted_source(self) -> str:
        """ "batch" or "case": the examiner's choice when both are open, else the one that is."""
        rows, case = self.cw.panel.model.rows, self.cw.cases.case
        if rows and case is not None:
            return str(self.grid.source_box.currentData())
        return "batch" if rows else "case" if case is not None else ""

    def rebuild(self) -> None:
        """List the faces again from the batch or the open case (``wanted_source``)."""
        self._timer.stop()
        self._dirty = False
        rows = self.cw.panel.model.rows
        case = self.cw.cases.case
        self.grid.show_source_choice(bool(rows) and case is not None)
        want = self.wanted_source()
        if want == "batch":
            self.source = "batch"
            index = FaceIndex.from_results(
                ((ROW, r.index), r.path, r.result) for r in rows if r.result is not None
            )
            done = sum(1 for r in rows if r.result is not None)
            folder = self.cw.panel.folder_label.toolTip() or "folder"
            note = "" if case is not None else " (no case: corrections are not recorded)"
            self.grid.set_index(
                index, f"Batch: {folder} \u2014 {done} of {len(rows)} photo(s) analysed{note}"
            )
        elif want == "case" and case is not None:
            self.source = "case"
            self._load_case(case)
        else:
            self.source = ""
            self._case_results = {}
            self.grid.set_index(FaceIndex(), "No batch or case open.")

    def _load_case(self, case: Case) -> None:
        """Read the case's records off the GUI thread (thousands of JSON files)."""
        if self._case_task is not None:
            self._dirty = True
            return
        self.grid.source_label.setText(f"Case: {case.name} \u2014 reading records\u2026")

        writer = self.writer

        def work(cancelled, progress) -> list[tuple[str, str, ImageResult]]:
            writer.wait()  # corrections still being written are part of what is read
            out = []
            for rec in case.records():
                rec.result.path = rec.abs_path  # compared with the open photo's path
                out.append((rec.name, rec.abs_path, rec.result))
            return out

        task = Task(work, name="face-grid-case", parent=self)
        task.succeeded.connect(lambda recs: self._case_loaded(case, recs))
        task.failed.connect(lambda m, _d: self.w.show_error("Cannot read the case", m))
        task.finished.connect(self._case_task_done)
        self._case_task = task
        task.start()

    def _case_loaded(self, case: Case, records: list[tuple[str, str, ImageResult]]) -> None:
        if self.cw.cases.case is not case or self.wanted_source() != "case":
            return
        self._case_results = {name: result for name, _path, result in records}
        index = FaceIndex.from_results(((RECORD, n), p, r) for n, p, r in records)
        self.grid.set_index(index, f"Case: {case.name} \u2014 {len(records)} photo(s)")

    def _case_task_done(self) -> None:
        task, self._case_task = self._case_task, None
        if task is not None:
            task.wait()
            task.deleteLater()
        if self._dirty:
            self.schedule()

    def _rows_changed(self, top, bottom, *_: Any) -> None:
        """A batch row got its result or a correction: update its faces in place."""
        rows = self.cw.panel.model.rows
        if self.source == "case":  # a batch into the case: new photos show after a reload
            known = {
                f"{r.result.sha256}.json"
                for r in rows[top.row() : bottom.row() + 1]
                if r.result is not None and r.result.error is None and r.result.sha256
            }
            if not known <= set(self._case_results):
                self.schedule()
            return
        if self.source != "batch" or self._dirty:
            self.schedule()
            return
        index = self.grid.index
        for i in range(top.row(), bottom.row() + 1):
            result = rows[i].result if 0 <= i < len(rows) else None
            if result is None:
                continue
            p = index.photo_of_key((ROW, i))
            if p is None or not index.update_photo(p, result):
                self.schedule()  # a new photo, or faces added/removed: positions move
                continue
            self.grid.photo_changed(p)

    # ---- the store the commands edit ---------------------------------------------------
    def result_of(self, key: Hashable) -> ImageResult | None:
        kind, k = key  # type: ignore[misc]
        if kind == ROW:
            rows = self.cw.panel.model.rows
            return rows[k].result if 0 <= k < len(rows) else None
        return self._case_results.get(k)

    def set_faces(self, photo: Hashable, faces: dict[int, tuple[Face, Face]], action: str) -> None:
        """Replace faces of one photo everywhere it is held (see the module docstring)."""
        result = self.result_of(photo)
        if result is None:
            log.warning("face grid: photo %s is no longer listed; %s not applied", photo, action)
            return
        new_faces = list(result.faces)
        changed: dict[int, Face] = {}
        for i, (expected, new) in faces.items():
            # Only a face exactly as this command left it is changed back or again: an edit
            # made since (in the Photo tab, its history gone with the photo) is never overwritten.
            if i < len(new_faces) and new_faces[i] == expected:
                new_faces[i] = new
                changed[i] = new
            else:
                log.warning(
                    "face grid: face %d of %s changed since; %s skipped",
                    face_number(new_faces[i], i) if i < len(new_faces) else i + 1,
                    Path(result.path).name,
                    action,
                )
                self.w.statusBar().showMessage(
                    f"Face {face_number(expected, i)} of {Path(result.path).name} was changed "
                    "since; left as it is.",
                    8000,
                )
        if not changed:
            return
        new_result = replace(result, faces=new_faces)
        self._store(new_result, photo, changed)
        rgb = self._sync_document(new_result, changed)
        numbers = sorted(face_number(f, i) for i, f in changed.items())
        detail = {
            "via": "faces view",
            "face_numbers": numbers,
            "to": sorted({f.gender for f in changed.values()}),
        }
        log.info(
            "%s %s (faces view): face(s) %s -> %s",
            action.replace("_", " "),
            Path(result.path).name,
            numbers,
            ", ".join(detail["to"]),
        )
        case = self.cw.cases.case
        if case is not None and new_result.sha256:
            entry = {"edit": action, **detail}
            self.writer.submit(case, copy.deepcopy(new_result), entry, rgb)

    def _store(
        self, result: ImageResult, photo: Hashable, changed: dict[int, Face] | None = None
    ) -> None:
        """Put the corrected result where the grid reads it, and into the other list that holds
        the same photo (a batch row and the case's record list), so switching lists shows it."""
        kind, k = photo  # type: ignore[misc]
        for i, row in enumerate(self.cw.panel.model.rows):
            if (kind == ROW and i == k) or (
                kind == RECORD
                and row.result is not None
                and row.result.sha256 == result.sha256
                and _same_file(row.path, result.path)
            ):
                shown = replace(result, path=row.path)
                self.cw.panel.model.set_result(i, shown)  # -> _rows_changed refreshes the grid
                self.cw.corrections.corrected(i, changed or {})  # only here without a case
        name = f"{result.sha256}.json" if kind == ROW else k
        if name in self._case_results:
            self._case_results[name] = replace(result, path=self._case_results[name].path)
            p = self.grid.index.photo_of_key((RECORD, name))
            if self.source == "case" and p is not None:
                if self.grid.index.update_photo(p, self._case_results[name]):
                    self.grid.photo_changed(p)

    def _sync_document(self, result: ImageResult, changed: dict[int, Face]) -> Any | None:
        """Apply the change to the open photo when it is this one; its pixels, or None."""
        doc = self.w.doc
        if doc.image is None or doc.result is None or doc.image.sha256 != result.sha256:
            return None
        if not _same_file(doc.image.path, result.path):
            return None
        for i, face in changed.items():
            if i < len(doc.faces) and _same_box(doc.faces[i], face):
                doc.replace_face(i, face)
        return doc.image.rgb

    # ---- review actions ----------------------------------------------------------------
    def relabel(self, positions: list[int], gender: str) -> None:
        """Label the faces at ``positions`` by hand: one undoable command for all of them."""
        if self.w.busy:
            self.w.statusBar().showMessage("Wait for the analysis to finish or cancel it.", 5000)
            return
        index = self.grid.index
        todo: list[tuple[Hashable, int, Face]] = []
        for pos in positions:
            e = index.entries[pos]
            key = index.photos[e.photo].key
            result = self.result_of(key)
            if result is None or e.face >= len(result.faces):
                continue
            face = result.faces[e.face]
            if face.manual_label and face.gender == gender:
                continue  # already so, by hand
            todo.append((key, e.face, face))
        if not todo:
            self.w.statusBar().showMessage(f"Already labelled {gender} by hand.", 3000)
            return
        self.w.undo_stack.push(FacesRelabelCommand.build(self, todo, gender))
        n = len(todo)
        self.w.statusBar().showMessage(
            f"{n} face{'s' if n != 1 else ''} labelled {gender} by hand (Ctrl+Z undoes)", 5000
        )

    def open_face(self, position: int) -> bool:
        """Open the face's photo in the Photo tab with that face selected."""
        index = self.grid.index
        e = index.entries[position]
        ref = index.photos[e.photo]
        kind, k = ref.key  # type: ignore[misc]
        doc = self.w.doc
        already = (
            doc.image is not None
            and doc.image.sha256 == ref.sha256
            and _same_file(doc.image.path, ref.path)
        )
        if not already:
            history = self._grid_history()
            if kind == ROW:
                self.cw.open_review(k)
            elif self.w.open_path(ref.path, analyze=False) and doc.image is not None:
                result = self._case_results.get(k)
                if result is not None and doc.image.sha256 == ref.sha256:
                    shown = copy.deepcopy(result)
                    shown.path = doc.image.path
                    doc.set_result(shown)
                else:
                    self.w.show_error(
                        "Photo changed since it was analysed",
                        f"{ref.path}: its SHA-256 is now {doc.image.sha256}, the "
                        f"case analysed {ref.sha256}. Re-analyse it.",
                    )
            if not self.w.undo_stack.count():  # opening cleared it: the grid's edits stay undoable
                for cmd in history:
                    self.w.undo_stack.push(
                        FacesRelabelCommand(self, cmd.changes, cmd.gender, applied=True)
                    )
        elif kind == ROW:
            self.cw.review_row = k
        if doc.image is None or doc.image.sha256 != ref.sha256 or e.face >= len(doc.faces):
            return False
        self.show_photo()
        self.w.select_face(e.face, source="code")
        self.w.view.setFocus(Qt.FocusReason.OtherFocusReason)
        return True

    def _grid_history(self) -> list[FacesRelabelCommand]:
        """The Faces view's commands now applied on the window's stack, oldest first."""
        stack = self.w.undo_stack
        cmds = (stack.command(i) for i in range(stack.index()))
        return [c for c in cmds if isinstance(c, FacesRelabelCommand)]

    # ---- window events -----------------------------------------------------------------
    def _before_window_edit(self, action: str, detail: dict[str, Any]) -> None:
        """The window is about to record an edit or analysis: let queued grid writes land
        first, so one photo's record history keeps the order the edits were made in."""
        if action in EDIT_ACTIONS or action == "analyze":
            self.writer.wait()

    def _after_window_edit(self, action: str, detail: dict[str, Any]) -> None:
        """A correction in the Photo tab of a case photo: show it in the grid too (a batch
        photo's row is updated by casework and arrives through ``_rows_changed``)."""
        if self.source != "case" or (action not in EDIT_ACTIONS and action != "analyze"):
            return
        doc = self.w.doc
        if doc.result is None or not doc.result.sha256:
            return
        name = f"{doc.result.sha256}.json"
        if name not in self._case_results:
            self.schedule()
            return
        self._case_results[name] = copy.deepcopy(doc.result)
        p = self.grid.index.photo_of_key((RECORD, name))
        if p is not None and self.grid.index.update_photo(p, self._case_results[name]):
            self.grid.photo_changed(p)
        else:
            self.schedule()

    def shutdown(self) -> None:
        self._timer.stop()
        if self._case_task is not None:
            self._case_task.cancel()
            self._case_task.wait()
        self.grid.loader.stop()
        self.writer.shutdown()
