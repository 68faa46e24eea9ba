"""Batch throughput: the pipelined BatchRunner against analysing photos one by one.

    python bench/bench_batch.py                  # dev-eval photos, 1 round
    python bench/bench_batch.py --rounds 2 --folder DIR --limit 40 --write

Modes, each over the same photos with the same warm engine:

* ``one-by-one``: ``engine.analyze_path`` in a loop (decode, then infer, nothing overlaps);
* ``runner, sequential``: BatchRunner(pipelined=False) (the runner's own overhead);
* ``runner, pipelined``: BatchRunner (decode thread + inference + finisher thread);
* ``pipelined, 2 workers x 1 thread``: two photos analysed at once, each model call on one
  intra-op thread (photo-level instead of operator-level parallelism);
* ``... into a case``: the same, plus annotated copy, JSON record and audit entry.

Rounds alternate the order of the modes to spread out noise from other work on the machine.
``--write`` puts the table into bench/RESULTS-batch.md.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import DEV_EVAL, make_engine, write_section  # noqa: E402

from forensic_app.core.batch import BatchRunner  # noqa: E402
from forensic_app.core.case import Case  # noqa: E402
from forensic_app.core.imaging import is_image_path  # noqa: E402
from forensic_app.core.settings import AnalysisSettings  # noqa: E402


def photos_in(folder: Path, limit: int | None) -> list[str]:
    found = sorted(str(p) for p in folder.rglob("*") if p.is_file() and is_image_path(p))
    return found[:limit] if limit else found


def one_by_one(engine, settings, paths):
    for p in paths:
        r = engine.analyze_path(p, settings)
        assert r.error is None, r.error


def runner(engine, settings, paths, pipelined=True, case_dir=None, workers=1):
    store = None
    if case_dir is not None:
        shutil.rmtree(case_dir, ignore_errors=True)
        store = Case.create(case_dir, "bench", "bench", engine, settings)
        store.begin_batch(engine, settings)
    out = BatchRunner(engine, settings, store=store, pipelined=pipelined, workers=workers).run(
        paths
    )
    assert out.all_ok, [i.message for i in out.failed]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--folder", type=Path, default=DEV_EVAL / "images")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--gender-model")
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS-batch.md")
    args = ap.parse_args()
    if not args.folder.is_dir():
        print(f"photo folder not found: {args.folder}", file=sys.stderr)
        return 2
    paths = photos_in(args.folder, args.limit)
    engine, gender = make_engine(args.gender_model, args.threads)
    engine1, _ = make_engine(args.gender_model, 1)
    settings = AnalysisSettings()
    for p in paths[:2]:  # warm-up: sessions, allocator, page cache
        engine.analyze_path(p, settings)
        engine1.analyze_path(p, settings)
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    cores = os.cpu_count() or 1
    modes = {
        "one-by-one (analyze_path loop)": lambda: one_by_one(engine, settings, paths),
        "runner, sequential": lambda: runner(engine, settings, paths, pipelined=False),
        "runner, pipelined": lambda: runner(engine, settings, paths),
        f"pipelined, {cores} workers x 1 thread": lambda: runner(
            engine1, settings, paths, workers=cores
        ),
        f"pipelined, {cores} workers x 1 thread, into a case": lambda: runner(
            engine1, settings, paths, case_dir=tmp / "case", workers=cores
        ),
    }
    times: dict[str, list[float]] = {m: [] for m in modes}
    for rnd in range(args.rounds):
        order = list(modes) if rnd % 2 == 0 else list(reversed(modes))
        for m in order:
            t0 = time.perf_counter()
            modes[m]()
            times[m].append(time.perf_counter() - t0)
            print(f"round {rnd + 1} {m}: {len(paths) / times[m][-1]:.2f} photos/s", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    base = min(times["one-by-one (analyze_path loop)"])
    lines = [
        "## Batch throughput (bench/bench_batch.py)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPU "
        f"cores (shared with other work), provider {engine.provider}, gender model: {gender}; "
        f"{len(paths)} photos from `{args.folder.name}` "
        f"({'dev-eval' if 'dev-eval' in str(args.folder) else 'custom'}), default settings, "
        f"best of {args.rounds} round(s).",
        "",
        "| mode | seconds | photos/s | vs one-by-one |",
        "| --- | ---: | ---: | ---: |",
    ]
    for m, ts in times.items():
        best = min(ts)
        lines.append(f"| {m} | {best:.2f} | {len(paths) / best:.2f} | {base / best:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("batch", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
