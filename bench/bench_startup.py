"""Bundle size and start-up time of the frozen app (or the source install, for comparison).

    python bench/bench_startup.py                       # dist/forensic-app, 5 runs each
    python bench/bench_startup.py --cold --runs 3       # evict the bundle from the page cache
    python bench/bench_startup.py --source              # python -m forensic_app instead
    python bench/bench_startup.py --json out.json

What "time to first window" means here, measured from outside without any test hook in the
app: the process is started on Qt's offscreen platform with HOME/XDG folders in a temporary
directory; the GUI writes "forensic_app <version> started" to its log file right after
``window.show()`` (forensic_app/gui/app.py). The bench reads that line's own timestamp
(milliseconds) and subtracts the moment just before the process was spawned; then it stops
the process. ``--version`` start-up (the CLI path, no Qt) is measured the same way, by wall
clock. ``--cold`` evicts every file of the bundle from the page cache first
(``posix_fadvise(DONTNEED)``, no root needed) so the run reads the bundle from disk, as the
first start after installing does; system libraries stay cached.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = REPO / "dist" / "forensic-app"
STARTED_RE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO \S+ \[[^\]]*\] forensic_app \S+ started"
)
LOG_GLOB = "state/forensic_app/logs/*.log"


def folder_size(path: Path) -> tuple[int, int]:
    """(bytes, files) of a folder, not following symlinks."""
    files = [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files), len(files)


def evict(path: Path) -> int:
    """Drop the page-cache pages of every file under ``path``; returns how many files."""
    count = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            try:
                fd = os.open(p, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


def isolated_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_DATA_HOME=str(home / "data"),
        QT_QPA_PLATFORM="offscreen",
    )
    env.pop("FORENSIC_APP_MODELS_DIR", None)
    return env


def time_version(cmd: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run(
            [*cmd, "--version"],
            env=isolated_env(Path(tmp)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"--version failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def time_first_window(cmd: list[str], timeout: float) -> float:
    """Seconds from spawning the GUI to the logged ``window.show()``; raises on timeout."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        t0 = time.time()
        proc = subprocess.Popen(
            cmd,
            env=isolated_env(home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for log in home.glob(LOG_GLOB):
                    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                        m = STARTED_RE.match(line)
                        if m:
                            shown = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
                            return shown.timestamp() - t0
                if proc.poll() is not None:
                    err = proc.stderr.read() if proc.stderr else ""
                    raise SystemExit(
                        f"the app exited ({proc.returncode}) before showing a "
                        f"window:\n{err[-2000:]}"
                    )
                time.sleep(0.01)
            raise SystemExit(f"no window within {timeout:.0f} s (no 'started' line in the log)")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
        "runs": len(values),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bundle",
        type=Path,
        default=DEFAULT_BUNDLE,
        help="onedir bundle folder (default dist/forensic-app)",
    )
    parser.add_argument(
        "--source",
        action="store_true",
        help="measure `python -m forensic_app` from this checkout instead",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--cold",
        action="store_true",
        help="evict the bundle's files from the page cache before each run",
    )
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)

    result: dict[str, object] = {}
    if args.source:
        cmd = [sys.executable, "-m", "forensic_app"]
        result["target"] = "source"
    else:
        exe = args.bundle / ("forensic-app.exe" if os.name == "nt" else "forensic-app")
        if not exe.is_file():
            raise SystemExit(f"{exe} not found: build it first (bash packaging/build_linux.sh)")
        cmd = [str(exe)]
        size, files = folder_size(args.bundle)
        result.update(target=str(args.bundle), bundle_bytes=size, bundle_files=files)
        record = args.bundle.parent / "build-linux.json"
        if record.is_file():
            built = json.loads(record.read_text(encoding="utf-8"))
            result.update(
                tarball_bytes=built.get("tarball_bytes"), deb_bytes=built.get("deb_bytes")
            )

    def prepare() -> None:
        if args.cold and not args.source:
            evict(args.bundle)

    version_times, window_times = [], []
    for _ in range(args.runs):
        prepare()
        version_times.append(time_version(cmd))
    for _ in range(args.runs):
        prepare()
        window_times.append(time_first_window(cmd, args.timeout))
    result["cold"] = bool(args.cold and not args.source)
    result["load_average_1min"] = round(os.getloadavg()[0], 2)  # CPU shared with other work
    result["cpus"] = os.cpu_count()
    result["version_start"] = summary(version_times)
    result["first_window"] = summary(window_times)

    if "bundle_bytes" in result:
        print(
            f"bundle: {result['bundle_bytes'] / 1e6:.0f} MB in {result['bundle_files']} files"
            + (
                f"; .tar.gz {result['tarball_bytes'] / 1e6:.0f} MB"
                if result.get("tarball_bytes")
                else ""
            )
            + (f"; .deb {result['deb_bytes'] / 1e6:.0f} MB" if result.get("deb_bytes") else "")
        )
    kind = "cold" if result["cold"] else "warm"
    print(f"load average {result['load_average_1min']} on {result['cpus']} CPUs")
    for key, label in (("version_start", "--version"), ("first_window", "first window")):
        s = result[key]
        print(
            f"{label:>13} ({kind}): median {s['median_s']:.2f} s  "  # type: ignore[index]
            f"[min {s['min_s']:.2f}, max {s['max_s']:.2f}, {s['runs']} runs]"
        )  # type: ignore[index]
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
