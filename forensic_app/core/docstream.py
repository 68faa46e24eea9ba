"""Result documents written as results arrive: memory does not grow with photos per run.

Why: ``analyze PATHS --json FILE`` over a seized device's photos must not hold every result (or
anything of a photo) until the end. :class:`JsonDocumentWriter` writes the same bytes
``AnalysisDocument.to_json()`` would, one image at a time; :class:`InOrder` puts results that
finish out of order (several workers) back in input order: it holds at most ``MAX_HELD`` of
those that finished early in memory and spills the rest to a temporary file, so one slow photo
(a huge TIFF on one worker while the others finish hundreds) cannot grow memory. The caller
owns the file object (an atomic temp file, a spill file for stdout), so a run that fails or is
interrupted never leaves a half-written document in place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TextIO

from forensic_app.core.results import AnalysisDocument, ImageResult
from forensic_app.core.spill import ResultSpill

_PLACEHOLDER = "\x00forensic_app:images\x00"
_ITEM_INDENT = " " * 4  # images are at depth 2 of the document, indent 2


class JsonDocumentWriter:
    """Writes ``doc`` (its ``images`` ignored) with each image written as it is given."""

    def __init__(self, fh: TextIO, doc: AnalysisDocument) -> None:
        self.fh = fh
        d = doc.to_dict()
        d["images"] = _PLACEHOLDER
        text = json.dumps(d, indent=2, ensure_ascii=False)
        marker = json.dumps(_PLACEHOLDER, ensure_ascii=False)
        head, sep, self._tail = text.partition(marker)
        if not sep or marker in self._tail:
            raise ValueError("cannot place the images in the document")
        fh.write(head)
        self.count = 0

    def write(self, result: ImageResult) -> None:
        text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
        sep = "," if self.count else "["
        self.fh.write(sep + "\n" + _ITEM_INDENT + text.replace("\n", "\n" + _ITEM_INDENT))
        self.count += 1

    def close(self) -> None:
        self.fh.write(("\n  ]" if self.count else "[]") + self._tail)


#: Early results kept in memory before the rest go to a temporary file (each is a compact
#: result: no pixels, a few KB per face).
MAX_HELD = 64


class InOrder:
    """Hands results to ``sink`` in index order 0, 1, 2, ... whatever order they arrive in."""

    def __init__(self, sink: Callable[[ImageResult], None], max_held: int = MAX_HELD) -> None:
        self.sink = sink
        self.next = 0
        self.max_held = max_held
        self.waiting: dict[int, ImageResult] = {}
        self.spill: ResultSpill | None = None  # opened when more than max_held wait

    def add(self, index: int, result: ImageResult) -> None:
        if index != self.next and len(self.waiting) >= self.max_held:
            if self.spill is None:
                self.spill = ResultSpill()
            self.spill.put(index, result)
        else:
            self.waiting[index] = result
        while (result := self._take(self.next)) is not None:
            self.sink(result)
            self.next += 1

    def _take(self, index: int) -> ImageResult | None:
        result = self.waiting.pop(index, None)
        if result is None and self.spill is not None:
            result = self.spill.pop(index)
        return result

    @property
    def held(self) -> int:
        """Results waiting in memory (the spilled ones are on disk)."""
        return len(self.waiting)

    def finish(self, total: int, missing: Callable[[int], ImageResult]) -> None:
        """Write what is left in order; ``missing(index)`` stands in for photos never finished."""
        while self.next < total:
            result = self._take(self.next)
            self.sink(result if result is not None else missing(self.next))
            self.next += 1
        self.close()

    def close(self) -> None:
        if self.spill is not None:
            self.spill.close()
            self.spill = None
