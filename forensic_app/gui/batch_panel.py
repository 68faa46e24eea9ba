"""The batch list: one row per photo with its status, face counts and manual marks, filters,
a progress bar with ETA, and Cancel. Double-click (or Enter) opens a photo for review.

The rows are filled from ``core.batch`` statuses as they arrive; the filters are
``core.filters.ResultFilter`` so "with uncertain faces" means the same here, in the CLI and in
the report.

Memory: a row keeps a compact ``PhotoSummary`` (counts, not faces); the full result goes to a
``ResultSpill`` on disk and is read back when the photo is opened for review, so a batch of
any size costs a few hundred bytes per photo (docs/adr/0009-onnxruntime-memory.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from forensic_app.core import batch as core_batch
from forensic_app.core.filters import PhotoSummary, ResultFilter
from forensic_app.core.progress import Progress, format_duration
from forensic_app.core.results import ImageResult
from forensic_app.core.spill import ResultSpill
from forensic_app.gui.qt_compat import emit

COLUMNS = ["#", "Photo", "Status", "Faces", "Female", "Male", "Uncertain", "Manual", "Reason"]
#: The column holding why a photo failed (the error text; empty for photos that worked).
REASON_COLUMN = COLUMNS.index("Reason")
FILTERS: list[tuple[str, ResultFilter | None]] = [
    ("All photos", None),
    ("With faces", ResultFilter(faces=True)),
    ("With uncertain faces", ResultFilter(uncertain=True)),
    ("With manual corrections", ResultFilter(manual=True)),
    ("With a face perceived female", ResultFilter(gender="female")),
    ("With a face perceived male", ResultFilter(gender="male")),
    ("Without faces", ResultFilter(faces=False, errors=False)),
    ("Errors", ResultFilter(errors=True)),
]
ERROR_COLOR = QColor(198, 40, 40)
Index = QModelIndex | QPersistentModelIndex


@dataclass
class BatchRow:
    index: int
    path: str
    relative: str
    status: str = core_batch.QUEUED
    message: str = ""
    summary: PhotoSummary | None = None  # the result's counts; the result is in the spill
    #: The model's spill (set by BatchModel.set_rows); ``result`` reads the row's result from it.
    spill: ResultSpill | None = field(default=None, repr=False, compare=False)

    @property
    def result(self) -> ImageResult | None:
        """The full result, read back from disk (a fresh copy each time; None until finished)."""
        if self.spill is None or self.summary is None:
            return None
        return self.spill.get(self.index)

    def count(self, gender: str | None = None) -> int | None:
        if self.summary is None or self.summary.error:
            return None
        return self.summary.faces if gender is None else self.summary.count(gender)

    def manual(self) -> int | None:
        if self.summary is None or self.summary.error:
            return None
        return self.summary.manual

    def status_text(self) -> str:
        if self.status in (core_batch.DONE, core_batch.UNCHANGED) and self.summary is not None:
            n = self.summary.faces
            text = f"{n} face{'s' if n != 1 else ''}"
            return text + (" (unchanged)" if self.status == core_batch.UNCHANGED else "")
        if self.status == core_batch.ERROR:
            return "error"
        return self.status


class BatchModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[BatchRow] = []
        self.spill = ResultSpill()

    def set_rows(self, rows: list[BatchRow]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.spill.close()
        self.spill = ResultSpill()
        for row in rows:
            row.spill = self.spill
        self.endResetModel()

    def result_of(self, index: int) -> ImageResult | None:
        """The row's full result, read back from the spill (None before it finished)."""
        return self.spill.get(index) if 0 <= index < len(self.rows) else None

    def update(self, index: int, status: str, message: str, result: ImageResult | None) -> None:
        if not 0 <= index < len(self.rows):
            return
        row = self.rows[index]
        row.status, row.message = status, message
        if result is not None:
            self.spill.put(index, result)
            row.summary = PhotoSummary.of(result)
        emit(self.dataChanged, self.index(index, 0), self.index(index, len(COLUMNS) - 1))

    def set_result(self, index: int, result: ImageResult) -> None:
        """Replace a row's result (after a manual correction in the review)."""
        self.update(index, self.rows[index].status, self.rows[index].message, result)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,  # noqa: N802
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            values = [
                row.index + 1,
                row.relative,
                row.status_text(),
                row.count(),
                row.count("female"),
                row.count("male"),
                row.count("uncertain"),
                row.manual(),
                row.message if row.status == core_batch.ERROR else "",
            ]
            v = values[col]
            return "" if v is None else v
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{row.path}\n{row.message}" if row.message else row.path
        if role == Qt.ItemDataRole.ForegroundRole and row.status == core_batch.ERROR:
            return ERROR_COLOR
        if role == Qt.ItemDataRole.TextAlignmentRole and col not in (1, 2, REASON_COLUMN):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return row
        return None


class BatchFilterProxy(QSortFilterProxyModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._filter: ResultFilter | None = None

    def set_filter(self, flt: ResultFilter | None) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9; invalidateFilter() is deprecated
            self.beginFilterChange()
            self._filter = flt
            self.endFilterChange()
        else:  # pragma: no cover - older Qt
            self._filter = flt
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:  # noqa: N802
        if self._filter is None:
            return True
        model = self.sourceModel()
        row: BatchRow = model.rows[source_row]  # type: ignore[attr-defined]
        return row.summary is not None and self._filter(row.summary)


class BatchPanel(QWidget):
    """Signals: ``photoActivated(row index)``, ``cancelRequested()``."""

    photoActivated = Signal(int)
    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = BatchModel(self)
        self.proxy = BatchFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setDynamicSortFilter(True)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(48)  # the dock may be small while no batch runs
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(REASON_COLUMN, QHeaderView.ResizeMode.Stretch)
        self.table.activated.connect(self._activated)
        self.table.doubleClicked.connect(self._activated)

        self.folder_label = QLabel("No folder open.")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.filter_box = QComboBox()
        for text, _ in FILTERS:
            self.filter_box.addItem(text)
        self.filter_box.currentIndexChanged.connect(self._filter_changed)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.eta_label = QLabel("")
        self.cancel_button = QPushButton("Cancel batch")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancelRequested)

        top = QHBoxLayout()
        top.addWidget(self.folder_label, 1)
        top.addWidget(QLabel("Show:"))
        top.addWidget(self.filter_box)
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.eta_label)
        bottom.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)

    # ---- content -------------------------------------------------------------------------
    def start(self, folder: str | Path, rows: list[BatchRow]) -> None:
        self.folder_label.setText(f"{folder} \u2014 {len(rows)} photo(s)")
        self.folder_label.setToolTip(str(folder))
        # A filter left on from the last batch must not hide the new one.
        self.filter_box.setCurrentIndex(0)
        self.model.set_rows(rows)
        self.progress.setRange(0, max(1, len(rows)))
        self.progress.setValue(0)
        self.eta_label.setText("")

    def finish(self, outcome: str) -> None:
        """The batch ended: a cancelled one says so in place of its (now meaningless) ETA."""
        self.set_running(False)
        if outcome in ("cancelled", "failed"):
            done, total = self.progress.value(), self.progress.maximum()
            self.eta_label.setText(f"{outcome}: {done} of {total} photo(s) done")

    def rows_height(self) -> int:
        """Height that shows every row (capped by the caller), with header and controls."""
        rows = max(1, self.model.rowCount())
        row_h = self.table.verticalHeader().defaultSectionSize()
        chrome = self.table.horizontalHeader().sizeHint().height() + 4 * row_h
        return chrome + rows * row_h

    def set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)

    def set_progress(self, p: Progress) -> None:
        self.progress.setRange(0, max(1, p.total))
        self.progress.setValue(p.done)
        rate = p.photos_per_s
        parts = []
        if p.failed:
            parts.append(f"{p.failed} failed")
        if rate:
            parts.append(f"{rate:.2f} photos/s")
        if p.done < p.total:
            parts.append(f"ETA {format_duration(p.eta_s)}")
        else:
            parts.append(f"done in {format_duration(p.elapsed_s)}")
        self.eta_label.setText("  ".join(parts))

    def visible_rows(self) -> list[BatchRow]:
        return [
            self.proxy.data(self.proxy.index(r, 0), Qt.ItemDataRole.UserRole)
            for r in range(self.proxy.rowCount())
        ]

    def set_filter_index(self, i: int) -> None:
        self.filter_box.setCurrentIndex(i)

    def _filter_changed(self, i: int) -> None:
        self.proxy.set_filter(FILTERS[i][1])

    def _activated(self, proxy_index: QModelIndex) -> None:
        row = self.proxy.data(proxy_index, Qt.ItemDataRole.UserRole)
        if row is not None:
            emit(self.photoActivated, row.index)

    def select_row(self, index: int) -> None:
        src = self.model.index(index, 0)
        proxy_index = self.proxy.mapFromSource(src)
        if proxy_index.isValid():
            self.table.selectRow(proxy_index.row())
