"""Lab scale: run a case batch on the workers of a Dask distributed cluster.

Why Dask (``distributed``) and not a home-made job queue: it already does what a lab's cluster
needs and what is hard to get right: scheduling over many machines, a worker that dies has its
tasks re-run elsewhere, workers joining and leaving, a dashboard IT staff know. This module
only decides what crosses the wire (docs/adr/0010-lab-scale-on-dask.md):

* The client stays the **only writer** of the case folder. It sends a worker a photo's path
  (translated by ``--path-map``) and gets back a compact result: the ImageResult without pixels
  and the annotated copy already encoded (drawn on the worker by the same ``render_annotated``
  and ``encode_image`` a local batch uses, so the bytes are identical). The client then writes
  the record, the annotated copy and the audit entry through the same Case API as a local batch.
* Every worker builds its engine once per process (a cached engine, built on first use) and
  checks its tool version, the fingerprint of its sources and its model SHA-256s against the
  client's: a worker with other models is refused (:class:`WorkerModelError`, exit 3) and
  nothing it computed enters the case.
* The client keeps a fixed window of tasks in flight (backpressure), so a million-photo batch
  holds at most ``window`` results on the client at once.
* Resume by hash: when the case already has records, a photo is first hashed on a worker (a tiny
  task), the client looks the SHA-256 up in the case, and only photos without a valid record are
  analysed. The client never reads a photo's contents (it only walks the folders and sniffs
  the first bytes of extension-less files, as a local batch does).

The runner is a :class:`~forensic_app.core.batch.BatchRunner`: statuses, progress, ETA, cancel,
the store's save rules and the error messages are those of a local batch, so a case made on a
cluster is indistinguishable from one made locally. ``distributed`` is an optional extra
(``pip install -e ".[cluster]"``); it is imported only when a cluster is used.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensic_app import __version__
from forensic_app.core.annotate import EncodedCopy
from forensic_app.core.batch import (
    CANCELLED,
    ERROR,
    RUNNING,
    BatchItem,
    BatchOutcome,
    BatchRunner,
    _error_result,
    detector_threads,
)
from forensic_app.core.code_identity import code_sha256
from forensic_app.core.modelstore import ModelError
from forensic_app.core.results import ImageResult
from forensic_app.core.settings import AnalysisSettings

log = logging.getLogger(__name__)

#: How long the client waits to reach a scheduler, and for its first worker.
CONNECT_TIMEOUT_S = 30.0
#: Tasks in flight per worker thread: enough to keep every worker busy while the client saves
#: results, small enough that the client holds few results (each one annotated copy) at once.
WINDOW_PER_THREAD = 2
#: Seconds between re-reads of the cluster's size (workers joining widen the window).
WINDOW_REFRESH_S = 10.0
#: Photos hashed by one task when a rerun checks which photos are already recorded.
HASH_CHUNK = 32
#: Seconds between checks of cancel and of the scheduler while waiting for results.
POLL_S = 0.5

_LOCAL = re.compile(r"^local(?::(\d+))?$")
_REMOTE = re.compile(r"^(tcp|tls|inproc|ws|wss|ucx)://\S+$")


class ClusterError(Exception):
    """The cluster cannot be used (unreachable, no workers, other tool version, bad path map)."""


class WorkerModelError(ModelError):
    """A worker's models differ from the client's (or are missing there): it is refused."""


# -- addresses and path maps -------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterAddress:
    """``local:N`` (a LocalCluster of N worker processes on loopback) or a scheduler address."""

    local_workers: int | None = None
    address: str | None = None

    @classmethod
    def parse(cls, text: str) -> ClusterAddress:
        text = text.strip()
        m = _LOCAL.match(text)
        if m:
            n = int(m.group(1) or (os.cpu_count() or 1))
            if n < 1:
                raise ClusterError(f"--cluster {text}: need at least one worker")
            return cls(local_workers=n)
        if _REMOTE.match(text):
            return cls(address=text)
        if re.match(r"^[\w.-]+:\d+$", text):  # host:port, as `dask scheduler` prints it
            return cls(address=f"tcp://{text}")
        raise ClusterError(
            f"--cluster {text!r}: give a scheduler address such as tcp://host:8786, "
            "or local:N for N worker processes on this machine"
        )

    def describe(self) -> str:
        if self.local_workers is not None:
            return f"local cluster ({self.local_workers} worker processes)"
        return f"Dask scheduler {self.address}"


@dataclass(frozen=True)
class PathMap:
    """``--path-map CLIENT_PREFIX=WORKER_PREFIX``: where workers see the evidence share.

    Paths are made absolute on the client first; the longest matching prefix (at a folder
    boundary) is replaced. A path no prefix matches is sent as it is (same mount everywhere).
    """

    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, specs: Sequence[str] | None) -> PathMap:
        pairs = []
        for spec in specs or ():
            client, sep, worker = spec.partition("=")
            if not sep or not client or not worker:
                raise ClusterError(
                    f"--path-map {spec!r}: expected CLIENT_PREFIX=WORKER_PREFIX, "
                    "e.g. /mnt/evidence=/data/evidence"
                )
            client = os.path.abspath(client)
            worker = worker if worker in ("/", "\\") else worker.rstrip("/\\")
            pairs.append((client, worker))
        pairs.sort(key=lambda p: len(p[0]), reverse=True)
        return cls(tuple(pairs))

    def to_worker(self, path: str) -> str:
        full = os.path.abspath(path)
        for client, worker in self.pairs:
            if full == client:
                return worker
            if full.startswith(client.rstrip(os.sep) + os.sep):
                rest = full[len(client.rstrip(os.sep)) + 1 :]
                sep = "\\" if "\\" in worker and "/" not in worker else "/"
                return worker.rstrip("/\\") + sep + rest.replace(os.sep, sep)
        return full


# -- what a worker is asked to run --------------------------------------------------------------
@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to build the client's engine and to check it is the same."""

    tool_version: str
    models: tuple[tuple[str, str], ...]  # (role, sha256) of the client's engine
    settings: dict[str, Any]
    models_dir: str | None = None  # worker-side path; None = the worker's own models folder
    gender_model: str | None = None  # worker-side path of an explicit gender model
    threads: int = 1  # intra-op threads per model call on the worker
    precision: str | None = None  # --precision (int8/fp32 per model), as the client chose
    code_sha256: str | None = None  # the client's sources (core/code_identity.py)

    @classmethod
    def for_engine(
        cls,
        engine: Any,
        settings: AnalysisSettings,
        *,
        models_dir: str | None = None,
        gender_model: str | None = None,
        threads: int | None = None,
        precision: str | None = None,
        path_map: PathMap | None = None,
    ) -> WorkerSpec:
        pm = path_map or PathMap()
        models = tuple(sorted((m.role, m.sha256) for m in getattr(engine, "models", []) or []))
        return cls(
            tool_version=__version__,
            models=models,
            settings=settings.to_dict(),
            models_dir=pm.to_worker(models_dir) if models_dir else None,
            gender_model=pm.to_worker(gender_model) if gender_model else None,
            threads=threads or 1,
            precision=precision,
            code_sha256=code_sha256(),
        )


@dataclass
class WorkerReply:
    """A worker's answer for one photo: the compact result and the encoded annotated copy."""

    result: dict[str, Any]
    annotated: EncodedCopy | None = None
    worker: str = ""


@dataclass
class EncodedAnnotation:
    """What the client hands ``Case.save`` in place of a LoadedImage: its ``rgb`` is the copy
    the worker drew, which ``save_annotated`` writes as it is (core/annotate.py)."""

    rgb: EncodedCopy


_engines: dict[tuple[Any, ...], Any] = {}
_engines_lock = threading.Lock()


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except Exception:  # noqa: BLE001 - not on a worker (tests call the functions directly)
        return f"pid {os.getpid()}"


def _worker_threads() -> int:
    """Tasks this Dask worker runs at once (``dask worker --nthreads``); 1 off a worker."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except Exception:  # noqa: BLE001 - not on a worker, or an older distributed
        return 1


def _engine_for(spec: WorkerSpec) -> Any:
    """The worker process's engine for this spec: built once, checked against the client."""
    if spec.tool_version != __version__:
        raise ClusterError(
            f"worker {_worker_address()} runs forensic-app {__version__}, the client "
            f"{spec.tool_version}: install the same version on every worker"
        )
    mine_code = code_sha256()
    if spec.code_sha256 and mine_code and spec.code_sha256 != mine_code:
        raise ClusterError(
            f"worker {_worker_address()} runs other forensic-app code than the client (both say "
            f"version {__version__}, but their sources differ: worker {mine_code[:12]}, client "
            f"{spec.code_sha256[:12]}): install the same version on every worker"
        )
    key = (spec.models_dir, spec.gender_model, spec.threads, spec.precision)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            from forensic_app.core.analysis import Engine

            try:
                engine = Engine.create(
                    models_dir=Path(spec.models_dir) if spec.models_dir else None,
                    gender_model=Path(spec.gender_model) if spec.gender_model else None,
                    threads=spec.threads,
                    precision=spec.precision,
                    # The worker's tasks share one engine; their detector runs take turns.
                    detector_threads=detector_threads(spec.threads, _worker_threads()),
                )
            except ModelError as exc:
                raise WorkerModelError(f"worker {_worker_address()}: {exc}") from None
            _engines[key] = engine
    mine = tuple(sorted((m.role, m.sha256) for m in engine.models))
    if mine != spec.models:
        theirs = dict(spec.models)
        diffs = [
            f"{role} {sha} (the case uses {theirs.get(role, 'none')})"
            for role, sha in mine
            if theirs.get(role) != sha
        ]
        raise WorkerModelError(
            f"worker {_worker_address()} has other models: {'; '.join(diffs)}. It is refused "
            "so that no result of another model enters the case; install the same model files "
            "on every worker (forensic-app info shows their SHA-256)"
        )
    return engine


def check_worker(spec: WorkerSpec, sample_path: str | None = None) -> dict[str, Any]:
    """Run on each worker before a batch: version, models (engine built), evidence visible."""
    engine = _engine_for(spec)
    visible = None if sample_path is None else os.path.exists(sample_path)
    return {
        "worker": _worker_address(),
        "provider": getattr(engine, "provider", None),
        "sample_visible": visible,
        "host": os.uname().nodename if hasattr(os, "uname") else "",
        "code_sha256": code_sha256(),
    }


def hash_task(spec: WorkerSpec, paths: list[str]) -> list[str | None]:
    """The SHA-256 of each photo as the worker reads it (None when unreadable: analysing it then
    gives the proper error). Used for resume, so the client never reads the evidence; one task
    hashes a chunk of photos because hashing one costs less than a task's round trip."""
    from forensic_app.core.imaging import sha256_path

    _engine_for(spec)  # refuse a mismatched worker before it contributes anything
    out: list[str | None] = []
    for path in paths:
        try:
            out.append(sha256_path(path))
        except OSError:
            out.append(None)
    return out


class _CaptureStore:
    """A worker-side ResultStore: keeps the result and encodes the annotated copy."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.annotated: EncodedCopy | None = None

    def wants_lookup(self) -> bool:
        return False

    def lookup(self, path: str, sha256: str) -> ImageResult | None:  # pragma: no cover
        return None

    def save(self, item: BatchItem, result: ImageResult, image: Any | None) -> None:
        if image is not None and result.error is None and result.sha256:
            from forensic_app.core.annotate import encode_image, render_annotated

            data = encode_image(render_annotated(image.rgb, result.faces), self.suffix)
            self.annotated = EncodedCopy(data, self.suffix)


def analyse_task(spec: WorkerSpec, path: str, suffix: str) -> WorkerReply:
    """Read, hash and analyse one photo on a worker; never raises for a bad photo.

    It runs the local batch runner on this one photo, so a photo fails on a worker with exactly
    the message it fails with locally.
    """
    engine = _engine_for(spec)
    store = _CaptureStore(suffix)
    runner = BatchRunner(
        engine, AnalysisSettings.from_dict(spec.settings), store=store, pipelined=False
    )
    item = runner.run([path]).items[0]
    result = item.result or _error_result(path, item.message or "not analysed")
    if item.status == ERROR and result.error is None:  # the annotated copy could not be drawn
        result.error = item.message
    return WorkerReply(result.to_dict(), store.annotated, _worker_address())


def noop_task(x: int) -> int:
    """A trivial task, for measuring the round trip of one task (bench/bench_cluster.py)."""
    return x


# -- the client ---------------------------------------------------------------------------------
def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError(
            "--cluster needs Dask's 'distributed' package: pip install -e \".[cluster]\""
        ) from None
    return distributed


@contextmanager
def connect(
    where: ClusterAddress, *, timeout_s: float | None = None, quiet: bool = True
) -> Iterator[Any]:
    """A ``distributed.Client`` for ``where``; a LocalCluster is started (and stopped) for
    ``local:N``: N worker processes with one thread each, on loopback only, no dashboard."""
    distributed = _import_distributed()
    timeout_s = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    if quiet:  # the tool says what went wrong in its own words; Dask's tracebacks need -v
        names = [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
        for name in ("distributed", *names):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    cluster = None
    try:
        if where.local_workers is not None:
            with warnings.catch_warnings():
                # The scheduler's small HTTP server (on 127.0.0.1 too) takes another port when
                # 8787 is busy and warns about it: nothing for the user to act on.
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                cluster = distributed.LocalCluster(
                    n_workers=where.local_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    scheduler_port=0,
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL if quiet else logging.WARNING,
                )
            client = distributed.Client(cluster, timeout=timeout_s)
        else:
            client = distributed.Client(where.address, timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise ClusterError(f"cannot reach the {where.describe()}: {exc}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout_s)
        except TimeoutError:
            raise ClusterError(
                f"the {where.describe()} has no workers (waited {timeout_s:.0f} s); start "
                "`dask worker` on the lab machines"
            ) from None
        yield client
    finally:
        try:
            client.close(timeout=5)
        except Exception:  # noqa: BLE001 - the scheduler may be gone already
            pass
        if cluster is not None:
            try:
                cluster.close(timeout=10)
            except Exception:  # noqa: BLE001
                pass


def check_workers(
    client: Any, spec: WorkerSpec, sample_path: str | None = None, timeout_s: float = 120.0
) -> dict[str, dict[str, Any]]:
    """Ask every connected worker to build its engine and compare it with the client's.

    Raises WorkerModelError (a model differs or is missing: exit 3) or ClusterError (another
    tool version, evidence not visible under the mapped path, no answer) naming the workers.
    """
    workers = list(client.scheduler_info(n_workers=-1).get("workers", {}))
    futures = {
        addr: client.submit(
            check_worker,
            spec,
            sample_path,
            workers=[addr],
            allow_other_workers=False,
            pure=False,
            key=f"forensic-check-{uuid.uuid4().hex}",
        )
        for addr in workers
    }
    infos: dict[str, dict[str, Any]] = {}
    model_problems, other_problems = [], []
    for addr, fut in futures.items():
        try:
            infos[addr] = fut.result(timeout=timeout_s)
        except WorkerModelError as exc:
            model_problems.append(str(exc))
        except ClusterError as exc:
            other_problems.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - a worker without the tool, a timeout
            if client.status != "running" or fut.status == "cancelled":
                raise ClusterError(_lost_message(client)) from None
            other_problems.append(
                f"worker {addr} failed the check ({type(exc).__name__}: {exc}); is "
                f"forensic-app {__version__} installed there?"
            )
    if model_problems:
        raise WorkerModelError("; ".join(model_problems))
    if other_problems:
        raise ClusterError("; ".join(other_problems))
    blind = [a for a, i in infos.items() if i.get("sample_visible") is False]
    if blind:
        raise ClusterError(
            f"worker(s) {', '.join(blind)} cannot see {sample_path}; give --path-map "
            "CLIENT_PREFIX=WORKER_PREFIX for where they mount the evidence"
        )
    return infos


def unfingerprinted(spec: WorkerSpec, infos: dict[str, dict[str, Any]]) -> list[str]:
    """Who could be compared by tool version only (no Python sources to fingerprint: a frozen
    bundle): "the client" and worker addresses, for a note on the terminal."""
    who = [] if spec.code_sha256 else ["the client"]
    return who + [addr for addr, info in infos.items() if not info.get("code_sha256")]


@dataclass
class _Task:
    items: list[BatchItem]  # one photo to analyse, or a chunk of photos to hash
    phase: str  # "hash" | "analyse"
    key: str = ""
    future: Any = field(default=None, repr=False)


class ClusterBatchRunner(BatchRunner):
    """A BatchRunner whose analysis runs on a Dask cluster; everything else is the local one's.

    It replaces only the local pipeline (``_run_pipelined``): items, statuses, progress, ETA,
    ``cancel()``, the store's save and its error handling come from BatchRunner unchanged.
    After :meth:`run`, ``stopped_by`` holds the reason the batch stopped early (the scheduler
    went away: ClusterError; a worker with other models: WorkerModelError), else None.
    """

    def __init__(
        self,
        engine: Any,
        settings: AnalysisSettings | None = None,
        *,
        client: Any,
        spec: WorkerSpec,
        path_map: PathMap | None = None,
        window: int | None = None,
        hash_chunk: int = HASH_CHUNK,
        annotated_suffix: Callable[[str], str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("pipelined", None)
        super().__init__(engine, settings, pipelined=True, **kwargs)
        self.client = client
        self.spec = spec
        self.path_map = path_map or PathMap()
        self.window = window
        self.hash_chunk = max(1, hash_chunk)
        self._suffix = annotated_suffix or _default_suffix
        self.stopped_by: Exception | None = None

    def _window(self) -> int:
        if self.window:
            return max(1, self.window)
        try:
            threads = sum(self.client.nthreads().values())
        except Exception:  # noqa: BLE001
            threads = 1
        return max(2, WINDOW_PER_THREAD * threads)

    def _submit(self, task: _Task, done: queue.Queue) -> None:
        task.key = f"forensic-{task.phase}-{uuid.uuid4().hex}"
        if task.phase == "hash":
            wpaths = [self.path_map.to_worker(i.path) for i in task.items]
            fut = self.client.submit(hash_task, self.spec, wpaths, key=task.key, pure=False)
        else:
            item = task.items[0]
            self.progress.mark_started_work()
            item.status, item.message = RUNNING, "analysing"
            self._emit(item)
            wpath, suffix = self.path_map.to_worker(item.path), self._suffix(item.path)
            fut = self.client.submit(
                analyse_task, self.spec, wpath, suffix, key=task.key, pure=False
            )
        task.future = fut
        fut.add_done_callback(lambda _f, t=task: done.put(t))

    def _run_pipelined(self) -> None:
        done: queue.Queue[_Task] = queue.Queue()
        in_flight: dict[str, _Task] = {}
        ready: deque[BatchItem] = deque()  # hashed, no valid record: to analyse
        pending = iter(self.items)
        lookup = self.store is not None and self.store.wants_lookup()
        window = [self._window(), time.monotonic()]

        def next_item() -> BatchItem | None:
            for item in pending:
                if item.path not in self._preset_errors:
                    return item
                err = _error_result(item.path, self._preset_errors[item.path])
                self._finish(item, "error", err, None)
            return None

        def feed() -> None:
            if time.monotonic() - window[1] > WINDOW_REFRESH_S:  # workers may join or leave
                window[:] = [self._window(), time.monotonic()]
            while len(in_flight) < window[0] and not self._cancel.is_set():
                if ready:
                    task = _Task([ready.popleft()], "analyse")
                elif lookup:
                    chunk = []
                    while len(chunk) < self.hash_chunk and (item := next_item()) is not None:
                        chunk.append(item)
                    if not chunk:
                        return
                    task = _Task(chunk, "hash")
                else:
                    if (item := next_item()) is None:
                        return
                    task = _Task([item], "analyse")
                self._submit(task, done)
                in_flight[task.key] = task

        try:
            feed()
            while in_flight and not self._cancel.is_set():
                try:
                    task = done.get(timeout=POLL_S)
                except queue.Empty:
                    if self.client.status not in ("running", "connecting"):
                        self._stop(ClusterError(_lost_message(self.client)))
                    continue
                if in_flight.pop(task.key, None) is None:
                    continue  # a stale callback of a task already handled
                self._handle(task, ready)
                feed()
        except BaseException:
            self._cancel.set()  # Ctrl-C: what was saved stays; the rest is cancelled
            raise
        finally:
            leftover = [t.future for t in in_flight.values() if t.future is not None]
            if leftover:
                try:
                    self.client.cancel(leftover)
                except Exception:  # noqa: BLE001 - the scheduler may be gone
                    pass
            for item in [i for t in in_flight.values() for i in t.items] + list(ready):
                if not item.finished:
                    item.status, item.message = CANCELLED, "cancelled"
                    self._emit(item)

    def _stop(self, reason: Exception) -> None:
        if self.stopped_by is None:
            self.stopped_by = reason
        self._cancel.set()

    def _handle(self, task: _Task, ready: deque[BatchItem]) -> None:
        fut = task.future
        task.future = None
        status = fut.status
        if status == "cancelled":
            if not self._cancel.is_set():
                self._stop(ClusterError(_lost_message(self.client)))
            return
        if status == "error":
            exc = fut.exception()
            if isinstance(exc, WorkerModelError | ClusterError):
                self._stop(exc)
                return
            if type(exc).__name__ == "KilledWorker":
                msg = (
                    "analysis failed: the cluster worker analysing this photo died repeatedly "
                    "(crash or out of memory)"
                )
            else:
                msg = f"analysis failed on a cluster worker: {exc}"
            if task.phase == "hash":  # hashing is retried as part of each photo's analysis
                ready.extend(task.items)
                return
            log.error("%s: %s", task.items[0].path, msg)
            self._finish(task.items[0], "image", _error_result(task.items[0].path, msg), None)
            return
        try:
            value = fut.result()
        except Exception as exc:  # noqa: BLE001 - the connection went while fetching
            self._stop(ClusterError(f"{_lost_message(self.client)} ({exc})"))
            return
        finally:
            del fut
        if task.phase == "hash":
            assert self.store is not None
            for item, sha in zip(task.items, value, strict=True):
                stored = self.store.lookup(item.path, sha) if sha else None
                if stored is not None:
                    self._finish(item, "skip", stored, None)
                else:
                    ready.append(item)
            return
        reply: WorkerReply = value
        log.debug("%s analysed on %s", task.items[0].path, reply.worker)
        result = ImageResult.from_dict(reply.result)
        image = EncodedAnnotation(reply.annotated) if reply.annotated is not None else None
        # "image" even without an annotated copy: the store then records the result as a local
        # batch records a photo whose copy could not be drawn (it never re-reads the photo).
        self._finish(task.items[0], "image", result, image)

    def run(
        self, paths: Sequence[str], preset_errors: dict[str, str] | None = None
    ) -> BatchOutcome:
        self.stopped_by = None
        return super().run(paths, preset_errors)


def _default_suffix(path: str) -> str:
    from forensic_app.core.case import annotated_suffix

    return annotated_suffix(path)


def _lost_message(client: Any) -> str:
    where = getattr(getattr(client, "scheduler", None), "address", None) or "the scheduler"
    return (
        f"lost the connection to the Dask scheduler {where}; the photos not yet recorded were "
        "not analysed: run the same command again to complete the case (recorded photos are "
        "skipped)"
    )
