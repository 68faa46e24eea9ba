"""Batch runner: many photos through one engine, pipelined, cancellable, resumable.

Why one runner for the CLI and the GUI: both need the same per-photo statuses, progress, ETA,
cancel and resume rules, and both must survive any one bad photo. The GUI runs
:meth:`BatchRunner.run` in a worker thread and turns the callbacks into Qt signals;
the CLI prints them.

Pipeline (three threads, bounded queues so memory stays flat on any batch size)::

    decode thread      path -> (resume check) -> load_image   (Pillow releases the GIL)
    calling thread     engine.analyze_image                   (onnxruntime releases the GIL)
    finisher thread    store.save (annotated copy, JSON), statuses, progress

Decoding the next photo overlaps inference on the current one, and encoding the annotated copy
of the previous one overlaps both. Callbacks are serialised by a lock (never two at once) but
may come from any of the batch threads: keep them short and thread-safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from forensic_app.core.interrupts import deferred_sigint
from forensic_app.core.progress import Progress
from forensic_app.core.results import ImageResult
from forensic_app.core.settings import AnalysisSettings

log = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
UNCHANGED = "unchanged"  # resumed: SHA-256 and settings match a stored result
ERROR = "error"
CANCELLED = "cancelled"
FINAL_STATUSES = frozenset({DONE, UNCHANGED, ERROR, CANCELLED})


def settings_key(settings: AnalysisSettings, models: Iterable[Any] = ()) -> str:
    """A short stable hash of everything that changes a result: settings and model hashes.

    Two runs with the same key over a photo with the same SHA-256 give the same result, so a
    rerun may skip it.
    """
    payload = {
        "settings": settings.to_dict(),
        "models": sorted(f"{getattr(m, 'role', '')}:{getattr(m, 'sha256', '')}" for m in models),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def recommended_parallelism(
    n_photos: int,
    cores: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
) -> tuple[int | None, int]:
    """(engine intra-op threads, batch workers) for a batch of ``n_photos``.

    Why: on a laptop CPU one model call cannot keep every core busy (small layers, thread
    start-up), so a batch analyses one photo per core with single-threaded sessions; measured
    about 1.5x more photos/s on 2 cores (bench/RESULTS-batch.md). A single photo keeps every
    core on its one model call (threads None = the engine's default). Explicit values win.
    The detector is the exception: its runs take turns, on every core (:func:`detector_threads`).
    """
    cores = max(1, cores or os.cpu_count() or 1)
    if workers:
        return threads or max(1, cores // workers), workers
    if threads or n_photos <= 1 or cores == 1:
        return threads, 1
    return 1, cores


def detector_threads(threads: int | None, workers: int) -> int | None:
    """The detector session's intra-op threads when ``workers`` photos run at once.

    Why their sum: detector runs take turns (``detection.DETECT_PIXELS_IN_FLIGHT`` admits one
    main pass at a time, which bounds memory whatever the number of cores), so the run that
    holds the turn gets every core the workers were given. None (all cores) stays None.
    """
    return None if threads is None else threads * max(1, workers)


@dataclass
class BatchItem:
    """One photo of a batch and where it stands."""

    index: int
    path: str  # as given or found; results carry this path
    status: str = QUEUED
    result: ImageResult | None = None
    message: str = ""  # "3 faces", "unchanged", the error reason
    #: Faces per label, kept when the runner releases ``result`` (``keep_results=False``).
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


class ResultStore(Protocol):
    """Where a batch keeps results (an output folder, a case folder). Optional.

    ``lookup`` returns a stored result that is still valid for this SHA-256 and the runner's
    settings (the photo is then skipped), or None. ``save`` persists one finished result and may
    write an annotated copy from ``image`` (a LoadedImage, None for failed photos); an OSError
    there marks the photo failed but never stops the batch.
    """

    def wants_lookup(self) -> bool: ...

    def lookup(self, path: str, sha256: str) -> ImageResult | None: ...

    def save(self, item: BatchItem, result: ImageResult, image: Any | None) -> None: ...


@dataclass
class BatchOutcome:
    """What a finished (or cancelled) batch produced, in input order."""

    items: list[BatchItem]
    progress: Progress
    cancelled: bool = False

    @property
    def results(self) -> list[ImageResult]:
        return [i.result for i in self.items if i.result is not None]

    @property
    def failed(self) -> list[BatchItem]:
        return [i for i in self.items if i.status == ERROR]

    @property
    def all_ok(self) -> bool:
        return not self.cancelled and all(i.status in (DONE, UNCHANGED) for i in self.items)


def _default_loader() -> Callable[[str], Any]:
    from forensic_app.core.imaging import load_image

    return load_image


def _default_hasher() -> Callable[[str], str]:
    from forensic_app.core.imaging import sha256_path

    return sha256_path


def _error_result(path: str, message: str, sha256: str | None = None) -> ImageResult:
    return ImageResult(path=path, sha256=sha256, error=message)


def describe(result: ImageResult) -> str:
    """One-line outcome for status lists: ``3 faces (1 female, 1 male, 1 uncertain)``."""
    if result.error:
        return result.error
    n = len(result.faces)
    if n == 0:
        return "no faces"
    counts: dict[str, int] = {}
    for f in result.faces:
        counts[f.gender] = counts.get(f.gender, 0) + 1
    detail = ", ".join(f"{counts[g]} {g}" for g in ("female", "male", "uncertain") if g in counts)
    return f"{n} face{'s' if n != 1 else ''} ({detail})"


_SENTINEL = object()
#: Seconds each batch thread gets to finish its photo after Ctrl-C before the run stops anyway.
STOP_GRACE_S = 5.0


#: Decoded pixels the pipeline may hold at once (photos queued, analysed and being finished).
#: The decoder starts the next photo only while less than this is held, so a folder of
#: 24-megapixel photos keeps about two in flight instead of up to six (issue 16: 70 MB each,
#: on top of two detector runs), while phone-sized photos still overlap decoding and analysis.
#: A photo larger than the budget runs alone; it is never refused for it.
IN_FLIGHT_PIXELS = 32_000_000


def _pixels(kind: str, payload: Any) -> int:
    if kind != "image":
        return 0
    return int(getattr(payload, "width", 0) or 0) * int(getattr(payload, "height", 0) or 0)


class BatchRunner:
    """Runs photos through ``engine`` with statuses, progress, cancel and resume.

    ``engine`` follows the engine API (``analyze_image(image, settings, cancel)``, ``models``).
    ``loader``/``hasher`` default to :mod:`forensic_app.core.imaging`; tests may pass fakes.
    """

    def __init__(
        self,
        engine: Any,
        settings: AnalysisSettings | None = None,
        *,
        store: ResultStore | None = None,
        on_item: Callable[[BatchItem], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        loader: Callable[[str], Any] | None = None,
        hasher: Callable[[str], str] | None = None,
        prefetch: int = 2,
        pipelined: bool = True,
        workers: int = 1,
        on_result: Callable[[BatchItem, ImageResult], None] | None = None,
        keep_results: bool = True,
        max_pixels_in_flight: int = IN_FLIGHT_PIXELS,
    ) -> None:
        self.engine = engine
        self.settings = settings or AnalysisSettings()
        self.store = store
        self._on_item = on_item
        self._on_progress = on_progress
        self._loader = loader
        self._hasher = hasher
        self.prefetch = max(1, prefetch)
        self.pipelined = pipelined
        #: Photos analysed at the same time (onnxruntime sessions are thread-safe). With an
        #: engine on one intra-op thread, ``workers=cores`` keeps every core busy on its own photo.
        self.workers = max(1, workers)
        #: Called once per finished photo with its result (serialised, in completion order).
        self._on_result = on_result
        #: False: each item keeps only its status, message and face counts once ``on_item`` and
        #: ``on_result`` have seen the result, so memory does not grow with photos per run.
        self.keep_results = keep_results
        self.max_pixels_in_flight = max(1, max_pixels_in_flight)
        #: Decoded pixels held now, and the most ever held (tests and benchmarks read it).
        self.pixels_in_flight = 0
        self.peak_pixels_in_flight = 0
        self._room = threading.Condition()
        self._cancel = threading.Event()
        self._cb_lock = threading.Lock()
        self.items: list[BatchItem] = []
        self.progress = Progress(total=0)
        self._preset_errors: dict[str, str] = {}

    # -- control ----------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the batch to stop soon: no new photo starts; the current one may finish."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    # -- callbacks ---------------------------------------------------------------------------
    def _emit(self, item: BatchItem) -> None:
        if self._on_item is None:
            return
        with self._cb_lock:
            try:
                self._on_item(item)
            except Exception:  # a broken listener must not stop the batch
                log.exception("batch status callback failed")

    def _emit_progress(self) -> None:
        if self._on_progress is None:
            return
        with self._cb_lock:
            try:
                self._on_progress(self.progress)
            except Exception:
                log.exception("batch progress callback failed")

    # -- stages ------------------------------------------------------------------------------
    def _prepare(self, item: BatchItem) -> tuple[str, Any]:
        """Decode stage: ("skip", stored result) | ("image", LoadedImage) | ("error", result)."""
        if item.path in self._preset_errors:
            return "error", _error_result(item.path, self._preset_errors[item.path])
        loader = self._loader or _default_loader()
        try:
            if self.store is not None and self.store.wants_lookup():
                if self._loader is None and self._hasher is None:
                    return self._prepare_read_once(item)
                hasher = self._hasher or _default_hasher()
                try:
                    sha = hasher(item.path)
                except OSError:
                    sha = None  # let the loader produce the proper error message
                if sha is not None:
                    stored = self.store.lookup(item.path, sha)
                    if stored is not None:
                        return "skip", stored
            return "image", loader(item.path)
        except MemoryError:
            return "error", _error_result(item.path, "not enough memory to decode this image")
        except Exception as exc:  # ImageLoadError and anything unexpected: a per-photo error
            # An audit append that failed in the store's lookup is not a read error: say what.
            from_loader = type(exc).__name__ in ("ImageLoadError", "AuditWriteError")
            msg = str(exc) if from_loader else f"unexpected error while reading: {exc!r}"
            if not from_loader:
                log.error("unexpected error reading %s:\n%s", item.path, traceback.format_exc())
            sha = None
            try:
                sha = (self._hasher or _default_hasher())(item.path)
            except Exception:
                pass
            return "error", _error_result(item.path, msg, sha)

    def _prepare_read_once(self, item: BatchItem) -> tuple[str, Any]:
        """Resume check and decode from one read: hash the bytes, look up, decode the same bytes.

        Raises what the loader raises, so :meth:`_prepare` turns it into a per-photo error.
        """
        from forensic_app.core.imaging import decode_image_bytes, read_image_bytes

        data = read_image_bytes(item.path)
        sha = hashlib.sha256(data).hexdigest()
        assert self.store is not None
        stored = self.store.lookup(item.path, sha)
        if stored is not None:
            return "skip", stored
        return "image", decode_image_bytes(data, item.path, sha256=sha)

    def _infer(self, item: BatchItem, image: Any) -> ImageResult:
        item.status = RUNNING
        item.message = "analysing"
        self._emit(item)
        try:
            result = self.engine.analyze_image(image, self.settings, cancel=self._cancel.is_set)
        except Exception as exc:
            if type(exc).__name__ == "AnalysisCancelled":
                raise
            log.error("engine failed on %s:\n%s", item.path, traceback.format_exc())
            result = _error_result(
                item.path, f"analysis failed: {exc}", getattr(image, "sha256", None)
            )
        result.path = item.path
        return result

    def _finish(self, item: BatchItem, kind: str, result: ImageResult, image: Any | None) -> None:
        # Saved whole: a Ctrl-C that lands in the main thread while it saves (the sequential
        # path, the cluster client) waits until the record, the annotated copy and the audit
        # entry are written (core/interrupts.py); in the finisher thread this changes nothing.
        with deferred_sigint():
            self._finish_now(item, kind, result, image)

    def _finish_now(
        self, item: BatchItem, kind: str, result: ImageResult, image: Any | None
    ) -> None:
        if kind == "cancelled":
            item.status, item.message = CANCELLED, "cancelled"
            self._emit(item)
            return
        result.path = item.path
        item.result = result
        if kind == "skip":
            item.status, item.message = UNCHANGED, describe(result) + " (unchanged, skipped)"
        elif result.error:
            item.status, item.message = ERROR, result.error
        else:
            item.status, item.message = DONE, describe(result)
        if self.store is not None and kind != "skip":
            try:
                self.store.save(item, result, image if kind == "image" else None)
            except Exception as exc:  # disk full, folder gone, read-only: this photo fails
                reason = f"result not saved: {exc}"
                log.error("%s: %s", item.path, reason)
                result.notes.append(reason)
                item.status, item.message = ERROR, reason
        item.counts = face_counts(result)
        self.progress.record(failed=item.status == ERROR, skipped=kind == "skip")
        if self._on_result is not None:
            with self._cb_lock:
                try:
                    self._on_result(item, result)
                except Exception:  # the listener records its own failure (e.g. a full disk)
                    log.exception("batch result callback failed")
        self._emit(item)
        self._emit_progress()
        if not self.keep_results:
            item.result = None

    # -- run ---------------------------------------------------------------------------------
    def run(
        self, paths: Sequence[str], preset_errors: dict[str, str] | None = None
    ) -> BatchOutcome:
        """Analyse ``paths`` in order; blocks until done or cancelled. Never raises per photo.

        ``preset_errors`` maps paths already known to fail (a folder that could not be listed)
        to their reason; they are reported like any failed photo.
        """
        self._preset_errors = dict(preset_errors or {})
        self.items = [BatchItem(i, str(p)) for i, p in enumerate(paths)]
        self.progress = Progress(total=len(self.items))
        for item in self.items:
            self._emit(item)
        self._emit_progress()
        if self.pipelined:
            self._run_pipelined()
        else:
            self._run_sequential()
        for item in self.items:  # never reached because of cancel
            if not item.finished:
                item.status, item.message = CANCELLED, "cancelled"
                self._emit(item)
        return BatchOutcome(self.items, self.progress, cancelled=self._cancel.is_set())

    def _run_sequential(self) -> None:
        for item in self.items:
            if self._cancel.is_set():
                break
            kind, payload = self._prepare(item)
            self._process(item, kind, payload, self._finish)

    def _process(self, item: BatchItem, kind: str, payload: Any, finish: Callable) -> None:
        if kind == "image":
            if self._cancel.is_set():
                finish(item, "cancelled", None, None)
                return
            self.progress.mark_started_work()
            try:
                result = self._infer(item, payload)
            except Exception:  # AnalysisCancelled
                finish(item, "cancelled", None, None)
                return
            # Only a store (annotated copies) needs the pixels after inference; without one,
            # dropping them here keeps them out of the finisher's queue (issue 16).
            finish(item, "image", result, payload if self.store is not None else None)
        else:
            finish(item, kind, payload, None)

    def _run_pipelined(self) -> None:
        decoded: queue.Queue = queue.Queue(maxsize=self.prefetch)
        finished: queue.Queue = queue.Queue(maxsize=1)
        n_workers = self.workers

        held: dict[int, int] = {}  # item index -> decoded pixels, until its photo is finished

        def decode_worker() -> None:
            try:
                for item in self.items:
                    with self._room:  # wait for room before decoding, not after
                        while (
                            self.pixels_in_flight >= self.max_pixels_in_flight
                            and not self._cancel.is_set()
                        ):
                            self._room.wait(0.1)
                    if self._cancel.is_set():
                        break
                    kind, payload = self._prepare(item)
                    px = _pixels(kind, payload)
                    with self._room:
                        held[item.index] = px
                        self.pixels_in_flight += px
                        self.peak_pixels_in_flight = max(
                            self.peak_pixels_in_flight, self.pixels_in_flight
                        )
                    decoded.put((item, kind, payload))
                    del payload
            finally:
                for _ in range(n_workers):
                    decoded.put(_SENTINEL)

        def finish_worker() -> None:
            while True:
                job = finished.get()
                if job is _SENTINEL:
                    return
                try:
                    self._finish(*job)
                except Exception:  # never lose the rest of the batch to one photo
                    log.exception("finishing %s failed", job[0].path)
                index = job[0].index
                del job  # release the pixels before waiting for the next photo
                with self._room:
                    self.pixels_in_flight -= held.pop(index, 0)
                    self._room.notify_all()

        def enqueue_finish(item: BatchItem, kind: str, result: Any, image: Any) -> None:
            finished.put((item, kind, result, image))

        def infer_worker() -> None:
            while True:
                job = decoded.get()
                if job is _SENTINEL:
                    return
                item, kind, payload = job
                try:
                    self._process(item, kind, payload, enqueue_finish)
                except Exception:  # a bug must not leave the item unfinished
                    log.exception("analysing %s failed", item.path)
                    enqueue_finish(item, "error", _error_result(item.path, "internal error"), None)
                del job, payload  # drop the decoded pixels before waiting for the next photo

        decoder = threading.Thread(target=decode_worker, name="batch-decode", daemon=True)
        finisher = threading.Thread(target=finish_worker, name="batch-finish", daemon=True)
        extra = [
            threading.Thread(target=infer_worker, name=f"batch-infer-{n}", daemon=True)
            for n in range(1, n_workers)
        ]
        decoder.start()
        finisher.start()
        for t in extra:
            t.start()
        grace: float | None = None  # None: wait for every thread (a normal end or cancel)
        try:
            infer_worker()  # the calling thread is inference worker 0
        except BaseException:
            # Ctrl-C: stop feeding, let the decoder exit (it may be blocked on a full queue),
            # keep what the finisher already saved. Threads get STOP_GRACE_S to finish the
            # photo in hand; after that they are left (daemons) so Ctrl-C always stops the run.
            self._cancel.set()
            grace = STOP_GRACE_S
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                try:
                    if decoded.get(timeout=0.1) is _SENTINEL:
                        break
                except queue.Empty:
                    continue
            raise
        finally:
            for t in extra:
                t.join(grace)
            try:
                finished.put(_SENTINEL, timeout=grace)
            except queue.Full:
                pass
            decoder.join(grace)
            finisher.join(grace)


@dataclass
class Summary:
    """Counts for a printed or displayed batch summary."""

    total: int = 0
    analysed: int = 0
    unchanged: int = 0
    failed: int = 0
    cancelled: int = 0
    faces: int = 0
    by_gender: dict[str, int] = field(default_factory=dict)


def face_counts(result: ImageResult) -> dict[str, int]:
    """Faces per label of one result (empty for an error): the compact per-photo summary."""
    from forensic_app.core.filters import PhotoSummary

    return {} if result.error else dict(PhotoSummary.of(result).counts)


def summarize(items: Iterable[BatchItem]) -> Summary:
    s = Summary()
    for item in items:
        s.total += 1
        if item.status == DONE:
            s.analysed += 1
        elif item.status == UNCHANGED:
            s.unchanged += 1
        elif item.status == ERROR:
            s.failed += 1
        elif item.status == CANCELLED:
            s.cancelled += 1
        counts = face_counts(item.result) if item.result is not None else item.counts
        for gender, n in counts.items():
            s.faces += n
            s.by_gender[gender] = s.by_gender.get(gender, 0) + n
    return s
