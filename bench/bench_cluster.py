"""Lab scale on Dask: a local case batch against ``--cluster local:N`` on the same photos.

    nice python bench/bench_cluster.py                  # the 60 dev-eval photos, 2 workers
    nice python bench/bench_cluster.py --workers 2 --limit 20 --write

Measured in one run, on the same photos, both into a fresh case folder (annotated copy, JSON
record and audit line per photo), so the ratio is fair even on a shared machine:

* ``local``: BatchRunner as ``forensic-app batch`` runs it here (N photos at once, one intra-op
  thread each: the default on an N-core machine);
* ``cluster``: ClusterBatchRunner on a LocalCluster of N worker processes with one thread each
  (what ``--cluster local:N`` starts), timed after the workers were started and checked; the
  start-up (processes, imports, engine build and model check on every worker) is given apart.

Per-task overhead: round trip of a no-op Dask task (submit, run, result) one at a time, the
no-op throughput with the client's window of tasks in flight, and the client's own cost per
photo (``Case.save``: record, annotated copy, audit line), which bounds what one client can
record whatever the number of workers. Bytes read by workers and written by the client size
the storage. Memory: each worker process's peak RSS (the kernel's ``ru_maxrss``) and the client's
RSS sampled during the cluster round size a node's RAM (workers x peak). Point ``--folder`` at
varied-size photos (``bench_memory.py generate``) for the figure that matters: dev-eval photos
are about 1,024 px. ``--write`` puts the section into bench/RESULTS-cluster.md (``--append``
adds it below the sections already there).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import DEV_EVAL, make_engine, rss_now_mb, rss_peak_mb  # noqa: E402

from forensic_app.core import cluster as cl  # noqa: E402
from forensic_app.core.batch import BatchRunner  # noqa: E402
from forensic_app.core.case import Case  # noqa: E402
from forensic_app.core.imaging import is_image_path  # noqa: E402
from forensic_app.core.settings import AnalysisSettings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS-cluster.md"


def photos_in(folder: Path, limit: int | None) -> list[str]:
    found = sorted(str(p) for p in folder.rglob("*") if p.is_file() and is_image_path(p))
    return found[:limit] if limit else found


def timed_case(case_dir: Path, engine, settings) -> tuple[Case, list[float]]:
    """A fresh case whose ``save`` records how long the client spent on each photo."""
    shutil.rmtree(case_dir, ignore_errors=True)
    case = Case.create(case_dir, "bench", "bench", engine, settings)
    case.begin_batch(engine, settings)
    spent: list[float] = []
    save = case.save

    def save_timed(item, result, image):
        t0 = time.perf_counter()
        save(item, result, image)
        spent.append(time.perf_counter() - t0)

    case.save = save_timed  # type: ignore[method-assign]
    return case, spent


def records(case_dir: Path) -> dict[str, dict]:
    out = {}
    for f in sorted((case_dir / "results").glob("*.json")):
        d = json.loads(f.read_text(encoding="utf-8"))
        d.pop("analysed_at")
        d["result"].pop("timings_ms")
        out[f.name] = d
    return out


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of the calling process: what a photo costs, whatever the
    load of other work on the machine (which only stretches the wall-clock time)."""
    t = os.times()
    return t.user + t.system


def cpu_self() -> float:
    return _cpu_seconds()


def cpu_workers(client) -> float:
    return sum(client.run(_cpu_seconds).values())


class RssSampler:
    """The calling process's highest RSS while it runs, sampled every 0.2 s."""

    def __init__(self) -> None:
        import threading

        self.high = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.high = max(self.high, rss_now_mb())
            self._stop.wait(0.2)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def secs_list(times: list[float]) -> str:
    return ", ".join(f"{t:.0f}" for t in times)


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--folder", type=Path, default=DEV_EVAL / "images")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="alternating order; best is kept")
    ap.add_argument("--noop-tasks", type=int, default=600)
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS-cluster.md")
    ap.add_argument("--append", action="store_true", help="with --write: keep what is there")
    ap.add_argument(
        "--label", default=None, help="what the photos are, for the results (default: dev-eval)"
    )
    args = ap.parse_args()
    if not args.folder.is_dir():
        print(f"photo folder not found: {args.folder}", file=sys.stderr)
        return 2
    import distributed

    load_at_start = os.getloadavg()[0]
    paths = photos_in(args.folder, args.limit)
    in_bytes = sum(os.path.getsize(p) for p in paths)
    settings = AnalysisSettings()
    engine, gender = make_engine(None, 1)
    work = Path(tempfile.mkdtemp(prefix="bench_cluster_"))
    n = args.workers
    rows = []
    local_saves: list[float] = []
    cpu: dict[str, list[float]] = {"local": [], "client": [], "workers": []}
    cluster_saves: list[float] = []
    client_rss: list[float] = []

    def local_round() -> tuple[float, list[float]]:
        case, saves = timed_case(work / "local", engine, settings)
        c0, t0 = cpu_self(), time.perf_counter()
        out = BatchRunner(engine, settings, store=case, workers=n).run(paths)
        assert out.all_ok, [i.message for i in out.failed]
        cpu["local"].append(cpu_self() - c0)
        return time.perf_counter() - t0, saves

    def cluster_round(client, spec) -> tuple[float, list[float]]:
        case, saves = timed_case(work / "cluster", engine, settings)
        runner = cl.ClusterBatchRunner(engine, settings, client=client, spec=spec, store=case)
        c0, w0, t0 = cpu_self(), cpu_workers(client), time.perf_counter()
        with RssSampler() as rss:
            out = runner.run(paths)
        client_rss.append(rss.high)
        assert out.all_ok and runner.stopped_by is None, [i.message for i in out.failed]
        cpu["client"].append(cpu_self() - c0)
        cpu["workers"].append(cpu_workers(client) - w0)
        return time.perf_counter() - t0, saves

    def noop_rate(client, in_flight: int) -> float:
        t = time.perf_counter()
        ac = distributed.as_completed()
        sent = 0
        while sent < min(in_flight, args.noop_tasks):
            ac.add(client.submit(cl.noop_task, sent, pure=False))
            sent += 1
        for fut in ac:
            fut.result()
            if sent < args.noop_tasks:
                ac.add(client.submit(cl.noop_task, sent, pure=False))
                sent += 1
        return args.noop_tasks / (time.perf_counter() - t)

    t0 = time.perf_counter()
    with cl.connect(cl.ClusterAddress(local_workers=n)) as client:
        spec = cl.WorkerSpec.for_engine(engine, settings)
        cl.check_workers(client, spec, paths[0])
        start_s = time.perf_counter() - t0
        local_times, cluster_times = [], []
        for r in range(args.rounds):  # alternate the order: local first, then cluster first
            order = ("local", "cluster") if r % 2 == 0 else ("cluster", "local")
            for mode in order:
                if mode == "local":
                    secs, local_saves = local_round()
                    local_times.append(secs)
                else:
                    secs, cluster_saves = cluster_round(client, spec)
                    cluster_times.append(secs)
                print(f"round {r + 1} {mode}: {secs:.1f} s", file=sys.stderr)
        local_s, cluster_s = min(local_times), min(cluster_times)
        window = cl.ClusterBatchRunner(engine, client=client, spec=spec)._window()

        # Resume: the same photos again, all recorded: workers hash, the client looks up.
        case = Case.open(work / "cluster", log_open=False)
        case.begin_batch(engine, settings)
        t0 = time.perf_counter()
        out = cl.ClusterBatchRunner(engine, settings, client=client, spec=spec, store=case).run(
            paths
        )
        resume_cluster_s = time.perf_counter() - t0
        assert out.progress.skipped == len(paths)

        # -- per-task overhead --------------------------------------------------------------
        trips = []
        for i in range(args.noop_tasks // 3):
            t = time.perf_counter()
            client.submit(cl.noop_task, i, pure=False).result()
            trips.append(time.perf_counter() - t)
        noop_window = noop_rate(client, window)
        noop_wide = noop_rate(client, 256)
        t = time.perf_counter()
        for i in range(args.noop_tasks):
            cl.noop_task(i)
        local_call_us = (time.perf_counter() - t) / args.noop_tasks * 1e6
        worker_peaks = sorted(client.run(rss_peak_mb).values())

    case = Case.open(work / "local", log_open=False)
    case.begin_batch(engine, settings)
    t0 = time.perf_counter()
    out = BatchRunner(engine, settings, store=case, workers=n).run(paths)
    resume_local_s = time.perf_counter() - t0
    assert out.progress.skipped == len(paths)

    same = records(work / "local") == records(work / "cluster")
    annotated_out = folder_bytes(work / "cluster" / "annotated")
    rows.append((f"local batch, {n} photos at once x 1 thread", local_s))
    rows.append((f"`--cluster local:{n}` (1 thread per worker)", cluster_s))
    rt_ms = statistics.median(trips) * 1000
    save_ms = statistics.median(cluster_saves) * 1000
    save_local_ms = statistics.median(local_saves) * 1000
    shutil.rmtree(work, ignore_errors=True)

    def cpu_per(mode: str) -> float:
        return min(cpu[mode]) / len(paths)

    label = args.label or f"dev-eval, {in_bytes / 2**20:.1f} MiB"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Local batch vs --cluster local:N (bench/bench_cluster.py)",
        "",
        f"{when}, {platform.machine()}, {os.cpu_count()} CPU cores, load average "
        f"{load_at_start:.1f} at the start (other work stretches the seconds, not the CPU "
        f"seconds), distributed {distributed.__version__}, "
        f"gender model: {gender}; {len(paths)} photos from `{args.folder.name}` ({label}), "
        f"default settings, each into a fresh case folder; best of "
        f"{args.rounds} round(s) in alternating order (local {secs_list(local_times)} s; "
        f"cluster {secs_list(cluster_times)} s).",
        "",
        "| mode | seconds | photos/s | vs local |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, secs in rows:
        lines.append(f"| {name} | {secs:.1f} | {len(paths) / secs:.2f} | {local_s / secs:.2f}x |")
    lines += [
        "",
        f"- **CPU seconds per photo** (user + system; not stretched by other work on the "
        f"machine, so the basis for sizing): local batch {cpu_per('local'):.2f}; cluster "
        f"{cpu_per('workers'):.2f} on the workers + {cpu_per('client'):.2f} on the client "
        f"(which also runs the LocalCluster's scheduler).",
        f"- Memory: peak RSS of each worker process (engine, one photo at a time, "
        f"{len(paths)} photos): {', '.join(f'{m:.0f}' for m in worker_peaks)} MB; the "
        f"client's highest RSS during the cluster round: {max(client_rss):.0f} MB (the same "
        "process ran the local batch and the LocalCluster's scheduler too, so an upper bound).",
        f"- Cluster start-up ({n} worker processes, imports, engine built and models checked on "
        f"every worker), not in the time above: {start_s:.1f} s.",
        f"- Records identical to the local batch (faces, boxes, probabilities, annotated "
        f"names): {'yes' if same else 'NO'}.",
        f"- No-op Dask task round trip, one at a time: median {rt_ms:.1f} ms "
        f"(a local function call: {local_call_us:.2f} µs).",
        f"- No-op tasks with the client's window ({window} in flight): {noop_window:.0f} "
        f"tasks/s; with 256 in flight: {noop_wide:.0f} tasks/s (the scheduler's and one "
        "client's ceiling for any task, whatever the number of workers).",
        f"- Client time per photo in `Case.save` (record, annotated copy, audit line; median): "
        f"{save_ms:.1f} ms on the cluster path (writes the worker's encoded copy), "
        f"{save_local_ms:.1f} ms in the local batch (encodes the copy itself).",
        f"- Resume, the same photos again (all recorded, all skipped): "
        f"{len(paths) / resume_cluster_s:.0f} photos/s on the cluster (workers hash, the "
        f"client looks up), {len(paths) / resume_local_s:.0f} photos/s locally.",
        f"- Bytes: workers read {in_bytes / len(paths) / 1024:.0f} KiB per photo; the client "
        f"received and wrote {annotated_out / len(paths) / 1024:.0f} KiB of annotated copy "
        "per photo (plus a JSON record of a few KiB).",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        head = "# Cluster benchmarks\n\nWritten by `bench/bench_cluster.py`; rerun it to refresh.\n"
        old = RESULTS.read_text(encoding="utf-8") if args.append and RESULTS.is_file() else head
        RESULTS.write_text(old.rstrip("\n") + "\n\n" + body + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
