"""onnxruntime sessions: execution providers (CPU always last), threads, memory, provider in use.

Why one place: both models must be created the same way, sessions are built once per engine and
reused for every image, and the provider actually running is reported (About, JSON, reports)
rather than the one that was asked for. Whichever model file a caller picks (float or int8),
:func:`make_session` is where its session options are decided, including the memory options
chosen by measurement in docs/adr/0009-onnxruntime-memory.md.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from forensic_app.core.modelstore import ModelError

CPU = "CPUExecutionProvider"
#: Accelerated providers tried first when the caller does not name any, best first.
PREFERRED_PROVIDERS = (
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
)


@dataclass(frozen=True)
class SessionMemory:
    """How a session allocates activation memory (docs/adr/0009-onnxruntime-memory.md).

    ``cpu_arena``: onnxruntime's CPU arena keeps freed blocks for reuse and never returns them;
    with input shapes that change every photo it grows toward the sum of every shape seen.
    ``mem_pattern``: plans one block per input shape and reuses it when the shape repeats.
    ``arena_extend``: ``"next_power_of_two"`` (onnxruntime's default per-session arena) or
    ``"same_as_requested"`` (one arena shared by every session of the process, extended by
    exactly what is asked for).
    """

    cpu_arena: bool = True
    mem_pattern: bool = True
    arena_extend: str = "next_power_of_two"


#: The detector's input height and width change with every photo's size and aspect: no arena
#: (it would keep the largest and fragment), a memory pattern per shape (one block per run).
DETECTOR_MEMORY = SessionMemory(cpu_arena=False, mem_pattern=True)
#: The gender model sees at most CHUNK_SIZE crops of one size, but with one photo per core two
#: chunks may run at once and an arena would keep both chunks' activations for good (ADR 0009).
GENDER_MEMORY = SessionMemory(cpu_arena=False, mem_pattern=True)

#: Allocations from this size up get their own mapping, returned to the system when freed
#: (glibc only). Why: glibc's default threshold rises after the first big free (up to 32 MB), so
#: later decoded photos, detector blobs and activations land in the heap, which fragments and
#: never shrinks: with a new input shape every photo, RSS grew photo after photo (ADR 0009).
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
_heap_bounded = False


def bound_native_heap() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` once per process; False elsewhere.

    Called before the first session is built; harmless to call again. Other C libraries (macOS,
    Windows, musl) return big blocks to the system without it."""
    global _heap_bounded
    if _heap_bounded:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    _heap_bounded = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return _heap_bounded


_env_arena_lock = threading.Lock()
_env_arena_ready = False


def _shared_same_as_requested_arena() -> None:
    """Register, once per process, a CPU arena that grows by exactly what is requested."""
    global _env_arena_ready
    with _env_arena_lock:
        if _env_arena_ready:
            return
        info = ort.OrtMemoryInfo(
            "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
        )
        cfg = ort.OrtArenaCfg({"arena_extend_strategy": 1})  # 1 = kSameAsRequested
        ort.create_and_register_allocator(info, cfg)
        _env_arena_ready = True


def session_options(
    threads: int | None, memory: SessionMemory, spin: bool = True
) -> ort.SessionOptions:
    """The SessionOptions every model gets: threads, sequential execution, memory options.

    ``spin=False`` stops idle intra-op threads from busy-waiting for the next run: a session
    with more threads than it keeps busy (the detector, which runs on every core but one
    photo at a time, ADR 0009) would otherwise burn the cores the other photos' gender and
    decoding work needs."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only; warnings go nowhere useful for an investigator
    opts.enable_cpu_mem_arena = memory.cpu_arena
    opts.enable_mem_pattern = memory.mem_pattern
    if memory.cpu_arena and memory.arena_extend == "same_as_requested":
        _shared_same_as_requested_arena()
        opts.add_session_config_entry("session.use_env_allocators", "1")
    elif memory.arena_extend not in ("next_power_of_two", "same_as_requested"):
        raise ValueError(f"unknown arena_extend {memory.arena_extend!r}")
    return opts


def default_threads() -> int:
    """Intra-op threads: every core (the engine runs one model call at a time)."""
    return max(1, os.cpu_count() or 1)


def choose_providers(requested: list[str] | None = None) -> list[str]:
    """The provider list to ask for: requested (or preferred) ones that exist, then CPU last."""
    available = set(ort.get_available_providers())
    wanted = list(requested) if requested else list(PREFERRED_PROVIDERS)
    chosen = [p for p in wanted if p in available and p != CPU]
    return [*chosen, CPU]


def make_session(
    model: bytes | str | Path,
    providers: list[str] | None = None,
    threads: int | None = None,
    label: str = "model",
    memory: SessionMemory = GENDER_MEMORY,
    spin: bool = True,
) -> tuple[ort.InferenceSession, str]:
    """Create a session and return it with the execution provider actually in use.

    ``memory`` defaults to the options for fixed input shapes; the detector passes
    :data:`DETECTOR_MEMORY` (and ``spin=False``, see :func:`session_options`)."""
    bound_native_heap()
    opts = session_options(threads, memory, spin)
    source = model if isinstance(model, bytes) else str(model)
    try:
        session = ort.InferenceSession(
            source, sess_options=opts, providers=choose_providers(providers)
        )
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        where = "" if isinstance(model, bytes) else f" {model}"
        raise ModelError(f"cannot load {label}{where}: {exc}") from exc
    return session, session.get_providers()[0]
