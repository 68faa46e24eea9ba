"""Calibrate and export a trained checkpoint to ONNX with the app's metadata contract.

Why here: the app reads preprocessing, labels, calibration and the default "uncertain" band from
the model file (docs/adr/0001-model-metadata-contract.md), so they are measured on the
``wider-gender`` val split and written into the file at export, next to the provenance (commit,
data-manifest hash, hyper-parameters). The export is checked three ways: ``onnx.checker``,
``parse_gender_metadata``, and ONNX Runtime vs PyTorch outputs on the val crops.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from forensic_app.core.crops import DEFAULT_MARGIN
from forensic_app.core.modelstore import parse_gender_metadata
from training import data as D
from training.cvstats import BAND_TARGET, band_for_target
from training.model import ExportWrapper, GenderAgeNet, views_of

MODEL_NAME = "effnet_b0_gender"
OPSET = 17
LICENSE_TEXT = (
    "Weights trained on non-commercial-research-only face data (WIDER FACE, UTKFace, CelebA); "
    "WIDER demographic labels CC BY-NC 4.0; FairFace sample CC BY 4.0; warm start from "
    "EfficientNet-Lite0 ImageNet weights (Apache-2.0). Non-commercial research use only."
)
TRAINING_DATA = (
    "wider-gender train (WIDER FACE val, 40 events; perceived-gender labels from WIDER "
    "Demographics) oversampled, + gender-train (UTKFace, CelebA, CelebA-in-the-wild, FairFace "
    "sample); class-balanced sampling; selected on wider-gender val"
)


def _git_commit() -> str:
    from training.train import git_commit

    return git_commit()


def _parent_summary(parent: dict | None) -> dict | None:
    if not parent:
        return None
    pmeta = parent.get("meta") or {}
    return {
        "checkpoint_sha256": parent.get("checkpoint_sha256"),
        "steps": parent.get("steps"),
        "elapsed_min": parent.get("elapsed_min"),
        "git_commit_at_training_start": pmeta.get("commit"),
        "hyper_parameters": pmeta.get("hparams"),
        "parent_run": _parent_summary(pmeta.get("parent")),
    }


def load_net(ckpt: Path) -> tuple[GenderAgeNet, dict]:
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    net = GenderAgeNet(views=views_of(ck["model"]))
    net.load_state_dict(ck["model"])
    net.eval()
    return net, ck


def fit_platt_balanced(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(temperature, logit shift) minimising the class-balanced val negative log-likelihood.

    Class-balanced Platt scaling: p = sigmoid((logit + shift) / temperature). Balanced because
    the model is meant for a 50:50 prior (class-balanced sampling): p_male must not lean toward
    whichever class the val photos happen to have more of. The shift matters as much as the
    temperature: on wild faces the first shipped model called women "male" more often than the
    reverse (19.6 % vs 11.3 %), and the balanced shift moves the 0.5 point to where the two
    error rates are about equal (measured on wider-gender val and, held out, dev-eval crops).
    The shift is folded into the gender head's bias at export, so the file's contract stays
    "logit / temperature".
    """
    n1 = max(int(y.sum()), 1)
    n0 = max(len(y) - n1, 1)
    w = np.where(y == 1, 0.5 / n1, 0.5 / n0)

    def nll(a: float, b: float) -> float:
        z = a * logits + b
        return float(np.sum(w * (np.logaddexp(0, z) - y * z)))

    best = (np.inf, 1.0, 0.0)
    for a in np.exp(np.linspace(np.log(0.2), np.log(3.0), 60)):
        for b in np.linspace(-2.0, 2.0, 81):
            v = nll(a, b)
            if v < best[0]:
                best = (v, a, b)
    _, a, b = best
    for _ in range(3):  # refine around the grid optimum
        grid = [
            (nll(aa, bb), aa, bb)
            for aa in np.linspace(a * 0.95, a * 1.05, 21)
            for bb in np.linspace(b - 0.05, b + 0.05, 21)
        ]
        _, a, b = min(grid)
    return float(1.0 / a), float(b / a)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature alone (no shift) minimising the class-balanced val NLL; kept for comparison."""
    n1 = max(int(y.sum()), 1)
    n0 = max(len(y) - n1, 1)
    w = np.where(y == 1, 0.5 / n1, 0.5 / n0)

    def nll(t: float) -> float:
        z = logits / t
        return float(np.sum(w * (np.logaddexp(0, z) - y * z)))

    grid = np.exp(np.linspace(np.log(0.3), np.log(5.0), 200))
    t = float(grid[np.argmin([nll(g) for g in grid])])
    fine = np.linspace(t * 0.95, t * 1.05, 101)
    return float(fine[np.argmin([nll(g) for g in fine])])


@torch.no_grad()
def torch_outputs(
    net: GenderAgeNet, x: np.ndarray, bs: int = 128, flip_average: bool = True
) -> tuple[np.ndarray, ...]:
    wrap = ExportWrapper(net, flip_average).eval()
    gs, ages = [], []
    for i in range(0, len(x), bs):
        g, a = wrap(torch.from_numpy(x[i : i + bs]))
        gs.append(g.numpy())
        ages.append(a.numpy())
    return np.concatenate(gs), np.concatenate(ages)


def export(
    ckpt: Path,
    out: Path,
    report: Path | None = None,
    version: str = "2026.11.1",
    val_limit: int | None = None,
    flip_average: bool = True,
    band_target: float = BAND_TARGET,
) -> dict:
    """Export ``ckpt`` (a ``best.pt``/``last.pt``) to ``out``; returns the export report."""
    torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "2")))
    net, ck = load_net(ckpt)
    if net.views != 1:
        # The app feeds one crop per face (core/classification.py); a two-view file needs the
        # app to cut and feed the context crop too, with its margin in the metadata. Until it
        # does, such a checkpoint is measured by ``cv`` only and never shipped.
        raise SystemExit(
            f"{ckpt} is a two-view model: the app reads one-view files only, not exported"
        )
    meta = ck.get("meta", {})
    hp = meta.get("hparams", ck.get("hparams", {}))
    size = int(hp.get("input_size", 112))
    margin = float(hp.get("crop_margin", DEFAULT_MARGIN))
    splits = D.load_splits()
    val = splits["wider_val"]
    idx = np.arange(len(val)) if val_limit is None else np.arange(min(val_limit, len(val)))
    x = D.to_tensor_batch([D.eval_crop(val, int(i), size, margin=margin) for i in idx])
    x_nd = D.to_tensor_batch([D.eval_crop(val, int(i), size, no_detect=True) for i in idx])
    y = val.labels[idx]
    logits, _ = torch_outputs(net, x, flip_average=flip_average)
    logits_nd, _ = torch_outputs(net, x_nd, flip_average=flip_average)
    # Calibrated on both framings the app meets, pooled: faces it detects (square crop) and
    # face images given with --no-detect (letterboxed), so neither use leans (ADR 0006).
    cal_logits, cal_y = np.r_[logits, logits_nd], np.r_[y, y]
    temperature, shift = fit_platt_balanced(cal_logits, cal_y)
    with torch.no_grad():  # fold the shift into the head: every output logit moves by `shift`
        net.gender.bias += shift
    logits = logits + shift
    p_cal = 1 / (1 + np.exp(-(cal_logits + shift) / temperature))
    # The default band: the narrowest one whose decided faces are >= band_target right for
    # women and for men separately on these (selection) faces; cross-validation (training/cv.py)
    # measures how that rule holds on unseen events.
    band_fit = band_for_target(p_cal, cal_y, band_target)
    band = tuple(band_fit["band"])

    provenance = {
        "git_commit_at_training_start": meta.get("commit", "unknown"),
        "git_commit_at_export": _git_commit(),
        "data_manifest_sha256": meta.get("data_manifest_sha256", D.data_manifest_hash()),
        "hyper_parameters": hp,
        "checkpoint_step": ck.get("row", {}).get("step", ck.get("state", {}).get("step")),
        "weights": ck.get("which", "raw"),
        # For a soup: every source checkpoint by SHA-256 (nested for a soup of soups).
        "soup_of": meta.get("soup_of"),
        "warm_start": "efficientnet-lite0-57934424.pth (SHA-256 5793442...77db), "
        f"{meta.get('lite0_tensors_copied', '?')} tensors copied",
        # A stage-2 run names the run it continued (its checkpoint hash, steps, commit and
        # hyper-parameters), so the whole chain from the Lite0 warm start is on record.
        "parent_run": _parent_summary(meta.get("parent")),
        # How gender-train faces were framed: the detector (by SHA-256) that found each box.
        "gtrain_boxes": meta.get("gtrain_boxes"),
        # The age head refitted by ridge on frozen features (training/refit_age.py), if it was.
        "age_head_refit": meta.get("age_head_refit"),
        "torch": torch.__version__,
        "test_time_augmentation": "hflip-mean" if flip_average else "none",
        "calibration": {
            "method": "class-balanced Platt scaling on wider-gender val, square and "
            "--no-detect framings pooled",
            "temperature": round(temperature, 4),
            "logit_shift_folded_into_head": round(shift, 4),
        },
        "uncertain_band_rule": {
            "target_per_class": band_target,
            "met_on_calibration_faces": band_fit["met"],
            "coverage_on_calibration_faces": round(band_fit["fit"]["coverage"], 4),
        },
    }
    metadata = {
        "forensic_app.contract": "1",
        "input_size": str(size),
        "color_order": "RGB",
        "scale": repr(D.SCALE),
        "mean": ",".join(str(v) for v in D.MEAN),
        "std": ",".join(str(v) for v in D.STD),
        "gender_output": "gender_logit",
        "gender_output_kind": "logit_male",
        "temperature": f"{temperature:.4f}",
        "age_output": "age",
        "labels": "female,male",
        "uncertain_band": f"{band[0]},{band[1]}",
        "crop_margin": str(margin),
        "crop_shape": "square",
        "model_name": MODEL_NAME,
        "model_version": version,
        "training_data": TRAINING_DATA,
        "license": LICENSE_TEXT,
        "provenance": json.dumps(provenance, sort_keys=True),
    }
    parse_gender_metadata(metadata)  # raises if the contract is violated

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx.tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        wrap = ExportWrapper(net, flip_average).eval()
        with warnings.catch_warnings():  # the TorchScript exporter needs no onnxscript
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                wrap,
                (torch.zeros(1, 3, size, size),),
                str(tmp),
                input_names=["input"],
                output_names=["gender_logit", "age"],
                dynamic_axes={
                    "input": {0: "batch"},
                    "gender_logit": {0: "batch"},
                    "age": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        model = onnx.load(str(tmp))
        for k, v in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = k, v
        model.producer_name = "forensic_app training"
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        parse_gender_metadata(dict(sess.get_modelmeta().custom_metadata_map))
        g_ort, a_ort = sess.run(["gender_logit", "age"], {"input": x})
        _, a_t = torch_outputs(net, x, flip_average=flip_average)
        diff_g = float(np.max(np.abs(g_ort - logits)))
        diff_a = float(np.max(np.abs(a_ort - a_t)))
        if diff_g > 1e-3 or diff_a > 1e-2:
            raise RuntimeError(f"ONNX Runtime and PyTorch disagree: gender {diff_g}, age {diff_a}")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the model is a normal repository file
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    rep = {
        "onnx": str(out),
        "sha256": D.file_sha256(out),
        "bytes": out.stat().st_size,
        "temperature": temperature,
        "logit_shift": shift,
        "uncertain_band": band,
        "ort_vs_torch_max_abs_diff": {"gender_logit": diff_g, "age": diff_a, "n": int(len(x))},
        "metadata": metadata,
    }
    if report is not None:
        report.write_text(json.dumps(rep, indent=2))
    print(
        json.dumps(
            {
                k: rep[k]
                for k in ("sha256", "temperature", "uncertain_band", "ort_vs_torch_max_abs_diff")
            }
        ),
        file=sys.stderr,
    )
    return rep


def update_manifest(onnx_path: Path, models_dir: Path) -> None:
    """Add/refresh the gender-model entry in models/manifest.json, keeping the others."""
    path = models_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    manifest[onnx_path.name] = {
        "role": "gender",
        "name": "EfficientNet-B0 perceived gender + apparent age (forensic_app)",
        "sha256": D.file_sha256(onnx_path),
        "source": "trained by this project: python -m training train/export (see MODEL_CARD.md)",
        "license": "non-commercial research only (training data); see MODEL_CARD.md",
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", type=Path, default=Path("training/runs/main/best.pt"))
    p.add_argument("--out", type=Path, default=D.REPO_ROOT / "models" / "gender_effnet_b0.onnx")
    p.add_argument("--version", default="2026.11.1")
    p.add_argument(
        "--no-flip-average",
        dest="flip_average",
        action="store_false",
        help="export the single-pass model (default: average each face with its mirror image)",
    )
    p.add_argument(
        "--update-manifest",
        action="store_true",
        help="record the file's SHA-256 in models/manifest.json",
    )
    p.add_argument(
        "--band-target",
        type=float,
        default=BAND_TARGET,
        help="share of decided faces that must be right, women and men separately",
    )


def main(args: argparse.Namespace) -> None:
    report = args.ckpt.parent / "export.json"
    export(
        args.ckpt,
        args.out,
        report,
        args.version,
        flip_average=args.flip_average,
        band_target=args.band_target,
    )
    if args.update_manifest:
        update_manifest(args.out, args.out.parent)
