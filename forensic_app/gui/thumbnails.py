"""Face thumbnails for the Faces view, made on demand in one background thread.

Why this shape: a view over 10,000 faces may never decode 10,000 photos. The view asks only for
the thumbnails it paints; requests wait in a short last-in-first-out queue (what was scrolled
past is dropped, what is on screen now comes first); one worker (a ``Task``) decodes a photo with
the same loader as everything else (SHA-256 checked against the analysed one, EXIF orientation
applied), cuts every waiting face of that photo with the core crop geometry, and hands back small
``QImage``s (safe to make off the GUI thread; ``QPixmap`` is not). Thumbnails live in a bounded
LRU cache on the GUI thread, decoded photos in a small LRU (by count and bytes) in the worker:
memory stays flat however far the examiner scrolls.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from forensic_app.core.crops import extract_crop
from forensic_app.core.face_index import LruCache
from forensic_app.core.imaging import ImageLoadError, load_image
from forensic_app.gui.face_list import THUMB_MARGIN
from forensic_app.gui.photo_view import rgb_to_qimage
from forensic_app.gui.qt_compat import emit
from forensic_app.gui.workers import Task

log = logging.getLogger(__name__)

#: Thumbnail side in pixels (before device-pixel scaling).
THUMB_PX = 96
#: Thumbnails kept (96 x 96 RGB: about 27 KB each, so about 16 MB; four times that on a screen
#: with two device pixels per pixel, where they are cut at 192 x 192).
DEFAULT_CAPACITY = 600
#: Decoded photos kept by the worker (faces of one photo are often asked for in several
#: waves): at most this many, and at most ``DEFAULT_PHOTO_BYTES`` of pixels (always the last).
DEFAULT_PHOTOS = 8
DEFAULT_PHOTO_BYTES = 48 * 2**20
#: Requests waiting at most; older ones (scrolled past) are dropped and asked again if needed.
DEFAULT_PENDING = 256

#: (path, sha256 the face was found in, rounded box)
ThumbKey = tuple[str, str | None, tuple[int, int, int, int]]
#: path -> (HxWx3 RGB, sha256 of the bytes)
Decoder = Callable[[str], tuple[np.ndarray, str]]


def thumb_key(path: str, sha256: str | None, box: tuple[float, ...]) -> ThumbKey:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return (path, sha256, (x1, y1, x2, y2))


def _load(path: str) -> tuple[np.ndarray, str]:
    image = load_image(path)
    return image.rgb, image.sha256


class ThumbnailLoader(QObject):
    """Signals: ``thumbnailReady(key)`` on the GUI thread when a thumbnail (or the reason there
    is none, a ``str``) is in the cache."""

    thumbnailReady = Signal(object)

    def __init__(
        self,
        decode: Decoder | None = None,
        capacity: int = DEFAULT_CAPACITY,
        photos: int = DEFAULT_PHOTOS,
        photo_bytes: int = DEFAULT_PHOTO_BYTES,
        max_pending: int = DEFAULT_PENDING,
        size: int = THUMB_PX,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.decode = decode or _load
        self.size = size
        #: Device pixels per logical pixel of the screen painted on (sharp on HiDPI screens).
        self.scale = 1.0
        self.cache: LruCache[ThumbKey, QImage | str] = LruCache(capacity)
        self.photo_slots, self.photo_bytes = photos, photo_bytes
        self.max_pending = max_pending
        self._pending: OrderedDict[ThumbKey, None] = OrderedDict()
        self._cond = threading.Condition()
        self._task: Task | None = None
        self._stopped = False
        #: Counters for tests and the bench (written by the worker, read anywhere).
        self.photos_decoded = 0
        self.thumbs_made = 0

    # ---- GUI thread ------------------------------------------------------------------------
    def thumbnail(self, key: ThumbKey) -> QImage | str | None:
        """The cached thumbnail (or failure reason); None after queueing a request for it."""
        value = self.cache.get(key)
        if value is None:
            self.request(key)
        return value

    def request(self, key: ThumbKey) -> None:
        if self._stopped:
            return
        with self._cond:
            if key in self._pending:
                self._pending.move_to_end(key)
            else:
                self._pending[key] = None
                while len(self._pending) > self.max_pending:
                    self._pending.popitem(last=False)
            self._cond.notify()
        if self._task is None:
            self._start()

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def clear(self) -> None:
        """Forget every thumbnail and request (a new batch or case)."""
        with self._cond:
            self._pending.clear()
        self.cache.clear()

    def stop(self, timeout_ms: int = 10_000) -> None:
        """Stop and join the worker (the window calls this before it closes)."""
        self._stopped = True
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with self._cond:
            self._pending.clear()
            self._cond.notify_all()
        task.wait(timeout_ms)

    def _start(self) -> None:
        task = Task(self._work, name="thumbnails", parent=self)
        task.progress.connect(self._arrived)
        self._task = task
        task.start()

    def set_scale(self, scale: float) -> None:
        """Cut thumbnails for a screen with ``scale`` device pixels per pixel from now on."""
        if scale > 0 and scale != self.scale:
            self.scale = scale
            self.clear()

    def _arrived(self, item: tuple[ThumbKey, QImage | str]) -> None:
        key, value = item
        if isinstance(value, QImage) and value.devicePixelRatio() != self.scale:
            return  # cut for the screen before; asked again when painted
        self.cache.put(key, value)
        emit(self.thumbnailReady, key)

    # ---- worker thread ---------------------------------------------------------------------
    def _next_batch(self, cancelled: Callable[[], bool]) -> list[ThumbKey] | None:
        """The newest request and every other waiting request of the same photo."""
        with self._cond:
            while not self._pending:
                if cancelled():
                    return None
                self._cond.wait(0.2)
            if cancelled():
                return None
            key, _ = self._pending.popitem(last=True)
            same = [k for k in self._pending if k[0] == key[0] and k[1] == key[1]]
            for k in same:
                del self._pending[k]
        return [key, *same]

    def _work(self, cancelled: Callable[[], bool], progress: Callable[[Any], None]) -> None:
        photos: LruCache[tuple[str, str | None], np.ndarray | str] = LruCache(
            self.photo_slots, self.photo_bytes, lambda v: 0 if isinstance(v, str) else v.nbytes
        )
        while True:
            batch = self._next_batch(cancelled)
            if batch is None:
                return
            path, sha = batch[0][0], batch[0][1]
            rgb = photos.get((path, sha))
            if rgb is None:
                rgb = self._decode(path, sha)
                photos.put((path, sha), rgb)
            for key in batch:
                if cancelled():
                    return
                progress((key, rgb if isinstance(rgb, str) else self._crop(rgb, key[2])))

    def _decode(self, path: str, sha: str | None) -> np.ndarray | str:
        try:
            rgb, actual = self.decode(path)
        except ImageLoadError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - a thumbnail failing must not stop the rest
            log.warning("thumbnail source %s unreadable: %s", path, exc)
            return f"{path}: {exc}"
        self.photos_decoded += 1
        if sha and actual != sha:
            return "photo changed since it was analysed"
        return rgb

    def _crop(self, rgb: np.ndarray, box: Hashable) -> QImage:
        scale = self.scale
        side = max(1, round(self.size * scale))
        crop = extract_crop(rgb, box, side, margin=THUMB_MARGIN, shape="square")  # type: ignore[arg-type]
        self.thumbs_made += 1
        image = rgb_to_qimage(crop)
        image.setDevicePixelRatio(scale)
        return image
