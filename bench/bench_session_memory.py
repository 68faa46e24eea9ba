"""onnxruntime memory options for dynamic shapes, measured (docs/adr/0009-onnxruntime-memory.md).

    python bench/bench_session_memory.py --photos 60     # every configuration, one child each

Each configuration runs in its own process: the real engine (trained gender model, default
settings) through ``BatchRunner`` with the CLI's default parallelism (one photo per core, one
intra-op thread each) over the first N photos of bench_memory.py's set (dev-eval photos
re-encoded at random sizes 640-6,000 px, so the detector sees a new input shape almost every
photo). Recorded: peak RSS, RSS after the first and the last tenth of the photos (growth) and
photos/s. Appends a table to bench/RESULTS-memory.md's ``session`` section with ``--write``.
Not run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

CONFIGS = {
    # name: (detector arena, detector pattern, gender arena, gender pattern, extend, bucket, malloc)
    "arena+pattern (onnxruntime default)": (True, True, True, True, "next_power_of_two", 32, ""),
    "arena, no pattern": (True, False, True, True, "next_power_of_two", 32, ""),
    "no arena, pattern": (False, True, True, True, "next_power_of_two", 32, ""),
    "no arena, no pattern": (False, False, True, True, "next_power_of_two", 32, ""),
    "shared arena same-as-requested": (True, True, True, True, "same_as_requested", 32, ""),
    "arena+pattern, buckets of 256": (True, True, True, True, "next_power_of_two", 256, ""),
    "no arena, pattern, buckets of 256": (False, True, True, True, "next_power_of_two", 256, ""),
}

CHILD = r"""
import json, sys, time, resource
import psutil
from pathlib import Path
cfg = json.loads(sys.argv[1]); paths = json.loads(sys.argv[2])
from forensic_app.core import runtime, detection
det_arena, det_pat, g_arena, g_pat, extend, bucket, _ = cfg
runtime.DETECTOR_MEMORY = runtime.SessionMemory(det_arena, det_pat, extend)
runtime.GENDER_MEMORY = runtime.SessionMemory(g_arena, g_pat, extend)
import forensic_app.core.classification as C
C.GENDER_MEMORY = runtime.GENDER_MEMORY
detection.DETECTOR_MEMORY = runtime.DETECTOR_MEMORY
detection.SHAPE_BUCKET = bucket
from forensic_app.core.analysis import Engine
from forensic_app.core.batch import BatchRunner, detector_threads, recommended_parallelism
threads, workers = recommended_parallelism(len(paths))
engine = Engine.create(threads=threads, detector_threads=detector_threads(threads, workers))
proc = psutil.Process()
rss = []
def on_progress(p):
    rss.append((p.done, proc.memory_info().rss / 2**20))
t = time.perf_counter()
out = BatchRunner(engine, on_progress=on_progress, workers=workers).run(paths)
dt = time.perf_counter() - t
faces = sum(len(r.faces) for r in out.results)
print(json.dumps({"seconds": dt, "faces": faces, "rss": rss,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "failed": len(out.failed)}))
"""


MICRO = {
    # name: (arena, pattern, extend, bucket, heap bound)
    "arena+pattern, glibc default (onnxruntime default)": (
        True,
        True,
        "next_power_of_two",
        32,
        False,
    ),
    "arena+pattern": (True, True, "next_power_of_two", 32, True),
    "shared arena same-as-requested + pattern": (True, True, "same_as_requested", 32, True),
    "arena+pattern, buckets of 256": (True, True, "next_power_of_two", 256, True),
    "no arena, no pattern": (False, False, "next_power_of_two", 32, True),
    "no arena, pattern, glibc default": (False, True, "next_power_of_two", 32, False),
    "no arena, pattern (chosen)": (False, True, "next_power_of_two", 32, True),
    "no arena, pattern, buckets of 256": (False, True, "next_power_of_two", 256, True),
}

MICRO_CHILD = r"""
import json, sys, time, resource
import numpy as np, psutil
cfg = json.loads(sys.argv[1]); shapes = json.loads(sys.argv[2]); model = sys.argv[3]
arena, pattern, extend, bucket, heap = cfg
from forensic_app.core import runtime, detection, classification
if not heap:
    runtime.bound_native_heap = lambda: False
mem = runtime.SessionMemory(arena, pattern, extend)
detection.DETECTOR_MEMORY = mem
classification.GENDER_MEMORY = mem
detection.SHAPE_BUCKET = bucket
proc = psutil.Process()
if model == "detector":
    det = detection.CenterFaceDetector("models/centerface.onnx", threads=1)
    feeds = [np.zeros((h, w, 3), np.uint8) for h, w in shapes]
    run = lambda x: det.run(detection.to_input(x))
else:
    clf = classification.GenderClassifier("models/gender_effnet_b0.onnx", threads=1)
    s = clf.spec.input_size
    feeds = [np.random.default_rng(n).random((n, 3, s, s), dtype=np.float32)
             for n in shapes]
    run = clf.run
base = proc.memory_info().rss / 2**20
after = []
t = time.perf_counter()
for x in feeds:
    run(x)
    after.append(round(proc.memory_info().rss / 2**20 - base, 1))
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"ms_per_run": dt / len(feeds) * 1000, "after": after,
                  "peak_over_base": peak - base}))
"""


def detector_shapes(paths: list[str]) -> list[tuple[int, int]]:
    """The real detector input shapes of these photos: every pass of the standard mode."""
    from PIL import Image

    from forensic_app.core.detection import plan_passes
    from forensic_app.core.settings import AnalysisSettings

    shapes = []
    for path in paths:
        with Image.open(path) as im:
            w, h = im.size
        for p in plan_passes(w, h, AnalysisSettings()):
            shapes.append((max(1, round(h * p.scale)), max(1, round(w * p.scale))))
    return shapes


def run_micro(name: str, shapes: list, model: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", MICRO_CHILD, json.dumps(MICRO[name]), json.dumps(shapes), model],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=REPO,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(name=name, model=model)
    return res


def run_config(name: str, paths: list[str]) -> dict:
    cfg = CONFIGS[name]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if cfg[6]:
        env.update(dict(kv.split("=") for kv in cfg[6].split(",")))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cfg), json.dumps(paths)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["name"] = name
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--work", type=Path, default=Path("/tmp/forensic_mem_work"))
    ap.add_argument("--only", action="append", help="configuration name (repeatable)")
    ap.add_argument("--out", type=Path, help="append JSON lines here")
    ap.add_argument("--micro", choices=("detector", "gender"), help="one session alone")
    args = ap.parse_args()
    if args.micro:
        photos = sorted(str(p) for p in (args.work / "photos").glob("*.jpg"))[: args.photos]
        if args.micro == "detector":
            shapes = detector_shapes(photos)
        else:  # the chunks of a 276-face photo, then the sizes a typical batch gives
            shapes = [16] * 17 + [4] + [16, 7, 3, 12, 1, 16, 9, 5]
        for name in args.only or list(MICRO):
            res = run_micro(name, shapes, args.micro)
            print(
                f"{args.micro} | {name} | {res['ms_per_run']:.0f} ms/run | peak +"
                f"{res['peak_over_base']:.0f} MB | RSS after first run +{res['after'][0]:.0f}"
                f" MB, after last +{res['after'][-1]:.0f} MB, max after +{max(res['after']):.0f}",
                flush=True,
            )
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(res) + "\n")
        return 0
    paths = sorted(str(p) for p in (args.work / "photos").glob("*.jpg"))[: args.photos]
    if len(paths) < args.photos:
        raise SystemExit("run bench/bench_memory.py generate first")
    for name in args.only or list(CONFIGS):
        t = time.perf_counter()
        res = run_config(name, paths)
        n = len(res["rss"])
        first = res["rss"][max(0, n // 10 - 1)][1]
        last = res["rss"][-1][1]
        line = (
            f"{name}: peak {res['peak']:.0f} MB, RSS at {n // 10} photos {first:.0f} MB, "
            f"at {n} {last:.0f} MB, {n / res['seconds']:.2f} photos/s, faces {res['faces']}, "
            f"failed {res['failed']} ({time.perf_counter() - t:.0f} s)"
        )
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
