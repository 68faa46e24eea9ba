"""What taking turns at the detector costs in photos/s (issue 16, ADR 0009 second addendum).

Usage: python bench/bench_detector_turns.py [--limit N] [--rounds R] [--write]

Two engines on the same photos with the default batch layout (one photo per core, one
intra-op thread per gender call), in one run, alternating round by round (forward, then
reversed; each figure the best round):

* **turns** (the default now): detector runs within ``detection.DETECT_PIXELS_IN_FLIGHT``,
  the detector session on every core (``batch.detector_threads``);
* **side by side** (before): one single-threaded detector run per photo at once, no budget.

Two photo sets, because the budget only bites on big photos: the 60 dev-eval photos as they
are (about 1,024 px: their main passes fit the budget together) and the first photos of the
varied-size set of ``bench_memory.py generate`` (640-6,000 px; most main passes are 1,920 px).
Peak memory is not measured here (one process holds both engines): ``bench_memory.py`` is.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import DEV_EVAL, REPO, alternate, run_batch  # noqa: E402
from bench_memory import DEFAULT_WORK  # noqa: E402  (where `generate` writes the varied set)

from forensic_app.core.analysis import Engine  # noqa: E402
from forensic_app.core.batch import detector_threads, recommended_parallelism  # noqa: E402

VARIED = DEFAULT_WORK / "photos"
RESULTS = REPO / "bench" / "RESULTS-detector-turns.md"


def engines(n_photos: int) -> tuple[dict[str, Engine], int]:
    threads, workers = recommended_parallelism(n_photos)
    turns = Engine.create(threads=threads, detector_threads=detector_threads(threads, workers))
    side = Engine.create(threads=threads)
    side.detector.budget.limit = 1 << 40  # no budget: every worker's run at once
    return {"turns": turns, "side by side": side}, workers


def measure(paths: list[str], rounds: int) -> dict[str, float]:
    configs, workers = engines(len(paths))
    for e in configs.values():  # load and warm both sessions outside the timing
        e.analyze_path(paths[0])
    return alternate(configs, rounds, lambda engine: run_batch(engine, paths, workers))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=60, help="photos per set")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--write", action="store_true", help=f"write {RESULTS.name}")
    args = ap.parse_args()
    sets = {
        "dev-eval photos as they are (~1,024 px)": sorted(
            str(p) for p in (DEV_EVAL / "images").rglob("*.jpg")
        ),
        "varied-size set (640-6,000 px), first photos by name": sorted(
            str(p) for p in VARIED.glob("*.jpg")
        ),
    }
    load = os.getloadavg()[0]
    lines = [
        "# Detector runs taking turns vs side by side (bench/bench_detector_turns.py)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
        f"load average at start {load:.1f}; best of {args.rounds} alternating rounds; "
        "every ratio from this one run. Default batch layout (one photo per core).",
        "",
        "| photos | n | turns (s) | side by side (s) | turns / side by side photos/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, paths in sets.items():
        paths = paths[: args.limit]
        if not paths:
            lines.append(f"| {label} | 0 | - | - | not found (run bench_memory.py generate) |")
            continue
        best = measure(paths, args.rounds)
        ratio = best["side by side"] / best["turns"]
        lines.append(
            f"| {label} | {len(paths)} | {best['turns']:.1f} | {best['side by side']:.1f} "
            f"| {ratio:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
