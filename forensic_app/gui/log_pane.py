"""The log pane: what happened (detections, timings, saves, errors), fed by Python logging.

A ``logging.Handler`` emits a Qt signal, so records logged from worker threads are appended on
the GUI thread (queued connection) and the pane never touches widgets from another thread.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from forensic_app.gui.qt_compat import emit

MAX_LINES = 5000


class _Bridge(QObject):
    record = Signal(str, int)


class QtLogHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.bridge = _Bridge()
        self.setFormatter(
            logging.Formatter("%(asctime)s  %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            emit(self.bridge.record, self.format(record).splitlines()[0], record.levelno)
        except RuntimeError:  # the pane was destroyed while a thread was still logging
            pass


class LogPane(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.handler = QtLogHandler()
        self.handler.bridge.record.connect(self.append_line)

    def append_line(self, text: str, level: int = logging.INFO) -> None:
        self.appendPlainText(text)

    def attach(self, logger: logging.Logger) -> None:
        logger.addHandler(self.handler)

    def detach(self, logger: logging.Logger) -> None:
        logger.removeHandler(self.handler)
