"""Shared helpers for the casework benches: engine set-up, results file sections, memory."""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEV_EVAL = SHARED / "data" / "dev-eval"
RESULTS = REPO / "bench" / "RESULTS-batch.md"


def make_engine(
    gender_model: str | None = None,
    threads: int | None = None,
    detector_threads: int | None = None,
):
    """The real engine: the trained gender model when installed, else a tiny stand-in.

    The stand-in follows the metadata contract but costs almost nothing to run, so figures
    taken with it understate the classification share; the results file says which was used.
    """
    from forensic_app.core import modelstore
    from forensic_app.core.analysis import Engine

    path = Path(gender_model) if gender_model else None
    if path is None and not (modelstore.models_dir() / modelstore.GENDER_FILE).is_file():
        spec = importlib.util.spec_from_file_location(
            "_tests_conftest", REPO / "tests" / "conftest.py"
        )
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        path = Path(tempfile.mkdtemp(prefix="bench_gender_")) / "tiny_gender.onnx"
        mod.build_gender_onnx(path)
    engine = Engine.create(gender_model=path, threads=threads, detector_threads=detector_threads)
    return engine, ("trained model" if path is None else f"stand-in {path.name}")


def rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_section(name: str, body: str) -> None:
    """Replace (or add) the section ``name`` of bench/RESULTS-batch.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = (
        RESULTS.read_text(encoding="utf-8")
        if RESULTS.exists()
        else (
            "# Casework benchmarks\n\nWritten by `bench/bench_batch.py` and `bench/bench_load.py`; "
            "rerun them to refresh a section.\n"
        )
    )
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    RESULTS.write_text(text, encoding="utf-8")


def run_batch(engine: Any, paths: list[str], workers: int) -> float:
    """Seconds for one ``BatchRunner`` pass over ``paths`` at default settings; every photo must
    succeed (a failed photo would make the timing meaningless)."""
    from forensic_app.core.batch import BatchRunner
    from forensic_app.core.settings import AnalysisSettings

    t0 = time.perf_counter()
    out = BatchRunner(engine, AnalysisSettings(), workers=workers).run(paths)
    elapsed = time.perf_counter() - t0
    assert out.all_ok, [i.message for i in out.failed]
    return elapsed


def alternate(configs: dict, rounds: int, fn: Callable[[Any], float]) -> dict[str, float]:
    """Best time of each config over ``rounds`` rounds, order reversed every other round."""
    best: dict[str, float] = {}
    for r in range(rounds):
        order = list(configs) if r % 2 == 0 else list(reversed(list(configs)))
        for name in order:
            t = fn(configs[name])
            best[name] = min(best.get(name, t), t)
            print(f"round {r + 1} {name}: {t:.3f}", file=sys.stderr, flush=True)
    return best
