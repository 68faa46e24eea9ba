"""Runs a folder through ``core.batch.BatchRunner`` in the background and reports each photo.

The runner's callbacks come from its own threads; they only emit the task's ``progress`` signal
(thread-safe, queued to the GUI thread), so widgets are touched on the GUI thread only. Cancel
stops the runner (no new photo starts; the current one is cancelled inside the engine).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from forensic_app.core.batch import BatchRunner
from forensic_app.core.inputs import InputPhoto
from forensic_app.core.settings import AnalysisSettings
from forensic_app.gui.engine_holder import EngineHolder
from forensic_app.gui.qt_compat import emit
from forensic_app.gui.workers import Task, TaskCancelled

log = logging.getLogger(__name__)


class BatchController(QObject):
    itemUpdated = Signal(int, str, str, object)  # index, status, message, ImageResult | None
    progressed = Signal(object)  # a Progress snapshot
    finished = Signal(str)  # "done" | "cancelled" | "failed"

    def __init__(self, engines: EngineHolder, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engines = engines
        self.task: Task | None = None
        self._runner: BatchRunner | None = None
        self._outcome = ""
        self.last_outcome: Any | None = None
        #: Photos analysed at once in the last batch (one per core on a multi-core machine).
        self.last_workers = 0
        self.last_models: list[Any] = []

    @property
    def running(self) -> bool:
        return self.task is not None

    def start(
        self, photos: list[InputPhoto], settings: AnalysisSettings, case: Any | None = None
    ) -> bool:
        if self.running:
            return False
        paths = [p.path for p in photos]
        preset = {p.path: p.error for p in photos if p.error}
        engines = self.engines

        def work(cancelled: Callable[[], bool], progress: Callable[[Any], None]) -> Any:
            engine, workers = engines.for_batch(len(paths))
            self.last_workers = workers
            self.last_models = list(getattr(engine, "models", []))  # for the status bar
            if cancelled():
                raise TaskCancelled()

            def on_item(item) -> None:
                progress(("item", item.index, item.status, item.message, item.result))

            def on_progress(p) -> None:
                progress(("progress", dataclasses.replace(p)))

            # Items keep compact summaries; each result reaches the list once, via on_item.
            runner = BatchRunner(
                engine,
                settings,
                store=case,
                on_item=on_item,
                on_progress=on_progress,
                workers=workers,
                keep_results=False,
            )
            self._runner = runner
            if cancelled():
                runner.cancel()
            if case is not None:
                case.begin_batch(engine, settings, photos=len(paths))
            outcome = runner.run(paths, preset_errors=preset)
            if case is not None:
                case.end_batch(outcome)
            return outcome

        task = Task(work, name="batch", parent=self)
        task.progress.connect(self._on_progress)
        task.succeeded.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.cancelled.connect(lambda: self._set_outcome("cancelled"))
        task.finished.connect(self._on_finished)
        self.task = task
        self._outcome = ""
        log.info(
            "batch of %d photo(s) started%s",
            len(paths),
            f" in case {case.name}" if case is not None else "",
        )
        task.start()
        return True

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self._runner is not None:
            self._runner.cancel()

    def wait(self, timeout_ms: int = 60_000) -> bool:
        return self.task is None or self.task.wait(timeout_ms)

    def _set_outcome(self, outcome: str) -> None:
        if outcome == "cancelled" and self._outcome != "cancelled":
            log.info("batch cancelled before its first photo")
        self._outcome = outcome

    def _on_progress(self, msg: tuple) -> None:
        if msg[0] == "item":
            _, index, status, message, result = msg
            emit(self.itemUpdated, index, status, message, result)
        elif msg[0] == "progress":
            emit(self.progressed, msg[1])

    def _on_done(self, outcome: Any) -> None:
        self.last_outcome = outcome
        self._outcome = "cancelled" if outcome.cancelled else "done"
        p = outcome.progress
        log.info(
            "batch %s: %d/%d photo(s), %d failed, %d unchanged",
            self._outcome,
            p.done,
            p.total,
            p.failed,
            p.skipped,
        )

    def _on_failed(self, message: str, details: str) -> None:
        self._outcome = "failed"
        log.error("batch failed: %s", message)
        log.debug("%s", details)
        self.last_error = message

    def _on_finished(self) -> None:
        task, self.task = self.task, None
        self._runner = None
        if task is not None:
            task.wait()
            task.deleteLater()
        emit(self.finished, self._outcome or "done")
