"""Background work with signals, cancel and clean teardown (STYLE.md, "workers").

A ``Task`` runs one plain Python callable in its own ``QThread``. The callable receives a
``cancelled()`` function to poll, so core code stays Qt-free (it only sees ``Callable[[], bool]``).
Results come back on the GUI thread through queued signals. ``Task.wait()`` joins the thread;
the window joins every task before it closes, so no thread outlives its widgets.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from forensic_app.gui.qt_compat import emit

log = logging.getLogger(__name__)


class TaskCancelled(Exception):
    """Raised by task code (or mapped from the engine's own) when the user cancelled."""


def _is_cancel_exception(exc: BaseException) -> bool:
    if isinstance(exc, TaskCancelled):
        return True
    try:
        from forensic_app.core.analysis import AnalysisCancelled
    except ImportError:  # pragma: no cover - engine not installed
        return False
    return isinstance(exc, AnalysisCancelled)


class _Runner(QObject):
    """Lives in the worker thread; runs the callable once and reports."""

    succeeded = Signal(object)
    failed = Signal(str, str)  # message, traceback
    cancelled = Signal()
    progress = Signal(object)
    done = Signal()

    def __init__(self, fn: Callable[..., Any], cancel_event: threading.Event) -> None:
        super().__init__()
        self._fn = fn
        self._cancel = cancel_event

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self._cancel.is_set, lambda obj: emit(self.progress, obj))
        except BaseException as exc:  # noqa: BLE001 - reported to the GUI, never lost
            if _is_cancel_exception(exc) or self._cancel.is_set():
                emit(self.cancelled)
            else:
                emit(self.failed, str(exc) or type(exc).__name__, traceback.format_exc())
        else:
            if self._cancel.is_set():
                emit(self.cancelled)
            else:
                emit(self.succeeded, result)
        finally:
            emit(self.done)


class Task(QObject):
    """One background job. Connect to the signals, then call ``start()``.

    ``fn(cancelled, progress)`` runs in a worker thread: ``cancelled()`` returns True once
    ``cancel()`` was called; ``progress(obj)`` emits ``progress`` on the GUI thread.
    Exactly one of ``succeeded``/``failed``/``cancelled`` is emitted, then ``finished``.
    """

    succeeded = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    progress = Signal(object)
    finished = Signal()

    def __init__(
        self, fn: Callable[..., Any], name: str = "task", parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.name = name
        self._cancel = threading.Event()
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._runner = _Runner(fn, self._cancel)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        # Queued across threads: these slots run on the thread that owns this Task (GUI).
        self._runner.succeeded.connect(self.succeeded)
        self._runner.failed.connect(self.failed)
        self._runner.cancelled.connect(self.cancelled)
        self._runner.progress.connect(self.progress)
        # Direct: quit from the worker thread itself, so a GUI thread blocked in wait() is freed.
        self._runner.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)
        self._running = False

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def cancel(self) -> None:
        """Ask the job to stop; it stops at its next ``cancelled()`` check."""
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def is_running(self) -> bool:
        return self._running

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Join the worker thread; True if it has stopped."""
        if not self._thread.isRunning():
            return True
        return bool(self._thread.wait(timeout_ms))

    def _on_thread_finished(self) -> None:
        self._running = False
        emit(self.finished)
