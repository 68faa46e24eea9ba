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
import json
from pathlib import Path

import numpy as np
import torch

from forensic_app.core.crops import extract_crop
from training import data as D
from training.evaluate import wider_val_faces
from training.export import torch_outputs
from training.metrics import binary_metrics, wild_auc_mean
from training.model import GenderAgeNet
from training.train import _load_parent, log


def wider_val_crops(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(square crops, --no-detect crops, labels) of wider-gender val at native resolution."""
    faces = wider_val_faces()
    square = [extract_crop(img, box, size) for img, box, _, _ in faces]
    no_detect = [D.no_detect_crop(img, box, valid, size) for img, box, valid, _ in faces]
    y = np.asarray([int(r["label"]) for *_, r in faces])
    return D.to_tensor_batch(square), D.to_tensor_batch(no_detect), y


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
            logits, _ = torch_outputs(net, x, flip_average=True)  # as the exported graph runs
            m = binary_metrics(labels, 1 / (1 + np.exp(-logits)))
            row[name] = {"auc": m["auc"], "balanced_accuracy": m["balanced_accuracy"]}
        row["wild_auc_mean"] = wild_auc_mean(row["square"]["auc"], row["no_detect"]["auc"])
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
