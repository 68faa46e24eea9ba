"""The list of faces: thumbnail, "Face 1 — female 0.94", uncertain and manual marks.

Selecting a row emits ``faceSelected(index)``; ``select()`` (called when a box is clicked) changes
the row without re-emitting, so the photo and the list cannot ping-pong. Thumbnails are made
for the rows in view, at most ``MAX_THUMBS`` at once (memory must not grow with faces).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

from forensic_app.core.annotate import face_label
from forensic_app.core.crops import extract_crop
from forensic_app.core.results import Face, face_number
from forensic_app.gui.colors import face_color
from forensic_app.gui.photo_view import rgb_to_qimage
from forensic_app.gui.qt_compat import emit

THUMB = 44
#: At most this many rows hold a thumbnail at once: those scrolled into view are made on demand
#: and the least recently shown dropped, so a 1,000-face photo costs a screenful of pixmaps.
MAX_THUMBS = 256
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
        self.verticalScrollBar().valueChanged.connect(self._fill_visible)
        self._quiet = False
        self._placeholder = ""
        self._rgb: np.ndarray | None = None
        self._faces: list[Face] = []
        self._thumbs: OrderedDict[int, None] = OrderedDict()  # rows holding a thumbnail

    def set_placeholder(self, text: str) -> None:
        """Shown in the empty list ("No faces found", how to start)."""
        self._placeholder = text
        self.viewport().update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        if self.count() == 0 and self._placeholder:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(self.palette().ColorRole.PlaceholderText))
            painter.drawText(
                self.viewport().rect().adjusted(8, 8, -8, -8),
                Qt.AlignmentFlag.AlignHCenter
                | Qt.AlignmentFlag.AlignTop
                | Qt.TextFlag.TextWordWrap,
                self._placeholder,
            )
            painter.end()

    def set_faces(self, rgb: np.ndarray | None, faces: list[Face], selected: int = -1) -> None:
        self._quiet = True
        try:
            self.clear()
            self._rgb, self._faces = rgb, list(faces)
            self._thumbs.clear()
            for i, face in enumerate(faces):
                item = QListWidgetItem(f"{face_title(i, face)}\n{face_details(face)}")
                item.setData(Qt.ItemDataRole.UserRole, i)
                item.setToolTip(item.text())
                self.addItem(item)
            self.setCurrentRow(selected if 0 <= selected < len(faces) else -1)
        finally:
            self._quiet = False
        self._fill_visible()

    def thumbnail_rows(self) -> list[int]:
        """Rows that hold a thumbnail now (at most MAX_THUMBS)."""
        return list(self._thumbs)

    def _fill_visible(self, *_: object) -> None:
        """Make the thumbnails of the rows in view; drop the least recently shown beyond the cap."""
        if self._rgb is None or not self.count():
            return
        area = self.viewport().rect()
        first = self._row_near(area.top() + 1, +1)
        last = self._row_near(area.bottom() - 1, -1)
        first = max(0, first)
        if last < first:  # not laid out yet, or the view ends below the last row
            last = first + max(16, area.height() // THUMB + 2)
        for i in range(first, min(self.count() - 1, last) + 1):
            self._ensure_thumbnail(i)

    def _row_near(self, y: int, step: int) -> int:
        """The row at viewport height ``y``, looking past the spacing between rows; -1 if none."""
        x = self.viewport().rect().center().x()
        for dy in range(0, THUMB + 4 * self.spacing() + 8, 2):
            row = self.indexAt(QPoint(x, y + step * dy)).row()
            if row >= 0:
                return row
        return -1

    def _ensure_thumbnail(self, row: int) -> None:
        if row in self._thumbs:
            self._thumbs.move_to_end(row)
            return
        face = self._faces[row]
        self.item(row).setIcon(QIcon(face_thumbnail(self._rgb, face, THUMB, face_color(face))))
        self._thumbs[row] = None
        while len(self._thumbs) > MAX_THUMBS:
            old, _ = self._thumbs.popitem(last=False)
            self.item(old).setIcon(QIcon())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fill_visible()

    def select(self, index: int) -> None:
        """Change the current row without emitting ``faceSelected``."""
        self._quiet = True
        try:
            self.setCurrentRow(index if 0 <= index < self.count() else -1)
            if 0 <= index < self.count():
                self.scrollToItem(self.item(index))
                self._ensure_thumbnail(index)
        finally:
            self._quiet = False

    def _on_row_changed(self, row: int) -> None:
        if not self._quiet and row >= 0:
            emit(self.faceSelected, row)
