"""The Faces view: a thumbnail of every face of the open batch or case, for review at volume.

Pieces, each small: ``FaceGridModel`` (a list model over ``core.face_index``: one compact entry
per face, a list of positions as the order), ``FaceDelegate`` (paints the thumbnail, its label
colour and caption, asking ``ThumbnailLoader`` only for what is on screen), ``FaceGridView``
(a wrapping ``QListView`` with uniform items, so 10,000 faces lay out instantly, and the review
keys) and ``FaceGridWidget`` (filter, sort, label buttons, counts). The widget edits nothing: it
emits ``relabelRequested`` and ``openRequested``; ``face_grid_ui`` turns them into undoable
commands and window actions.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QKeyEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from forensic_app.core.annotate import face_caption
from forensic_app.core.face_index import SORTS, FaceEntry, FaceFilter, FaceIndex
from forensic_app.core.results import Face
from forensic_app.gui.colors import face_color
from forensic_app.gui.qt_compat import emit
from forensic_app.gui.thumbnails import ThumbnailLoader, thumb_key

Index = QModelIndex | QPersistentModelIndex
Identity = tuple[Hashable, int]  # (photo key, 0-based face): a face across rebuilds
_ViewState = tuple[Identity | None, list[Identity]]  # current face, selected faces

FACE_FILTERS: list[tuple[str, FaceFilter | None]] = [
    ("All faces", None),
    ("Uncertain", FaceFilter(gender="uncertain")),
    ("Perceived female", FaceFilter(gender="female")),
    ("Perceived male", FaceFilter(gender="male")),
    ("Not corrected yet", FaceFilter(manual=False)),
    ("Corrected by hand", FaceFilter(manual=True)),
]
#: Keys that set the label of the selected faces.
LABEL_KEYS = {Qt.Key.Key_F: "female", Qt.Key.Key_M: "male", Qt.Key.Key_U: "uncertain"}
#: Keys the grid keeps for itself while it has focus (the window binds them to photo actions:
#: PgUp/PgDown change photo, Delete removes the photo's selected face, A draws a box).
_OWN_KEYS = {
    Qt.Key.Key_Return,
    Qt.Key.Key_Enter,
    Qt.Key.Key_Delete,
    Qt.Key.Key_Backspace,
    Qt.Key.Key_PageUp,
    Qt.Key.Key_PageDown,
    Qt.Key.Key_Home,
    Qt.Key.Key_End,
    Qt.Key.Key_A,
    *LABEL_KEYS,
}
_PAD = 6
# Paint constants (Qt enum arithmetic is slow in Python; paint runs per face per scroll step).
_USER = Qt.ItemDataRole.UserRole
_SELECTED, _FOCUS = QStyle.StateFlag.State_Selected, QStyle.StateFlag.State_HasFocus
_HIGHLIGHT, _TEXT = QPalette.ColorRole.Highlight, QPalette.ColorRole.Text
_SELECTED_TEXT = QPalette.ColorRole.HighlightedText
_DASH, _SOLID = Qt.PenStyle.DashLine, Qt.PenStyle.SolidLine
_ELIDE = Qt.TextElideMode.ElideMiddle
_TOP_CENTER = int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
_WRAP_CENTER = int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap)
_BROKEN, _LOADING, _WHITE = QColor(70, 70, 70), QColor(200, 200, 200), QColor(255, 255, 255)
#: The longest caption ``core.annotate.face_caption`` gives a face of a large photo.
_WIDEST_CAPTION = face_caption(Face(box=[0, 0, 1, 1], gender="uncertain", p_male=0.5), 888)


def entry_face(e: FaceEntry) -> Face:
    """A ``Face`` with the entry's label fields, for the one caption and colour functions."""
    return Face(
        box=list(e.box),
        gender=e.gender,
        p_male=e.p_male,
        manual_box=e.manual_box,
        manual_label=e.manual_label,
        model_gender=e.model_gender,
        number=e.number,
    )


class FaceGridModel(QAbstractListModel):
    """Rows are ``order`` (positions into ``index.entries``); ``UserRole`` gives the entry."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.index_ = FaceIndex()
        self.order: list[int] = []
        self._row_of: dict[int, int] = {}

    def set_view(self, index: FaceIndex, order: list[int]) -> None:
        self.beginResetModel()
        self.index_, self.order = index, order
        self._row_of = {pos: row for row, pos in enumerate(order)}
        self.endResetModel()

    def entry(self, row: int) -> FaceEntry:
        return self.index_.entries[self.order[row]]

    def row_of(self, position: int) -> int | None:
        return self._row_of.get(position)

    def photo_changed(self, photo: int) -> None:
        """Repaint the rows of one photo after its faces were updated in place."""
        for pos in self.index_.positions(photo):
            row = self._row_of.get(pos)
            if row is not None:
                i = self.index(row, 0)
                emit(self.dataChanged, i, i)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.order)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.order):
            return None
        e = self.entry(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return face_caption(entry_face(e), e.number)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(e)
        if role == Qt.ItemDataRole.UserRole:
            return e
        return None

    def tooltip(self, e: FaceEntry) -> str:
        ref = self.index_.photos[e.photo]
        lines = [ref.path, f"Face {e.number}: {face_caption(entry_face(e))}"]
        if e.p_male is not None:
            lines.append(f"model: p(male) {e.p_male:.2f}, confidence {e.confidence:.2f}")
        if e.manual_label:
            lines.append("label set by hand")
        if e.manual_box:
            lines.append("box drawn by hand")
        lines.append(f"face {e.size:.0f} px (shorter side)")
        return "\n".join(lines)


class FaceDelegate(QStyledItemDelegate):
    """Thumbnail in its label colour, caption and photo name; thumbnails come lazily."""

    def __init__(self, loader: ThumbnailLoader, parent: Any = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.font = QFont()
        self.font.setPointSizeF(max(7.5, self.font.pointSizeF() * 0.9))
        self.bold = QFont(self.font)
        self.bold.setBold(True)
        self.fm, self.fm_bold = QFontMetrics(self.font), QFontMetrics(self.bold)
        self.line = self.fm.height()
        # wide enough for the longest caption wording, so no label is ever cut short
        self.width = max(
            self.loader.size + 2 * _PAD,
            QFontMetrics(self.bold).horizontalAdvance(_WIDEST_CAPTION) + 2 * _PAD,
        )

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:  # noqa: N802
        side = self.loader.size
        return QSize(self.width, side + 2 * _PAD + 3 * self.line + 4)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        # Called for every face on screen at every scroll step: constants are precomputed and
        # nothing here decodes, sorts or allocates more than a few small Qt values.
        model = index.model()
        e: FaceEntry | None = model.data(index, _USER)
        if e is None:
            return
        ref = model.index_.photos[e.photo]  # type: ignore[attr-defined]
        r = option.rect.adjusted(2, 2, -2, -2)
        state = option.state
        selected = bool(state & _SELECTED)
        pal = option.palette
        painter.save()
        if selected:
            painter.fillRect(r, pal.color(_HIGHLIGHT))
        if state & _FOCUS:
            painter.setPen(QPen(pal.color(_TEXT), 1, _DASH))
            painter.drawRect(r.adjusted(0, 0, -1, -1))
        side = self.loader.size
        thumb = QRect(r.x() + (r.width() - side) // 2, r.y() + _PAD - 2, side, side)
        dpr = painter.device().devicePixelRatio()
        if dpr != self.loader.scale:
            self.loader.set_scale(dpr)
        value = self.loader.thumbnail(thumb_key(ref.path, ref.sha256, e.box))
        if value is None or isinstance(value, str):
            painter.fillRect(thumb, _BROKEN if value else _LOADING)
            if value:
                painter.setPen(_WHITE)
                painter.setFont(self.font)
                text = "photo unreadable" if "changed" not in value else "photo changed"
                painter.drawText(thumb.adjusted(4, 4, -4, -4), _WRAP_CENTER, text)
        else:
            painter.drawImage(thumb, value)
        face = entry_face(e)
        painter.setPen(
            QPen(face_color(face), 4 if e.manual else 3, _DASH if e.manual_box else _SOLID)
        )
        painter.drawRect(thumb.adjusted(1, 1, -2, -2))
        painter.setPen(pal.color(_SELECTED_TEXT if selected else _TEXT))
        y = thumb.bottom() + 3
        width = r.width() - 4
        # "2 female manual (model: male 0.81)": the examiner's call, then the model's answer
        label, _, model_answer = face_caption(face, e.number).partition(" (")
        for font, fm, text in (
            (self.bold, self.fm_bold, label),
            (self.font, self.fm, f"({model_answer}" if model_answer else ""),
            (self.font, self.fm, os.path.basename(ref.path)),
        ):
            painter.setFont(font)
            painter.drawText(
                QRect(r.x() + 2, y, width, self.line),
                _TOP_CENTER,
                fm.elidedText(text, _ELIDE, width),
            )
            y += self.line
        painter.restore()


class FaceGridView(QListView):
    """A wrapping grid of uniform items. Signals: ``labelRequested(gender)`` (F / M / U),
    ``openRequested(row)`` (Enter)."""

    labelRequested = Signal(str)
    openRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)  # layout without asking every item its size
        self.setMovement(QListView.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSpacing(2)
        self.doubleClicked.connect(lambda i: emit(self.openRequested, i.row()))

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ShortcutOverride and isinstance(e, QKeyEvent):
            mods = e.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            plain = not mods & (
                Qt.KeyboardModifier.ControlModifier
                | Qt.KeyboardModifier.AltModifier
                | Qt.KeyboardModifier.MetaModifier
            )
            if plain and e.key() in _OWN_KEYS:
                e.accept()
                return True
        return super().event(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802 - Qt API
        mods = e.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        plain = not mods & (
            Qt.KeyboardModifier.ControlModifier
            | Qt.KeyboardModifier.AltModifier
            | Qt.KeyboardModifier.MetaModifier
        )
        key = Qt.Key(e.key())
        if plain and key in LABEL_KEYS:
            emit(self.labelRequested, LABEL_KEYS[key])
            e.accept()
            return
        if plain and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if self.currentIndex().isValid():
                emit(self.openRequested, self.currentIndex().row())
            e.accept()
            return
        if plain and key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace, Qt.Key.Key_A):
            e.accept()  # photo actions; nothing to do in the grid
            return
        super().keyPressEvent(e)

    def keyboardSearch(self, search: str) -> None:  # noqa: N802 - letters are review keys here
        pass


class FaceGridWidget(QWidget):
    """Signals: ``relabelRequested(positions, gender)``, ``openRequested(position)``, where a
    position is an index into ``model.index_.entries``, and ``sourceChanged(kind)``."""

    relabelRequested = Signal(list, str)
    openRequested = Signal(int)
    sourceChanged = Signal(str)  # "batch" | "case"

    def __init__(
        self, loader: ThumbnailLoader | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.loader = loader or ThumbnailLoader(parent=self)
        self.model = FaceGridModel(self)
        self.view = FaceGridView()
        self.view.setModel(self.model)
        self.delegate = FaceDelegate(self.loader, self.view)
        self.view.setItemDelegate(self.delegate)
        self.view.labelRequested.connect(self.label_selected)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.openRequested.connect(self._open_row)
        self.loader.thumbnailReady.connect(self._thumbnail_ready)
        self._repaint = QTimer(self)
        self._repaint.setSingleShot(True)
        self._repaint.setInterval(30)
        self._repaint.timeout.connect(self.view.viewport().update)

        self.source_label = QLabel("")
        self.source_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.filter_box = QComboBox()
        for text, _ in FACE_FILTERS:
            self.filter_box.addItem(text)
        self.sort_box = QComboBox()
        for key, text in SORTS.items():
            self.sort_box.addItem(text, key)
        self.reverse_box = QCheckBox("Reverse")
        #: Shown when a batch and a case are both open: list the batch or the whole case.
        self.source_box = QComboBox()
        self.source_box.addItem("This batch", "batch")
        self.source_box.addItem("The whole case", "case")
        self.source_box.setToolTip("A batch and a case are open: which faces to list")
        self.source_box.currentIndexChanged.connect(
            lambda _: emit(self.sourceChanged, str(self.source_box.currentData()))
        )
        self.source_caption = QLabel("List:")
        self.show_source_choice(False)
        for w in (self.filter_box, self.sort_box):
            w.currentIndexChanged.connect(lambda _: self.apply_view())
        self.reverse_box.toggled.connect(lambda _: self.apply_view())
        self.label_buttons: dict[str, QPushButton] = {}
        for gender, key in (("female", "F"), ("male", "M"), ("uncertain", "U")):
            b = QPushButton(f"{gender.capitalize()} ({key})")
            b.setToolTip(f"Label the selected faces {gender} by hand ({key}); Ctrl+Z undoes")
            b.clicked.connect(lambda _=False, g=gender: self.label_selected(g))
            self.label_buttons[gender] = b
        self.open_button = QPushButton("Open photo (Enter)")
        self.open_button.clicked.connect(lambda: self._open_row(self.view.currentIndex().row()))
        self.count_label = QLabel("")
        self.empty_label = QLabel(
            "Open a folder (Ctrl+Shift+O) or a case to review every face it holds here."
        )
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        hint = QLabel(
            "Arrows move \u00b7 Shift/Ctrl+click or Shift+arrows select several \u00b7 "
            "F / M / U label them by hand (one face: then the next) \u00b7 "
            "Enter opens the photo \u00b7 Ctrl+Z undoes"
        )
        hint.setWordWrap(True)
        hint.setEnabled(False)

        top = QHBoxLayout()  # what is listed, and how many
        top.addWidget(self.source_label, 1)
        top.addWidget(self.count_label)
        actions = QHBoxLayout()  # how it is shown, and what to do with the selection
        for w in (
            self.source_caption,
            self.source_box,
            QLabel("Show:"),
            self.filter_box,
            QLabel("Sort:"),
            self.sort_box,
        ):
            actions.addWidget(w)
        actions.addWidget(self.reverse_box)
        actions.addStretch(1)
        for b in self.label_buttons.values():
            actions.addWidget(b)
        actions.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addLayout(actions)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.empty_label, 1)
        layout.addWidget(hint)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self._update_buttons()
        self._update_empty()

    # ---- content ---------------------------------------------------------------------------
    @property
    def index(self) -> FaceIndex:
        return self.model.index_

    def current_filter(self) -> FaceFilter | None:
        return FACE_FILTERS[self.filter_box.currentIndex()][1]

    def current_sort(self) -> str:
        return str(self.sort_box.currentData())

    def set_index(self, index: FaceIndex, source: str) -> None:
        """Show a new list of faces (a batch result arrived, a case was opened), keeping the
        filter, the sort, the current and selected faces still there, and the scroll position."""
        state = self._view_state()
        self.model.index_ = index
        self.source_label.setText(source)
        self.source_label.setToolTip(source)
        self.apply_view(state, keep_scroll=True)

    def apply_view(self, state: _ViewState | None = None, keep_scroll: bool = False) -> None:
        """Filter and sort again (the order stays put between calls, even after relabels)."""
        state = state if state is not None else self._view_state()
        scroll = self.view.verticalScrollBar().value()
        index = self.model.index_
        order = index.select(
            self.current_filter(), self.current_sort(), self.reverse_box.isChecked()
        )
        self.model.set_view(index, order)
        self._restore(state)
        if keep_scroll:
            self.view.verticalScrollBar().setValue(scroll)
        elif self.view.currentIndex().isValid():
            self.view.scrollTo(self.view.currentIndex())
        self._update_counts()
        self._update_buttons()
        self._update_empty()

    def show_source_choice(self, shown: bool) -> None:
        self.source_box.setVisible(shown)
        self.source_caption.setVisible(shown)

    def photo_changed(self, photo: int) -> None:
        self.model.photo_changed(photo)
        self._update_counts()

    def set_current_row(self, row: int, select: bool = True) -> None:
        i = self.model.index(row, 0)
        if not i.isValid():
            return
        flags = (
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            if select
            else QItemSelectionModel.SelectionFlag.NoUpdate
        )
        self.view.selectionModel().setCurrentIndex(i, flags)
        self.view.scrollTo(i)

    def selected_positions(self) -> list[int]:
        rows = sorted(i.row() for i in self.view.selectionModel().selectedIndexes())
        if not rows and self.view.currentIndex().isValid():
            rows = [self.view.currentIndex().row()]
        return [self.model.order[r] for r in rows]

    def label_selected(self, gender: str) -> None:
        positions = self.selected_positions()
        if not positions:
            return
        emit(self.relabelRequested, positions, gender)
        if len(positions) == 1:  # one face at a time: go on to the next
            row = self.view.currentIndex().row()
            if row + 1 < self.model.rowCount():
                self.set_current_row(row + 1)

    def context_menu(self) -> QMenu:
        """Right-click: the label buttons' actions for the selection, and Open photo."""
        menu = QMenu(self)
        n = len(self.selected_positions())
        menu.addSection(f"{n} face{'s' if n != 1 else ''} selected")
        for gender, button in self.label_buttons.items():
            act = menu.addAction(f"Label as {gender} ({button.text()[-2]})")
            act.triggered.connect(lambda _=False, g=gender: self.label_selected(g))
            act.setEnabled(n > 0)
        menu.addSeparator()
        act = menu.addAction("Open photo (Enter)")
        act.triggered.connect(lambda: self._open_row(self.view.currentIndex().row()))
        act.setEnabled(self.view.currentIndex().isValid())
        return menu

    def _context_menu(self, pos: QPoint) -> None:
        self.context_menu().exec(self.view.viewport().mapToGlobal(pos))

    # ---- internals -------------------------------------------------------------------------
    def _identity(self, row: int) -> Identity:
        e = self.model.entry(row)
        return (self.model.index_.photos[e.photo].key, e.face)

    def _view_state(self) -> _ViewState:
        """The current and selected faces by identity (photo key, face), which survive a new
        index and a new order; rows do not."""
        i = self.view.currentIndex()
        current = self._identity(i.row()) if i.isValid() else None
        rows = {j.row() for j in self.view.selectionModel().selectedIndexes()}
        return current, [self._identity(r) for r in sorted(rows)]

    def _row_of(self, ident: Identity) -> int | None:
        index = self.model.index_
        p = index.photo_of_key(ident[0])
        pos = index.position(p, ident[1]) if p is not None else None
        return self.model.row_of(pos) if pos is not None else None

    def _restore(self, state: _ViewState) -> None:
        current, selected = state
        rows = sorted(r for r in map(self._row_of, selected) if r is not None)
        selection = QItemSelection()
        start = prev = None
        for r in [*rows, None]:  # contiguous runs: 10,000 selected faces are a few ranges
            if r is not None and prev is not None and r == prev + 1:
                prev = r
                continue
            if start is not None:
                selection.select(self.model.index(start, 0), self.model.index(prev, 0))
            start = prev = r
        sm = self.view.selectionModel()
        sm.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        row = self._row_of(current) if current is not None else None
        if row is not None:
            sm.setCurrentIndex(self.model.index(row, 0), QItemSelectionModel.SelectionFlag.NoUpdate)

    def _open_row(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            emit(self.openRequested, self.model.order[row])

    def _thumbnail_ready(self, _key: object) -> None:
        if not self._repaint.isActive():
            self._repaint.start()

    def _update_counts(self) -> None:
        c = self.model.index_.counts()
        shown = self.model.rowCount()
        self.count_label.setText(
            f"{shown:,} of {c['faces']:,} faces shown \u00b7 {c['female']:,} female, "
            f"{c['male']:,} male, {c['uncertain']:,} uncertain \u00b7 {c['manual']:,} by hand"
        )

    def _update_buttons(self) -> None:
        has = bool(self.model.order) and (
            self.view.selectionModel().hasSelection() or self.view.currentIndex().isValid()
        )
        for b in self.label_buttons.values():
            b.setEnabled(has)
        self.open_button.setEnabled(self.view.currentIndex().isValid())

    def _update_empty(self) -> None:
        empty = not self.model.index_.entries
        self.view.setVisible(not empty)
        self.empty_label.setVisible(empty)
