"""The selected face, enlarged, with its label, confidence and manual marks."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from forensic_app.core.results import Face
from forensic_app.gui.colors import face_color, text_color_on
from forensic_app.gui.face_list import face_details, face_thumbnail, face_title
from forensic_app.gui.qt_compat import emit

PANEL_CROP = 320


class FacePanel(QWidget):
    """Shows one face large. Right-click emits ``contextMenuAt(global pos)``."""

    contextMenuAt = Signal(QPoint)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image_label.setMinimumSize(160, 160)
        self.image_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.title_label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title_label.setFont(font)
        self.title_label.setMargin(4)
        self.details_label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.details_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image_label, 1)
        layout.addWidget(self.title_label)
        layout.addWidget(self.details_label)
        self._pixmap: QPixmap | None = None
        self.show_face(None, None, -1)

    def show_face(self, rgb: np.ndarray | None, face: Face | None, index: int) -> None:
        if rgb is None or face is None or index < 0:
            self._pixmap = None
            self.image_label.clear()
            self.image_label.setText("No face selected.\nClick a box or a list entry.")
            self.title_label.setText("")
            self.title_label.setStyleSheet("")
            self.details_label.setText("")
            return
        self._pixmap = face_thumbnail(rgb, face, PANEL_CROP)
        self._rescale()
        color = face_color(face)
        fg = text_color_on(color)
        self.title_label.setText(face_title(index, face))
        # Data colour on the title: the same colour as the face's box everywhere.
        self.title_label.setStyleSheet(
            f"background-color: {color.name()}; color: {fg.name()}; border-radius: 3px;"
        )
        self.details_label.setText(face_details(face))

    def has_face(self) -> bool:
        return self._pixmap is not None

    def _rescale(self) -> None:
        if self._pixmap is None:
            return
        size = self.image_label.size()
        side = max(64, min(size.width(), size.height()))
        self.image_label.setPixmap(
            self._pixmap.scaled(
                side,
                side,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._rescale()

    def contextMenuEvent(self, event) -> None:  # noqa: N802 - Qt API
        emit(self.contextMenuAt, event.globalPos())
        event.accept()
