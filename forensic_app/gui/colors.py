"""Qt views of the one colour table, ``forensic_app.core.annotate.BOX_COLORS``.

Why: data colours are data (STYLE.md): boxes look the same on screen, in exports and in light or
dark themes. This module only converts; it owns no colour of its own.
"""

from __future__ import annotations

from PySide6.QtGui import QColor

from forensic_app.core.annotate import BOX_COLORS
from forensic_app.core.annotate import face_color as core_face_color
from forensic_app.core.results import Face


def qcolor(key: str) -> QColor:
    r, g, b = BOX_COLORS.get(key, BOX_COLORS["uncertain"])
    return QColor(r, g, b)


def face_color(face: Face) -> QColor:
    """A face's colour, exactly as exports draw it ("manual" for corrected faces)."""
    return QColor(*core_face_color(face))


def text_color_on(background: QColor) -> QColor:
    """Black or white, whichever reads better on ``background`` (relative luminance)."""
    lum = 0.2126 * background.redF() + 0.7152 * background.greenF() + 0.0722 * background.blueF()
    return QColor(0, 0, 0) if lum > 0.55 else QColor(255, 255, 255)
