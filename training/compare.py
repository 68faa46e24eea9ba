"""Score candidate checkpoints the way the shipped file would run, before exporting any of them.

Why: choosing among a run's last and best weights, soups and the previous model needs one fixed
yardstick measured the same way for all. Each candidate runs flip-averaged (as the exported
graph does) on the ``wider-gender`` val faces from their native-resolution context crops in both
framings the app meets — cropped around a detected box, and given as a ``--no-detect`` image —
and on a fixed subset of ``gender-train`` val in the app's framing. AUC needs no calibration,
so the ranking does not depend on the threshold that export fits afterwards.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch

from forensic_app.core.crops import extract_crop
from training import data as D
from training.metrics import binary_metrics
from training.model import ExportWrapper, GenderAgeNet
from training.train import _load_parent, log


def wider_val_crops(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(square crops, --no-detect crops, labels) of wider-gender val at native resolution."""
    from training.evaluate import _read_rgb

    rows = [
        r
        for r in csv.DictReader(open(D.WIDER_DIR / "manifest.csv", encoding="utf-8"))
        if r["split"] == "val"
    ]
    blobs = D._read_members(D.WIDER_DIR, rows)
    square, no_detect, y = [], [], []
    for r in rows:
        img = _read_rgb(blobs[(r["shard"], r["member"])])
        x, yy, w, h = (float(v) for v in r["box_in_crop"].split())
        box = [x, yy, x + w, yy + h]
        valid = np.asarray([float(v) for v in r["valid_in_crop"].split()])
        square.append(extract_crop(img, box, size))
        no_detect.append(D.no_detect_crop(img, box, valid, size))
        y.append(int(r["label"]))
    return D.to_tensor_batch(square), D.to_tensor_batch(no_detect), np.asarray(y)


@torch.no_grad()
def flip_logits(net: GenderAgeNet, x: np.ndarray, bs: int = 128) -> np.ndarray:
    wrap = ExportWrapper(net.eval(), flip_average=True).eval()
    return np.concatenate(
        [wrap(torch.from_numpy(x[i : i + bs]))[0].numpy() for i in range(0, len(x), bs)]
    )


def score(
    ckpts: list[Path], size: int = 112, gtrain_n: int = 1500, gtrain_framing: str = "detected"
) -> list[dict]:
    """One row per checkpoint: flip-averaged AUC and (uncalibrated) balanced accuracy."""
    sq, nd, y = wider_val_crops(size)
    gval = D.load_splits(gtrain_framing=gtrain_framing)["gtrain_val"]
    idx = np.sort(np.random.default_rng(0).choice(len(gval), gtrain_n, replace=False))
    gx = D.to_tensor_batch([D.eval_crop(gval, int(i), size) for i in idx])
    gy = gval.labels[idx]
    rows = []
    for path in ckpts:
        net = GenderAgeNet()
        net.load_state_dict(_load_parent(path)["weights"])
        row: dict = {"checkpoint": str(path)}
        for name, x, labels in (("square", sq, y), ("no_detect", nd, y), ("gtrain", gx, gy)):
            m = binary_metrics(labels, 1 / (1 + np.exp(-flip_logits(net, x))))
            row[name] = {"auc": m["auc"], "balanced_accuracy": m["balanced_accuracy"]}
        row["wild_auc_mean"] = (row["square"]["auc"] + row["no_detect"]["auc"]) / 2
        log(json.dumps(row))
        rows.append(row)
    return rows


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("ckpts", type=Path, nargs="+", help="checkpoints (last.pt, best.pt, soups)")
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(2)
    rows = score(args.ckpts, args.size)
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2))
    for r in rows:
        print(
            f"{r['wild_auc_mean']:.4f}  square {r['square']['auc']:.4f}  "
            f"no-detect {r['no_detect']['auc']:.4f}  gtrain {r['gtrain']['auc']:.4f} "
            f"/ bal.acc {r['gtrain']['balanced_accuracy']:.3f}  {r['checkpoint']}"
        )
