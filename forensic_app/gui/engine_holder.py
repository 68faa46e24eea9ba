"""One engine per window, created on first use (in whichever thread first needs it).

Why lazy: loading and verifying the models takes a moment and may fail (missing or altered model
file); the window must open at once and stay usable for viewing even when the models cannot load.
The error is kept and shown, never raised into Qt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def default_engine_factory() -> Any:
    from forensic_app.core.analysis import Engine

    return Engine.create()


class EngineHolder:
    def __init__(self, factory: Callable[[], Any] | None = None) -> None:
        self._factory = factory or default_engine_factory
        self._engine: Any | None = None
        self._lock = threading.Lock()
        self.error: str | None = None

    @property
    def engine(self) -> Any | None:
        """The engine if it is loaded, else None (never loads)."""
        return self._engine

    def get(self) -> Any:
        """The engine, loading it if needed; raises the factory's error (e.g. ModelError)."""
        with self._lock:
            if self._engine is None:
                try:
                    self._engine = self._factory()
                except Exception as exc:
                    self.error = str(exc)
                    raise
                self.error = None
                log.info("models loaded: %s on %s", ", ".join(
                    f"{m.role} {m.name}" for m in getattr(self._engine, "models", [])),
                    getattr(self._engine, "provider", "?"))
            return self._engine
