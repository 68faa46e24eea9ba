"""onnxruntime sessions: execution providers (CPU always last), threads, provider in use.

Why one place: both models must be created the same way, sessions are built once per engine and
reused for every image, and the provider actually running is reported (About, JSON, reports)
rather than the one that was asked for.
"""

from __future__ import annotations

import os
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
) -> tuple[ort.InferenceSession, str]:
    """Create a session and return it with the execution provider actually in use."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only; warnings go nowhere useful for an investigator
    source = model if isinstance(model, bytes) else str(model)
    try:
        session = ort.InferenceSession(
            source, sess_options=opts, providers=choose_providers(providers)
        )
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        where = "" if isinstance(model, bytes) else f" {model}"
        raise ModelError(f"cannot load {label}{where}: {exc}") from exc
    return session, session.get_providers()[0]
