"""The photo being reviewed: its loaded image, its result and the edits made to it.

Why a small model object: the view, the list, the panel, the undo commands and the exports all
read the same faces; they change only through ``insert_face``/``remove_face``/``replace_face``
here, which emit ``facesChanged`` so every view redraws from one source of truth.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from forensic_app.core.imaging import LoadedImage
from forensic_app.core.results import Face, ImageResult, face_number, next_face_number
from forensic_app.gui.qt_compat import emit


class PhotoDocument(QObject):
    facesChanged = Signal()
    imageChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.image: LoadedImage | None = None
        self.result: ImageResult | None = None
        #: The lowest number a face added now may get: only ever rises for one photo, so a
        #: deleted face's number is never given to another face (``take_number``).
        self._number_floor = 1

    @property
    def faces(self) -> list[Face]:
        return self.result.faces if self.result is not None else []

    @property
    def analysed(self) -> bool:
        return (
            self.result is not None
            and self.result.ok
            and bool(self.result.timings_ms or self.result.faces)
        )

    def set_image(self, image: LoadedImage | None) -> None:
        self.image = image
        self.result = (
            None
            if image is None
            else ImageResult(
                path=image.path,
                sha256=image.sha256,
                width=image.width,
                height=image.height,
                notes=list(image.notes),
            )
        )
        self._number_floor = 1
        emit(self.imageChanged)
        emit(self.facesChanged)

    def set_result(self, result: ImageResult) -> None:
        for i, face in enumerate(result.faces):
            if face.number is None:  # stored before faces had numbers: keep the one shown
                face.number = face_number(face, i)
        self.result = result
        self._number_floor = next_face_number(result.faces, self._number_floor)
        emit(self.facesChanged)

    def take_number(self) -> int:
        """A fresh face number for a face added by hand: above any number used so far."""
        number = next_face_number(self.faces, self._number_floor)
        self._number_floor = number + 1
        return number

    def insert_face(self, index: int, face: Face) -> None:
        assert self.result is not None
        self.result.faces.insert(index, face)
        emit(self.facesChanged)

    def remove_face(self, index: int) -> Face:
        assert self.result is not None
        face = self.result.faces.pop(index)
        emit(self.facesChanged)
        return face

    def replace_face(self, index: int, face: Face) -> Face:
        assert self.result is not None
        old = self.result.faces[index]
        self.result.faces[index] = face
        emit(self.facesChanged)
        return old

    def manual_count(self) -> int:
        return sum(1 for f in self.faces if f.manual)
