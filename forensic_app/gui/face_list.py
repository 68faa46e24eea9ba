"""The list of faces: thumbnail, "Face 1 — female 0.94", uncertain and manual marks.

Selecting a row emits ``faceSelected(index)``; ``select()`` (called when a box is clicked) changes
the row without re-emitting, so the photo and the list cannot ping-pong.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

from forensic_app.core.annotate import face_label
from forensic_app.core.crops import extract_crop
from forensic_app.core.results import Face, face_number
from forensic_app.gui.colors import face_color
from forensic_app.gui.photo_view import rgb_to_qimage
from forensic_app.gui.qt_compat import emit

THUMB = 44
#: Context around the face in thumbnails and the enlarged view (fraction of the box per side).
THUMB_MARGIN = 0.2


def face_title(index: int, face: Face) -> str:
    """The list text in the captions' wording, e.g. "Face 1 — female 0.94",
    "Face 3 — uncertain p(male) 0.52" or "Face 4 — male manual (model: female 0.70)"."""
    head = f"Face {face_number(face, index)} \u2014 "
    if face.p_male is None and face.gender == "uncertain" and not face.manual_label:
        return head + "uncertain (not classified)"
    return head + face_label(face)


def face_details(face: Face) -> str:
    """Second line: manual marks, detector score and size."""
    parts = []
    if face.manual_box:
        parts.append("manual box")
    if face.manual_label:
        parts.append("label set by hand")
    if face.score is not None:
        parts.append(f"detector {face.score:.2f}")
    x1, y1, x2, y2 = face.box
    parts.append(f"{x2 - x1:.0f}\u00d7{y2 - y1:.0f} px")
    return " \u00b7 ".join(parts)


def face_thumbnail(rgb: np.ndarray, face: Face, size: int, border: QColor | None = None) -> QPixmap:
    """A square crop of the face (core crop geometry), with an optional coloured border."""
    crop = extract_crop(rgb, face.box, size, margin=THUMB_MARGIN, shape="square")
    pixmap = QPixmap.fromImage(rgb_to_qimage(crop))
    if border is not None:
        painter = QPainter(pixmap)
        pen = QPen(border, 4)
        painter.setPen(pen)
        painter.drawRect(pixmap.rect().adjusted(2, 2, -2, -2))
        painter.end()
    return pixmap


class FaceList(QListWidget):
    faceSelected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self.currentRowChanged.connect(self._on_row_changed)
        self._quiet = False
        self._placeholder = ""

    def set_placeholder(self, text: str) -> None:
        """Shown in the empty list ("No faces found", how to start)."""
        self._placeholder = text
        self.viewport().update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        if self.count() == 0 and self._placeholder:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(self.palette().ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
                             | Qt.TextFlag.TextWordWrap, self._placeholder)
            painter.end()

    def set_faces(self, rgb: np.ndarray | None, faces: list[Face], selected: int = -1) -> None:
        self._quiet = True
        try:
            self.clear()
            for i, face in enumerate(faces):
                item = QListWidgetItem(f"{face_title(i, face)}\n{face_details(face)}")
                if rgb is not None:
                    item.setIcon(QIcon(face_thumbnail(rgb, face, THUMB, face_color(face))))
                item.setData(Qt.ItemDataRole.UserRole, i)
                item.setToolTip(item.text())
                self.addItem(item)
            self.setCurrentRow(selected if 0 <= selected < len(faces) else -1)
        finally:
            self._quiet = False

    def select(self, index: int) -> None:
        """Change the current row without emitting ``faceSelected``."""
        self._quiet = True
        try:
            self.setCurrentRow(index if 0 <= index < self.count() else -1)
            if 0 <= index < self.count():
                self.scrollToItem(self.item(index))
        finally:
            self._quiet = False

    def _on_row_changed(self, row: int) -> None:
        if not self._quiet and row >= 0:
            emit(self.faceSelected, row)
