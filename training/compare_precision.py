"""The int8 gender model against its fp32 original, on the model card's evaluation sets.

Why a separate script: the issue's accuracy rule (balanced accuracy within 0.5 point, AUC within
0.003, age MAE within 0.2 years) must be measured before the default precision is chosen, with
the same readers and framings as the model card (``training.evaluate``), through the app's own
``GenderClassifier``.

Sets: wider-gender val (app crop, and the ``--no-detect`` framing), dev-eval/gender_crops
(``--no-detect`` framing), gender-train val (age MAE; faces cropped around the fp32 CenterFace
box as ``training.evaluate`` does, whole image where none is found).

Usage: ``python -m training.compare_precision [--int8 models/gender_effnet_b0.int8.onnx]``;
writes ``models/eval/int8.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import cv2
import numpy as np

from forensic_app.core import modelstore
from forensic_app.core.classification import GenderClassifier
from forensic_app.core.detection import CenterFaceDetector
from forensic_app.core.settings import AnalysisSettings
from training import data as D
from training.evaluate import _predict, eval_dev_crops, eval_wider_val, log, wider_val_faces
from training.metrics import binary_metrics

OUT = modelstore.models_dir() / "eval" / "int8.json"


def gtrain_val_crops(
    size: int, margin: float, shape: str
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """gender-train val faces cropped like ``training.evaluate.eval_gtrain_val`` (detected box)."""
    from forensic_app.core import crops as C

    rows = [
        r
        for r in csv.DictReader(open(D.GTRAIN_DIR / "manifest.csv", encoding="utf-8"))
        if r["split"] == "val"
    ]
    cache = Path("/tmp") / f"gtrain_val_crops_{size}_{margin}_{shape}.npz"
    if cache.is_file():  # the detection takes minutes; the crops do not depend on the model
        z = np.load(cache)
        return list(z["crops"]), z["labels"], z["ages"]
    blobs = D._read_members(D.GTRAIN_DIR, rows)
    det = CenterFaceDetector(modelstore.verified_model_path(modelstore.CENTERFACE_FILE)[0])
    settings = AnalysisSettings()
    out, labels, ages = [], [], []
    for r in rows:
        img = D._decode(blobs[(r["shard"], r["member"])])
        if img.shape[:2] != (D.GTRAIN_CACHE, D.GTRAIN_CACHE):  # as the training cache holds it
            img = cv2.resize(img, (D.GTRAIN_CACHE, D.GTRAIN_CACHE), interpolation=cv2.INTER_LINEAR)
        box = D.detect_face_box(det, img, settings)
        if box is None:
            out.append(C.whole_image_crop(img, size, shape))
        else:
            out.append(C.extract_crop(img, box.tolist(), size, margin, shape))
        labels.append(int(r["label"]))
        ages.append(D._age(r["age"]))
    labels_a, ages_a = np.asarray(labels), np.asarray(ages, np.float64)
    np.savez(cache, crops=np.stack(out), labels=labels_a, ages=ages_a)
    return out, labels_a, ages_a


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp32", type=Path, default=modelstore.models_dir() / modelstore.GENDER_FILE)
    ap.add_argument(
        "--int8",
        type=Path,
        default=modelstore.models_dir() / modelstore.model_file(modelstore.GENDER_FILE, "int8"),
    )
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--skip-age", action="store_true")
    ap.add_argument(
        "--reuse-fp32", type=Path, help="an earlier output whose fp32 figures (same file) to reuse"
    )
    args = ap.parse_args(argv)
    clfs = {"fp32": GenderClassifier(args.fp32), "int8": GenderClassifier(args.int8)}
    faces = wider_val_faces()
    fp32_sha = D.file_sha256(args.fp32)
    res: dict = {
        "fp32": {"file": args.fp32.name, "sha256": fp32_sha},
        "int8": {"file": args.int8.name, "sha256": D.file_sha256(args.int8)},
    }
    if args.reuse_fp32:
        old = json.loads(args.reuse_fp32.read_text(encoding="utf-8"))["fp32"]
        if old.get("sha256", fp32_sha) == fp32_sha:  # fp32 inference is deterministic
            res["fp32"] = old
            clfs.pop("fp32")
    for key, clf in clfs.items():
        log(f"{key}: wider-gender val, dev-eval crops")
        mw, _, _ = eval_wider_val(clf, faces=faces)
        mn, _, _ = eval_wider_val(clf, no_detect=True, faces=faces)
        md, _, _ = eval_dev_crops(clf)
        for name, m in (("wider_val", mw), ("wider_val_no_detect", mn), ("dev_eval_crops", md)):
            res[key][name] = {k: m[k] for k in ("n", "balanced_accuracy", "auc")}
    if not args.skip_age:
        spec = clfs["fp32"].spec
        log("gender-train val: detecting faces with the fp32 detector")
        crops, y, ages = gtrain_val_crops(spec.input_size, spec.crop_margin, spec.crop_shape)
        known = ~np.isnan(ages)
        for key, clf in clfs.items():
            if "gtrain_val" in res[key]:
                continue
            p, age = _predict(clf, crops)
            m = binary_metrics(y, p)
            res[key]["gtrain_val"] = {
                "n": int(len(y)),
                "balanced_accuracy": m["balanced_accuracy"],
                "auc": m["auc"],
                "age_mae": float(np.abs(age[known] - ages[known]).mean()),
                "age_n": int(known.sum()),
            }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print("| set | metric | fp32 | int8 | difference | rule |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("wider_val", "wider_val_no_detect", "dev_eval_crops", "gtrain_val"):
        if name not in res["fp32"] or name not in res["int8"]:
            continue
        a, b = res["fp32"][name], res["int8"][name]
        for metric, rule in (("balanced_accuracy", 0.005), ("auc", 0.003), ("age_mae", 0.2)):
            if metric in a:
                d = b[metric] - a[metric]
                ok = d <= rule if metric == "age_mae" else d >= -rule
                print(
                    f"| {name} (n={a['n']}) | {metric} | {a[metric]:.4f} | {b[metric]:.4f} | "
                    f"{d:+.4f} | {'holds' if ok else 'FAILS'} (±{rule:g}) |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
