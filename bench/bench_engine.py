"""Engine overhead benchmark: model-only time vs end-to-end engine time, and peak memory.

Usage: python bench/bench_engine.py [--limit N] [--repeat R] [--mode standard]
       [--gender-model FILE] [--write bench/RESULTS.md]

For every dev-eval photo (../shared/data/dev-eval) it measures, in the same run:

* model-only: the two ONNX sessions alone (every detector pass of the chosen mode plus one
  batched gender call) on inputs prepared beforehand;
* end-to-end: ``Engine.analyze_path`` (read + SHA-256 + decode + EXIF, resizing, padding,
  decoding, NMS, crops, preprocessing, both models, result objects);

each the best of ``--repeat`` runs, interleaved so that machine load hits both alike, and
prints their ratio (target: end-to-end within 1.15x model-only). Then it generates a
6000x4000 JPEG and reports the peak resident memory of a fresh process analysing it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEV_EVAL = REPO.parent / "shared" / "data" / "dev-eval"
sys.path.insert(0, str(REPO))

from forensic_app.core.analysis import Engine  # noqa: E402
from forensic_app.core.atomic import write_text_atomic  # noqa: E402
from forensic_app.core.classification import preprocess  # noqa: E402
from forensic_app.core.detection import plan_passes, resize_for_pass, to_input  # noqa: E402
from forensic_app.core.imaging import load_image  # noqa: E402
from forensic_app.core.settings import AnalysisSettings  # noqa: E402


def model_inputs(engine: Engine, path: Path, settings: AnalysisSettings):
    """Everything the two sessions will be fed for this photo, prepared outside the timing."""
    img = load_image(path)
    blobs = []
    for p in plan_passes(img.width, img.height, settings):
        scaled = resize_for_pass(img.rgb, p.scale)
        if p.flip:
            scaled = np.ascontiguousarray(scaled[:, ::-1])
        blobs.append(to_input(scaled))  # (passes above the tile size are not used here)
    boxes = [f.box for f in engine.analyze_image(img, settings).faces]
    crops = engine.classifier.crops_for_boxes(img.rgb, boxes)
    batch = preprocess(crops, engine.gender_spec) if len(boxes) else None
    return img, blobs, batch


def time_models(engine: Engine, blobs, batch) -> float:
    t = time.perf_counter()
    for blob in blobs:
        engine.detector.run(blob)
    if batch is not None:
        step = engine.classifier.chunk_size  # the engine's own chunks (ADR 0009)
        for i in range(0, len(batch), step):
            engine.classifier.run(batch[i : i + step])
    return time.perf_counter() - t


def time_engine(engine: Engine, path: Path, settings: AnalysisSettings) -> float:
    t = time.perf_counter()
    result = engine.analyze_path(path, settings)
    elapsed = time.perf_counter() - t
    if not result.ok:
        raise RuntimeError(f"{path}: {result.error}")
    return elapsed


PEAK_CHILD = r"""
import json, sys, time
from pathlib import Path
from forensic_app.core.analysis import Engine
from forensic_app.core.settings import AnalysisSettings

def status_kb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return -1

gm = sys.argv[3] or None
engine = Engine.create(gender_model=Path(gm) if gm else None)
create_peak = status_kb("VmHWM")  # not ru_maxrss: Linux carries the parent's over exec
base = status_kb("VmRSS")
try:  # reset the high-water mark so it measures the analysis alone (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
except OSError:
    pass
t = time.perf_counter()
r = engine.analyze_path(sys.argv[1], AnalysisSettings(detection_mode=sys.argv[2]))
dt = time.perf_counter() - t
print(json.dumps({"base_kb": base, "peak_kb": status_kb("VmHWM"), "create_peak_kb": create_peak,
                  "seconds": dt, "faces": len(r.faces), "error": r.error}))
"""


def peak_memory(photo: Path, mode: str, gender_model: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_CHILD, str(photo), mode, gender_model],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_large_photo(folder: Path, source: Path) -> Path:
    """A realistic 6000x4000 JPEG: a dev-eval photo scaled up (faces become large and small)."""
    import cv2
    from PIL import Image

    rgb = load_image(source).rgb
    big = cv2.resize(rgb, (6000, 4000), interpolation=cv2.INTER_CUBIC)
    out = folder / "large_6000x4000.jpg"
    Image.fromarray(big).save(out, quality=90)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="first N photos only (default: all)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mode", default="standard", choices=("fast", "standard", "thorough"))
    ap.add_argument("--gender-model", default="", help="gender ONNX (default: models/)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true", help="only the 6000x4000 memory test")
    ap.add_argument("--write", type=Path, default=None, help="also write the output here")
    args = ap.parse_args(argv)
    if not (DEV_EVAL / "annotations.json").is_file():
        print(f"dev-eval not found at {DEV_EVAL}", file=sys.stderr)
        return 2
    lines: list[str] = []

    def out(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    gm = Path(args.gender_model) if args.gender_model else None
    engine = Engine.create(gender_model=gm, threads=args.threads)
    settings = AnalysisSettings(detection_mode=args.mode)
    names = list(json.loads((DEV_EVAL / "annotations.json").read_text(encoding="utf-8")))
    names = names[: args.limit or None]
    import onnxruntime

    out(f"# bench_engine: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    out(
        f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"onnxruntime {onnxruntime.__version__}, provider {engine.provider}; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    out(
        f"models: {', '.join(f'{m.role}={Path(m.path).name}' for m in engine.models)}; "
        f"mode {args.mode}, detect_size {settings.detect_size}; best of {args.repeat} runs"
    )
    out()
    out("| photo | size | faces | model-only ms | end-to-end ms | ratio |")
    out("| --- | --- | --- | --- | --- | --- |")
    tot_model = tot_e2e = 0.0
    ratios = []
    for name in [] if args.memory_only else names:
        path = DEV_EVAL / "images" / name
        img, blobs, batch = model_inputs(engine, path, settings)
        time_models(engine, blobs, batch)  # warm-up for this input shape
        time_engine(engine, path, settings)
        m_best = e_best = float("inf")
        for _ in range(args.repeat):
            m_best = min(m_best, time_models(engine, blobs, batch))
            e_best = min(e_best, time_engine(engine, path, settings))
        tot_model += m_best
        tot_e2e += e_best
        ratios.append(e_best / m_best)
        faces = 0 if batch is None else batch.shape[0]
        out(
            f"| {Path(name).name[:40]} | {img.width}x{img.height} | {faces} | "
            f"{m_best * 1000:.0f} | {e_best * 1000:.0f} | {e_best / m_best:.3f} |"
        )
    out()
    if not args.memory_only:
        out(
            f"total over {len(names)} photos: model-only {tot_model:.2f} s, end-to-end "
            f"{tot_e2e:.2f} s, ratio {tot_e2e / tot_model:.3f} (median per photo "
            f"{float(np.median(ratios)):.3f}, worst {max(ratios):.3f}); target <= 1.15"
        )
    if not args.no_memory:
        with tempfile.TemporaryDirectory() as tmp:
            big = make_large_photo(Path(tmp), DEV_EVAL / "images" / names[0])
            for mode in ("fast", "standard", "thorough"):
                r = peak_memory(big, mode, args.gender_model)
                out(
                    f"6000x4000 JPEG, {mode}: peak RSS while analysing "
                    f"{r['peak_kb'] / 1024:.0f} MiB (RSS after Engine.create "
                    f"{r['base_kb'] / 1024:.0f} MiB; peak during create "
                    f"{r['create_peak_kb'] / 1024:.0f} MiB), "
                    f"{r['seconds']:.1f} s, {r['faces']} faces"
                    + (f", error {r['error']}" if r["error"] else "")
                )
    if args.write:
        write_text_atomic(args.write, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
