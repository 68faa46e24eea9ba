"""Undoable corrections: add a face box, delete a detection, set a label by hand (one face of
the open photo, or many faces across a batch or case from the Faces view).

Each command changes the ``PhotoDocument`` only through its three edit methods and keeps what it
needs to go back exactly. An optional ``on_edit(action, detail)`` callback lets the window record
each change (log line, case audit entry) without the commands knowing about either.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any, Protocol

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
            self.on_edit(
                "manual_add",
                {"face": self.number, "box": _box(self.face), "gender": self.face.gender},
            )

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
        if not self.face.manual_box and self.doc.result is not None:
            # Remembered in the result, so a re-analysis anywhere keeps it deleted.
            self.doc.result.removed.append(list(self.face.box))
        if self.on_edit:
            self.on_edit(
                "manual_delete",
                {"face": self.number, "box": _box(self.face), "gender": self.face.gender},
            )

    def undo(self) -> None:
        assert self.face is not None
        if self.doc.result is not None and list(self.face.box) in self.doc.result.removed:
            self.doc.result.removed.remove(list(self.face.box))
        self.doc.insert_face(self.index, self.face)
        if self.on_edit:
            self.on_edit("undo_manual_delete", {"face": self.number})


class ReanalyzeCommand(QUndoCommand):
    """A re-analysis as one undoable step, so the corrections made before it stay undoable.

    ``result`` already carries the corrections (``core.corrections.carry_corrections``); undo
    brings back the result the earlier commands were made on.
    """

    def __init__(
        self, doc: PhotoDocument, result: ImageResult, on_edit: EditHook | None = None
    ) -> None:
        super().__init__("Re-analyse")
        self.doc, self.on_edit = doc, on_edit
        self.old = doc.result
        self.new = result
        self._pushed = False

    def redo(self) -> None:
        self.doc.set_result(self.new)
        if self.on_edit and self._pushed:  # the first run is the analysis, reported as such
            self.on_edit("redo_reanalyze", {"faces": len(self.new.faces)})
        self._pushed = True

    def undo(self) -> None:
        if self.old is not None:
            self.doc.set_result(self.old)
            if self.on_edit:  # what is on screen changed: an open case must store it too
                self.on_edit("undo_reanalyze", {"faces": len(self.old.faces)})


def relabelled(face: Face, gender: str) -> Face:
    """A copy of ``face`` labelled ``gender`` by hand, keeping the model's own label."""
    if gender not in GENDER_LABELS:
        raise ValueError(f"label must be one of {GENDER_LABELS}, got {gender!r}")
    model_gender = face.model_gender if face.manual_label else face.gender
    if face.manual_box and face.p_male is None:
        model_gender = None
    return replace(face, gender=gender, manual_label=True, model_gender=model_gender)


class RelabelCommand(QUndoCommand):
    def __init__(
        self, doc: PhotoDocument, index: int, gender: str, on_edit: EditHook | None = None
    ) -> None:
        self.number = face_number(doc.faces[index], index)
        super().__init__(f"Label face {self.number} {gender}")
        self.doc, self.index, self.gender, self.on_edit = doc, index, gender, on_edit
        self.old: Face = doc.faces[index]
        self.new: Face = relabelled(self.old, gender)

    def redo(self) -> None:
        self.doc.replace_face(self.index, self.new)
        if self.on_edit:
            self.on_edit(
                "manual_relabel", {"face": self.number, "from": self.old.gender, "to": self.gender}
            )

    def undo(self) -> None:
        self.doc.replace_face(self.index, self.old)
        if self.on_edit:
            self.on_edit("undo_manual_relabel", {"face": self.number, "to": self.old.gender})


@dataclass(frozen=True)
class FaceChange:
    """One face of a relabel across photos: which photo (the store's key), which face, before
    and after."""

    photo: Hashable
    face: int  # 0-based
    old: Face
    new: Face


class FaceStore(Protocol):
    """Where the Faces view's edits land (batch rows, the open photo, the case record)."""

    def set_faces(self, photo: Hashable, faces: dict[int, tuple[Face, Face]], action: str) -> None:
        """Replace ``faces[i] = (expected, replacement)`` of one photo; ``action`` is the audit
        verb ("manual_relabel" or "undo_manual_relabel")."""


class FacesRelabelCommand(QUndoCommand):
    """Set the perceived-gender label of many faces, across photos, by hand (the Faces view).

    One command for the whole selection, so one undo restores every face it changed; each
    photo's faces change together (one record and one audit entry per photo in a case).
    """

    def __init__(
        self, store: FaceStore, changes: list[FaceChange], gender: str, applied: bool = False
    ) -> None:
        n = len(changes)
        super().__init__(f"Label {n} face{'s' if n != 1 else ''} {gender}")
        self.store, self.changes, self.gender = store, list(changes), gender
        self._applied = applied  # put back on a cleared stack: its change is already made

    @classmethod
    def build(
        cls, store: FaceStore, faces: list[tuple[Hashable, int, Face]], gender: str
    ) -> FacesRelabelCommand:
        """From ``(photo, face index, current face)``: each face relabelled with ``relabelled``."""
        return cls(store, [FaceChange(p, i, f, relabelled(f, gender)) for p, i, f in faces], gender)

    def _by_photo(self, forward: bool) -> dict[Hashable, dict[int, tuple[Face, Face]]]:
        out: dict[Hashable, dict[int, tuple[Face, Face]]] = {}
        for c in self.changes:
            out.setdefault(c.photo, {})[c.face] = (c.old, c.new) if forward else (c.new, c.old)
        return out

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        for photo, faces in self._by_photo(True).items():
            self.store.set_faces(photo, faces, "manual_relabel")

    def undo(self) -> None:
        for photo, faces in self._by_photo(False).items():
            self.store.set_faces(photo, faces, "undo_manual_relabel")
