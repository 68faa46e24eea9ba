"""Corrections held only in a folder batch's rows: never lost on quitting or a new batch.

Why a module of its own: without an open case, the Faces view writes its corrections into the
batch rows and nowhere else, and a batch photo under review writes its edits into its row as
they are made. Quitting or starting another batch would drop those rows silently. This class
remembers which rows were corrected and not stored anywhere, asks the same question as a photo
does (``gui/unsaved.py``: save to case / export / discard / cancel), exports the corrected
photos into a folder through ``gui/exporting.py``, and puts a reviewed photo's row back as it
was when the examiner discards that photo's edits.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog

from forensic_app.core.imaging import load_image
from forensic_app.core.results import Face, ImageResult
from forensic_app.gui import exporting, unsaved

log = logging.getLogger("forensic_app.gui")


class BatchCorrections:
    """Unsaved manual corrections in the batch rows of ``casework`` (a ``CaseworkUi``)."""

    def __init__(self, casework: Any) -> None:
        self.cw = casework
        #: Rows corrected while no case was open, and not exported since.
        self.rows: set[int] = set()
        #: (row, its result before the photo under review was edited, was it in ``rows``).
        self._before: tuple[int, ImageResult | None, bool] | None = None

    # ---- bookkeeping -------------------------------------------------------------------
    def reset(self) -> None:
        """A new batch replaces the rows (asked first, see ``confirm_leave``)."""
        self.rows.clear()
        self._before = None

    def corrected(self, index: int, changed: dict[int, Face]) -> None:
        """The Faces view changed faces of row ``index``; only an open case stores them
        elsewhere. They are the grid's, not the reviewed photo's unsaved edits: a Discard of
        the photo's edits keeps them (applied to the remembered row too)."""
        if self.cw.cases.case is None:
            self.rows.add(index)
        before = self._before
        if before is not None and before[0] == index and before[1] is not None:
            faces = before[1].faces
            for i, face in changed.items():
                if i < len(faces):
                    faces[i] = face
            self._before = (index, before[1], index in self.rows)

    def unsaved_rows(self) -> list[int]:
        """Rows that hold a manual correction stored nowhere else (an undo back to the model's
        answer leaves nothing to save)."""
        model_rows = self.cw.panel.model.rows
        return sorted(
            i
            for i in self.rows
            if 0 <= i < len(model_rows)
            and model_rows[i].summary is not None
            and model_rows[i].summary.manual
        )

    def review_opened(self, index: int) -> None:
        """A batch photo is shown for review: remember its row as it is now."""
        self._before = (index, self.cw.panel.model.result_of(index), index in self.rows)

    def review_saved(self) -> None:
        """The reviewed photo's corrections were exported or saved: its row is stored."""
        before, self._before = self._before, None
        if before is not None and before[0] == self.cw.review_row:
            self.rows.discard(before[0])
            self.review_opened(before[0])

    def review_discarded(self) -> None:
        """The examiner discarded the reviewed photo's edits: undo them in its row too."""
        before, self._before = self._before, None
        if before is None or before[0] != self.cw.review_row or before[1] is None:
            return
        index, result, was_unsaved = before
        self.cw.panel.model.set_result(index, result)
        if not was_unsaved:
            self.rows.discard(index)

    # ---- the question ------------------------------------------------------------------
    def confirm_leave(self, what: str) -> bool:
        """True when the batch rows may be dropped without losing a correction."""
        todo = self.unsaved_rows()
        if not todo:
            return True
        w, case = self.cw.w, self.cw.cases.case
        n = len(todo)
        name = f"{n} photo{'s' if n != 1 else ''} of the batch"
        answer = w.ask_unsaved(w, name, what, case is not None)
        if answer == unsaved.SAVE_TO_CASE and case is not None:
            return self.save_to_case(todo, "saved before " + what)
        if answer == unsaved.EXPORT:
            start = w.prefs.last_dir or str(Path.home())
            folder = QFileDialog.getExistingDirectory(
                w, "Export the corrected photos into a folder", start
            )
            return bool(folder) and self.export_to(folder, todo)
        if answer == unsaved.DISCARD:
            log.warning("corrections to %s discarded (%s)", name, what)
            self.rows.clear()
            return True
        return False

    def _results(self, todo: list[int]) -> list[tuple[int, Any, ImageResult]]:
        model = self.cw.panel.model
        out = []
        for i in todo:
            result = model.result_of(i)
            if result is not None:
                out.append((i, model.rows[i], result))
        return out

    def export_to(self, folder: str | Path, todo: list[int] | None = None) -> bool:
        """Annotated copy, JSON and CSV of every corrected photo into ``folder``; True when
        all were written. One photo failing is reported and never stops the others."""
        folder = Path(folder)
        failed: list[str] = []
        for i, row, result in self._results(self.unsaved_rows() if todo is None else todo):
            flat = "__".join(Path(row.relative).parts)  # photos in sub-folders never collide
            # Never over a file the tool did not write there (evidence named like an export).
            target = exporting.free_export_path(exporting.default_annotated_path(folder / flat))
            try:
                image = load_image(row.path)
                if image.sha256 != result.sha256:
                    raise ValueError(
                        f"its SHA-256 changed since the batch analysed it ({row.path})"
                    )
                exporting.export_results(image, result, target, self.cw.w.document_json(result))
            except Exception as exc:  # noqa: BLE001 - each photo's failure is its own
                log.error("could not export the corrections to %s: %s", row.relative, exc)
                failed.append(f"{row.relative}: {exc}")
                continue
            log.info("exported the corrections to %s as %s", row.relative, target)
            self.rows.discard(i)
        if failed:
            self.cw.w.show_error("Some corrections were not exported", "\n".join(failed))
        return not failed

    def save_to_case(self, todo: list[int], why: str) -> bool:
        """Store the corrected rows in the open case (a case opened after the corrections)."""
        case = self.cw.cases.case
        failed: list[str] = []
        for i, row, result in self._results(todo):
            try:
                case.save_manual_edit(copy.deepcopy(result), {"edit": why, "path": row.path})
            except Exception as exc:  # noqa: BLE001 - each photo's failure is its own
                failed.append(f"{row.relative}: {exc}")
                continue
            self.rows.discard(i)
        if failed:
            self.cw.w.show_error("Some corrections were not saved to the case", "\n".join(failed))
        return not failed
