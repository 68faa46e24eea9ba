"""Load: thousands of generated small photos through a case batch; memory must stay flat.

    python bench/bench_load.py                     # 2,000 photos, real engine, into a case
    python bench/bench_load.py --count 300 --engine fake --write

Each generated photo (320x240 JPEG, all different) is a noisy background with one or two real
face crops from ``../shared/data/dev-eval/gender_crops`` pasted in (plain shapes when that is
absent), so detection and classification both run. The batch goes through BatchRunner into a
case folder (annotated copy, JSON record, audit line per photo) with the CLI's default
parallelism. Resident memory is sampled every 100 photos; peak RSS is reported at 100 photos and
at the end. ``--report`` also times writing the HTML report. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import DEV_EVAL, REPO, make_engine, rss_now_mb, rss_peak_mb, write_section  # noqa: E402

from forensic_app.core.batch import (  # noqa: E402
    BatchRunner,
    detector_threads,
    recommended_parallelism,
    summarize,
)
from forensic_app.core.case import Case  # noqa: E402
from forensic_app.core.settings import AnalysisSettings  # noqa: E402


def generate(folder: Path, count: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    crops_dir = DEV_EVAL / "gender_crops"
    crops = (
        [Image.open(p).convert("RGB") for p in sorted(crops_dir.glob("*.jpg"))[:60]]
        if (crops_dir.is_dir())
        else []
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        base = rng.integers(40, 200, 3)
        arr = np.clip(base + rng.normal(0, 12, (240, 320, 3)), 0, 255).astype(np.uint8)
        im = Image.fromarray(arr)
        for _ in range(int(rng.integers(1, 3))):
            side = int(rng.integers(56, 110))
            x, y = int(rng.integers(0, 320 - side)), int(rng.integers(0, 240 - side))
            if crops:
                im.paste(crops[int(rng.integers(len(crops)))].resize((side, side)), (x, y))
            else:
                im.paste(tuple(int(v) for v in rng.integers(0, 255, 3)), (x, y, x + side, y + side))
        p = folder / f"sub{i // 500:02d}" / f"photo_{i:05d}.jpg"
        p.parent.mkdir(exist_ok=True)
        im.save(p, "JPEG", quality=85)
        paths.append(str(p))
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--engine", choices=("real", "fake"), default="real")
    ap.add_argument("--gender-model")
    ap.add_argument("--report", action="store_true", help="also write the HTML report")
    ap.add_argument("--keep", action="store_true", help="keep the generated folder")
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS-batch.md")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
    t0 = time.perf_counter()
    paths = generate(tmp / "photos", args.count)
    gen_s = time.perf_counter() - t0
    threads, workers = recommended_parallelism(len(paths))
    if args.engine == "real":
        engine, gender = make_engine(args.gender_model, threads, detector_threads(threads, workers))
    else:
        sys.path.insert(0, str(REPO / "tests" / "cli"))
        from fake_engine import FakeEngine

        engine, gender = FakeEngine(), "fake engine (no models)"
    settings = AnalysisSettings()
    case = Case.create(tmp / "case", "load bench", "bench", engine, settings)
    case.begin_batch(engine, settings, photos=len(paths))
    samples: list[tuple[int, float, float]] = []
    start_rss = rss_now_mb()

    def on_progress(p):
        if p.done and (p.done % 100 == 0 or p.done == p.total):
            samples.append((p.done, rss_now_mb(), rss_peak_mb()))
            print(
                f"{p.done}/{p.total}  rss {samples[-1][1]:.0f} MB  peak {samples[-1][2]:.0f} MB",
                file=sys.stderr,
            )

    t0 = time.perf_counter()
    outcome = BatchRunner(
        engine, settings, store=case, on_progress=on_progress, workers=workers
    ).run(paths)
    batch_s = time.perf_counter() - t0
    case.end_batch(outcome)
    s = summarize(outcome.items)
    report_line = ""
    if args.report:
        from forensic_app.core.report import write_report

        t0 = time.perf_counter()
        rep = write_report(case)
        report_line = (
            f"\nHTML report of the case: {time.perf_counter() - t0:.1f} s, "
            f"{rep.path.stat().st_size / 2**20:.1f} MB, peak RSS after it "
            f"{rss_peak_mb():.0f} MB."
        )
    at100 = next((x for x in samples if x[0] >= 100), samples[0])
    last = samples[-1]
    lines = [
        "## Load: generated photos through a case batch (bench/bench_load.py)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPU "
        f"cores (shared with other work), {args.engine} engine ({gender}), {workers} worker(s) x "
        f"{threads or 'default'} thread(s); {len(paths)} photos 320x240 JPEG with 1-2 pasted "
        f"faces (generated in {gen_s:.0f} s); RSS before the batch {start_rss:.0f} MB.",
        "",
        f"- {s.analysed} analysed, {s.failed} failed, {s.faces} faces; {batch_s:.0f} s, "
        f"{len(paths) / batch_s:.1f} photos/s (annotated copy + JSON record + audit line each).",
        f"- **Peak RSS at {at100[0]} photos: {at100[2]:.0f} MB; at {last[0]} photos: "
        f"{last[2]:.0f} MB** (current RSS {at100[1]:.0f} MB -> {last[1]:.0f} MB).",
        "",
        "| photos done | RSS MB | peak RSS MB |",
        "| ---: | ---: | ---: |",
    ]
    step = max(1, len(samples) // 10)
    for done, now, peak in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        lines.append(f"| {done} | {now:.0f} | {peak:.0f} |")
    text = "\n".join(lines) + report_line
    print(text)
    if args.write:
        write_section("load", text)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp}", file=sys.stderr)
    return 0 if s.failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
