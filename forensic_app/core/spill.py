"""A batch's full results kept in a temporary file, read back one at a time by index.

Why: the window's batch list shows a compact summary per photo (``filters.PhotoSummary``) but
opening a photo for review shows its batch result without analysing it again. Holding every
result in memory would grow with photos per run; here each photo costs one (offset, length)
pair, and the file disappears when the spill is closed or the process ends.

The results are pickled, not written as their JSON form: ``to_dict`` escapes hostile text for
display (``text_safe``), so a JSON round trip is not exact, and a result read back must be the
result that was put (the in-order document writer spills early results here, and its CSV must
not depend on which ones were spilled). The file is this process's own unlinked temporary
file, never read from anywhere else.
"""

from __future__ import annotations

import pickle
import tempfile
import threading

from forensic_app.core.results import ImageResult


class ResultSpill:
    """``put(index, result)`` / ``get(index)``; a later ``put`` for an index replaces it."""

    def __init__(self) -> None:
        self._fh = tempfile.TemporaryFile(prefix="forensic_app_batch_", suffix=".pickle")
        self._where: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def put(self, index: int, result: ImageResult) -> None:
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            self._fh.seek(0, 2)
            offset = self._fh.tell()
            self._fh.write(data)
            self._where[index] = (offset, len(data))

    def get(self, index: int) -> ImageResult | None:
        with self._lock:
            where = self._where.get(index)
            if where is None:
                return None
            self._fh.seek(where[0])
            data = self._fh.read(where[1])
        return pickle.loads(data)  # noqa: S301 - our own unlinked temporary file

    def pop(self, index: int) -> ImageResult | None:
        """``get`` and forget the index (its bytes stay in the file until it is closed)."""
        result = self.get(index)
        if result is not None:
            with self._lock:
                self._where.pop(index, None)
        return result

    def __contains__(self, index: int) -> bool:
        return index in self._where

    def __len__(self) -> int:
        return len(self._where)

    def close(self) -> None:
        with self._lock:
            self._where.clear()
            self._fh.close()
