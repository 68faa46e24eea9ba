"""Set a shipped file's default uncertain band by the per-class target rule, weights untouched.

    python -m training reband models/gender_effnet_b0.onnx --version 2026.12.0 --update-manifest

Why: files exported before ADR 0014 carry a band from the old rule (local accuracy below 80 %,
bounded to 0.60-0.85). The band is metadata, not weights, so it can follow the new rule without
retraining: the file's own calibrated probabilities on the faces it was calibrated with
(``wider-gender`` val, both framings pooled, through the app's ``GenderClassifier``) give the
narrowest band whose decided faces meet the target for women and for men. Only
``uncertain_band``, ``model_version`` and the provenance change; the graph is compared before
and after and the write is refused if anything else differs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx

from forensic_app.core.classification import GenderClassifier
from training import data as D
from training.cvstats import BAND_TARGET, band_for_target, decided_accuracy


def band_of(model: Path, target: float) -> dict:
    from training.evaluate import eval_wider_val, wider_val_faces

    clf = GenderClassifier(model)
    faces = wider_val_faces()
    _, y, p_sq = eval_wider_val(clf, faces=faces)
    _, _, p_nd = eval_wider_val(clf, no_detect=True, faces=faces)
    p, yy = np.r_[p_sq, p_nd], np.r_[y, y]
    fit = band_for_target(p, yy, target)
    old = clf.spec.uncertain_band
    fit["old_band"] = list(old)
    fit["old_band_fit"] = decided_accuracy(p, yy, float(old[1]))
    return fit


def reband(model: Path, out: Path, version: str, target: float = BAND_TARGET) -> dict:
    fit = band_of(model, target)
    m = onnx.load(str(model))
    before = m.graph.SerializeToString()
    props = {p.key: p.value for p in m.metadata_props}
    prov = json.loads(props.get("provenance", "{}"))
    prov["uncertain_band_rule"] = {
        "target_per_class": target,
        "met_on_calibration_faces": fit["met"],
        "coverage_on_calibration_faces": round(fit["fit"]["coverage"], 4),
        "set_by": "training/reband.py (weights unchanged)",
        "previous_band": fit["old_band"],
        "previous_version": props.get("model_version"),
        "previous_sha256": D.file_sha256(model),
    }
    band = fit["band"]
    new = dict(
        props,
        uncertain_band=f"{band[0]},{band[1]}",
        model_version=version,
        provenance=json.dumps(prov, sort_keys=True),
    )
    del m.metadata_props[:]
    for k, v in new.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    if m.graph.SerializeToString() != before:
        raise RuntimeError("the graph changed: refusing to write")
    fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=out.parent)
    os.close(fd)
    try:
        onnx.save(m, tmp)
        clf = GenderClassifier(Path(tmp))  # the app must read it back
        if list(clf.spec.uncertain_band) != [float(b) for b in band]:
            raise RuntimeError(f"band read back as {clf.spec.uncertain_band}, wrote {band}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    fit["sha256"] = D.file_sha256(out)
    return fit


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path)
    p.add_argument("--out", type=Path, default=None, help="default: replace MODEL")
    p.add_argument("--version", required=True)
    p.add_argument("--band-target", type=float, default=BAND_TARGET)
    p.add_argument("--update-manifest", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="print the band, write nothing")


def main(args: argparse.Namespace) -> None:
    if args.dry_run:
        print(json.dumps(band_of(args.model, args.band_target), indent=2, default=float))
        return
    out = args.out or args.model
    fit = reband(args.model, out, args.version, args.band_target)
    print(json.dumps(fit, indent=2, default=float))
    if args.update_manifest:
        from training.export import update_manifest

        update_manifest(out, out.parent)
