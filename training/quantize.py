"""Static int8 quantization of both shipped models (onnxruntime, QDQ, per-channel weights).

Why static QDQ: this machine's CPU (AMD EPYC, AVX-512 VNNI) runs onnxruntime's int8 kernels
(u8 activations x s8 weights) much faster than fp32 convolutions; static quantization fixes the
activation ranges once from calibration inputs, so inference adds no range-finding work.

Calibration sets (never an evaluation set: no dev-eval photo or crop, no wider-gender val face):

* gender model: ``--n-wider`` faces drawn (seed ``--seed``) from wider-gender *train*, cropped by
  the app's own code (``GenderClassifier.crops_for_boxes`` around the labelled box; one in three
  in the ``--no-detect`` framing via ``whole_image_crop``), plus ``--n-gtrain`` gender-train
  *train* images classified as whole images (``whole_image_crop``), preprocessed by the app's
  ``classification.preprocess`` from the model's own metadata.
* CenterFace: ``--n-photos`` photos composed from wider-gender *train* context crops (a random
  grid of 2-5 x 2-4 crops, each at a random scale, on a grey background, then scaled so its longer
  side is 640-1024 px), fed through the app's ``detection.to_input`` (zero padding to x32). The
  model is made shape-dynamic with ``detection.make_dynamic`` first and stays dynamic.

Usage (the shipped files): ``python -m training.quantize --keep-ends detector`` (both models;
the detector keeps its first convolution and heads in fp32). Options for experiments: ``--which``,
``--keep-ends``, ``--keep-se``, ``--exclude-*``, ``--method``, ``--passes``, ``--suffix``.
Writes ``models/<name>.int8.onnx`` with the fp32 file's metadata plus ``precision`` /
``quantized_from`` / ``calibration`` keys, and prints the SHA-256 for ``models/manifest.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from forensic_app.core import modelstore
from forensic_app.core.classification import GenderClassifier, preprocess
from forensic_app.core.detection import make_dynamic, to_input
from training import data as D

MODELS = modelstore.models_dir()
CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class ListReader(CalibrationDataReader):
    """Feeds a list of input blobs to the calibrator, one session call each."""

    def __init__(self, name: str, blobs: list[np.ndarray]) -> None:
        self.name = name
        self._it: Iterator[np.ndarray] = iter(blobs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        blob = next(self._it, None)
        return None if blob is None else {self.name: blob}


def _wider_train_rows(n: int, seed: int) -> list[dict[str, str]]:
    rows = [
        r
        for r in csv.DictReader(open(D.WIDER_DIR / "manifest.csv", encoding="utf-8"))
        if r["split"] == "train"
    ]
    rng = np.random.default_rng(seed)
    return [rows[i] for i in sorted(rng.choice(len(rows), size=min(n, len(rows)), replace=False))]


def gender_calibration(clf: GenderClassifier, n_wider: int, n_gtrain: int, seed: int, bs: int):
    """Crops like the app's, from training data only; returns (batches, description)."""
    rows = _wider_train_rows(n_wider, seed)
    blobs = D._read_members(D.WIDER_DIR, rows)
    crops = []
    for k, r in enumerate(rows):
        img = D._decode(blobs[(r["shard"], r["member"])])
        x, y, w, h = (float(v) for v in r["box_in_crop"].split())
        box = [x, y, x + w, y + h]
        if k % 3 == 2:  # the --no-detect framing: box + 25 % per side, letterboxed
            valid = np.asarray([float(v) for v in r["valid_in_crop"].split()])
            crops.append(clf.whole_image_crop(D.no_detect_region(img, box, valid))[0])
        else:
            crops.append(clf.crops_for_boxes(img, [box])[0])
    g_rows = [
        r
        for r in csv.DictReader(open(D.GTRAIN_DIR / "manifest.csv", encoding="utf-8"))
        if r["split"] == "train"
    ]
    rng = np.random.default_rng(seed + 1)
    pick = [g_rows[i] for i in sorted(rng.choice(len(g_rows), size=n_gtrain, replace=False))]
    g_blobs = D._read_members(D.GTRAIN_DIR, pick)
    for r in pick:
        crops.append(clf.whole_image_crop(D._decode(g_blobs[(r["shard"], r["member"])]))[0])
    order = np.random.default_rng(seed + 2).permutation(len(crops))
    arr = np.stack([crops[i] for i in order])
    batches = [preprocess(arr[i : i + bs], clf.spec) for i in range(0, len(arr), bs)]
    desc = (
        f"{len(rows)} wider-gender train faces (seed {seed}; app crop, one in three --no-detect "
        f"framing) + {len(pick)} gender-train train images (whole-image crop)"
    )
    return batches, desc


def detector_calibration(n_photos: int, seed: int, max_side: int = 1024, upscaled: bool = False):
    """Photos composed from wider-gender train context crops; returns (blobs, description)."""
    rng = np.random.default_rng(seed)
    rows = _wider_train_rows(n_photos * 8, seed + 10)
    blobs = D._read_members(D.WIDER_DIR, rows)
    tiles = [D._decode(blobs[(r["shard"], r["member"])]) for r in rows]
    out = []
    k = 0
    for _ in range(n_photos):
        gx, gy = int(rng.integers(2, 6)), int(rng.integers(2, 5))
        cell = int(rng.integers(96, 256))
        canvas = np.full((gy * cell, gx * cell, 3), int(rng.integers(40, 200)), np.uint8)
        for iy in range(gy):
            for ix in range(gx):
                t = tiles[k % len(tiles)]
                k += 1
                side = int(cell * rng.uniform(0.4, 1.0))
                t = cv2.resize(t, (side, side), interpolation=cv2.INTER_AREA)
                oy = iy * cell + int(rng.integers(0, cell - side + 1))
                ox = ix * cell + int(rng.integers(0, cell - side + 1))
                canvas[oy : oy + side, ox : ox + side] = t
        longest = int(rng.integers(640, max_side + 1))
        s = longest / max(canvas.shape[:2])
        if upscaled and rng.random() < 0.5:  # like thorough mode's 2x detail pass: soft pixels
            small = cv2.resize(canvas, None, fx=s / 2, fy=s / 2, interpolation=cv2.INTER_AREA)
            photo = cv2.resize(small, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
        else:
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            photo = cv2.resize(canvas, None, fx=s, fy=s, interpolation=interp)
        if upscaled and rng.random() < 0.5:  # the mirrored pass
            photo = np.ascontiguousarray(photo[:, ::-1])
        out.append(to_input(photo))
    desc = (
        f"{n_photos} photos composed (seed {seed}) from {min(k, len(tiles))} wider-gender train "
        f"context crops: grids of 2-5 x 2-4 crops at random scales, longer side 640-{max_side} px"
        + (
            "; half 2x-upscaled from half size, half mirrored (the app's passes)"
            if upscaled
            else ""
        )
    )
    return out, desc


def sensitive_nodes(path: Path, ends: bool, se: bool) -> list[str]:
    """Names of the layers most sensitive to int8, to keep in fp32 (names unnamed nodes first).

    ``ends``: the first convolution and, walking back from every graph output, each node up to
    and including the first Conv/Gemm/ConvTranspose (the heads). ``se``: the squeeze-excitation
    blocks (ReduceMean/GlobalAveragePool -> Conv -> ... -> Sigmoid -> the Mul that gates).
    """
    model = onnx.load(str(path))
    graph = model.graph
    for i, node in enumerate(graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    onnx.save(model, str(path))
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    weighty = ("Conv", "Gemm", "ConvTranspose", "MatMul")
    out: list[str] = []
    if ends:
        first = next(n for n in graph.node if n.op_type in weighty)
        out.append(first.name)
        for o in graph.output:
            stack = [o.name]
            seen: set[str] = set()
            while stack:
                node = producer.get(stack.pop())
                if node is None or node.name in seen:
                    continue
                seen.add(node.name)
                out.append(node.name)
                if node.op_type not in weighty:
                    stack.extend(i for i in node.input if i in producer)
    if se:  # timm names every squeeze-excitation node ".../se/...": conv_reduce, act, expand, gate
        out.extend(n.name for n in graph.node if "/se/" in n.name)
    return sorted(set(out))


def _describe(exclude: list[str], ends: bool, se: bool) -> str:
    """A short account of the nodes kept in fp32 (the full list can be hundreds of names)."""
    parts = (["the first convolution and the output heads"] if ends else []) + (
        ["every squeeze-excitation block"] if se else []
    )
    if len(exclude) <= 8 or not parts:
        return ", ".join(exclude)
    return f"{' and '.join(parts)} ({len(exclude)} nodes)"


def _with_metadata(path: Path, meta: dict[str, str]) -> None:
    model = onnx.load(str(path))
    kept = {p.key: p.value for p in model.metadata_props}
    kept.update(meta)
    del model.metadata_props[:]
    for k, v in kept.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))


def quantize(
    fp32: Path,
    out: Path,
    batches: list[np.ndarray],
    input_name: str,
    desc: str,
    exclude: list[str],
    keep_ends: bool = False,
    keep_se: bool = False,
    op_types: list[str] | None = None,
    method: str = "minmax",
) -> str:
    """Pre-process, calibrate and quantize ``fp32`` into ``out``; returns the int8 file's SHA."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.onnx"
        pre = Path(tmp) / "pre.onnx"
        if fp32.name == modelstore.CENTERFACE_FILE:
            # opset 9 -> 13: per-channel DequantizeLinear (its ``axis``) needs opset 13
            dynamic = onnx.load_from_string(make_dynamic(fp32.read_bytes()))
            onnx.save(version_converter.convert_version(dynamic, 13), str(src))
        else:
            src.write_bytes(fp32.read_bytes())
        # symbolic shape inference cannot follow ConvTranspose over symbolic height/width
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        if keep_ends or keep_se:
            exclude = exclude + sensitive_nodes(pre, keep_ends, keep_se)
        log(f"calibrating {fp32.name} on {len(batches)} inputs; fp32 nodes: {exclude}")
        quantize_static(
            str(pre),
            str(out),
            ListReader(input_name, batches),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=False,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CALIBRATION_METHODS[method],
            extra_options={"CalibPercentile": 99.99} if method == "percentile" else None,
            nodes_to_exclude=exclude or None,
            op_types_to_quantize=op_types or None,
            # no CalibMaxIntermediateOutputs: onnxruntime 1.32 drops each full chunk unused
            # (collect_data clears without computing); MinMax keeps only reduced scalars anyway
        )
    fp_meta = {
        p.key: p.value for p in onnx.load(str(fp32), load_external_data=False).metadata_props
    }
    meta = {
        **fp_meta,
        modelstore.PRECISION_KEY: "int8",
        modelstore.QUANTIZED_FROM_KEY: json.dumps(
            {"file": fp32.name, "sha256": D.file_sha256(fp32)}, sort_keys=True
        ),
        modelstore.CALIBRATION_KEY: desc
        + "; onnxruntime quantize_static, QDQ, per-channel s8 weights, u8 activations, "
        + ("MinMax" if method == "minmax" else "percentile 99.99")
        + (f"; only {', '.join(op_types)} quantized" if op_types else "")
        + (f"; kept in fp32: {_describe(exclude, keep_ends, keep_se)}" if exclude else ""),
    }
    _with_metadata(out, meta)
    sha = D.file_sha256(out)
    log(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB) sha256 {sha}")
    if out.name == modelstore.model_file(fp32.name, "int8"):  # not for --suffix experiments
        _update_manifest(out, fp32, sha, meta[modelstore.CALIBRATION_KEY])
    return sha


def _update_manifest(out: Path, fp32: Path, sha: str, calibration: str) -> None:
    """Add or replace ``out``'s entry in models/manifest.json: the fp32 entry's role, name and
    licence (the int8 file is a derivative of it), plus precision and provenance."""
    path = fp32.parent / modelstore.MANIFEST_NAME
    manifest = modelstore.load_manifest(fp32.parent)
    base = manifest[fp32.name]
    manifest[out.name] = {
        "role": base["role"],
        "name": base["name"],
        "sha256": sha,
        "source": f"int8 quantization of {fp32.name} by python -m training.quantize",
        "license": base["license"],
        "precision": "int8",
        "quantized_from": {"file": fp32.name, "sha256": D.file_sha256(fp32)},
        "calibration": calibration,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--which", default="gender,detector")
    ap.add_argument("--n-wider", type=int, default=300)
    ap.add_argument("--n-gtrain", type=int, default=100)
    ap.add_argument("--n-photos", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--exclude-gender", default="", help="comma-separated node names kept fp32")
    ap.add_argument("--exclude-detector", default="", help="comma-separated node names kept fp32")
    ap.add_argument("--suffix", default="", help="write <name>.int8<suffix>.onnx (experiments)")
    ap.add_argument(
        "--keep-ends", default="", help="roles (gender,detector) whose first/last layers stay fp32"
    )
    ap.add_argument("--keep-se", action="store_true", help="gender: squeeze-excitation in fp32")
    ap.add_argument("--gender-ops", default="", help="quantize only these op types (Conv,Gemm)")
    ap.add_argument("--method", choices=sorted(CALIBRATION_METHODS), default="minmax")
    ap.add_argument("--max-side", type=int, default=1024, help="detector photos: longest side")
    ap.add_argument("--passes", action="store_true", help="detector: upscaled/mirrored photos")
    args = ap.parse_args(argv)
    which = set(args.which.split(","))
    if "gender" in which:
        fp32 = MODELS / modelstore.GENDER_FILE
        clf = GenderClassifier(fp32)
        batches, desc = gender_calibration(clf, args.n_wider, args.n_gtrain, args.seed, bs=16)
        out = MODELS / modelstore.model_file(modelstore.GENDER_FILE, "int8")
        out = out.with_name(out.name.replace(".onnx", f"{args.suffix}.onnx"))
        ex = [s for s in args.exclude_gender.split(",") if s]
        ends = "gender" in args.keep_ends.split(",")
        ops = [o for o in args.gender_ops.split(",") if o]
        quantize(fp32, out, batches, clf.input_name, desc, ex, ends, args.keep_se, ops, args.method)
    if "detector" in which:
        fp32 = MODELS / modelstore.CENTERFACE_FILE
        blobs, desc = detector_calibration(args.n_photos, args.seed, args.max_side, args.passes)
        out = MODELS / modelstore.model_file(modelstore.CENTERFACE_FILE, "int8")
        out = out.with_name(out.name.replace(".onnx", f"{args.suffix}.onnx"))
        ex = [s for s in args.exclude_detector.split(",") if s]
        ends = "detector" in args.keep_ends.split(",")
        quantize(fp32, out, blobs, "input.1", desc, ex, ends, method=args.method)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
