"""The photo with its face boxes, drawn in image coordinates (STYLE.md, "draw in image coords").

The scene holds one pixmap item at (0, 0) with the photo's pixel size and one ``FaceBoxItem``
per face whose rectangle is the face box in image pixels. Zoom and pan are view transforms, so
boxes stay exact at every zoom and device-pixel ratio; pens are cosmetic (constant screen width)
and captions ignore the transform so they stay readable.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QKeySequence,
    QPainter,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from forensic_app.core.annotate import face_caption, layout_labels
from forensic_app.core.results import Face, face_number
from forensic_app.gui.colors import face_color, qcolor, text_color_on
from forensic_app.gui.qt_compat import emit

MIN_SCALE = 0.02
MAX_SCALE = 32.0
ZOOM_STEP = 1.25
#: A dragged box smaller than this (image pixels, either side) is treated as a stray click.
MIN_DRAWN_BOX = 4.0


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """A QImage that owns a copy of an HxWx3 uint8 RGB array."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class CaptionItem(QGraphicsItem):
    """A label on a coloured tab; ignores the view transform so it reads the same at any zoom."""

    def __init__(self, text: str, color: QColor, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self._font = QFont()
        self._font.setPointSizeF(9.0)
        self._font.setBold(True)
        self._text = text
        self._color = color
        self._rect = QRectF()
        self._relayout()

    def _relayout(self) -> None:
        fm = QFontMetricsF(self._font)
        w = fm.horizontalAdvance(self._text) + 8
        h = fm.height() + 2
        self.prepareGeometryChange()
        self._rect = QRectF(0, -h, w, h)  # sits on top of the box's top-left corner

    def text(self) -> str:
        return self._text

    def set_style(self, text: str, color: QColor) -> None:
        self._text, self._color = text, color
        self._relayout()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._rect

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        painter.fillRect(self._rect, self._color)
        painter.setPen(text_color_on(self._color))
        painter.setFont(self._font)
        painter.drawText(
            self._rect.adjusted(4, 0, -4, 0),
            Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
            self._text,
        )


class FaceBoxItem(QGraphicsRectItem):
    """One face: its box in image pixels plus a caption with the perceived gender and confidence."""

    def __init__(self, index: int, face: Face, selected: bool = False) -> None:
        x1, y1, x2, y2 = face.box
        super().__init__(QRectF(x1, y1, max(x2 - x1, 1.0), max(y2 - y1, 1.0)))
        self.index = index
        self.face = face
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton | Qt.MouseButton.RightButton)
        self.caption = CaptionItem("", QColor(), self)
        self.caption.setPos(x1, y1)
        # A leader line from a caption moved away from its box (crowds), in image coordinates;
        # the view puts it in the scene below every box and caption (z 0.5).
        self.leader = QGraphicsLineItem()
        self.leader.setZValue(0.5)
        self.leader.setVisible(False)
        self.set_selected(selected)

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        color = face_color(self.face)
        pen = QPen(color, 2.0)
        pen.setCosmetic(True)  # width in screen pixels, whatever the zoom
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        if self.face.manual_box:
            pen.setStyle(Qt.PenStyle.DashLine)
        self.setPen(pen)
        self.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        self.caption.set_style(face_caption(self.face, face_number(self.face, self.index)), color)
        leader_pen = QPen(color, 1.5)
        leader_pen.setCosmetic(True)
        self.leader.setPen(leader_pen)
        self.caption.setToolTip(self.caption.text())
        self.setZValue(2.0 if selected else 1.0)
        self.update()

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self.selected:
            # Like the exports: a thick outline in the selection colour under the face colour.
            halo = QPen(qcolor("selected"), 6.0)
            halo.setCosmetic(True)
            halo.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            painter.setPen(halo)
            painter.drawRect(self.rect())
        painter.setPen(self.pen())
        painter.drawRect(self.rect())

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self.rect().adjusted(-4, -4, 4, 4)


class PhotoView(QGraphicsView):
    """Zoomable, pannable view of one photo and its faces.

    Signals: ``faceClicked(index)`` on a left click on a box; ``boxDrawn([x1, y1, x2, y2])`` when
    a box was dragged in add-face mode; ``contextMenuAt(global QPoint, index or -1)`` on a right
    click; ``zoomChanged(scale)``.
    """

    faceClicked = Signal(int)
    boxDrawn = Signal(list)
    contextMenuAt = Signal(QPoint, int)
    zoomChanged = Signal(float)
    addModeChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(
            QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform
        )
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setBackgroundBrush(QColor(40, 40, 40))  # neutral grey: photo colours read true
        self.setAcceptDrops(False)  # drops go to the main window
        # Cosmetic pens and captions extend past item bounds at low zoom: repaint whole view.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._pixmap_item: QGraphicsPixmapItem | None = None
        self._boxes: list[FaceBoxItem] = []
        self._leaders: list[QGraphicsLineItem] = []
        self._placeholder = ""
        self._selected = -1
        self._fit_mode = True
        self._add_mode = False
        self._drag_origin: QPointF | None = None
        self._rubber: QGraphicsRectItem | None = None
        # Captions keep their screen size at every zoom, so their footprint in image pixels
        # changes with it: re-place them (debounced, a crowd costs a few ms) after each change.
        self._caption_timer = QTimer(self)
        self._caption_timer.setSingleShot(True)
        self._caption_timer.setInterval(15)
        self._caption_timer.timeout.connect(self.layout_captions)
        self.zoomChanged.connect(lambda _scale: self._caption_timer.start())

    # ---- content -------------------------------------------------------------------------
    def set_image(self, rgb: np.ndarray | None) -> None:
        """Show a new photo (or nothing), clear the boxes and fit it to the window."""
        for item in self._boxes:
            self.scene().removeItem(item)
            self.scene().removeItem(item.leader)
        if self._pixmap_item is not None:
            self.scene().removeItem(self._pixmap_item)
        if self._rubber is not None:
            self.scene().removeItem(self._rubber)
        self._boxes = []
        self._selected = -1
        self._pixmap_item = None
        self._rubber = None
        if rgb is None:
            self.scene().setSceneRect(QRectF())
            return
        pixmap = QPixmap.fromImage(rgb_to_qimage(rgb))
        self._pixmap_item = self.scene().addPixmap(pixmap)
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._pixmap_item.setZValue(0)
        self.scene().setSceneRect(QRectF(pixmap.rect()))
        self.fit_to_window()

    def set_placeholder(self, text: str) -> None:
        """A hint drawn over the view: how to start when empty, "No faces found" after an
        analysis that found none ("" for none)."""
        if text != self._placeholder:
            self._placeholder = text
            self.viewport().update()

    def placeholder(self) -> str:
        return self._placeholder

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt API
        super().drawForeground(painter, rect)
        if not self._placeholder:
            return
        painter.save()
        painter.resetTransform()  # viewport pixels
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        painter.setFont(font)
        area = QRectF(self.viewport().rect()).adjusted(24, 24, -24, -24)
        flags = Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap
        if self._pixmap_item is None:
            flags |= Qt.AlignmentFlag.AlignVCenter
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(area, flags, self._placeholder)
        else:  # over the photo: a dark tab at the top so it reads on any picture
            fm = QFontMetricsF(font)
            w = fm.horizontalAdvance(self._placeholder) + 24
            tab = QRectF(area.center().x() - w / 2, area.top(), w, fm.height() + 12)
            painter.fillRect(tab, QColor(0, 0, 0, 170))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(tab, Qt.AlignmentFlag.AlignCenter, self._placeholder)
        painter.restore()

    def has_image(self) -> bool:
        return self._pixmap_item is not None

    def image_rect(self) -> QRectF:
        return self._pixmap_item.boundingRect() if self._pixmap_item else QRectF()

    def set_faces(self, faces: list[Face], selected: int = -1) -> None:
        for item in self._boxes:
            self.scene().removeItem(item)
            self.scene().removeItem(item.leader)
        self._boxes = [FaceBoxItem(i, f, i == selected) for i, f in enumerate(faces)]
        for item in self._boxes:
            self.scene().addItem(item)
            self.scene().addItem(item.leader)
        self._selected = selected if 0 <= selected < len(faces) else -1
        self.layout_captions()

    def layout_captions(self) -> None:
        """Place every caption where it covers no other caption and no face, as exports do.

        Uses the exports' own layout (``core.annotate.layout_labels``) on the captions' current
        size in image pixels, so tightly packed faces stay readable on screen at any zoom; a
        caption that had to move gets a leader line to its box.
        """
        self._caption_timer.stop()
        if not self._boxes or self._pixmap_item is None:
            return
        scale = self.scale_factor() or 1.0
        sizes = []
        for item in self._boxes:
            r = item.caption.boundingRect()
            sizes.append((r.width() / scale, r.height() / scale))
        img = self.image_rect()
        pad = 2.0 / scale  # the box outline's width on screen, in image pixels
        boxes = [
            (x1 - pad, y1 - pad, x2 + pad, y2 + pad)
            for x1, y1, x2, y2 in (item.face.box for item in self._boxes)
        ]
        spots = layout_labels(boxes, sizes, img.width(), img.height())
        for item, spot in zip(self._boxes, spots, strict=True):
            x1, _y1, _x2, y2 = spot.rect
            item.caption.setPos(x1, y2)  # the caption's rect sits above its position
            if spot.leader is not None:
                (ax, ay), (bx, by) = spot.leader
                item.leader.setLine(ax, ay, bx, by)
            item.leader.setVisible(spot.leader is not None)

    def caption_rects(self) -> list[QRectF]:
        """Every caption's rectangle in image (scene) coordinates at the current zoom."""
        scale = self.scale_factor() or 1.0
        out = []
        for item in self._boxes:
            r = item.caption.boundingRect()
            pos = item.caption.scenePos()
            out.append(
                QRectF(
                    pos.x() + r.x() / scale,
                    pos.y() + r.y() / scale,
                    r.width() / scale,
                    r.height() / scale,
                )
            )
        return out

    def box_items(self) -> list[FaceBoxItem]:
        return list(self._boxes)

    def selected_index(self) -> int:
        return self._selected

    def select(self, index: int, center: bool = False) -> None:
        """Highlight face ``index`` (-1 for none); ``center`` scrolls it into the middle."""
        if not 0 <= index < len(self._boxes):
            index = -1
        for item in self._boxes:
            item.set_selected(item.index == index)
        self._selected = index
        if center and index >= 0:
            self.centerOn(self._boxes[index])

    # ---- zoom ----------------------------------------------------------------------------
    def scale_factor(self) -> float:
        return float(self.transform().m11())

    def _set_scale(self, scale: float) -> None:
        scale = min(MAX_SCALE, max(MIN_SCALE, scale))
        current = self.scale_factor()
        if current > 0 and abs(scale - current) > 1e-9:
            self.scale(scale / current, scale / current)
        emit(self.zoomChanged, self.scale_factor())

    def zoom_by(self, factor: float) -> None:
        self._fit_mode = False
        self._set_scale(self.scale_factor() * factor)

    def zoom_in(self) -> None:
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.zoom_by(ZOOM_STEP)
        self.setTransformationAnchor(anchor)

    def zoom_out(self) -> None:
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.zoom_by(1.0 / ZOOM_STEP)
        self.setTransformationAnchor(anchor)

    def actual_size(self) -> None:
        """100 %: one image pixel per device-independent screen pixel."""
        self._fit_mode = False
        self.resetTransform()
        emit(self.zoomChanged, self.scale_factor())

    def fit_to_window(self) -> None:
        self._fit_mode = True
        if self._pixmap_item is not None:
            self.fitInView(self._pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)
        emit(self.zoomChanged, self.scale_factor())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if self._fit_mode and self._pixmap_item is not None:
            self.fitInView(self._pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)
            emit(self.zoomChanged, self.scale_factor())

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._pixmap_item is None:
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(ZOOM_STEP**steps)
        event.accept()

    # ---- add-face mode -------------------------------------------------------------------
    def set_add_mode(self, on: bool) -> None:
        self._add_mode = bool(on)
        self.setDragMode(
            QGraphicsView.DragMode.NoDrag if on else QGraphicsView.DragMode.ScrollHandDrag
        )
        cursor = Qt.CursorShape.CrossCursor if on else Qt.CursorShape.OpenHandCursor
        self.viewport().setCursor(cursor)
        emit(self.addModeChanged, self._add_mode)

    def add_mode(self) -> bool:
        return self._add_mode

    def _clamped(self, p: QPointF) -> QPointF:
        r = self.image_rect()
        return QPointF(min(max(p.x(), r.left()), r.right()), min(max(p.y(), r.top()), r.bottom()))

    # ---- mouse ---------------------------------------------------------------------------
    def face_index_at(self, view_pos: QPoint) -> int:
        """Index of the face box under a viewport position, or -1 (smallest box wins).

        Hit-testing uses our own box list rather than ``QGraphicsView.items()``: that call hands
        out fresh wrappers of scene-owned items, which PySide may outlive the scene with.
        """
        p = self.mapToScene(view_pos)
        hits = [
            (b.rect().width() * b.rect().height(), b.index)
            for b in self._boxes
            if b.rect().contains(p)
        ]
        return min(hits)[1] if hits else -1

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._pixmap_item is None:
            return super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self._add_mode:
            self._drag_origin = self._clamped(self.mapToScene(event.position().toPoint()))
            pen = QPen(qcolor("manual"), 2.0, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._rubber = self.scene().addRect(QRectF(self._drag_origin, self._drag_origin), pen)
            self._rubber.setZValue(5)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton:
            index = self.face_index_at(event.position().toPoint())
            if index >= 0:
                emit(self.faceClicked, index)
                event.accept()
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._drag_origin is not None and self._rubber is not None:
            p = self._clamped(self.mapToScene(event.position().toPoint()))
            self._rubber.setRect(QRectF(self._drag_origin, p).normalized())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._drag_origin is not None and event.button() == Qt.MouseButton.LeftButton:
            p = self._clamped(self.mapToScene(event.position().toPoint()))
            rect = QRectF(self._drag_origin, p).normalized()
            if self._rubber is not None:
                self.scene().removeItem(self._rubber)
            self._rubber = None
            self._drag_origin = None
            if rect.width() >= MIN_DRAWN_BOX and rect.height() >= MIN_DRAWN_BOX:
                emit(self.boxDrawn, [rect.left(), rect.top(), rect.right(), rect.bottom()])
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._pixmap_item is None:
            return
        index = self.face_index_at(event.pos())
        emit(self.contextMenuAt, event.globalPos(), index)
        event.accept()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.matches(QKeySequence.StandardKey.Cancel) and self._add_mode:
            self.set_add_mode(False)
            event.accept()
            return
        super().keyPressEvent(event)
