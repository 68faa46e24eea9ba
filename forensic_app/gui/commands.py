"""Undoable corrections: add a face box, delete a detection, set a label by hand.

Each command changes the ``PhotoDocument`` only through its three edit methods and keeps what it
needs to go back exactly. An optional ``on_edit(action, detail)`` callback lets the window record
each change (log line, case audit entry) without the commands knowing about either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from PySide6.QtGui import QUndoCommand

from forensic_app.core.results import GENDER_LABELS, Face, ImageResult, face_number
from forensic_app.gui.document import PhotoDocument

EditHook = Callable[[str, dict[str, Any]], None]


def _box(face: Face) -> list[float]:
    return [round(float(v), 1) for v in face.box]


class AddFaceCommand(QUndoCommand):
    def __init__(self, doc: PhotoDocument, face: Face, on_edit: EditHook | None = None) -> None:
        super().__init__(f"Add face {face.gender}")
        self.doc, self.on_edit = doc, on_edit
        self.face = face if face.number is not None else replace(face, number=doc.take_number())
        self.index = len(doc.faces)
        self.number = face_number(self.face, self.index)

    def redo(self) -> None:
        self.doc.insert_face(self.index, self.face)
        if self.on_edit:
            self.on_edit("manual_add", {"face": self.number, "box": _box(self.face),
                                        "gender": self.face.gender})

    def undo(self) -> None:
        self.doc.remove_face(self.index)
        if self.on_edit:
            self.on_edit("undo_manual_add", {"face": self.number})


class DeleteFaceCommand(QUndoCommand):
    def __init__(self, doc: PhotoDocument, index: int, on_edit: EditHook | None = None) -> None:
        self.number = face_number(doc.faces[index], index)
        super().__init__(f"Delete face {self.number}")
        self.doc, self.index, self.on_edit = doc, index, on_edit
        self.face: Face | None = None

    def redo(self) -> None:
        self.face = self.doc.remove_face(self.index)
        if self.on_edit:
            self.on_edit("manual_delete", {"face": self.number, "box": _box(self.face),
                                           "gender": self.face.gender})

    def undo(self) -> None:
        assert self.face is not None
        self.doc.insert_face(self.index, self.face)
        if self.on_edit:
            self.on_edit("undo_manual_delete", {"face": self.number})


class ReanalyzeCommand(QUndoCommand):
    """A re-analysis as one undoable step, so the corrections made before it stay undoable.

    ``result`` already carries the corrections (``core.corrections.carry_corrections``); undo
    brings back the result the earlier commands were made on.
    """

    def __init__(self, doc: PhotoDocument, result: ImageResult) -> None:
        super().__init__("Re-analyse")
        self.doc = doc
        self.old = doc.result
        self.new = result

    def redo(self) -> None:
        self.doc.set_result(self.new)

    def undo(self) -> None:
        if self.old is not None:
            self.doc.set_result(self.old)


def relabelled(face: Face, gender: str) -> Face:
    """A copy of ``face`` labelled ``gender`` by hand, keeping the model's own label."""
    if gender not in GENDER_LABELS:
        raise ValueError(f"label must be one of {GENDER_LABELS}, got {gender!r}")
    model_gender = face.model_gender if face.manual_label else face.gender
    if face.manual_box and face.p_male is None:
        model_gender = None
    return replace(face, gender=gender, manual_label=True, model_gender=model_gender)


class RelabelCommand(QUndoCommand):
    def __init__(self, doc: PhotoDocument, index: int, gender: str,
                 on_edit: EditHook | None = None) -> None:
        self.number = face_number(doc.faces[index], index)
        super().__init__(f"Label face {self.number} {gender}")
        self.doc, self.index, self.gender, self.on_edit = doc, index, gender, on_edit
        self.old: Face = doc.faces[index]
        self.new: Face = relabelled(self.old, gender)

    def redo(self) -> None:
        self.doc.replace_face(self.index, self.new)
        if self.on_edit:
            self.on_edit("manual_relabel", {"face": self.number, "from": self.old.gender,
                                            "to": self.gender})

    def undo(self) -> None:
        self.doc.replace_face(self.index, self.old)
        if self.on_edit:
            self.on_edit("undo_manual_relabel", {"face": self.number, "to": self.old.gender})
