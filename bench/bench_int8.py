"""int8 against fp32: whole-engine photos/s, gender ms per face, detector ms; thread settings.

Usage: nice python bench/bench_int8.py [--limit N] [--rounds R] [--skip-threads] [--write]

Every ratio comes from one run of this script on the same photos with the same threads; the
configurations alternate round by round (forward, then reversed), and each figure is the best
round, because the machine this project is measured on is shared with other work.

* engine: ``BatchRunner`` over the dev-eval photos with the default batch parallelism
  (``core.batch.recommended_parallelism``: one worker per core, one intra-op thread each),
  default settings, for each precision pair (detector, gender).
* gender model: ms per face, one face per call and 16 per call, 1 and 2 threads (random crops:
  the cost does not depend on the pixels).
* detector: ms per single pass on a dev-eval photo scaled to a longer side of 1024 and 1920 px.
* threads: the batch's photos/s for workers x intra-op threads on this machine (int8
  detector, fp32 gender: the fastest pair that keeps gender accuracy), to check the default
  parallelism.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import alternate, run_batch  # noqa: E402

from forensic_app.core import modelstore  # noqa: E402
from forensic_app.core.analysis import Engine  # noqa: E402
from forensic_app.core.batch import (  # noqa: E402
    detector_threads,
    recommended_parallelism,
)
from forensic_app.core.classification import GenderClassifier  # noqa: E402
from forensic_app.core.detection import CenterFaceDetector  # noqa: E402
from forensic_app.core.imaging import load_image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEV_EVAL = REPO.parent / "shared" / "data" / "dev-eval"
RESULTS = REPO / "bench" / "RESULTS-int8.md"
PAIRS = (("fp32", "fp32"), ("int8", "int8"), ("fp32", "int8"), ("int8", "fp32"))


def engine_for(det: str, gender: str, threads: int | None, det_threads: int | None) -> Engine:
    """An engine with the detector at ``det`` and the gender model at ``gender`` precision."""
    directory = modelstore.models_dir()
    gpath = (
        None if gender == det else directory / modelstore.model_file(modelstore.GENDER_FILE, gender)
    )
    return Engine.create(
        directory, gender_model=gpath, threads=threads, precision=det, detector_threads=det_threads
    )


def gender_ms(rounds: int) -> list[str]:
    rng = np.random.default_rng(0)
    rows = []
    for threads in (1, 2):
        clfs = {
            p: GenderClassifier(
                modelstore.models_dir() / modelstore.model_file(modelstore.GENDER_FILE, p),
                threads=threads,
            )
            for p in ("fp32", "int8")
        }
        s = clfs["fp32"].spec.input_size
        crops = rng.integers(0, 255, (16, s, s, 3), dtype=np.uint8)
        for n in (1, 16):

            def once(clf, n=n, crops=crops):
                clf.predict(crops[:n])  # warm
                reps = max(3, 48 // n)
                t0 = time.perf_counter()
                for _ in range(reps):
                    clf.predict(crops[:n])
                return (time.perf_counter() - t0) * 1000 / (reps * n)

            best = alternate(clfs, rounds, once)
            rows.append(
                f"| gender model, {n} face{'s' if n > 1 else ''} per call | {threads} | "
                f"{best['fp32']:.1f} | {best['int8']:.1f} | {best['fp32'] / best['int8']:.2f}x |"
            )
    return rows


def detector_ms(photo: Path, rounds: int) -> list[str]:
    rgb = load_image(photo).rgb
    rows = []
    for threads in (1, 2):
        dets = {
            p: CenterFaceDetector(
                modelstore.models_dir() / modelstore.model_file(modelstore.CENTERFACE_FILE, p),
                threads=threads,
            )
            for p in ("fp32", "int8")
        }
        for side in (1024, 1920):
            s = side / max(rgb.shape[:2])
            img = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)

            def once(det, img=img):
                det.detect_scaled(img, 0.4)  # warm
                reps = 3
                t0 = time.perf_counter()
                for _ in range(reps):
                    det.detect_scaled(img, 0.4)
                return (time.perf_counter() - t0) * 1000 / reps

            best = alternate(dets, rounds, once)
            rows.append(
                f"| detector, one pass at {img.shape[1]}x{img.shape[0]} | {threads} | "
                f"{best['fp32']:.0f} | {best['int8']:.0f} | {best['fp32'] / best['int8']:.2f}x |"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N dev-eval photos (all 60)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--skip-threads", action="store_true")
    ap.add_argument("--thread-photos", type=int, default=30, help="photos for the thread table")
    ap.add_argument("--skip-engine", action="store_true")
    ap.add_argument("--write", action="store_true", help="write bench/RESULTS-int8.md")
    args = ap.parse_args(argv)
    if not (DEV_EVAL / "images").is_dir():
        print(f"dev-eval not found at {DEV_EVAL}", file=sys.stderr)
        return 2
    paths = sorted(str(p) for p in (DEV_EVAL / "images").rglob("*.jpg"))[: args.limit]
    cores = os.cpu_count() or 1
    threads, workers = recommended_parallelism(len(paths), cores=cores)
    out = [
        "# int8 vs fp32 (bench/bench_int8.py)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()} "
        f"({platform.processor() or 'cpu'}), {cores} cores **shared with other work while "
        f"measuring** (load average at start {os.getloadavg()[0]:.1f}), run under `nice`; "
        f"best of {args.rounds} alternating rounds; every ratio from this one run.",
        "",
    ]
    if not args.skip_engine:
        engines = {
            f"detector {d}, gender {g}": engine_for(
                d, g, threads, detector_threads(threads, workers)
            )
            for d, g in PAIRS
        }
        for e in engines.values():  # warm-up: sessions, allocator, page cache
            e.analyze_path(paths[0])
        best = alternate(engines, args.rounds, lambda e: run_batch(e, paths, workers))
        base = best["detector fp32, gender fp32"]
        out += [
            f"## Whole engine, {len(paths)} dev-eval photos, default settings, "
            f"{workers} workers x {threads} thread(s) (the batch default)",
            "",
            "| models | seconds | photos/s | vs fp32 |",
            "| --- | ---: | ---: | ---: |",
        ]
        for name, t in best.items():
            out.append(f"| {name} | {t:.1f} | {len(paths) / t:.2f} | {base / t:.2f}x |")
        out.append("")
    out += [
        "## Model calls",
        "",
        "| what | threads | fp32 ms | int8 ms | speed-up |",
        "| --- | ---: | ---: | ---: | ---: |",
        *gender_ms(args.rounds),
        *detector_ms(Path(paths[0]), args.rounds),
        "",
        "Gender figures are per face (the model scores each face and its mirror image).",
        "",
    ]
    if not args.skip_threads:
        precision = {"detector": "int8", "gender": "fp32"}
        combos = [(w, t) for w in (1, 2) for t in (1, 2)]
        if cores > 2:
            combos.append((cores, 1))
        engines = {}
        for w, t in combos:
            engines[f"{w} worker(s) x {t} thread(s)"] = (
                engine_for(precision["detector"], precision["gender"], t, detector_threads(t, w)),
                w,
            )
        for e, _ in engines.values():
            e.analyze_path(paths[0])
        few = paths[: args.thread_photos]
        best = alternate(engines, args.rounds, lambda ew: run_batch(ew[0], few, ew[1]))
        base = best["1 worker(s) x 2 thread(s)"]
        out += [
            f"## Batch thread settings ({len(few)} dev-eval photos, "
            f"detector {precision['detector']}, gender {precision['gender']})",
            "",
            "| workers x intra-op threads | seconds | photos/s | vs 1 x 2 |",
            "| --- | ---: | ---: | ---: |",
        ]
        for name, t in best.items():
            out.append(f"| {name} | {t:.1f} | {len(few) / t:.2f} | {base / t:.2f}x |")
        out.append("")
    text = "\n".join(out)
    print(text)
    if args.write:
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
