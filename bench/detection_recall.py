"""Detection recall and time per detection mode / detect_size on ../shared/data/dev-eval.

Usage: python bench/detection_recall.py [--modes fast,standard,thorough] [--sizes 1920]
       [--thresholds 0.5,0.4] [--limit N] [--upscale F] [--precision int8|fp32]

Runs the engine's real detector (the same code path as the app) on every dev-eval photo and
prints, per configuration, recall of labelled faces with a shorter side >= 32 px at IoU >= 0.5,
detections that overlap no labelled face, and mean detection time per photo. The figures in
docs/adr/0003-detection-defaults.md come from this script.

``--upscale F`` enlarges every photo (and its labelled boxes, and ``--min-side``) by ``F`` first.
Why: every dev-eval photo's longer side is 1,024-1,824 px, so the default ``detect_size`` of 1920
never scales one down; ``--upscale 2.5`` makes them 2,560-4,560 px, like camera photos, and
shows what the main pass's downscaling costs in recall (an upscaled photo is softer than a
real one of that size, so this measures the geometry, not the sensor).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2

from forensic_app.core.detection import CenterFaceDetector
from forensic_app.core.evaluation import RecallCount, xywh_to_xyxy
from forensic_app.core.imaging import load_image
from forensic_app.core.modelstore import CENTERFACE_FILE, model_file, verified_model_path
from forensic_app.core.settings import AnalysisSettings

REPO = Path(__file__).resolve().parents[1]
DEV_EVAL = REPO.parent / "shared" / "data" / "dev-eval"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="fast,standard,thorough")
    ap.add_argument("--sizes", default="1920")
    ap.add_argument("--thresholds", default="0.5,0.4")
    ap.add_argument("--min-side", type=float, default=32)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--upscale", type=float, default=1.0, help="enlarge photos by this factor")
    ap.add_argument("--precision", choices=("fp32", "int8"), default="fp32")
    ap.add_argument("--detector", type=Path, help="another CenterFace file (experiments)")
    args = ap.parse_args(argv)
    if not (DEV_EVAL / "annotations.json").is_file():
        print(f"dev-eval not found at {DEV_EVAL}", file=sys.stderr)
        return 2
    ann = json.loads((DEV_EVAL / "annotations.json").read_text(encoding="utf-8"))
    names = list(ann)[: args.limit or None]
    images = [load_image(DEV_EVAL / "images" / n).rgb for n in names]
    up = args.upscale
    if up != 1.0:
        images = [
            cv2.resize(im, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC) for im in images
        ]
        ann = {n: [{"bbox": [v * up for v in f["bbox"]]} for f in ann[n]] for n in names}
    min_side = args.min_side * up
    sides = sorted(max(im.shape[:2]) for im in images)
    det_file = model_file(CENTERFACE_FILE, args.precision)
    det_path = args.detector or verified_model_path(det_file)[0]
    det_file = Path(det_path).name
    det = CenterFaceDetector(det_path, threads=args.threads)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    lowest = min(thresholds)
    print(
        f"{len(images)} photos, {sum(len(ann[n]) for n in names)} labelled faces; provider "
        f"{det.provider}, {det_file}; longer side {sides[0]}-{sides[-1]} px (upscale {up:g}); "
        f"recall of faces >= {min_side:g} px at IoU >= 0.5"
    )
    print("| mode | detect_size | threshold | recall | found/total | unmatched dets | s/photo |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    det.detect(images[0], AnalysisSettings())  # warm-up
    for mode in args.modes.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            settings = AnalysisSettings(det_threshold=lowest, detect_size=size, detection_mode=mode)
            found = []
            t0 = time.perf_counter()
            for im in images:
                found.append(det.detect(im, settings))
            per_photo = (time.perf_counter() - t0) / len(images)
            for thr in thresholds:
                count = RecallCount()
                for name, d in zip(names, found, strict=True):
                    gt = xywh_to_xyxy([f["bbox"] for f in ann[name]])
                    count.add(gt, d.boxes[d.scores >= thr], min_side)
                print(
                    f"| {mode} | {size} | {thr:g} | {count.recall:.3f} | "
                    f"{count.found}/{count.total} | {count.unmatched} | {per_photo:.2f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
