"""One engine per window, created on first use (in whichever thread first needs it).

Why lazy: loading and verifying the models takes a moment and may fail (missing or altered model
file); the window must open at once and stay usable for viewing even when the models cannot load.
The error is kept and shown, never raised into Qt.

Folder batches get their own engine: on a laptop CPU, analysing one photo per core with
single-threaded sessions is about twice as fast as one photo at a time (bench/RESULTS-batch.md),
and the interactive engine keeps its multi-threaded sessions for the photo on screen. A window
started with its own engine factory (model folder, gender model) must pass the matching batch
factory too (gui/app.py does), or its batches fall back to one worker.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def default_engine_factory(precision: str | None = None) -> Any:
    from forensic_app.core.analysis import Engine

    return Engine.create(precision=precision)


def default_batch_engine_factory(
    threads: int | None, precision: str | None = None, detector_threads: int | None = None
) -> Any:
    from forensic_app.core.analysis import Engine

    return Engine.create(threads=threads, precision=precision, detector_threads=detector_threads)


def _call(factory: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """Call a factory, passing each keyword option only to factories that take it (tests'
    fakes and older callers take none)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    return factory(*args, **{k: v for k, v in options.items() if k in params})


class EngineHolder:
    def __init__(
        self,
        factory: Callable[[], Any] | None = None,
        batch_factory: Callable[[int | None], Any] | None = None,
    ) -> None:
        self._factory = factory or default_engine_factory
        #: Makes an engine with N intra-op threads for batches; None: batches use the one engine
        #: with one worker (an injected ``factory`` gets this unless it brings its own).
        self.batch_factory = batch_factory or (
            default_batch_engine_factory if factory is None else None
        )
        self._engine: Any | None = None
        self._lock = threading.Lock()
        self.error: str | None = None
        #: Model precision for engines made from now on (None = each model's default).
        self.precision: str | None = None

    def set_precision(self, precision: str | None) -> bool:
        """Use ``precision`` from now on; drops a loaded engine made at another one (it is
        reloaded on next use). Returns True when that changed anything."""
        with self._lock:
            if precision == self.precision:
                return False
            self.precision = precision
            self._engine = None
            self.error = None
            return True

    @property
    def engine(self) -> Any | None:
        """The engine if it is loaded, else None (never loads)."""
        return self._engine

    def get(self) -> Any:
        """The engine, loading it if needed; raises the factory's error (e.g. ModelError)."""
        with self._lock:
            if self._engine is None:
                try:
                    self._engine = _call(self._factory, precision=self.precision)
                except Exception as exc:
                    self.error = str(exc)
                    raise
                self.error = None
                log.info(
                    "models loaded: %s on %s",
                    ", ".join(f"{m.role} {m.name}" for m in getattr(self._engine, "models", [])),
                    getattr(self._engine, "provider", "?"),
                )
            return self._engine

    def for_batch(self, n_photos: int, cores: int | None = None) -> tuple[Any, int]:
        """(engine, workers) for a batch of ``n_photos``, following core.batch's measured rule.

        A fresh engine is made for each batch and dropped by the caller when the batch ends, so
        its memory is not held while the investigator only reviews. Its load errors are raised
        like :meth:`get`'s.
        """
        from forensic_app.core.batch import detector_threads, recommended_parallelism

        threads, workers = recommended_parallelism(n_photos, cores=cores)
        if workers <= 1 or self.batch_factory is None:
            return self.get(), 1
        engine = _call(
            self.batch_factory,
            threads,
            precision=self.precision,
            detector_threads=detector_threads(threads, workers),
        )
        log.info("batch engine: %d worker(s) x %s thread(s)", workers, threads)
        return engine, workers
