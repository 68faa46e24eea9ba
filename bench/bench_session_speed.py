"""Speed of onnxruntime memory options, interleaved in one process (ADR 0009).

    python bench/bench_session_speed.py [--heap-bound|--glibc-default] [--photos 4]

Why interleaved: on a shared machine the load changes minute to minute, so options timed one
after another compare the load, not the options. Here one process holds a session per option
and runs them in turn on the same inputs (the detector on the real pass shapes of the first
photos of bench_memory.py's set; the gender model on 16-crop chunks); the ratios are the
figures. RSS is not measured here (bench_session_memory.py does that, one process per option).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_session_memory import detector_shapes  # noqa: E402

from forensic_app.core import classification, detection, runtime  # noqa: E402

OPTIONS = {
    "arena+pattern": runtime.SessionMemory(True, True),
    "no arena, pattern": runtime.SessionMemory(False, True),
    "no arena, no pattern": runtime.SessionMemory(False, False),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--glibc-default", action="store_true", help="do not fix the mmap threshold")
    ap.add_argument("--work", type=Path, default=Path("/tmp/forensic_mem_work"))
    args = ap.parse_args()
    if args.glibc_default:
        runtime.bound_native_heap = lambda: False
    paths = sorted(str(p) for p in (args.work / "photos").glob("*.jpg"))[: args.photos]
    shapes = detector_shapes(paths)
    det_feeds = [detection.to_input(np.zeros((h, w, 3), np.uint8)) for h, w in shapes]
    dets, clfs = {}, {}
    for name, mem in OPTIONS.items():
        detection.DETECTOR_MEMORY = mem
        classification.GENDER_MEMORY = mem
        dets[name] = detection.CenterFaceDetector(REPO / "models" / "centerface.onnx", threads=1)
        clfs[name] = classification.GenderClassifier(
            REPO / "models" / "gender_effnet_b0.onnx", threads=1
        )
    s = clfs["arena+pattern"].spec.input_size
    chunks = [np.random.default_rng(i).random((16, 3, s, s), dtype=np.float32) for i in range(6)]
    times = {("detector", n): 0.0 for n in OPTIONS} | {("gender", n): 0.0 for n in OPTIONS}
    for _ in range(args.rounds):
        for feed in det_feeds:
            for name in OPTIONS:
                t = time.perf_counter()
                dets[name].run(feed)
                times[("detector", name)] += time.perf_counter() - t
        for chunk in chunks:
            for name in OPTIONS:
                t = time.perf_counter()
                clfs[name].run(chunk)
                times[("gender", name)] += time.perf_counter() - t
    heap = "glibc default" if args.glibc_default else "mmap threshold 1 MB"
    for model in ("detector", "gender"):
        base = times[(model, "arena+pattern")]
        for name in OPTIONS:
            t = times[(model, name)]
            print(f"| {model} | {name} | {heap} | {t:.1f} s | {t / base:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
