"""Where models live, what their hashes must be, and the ONNX metadata contract.

Why: models describe themselves. Preprocessing, labels, the uncertain band and provenance are
read from the ONNX file's metadata (docs/adr/0001-model-metadata-contract.md); this module is the
only code that knows the key names. ``models/manifest.json`` is the one place that owns the
expected SHA-256 of each shipped model file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST_NAME = "manifest.json"
CENTERFACE_FILE = "centerface.onnx"
GENDER_FILE = "gender_effnet_b0.onnx"
MODELS_DIR_ENV = "FORENSIC_APP_MODELS_DIR"

#: Metadata keys of the gender-model contract (ONNX ``metadata_props``).
CONTRACT_KEY = "forensic_app.contract"
CONTRACT_VERSION = "1"


class ModelError(RuntimeError):
    """A model file is missing, altered or unusable. The message names the file and the fix."""


def models_dir() -> Path:
    """The folder holding the models: env override, PyInstaller bundle, or the source tree."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "models"
    return Path(__file__).resolve().parents[2] / "models"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_manifest(directory: Path | None = None) -> dict[str, dict[str, str]]:
    directory = directory or models_dir()
    path = directory / MANIFEST_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"model manifest {path} is unreadable: {exc}") from exc


def verified_model_path(file_name: str, directory: Path | None = None) -> tuple[Path, str]:
    """Return (path, sha256) of a model file, checking it against ``manifest.json``.

    Raises ModelError naming the file and the expected hash when it is missing or altered.
    """
    directory = directory or models_dir()
    path = directory / file_name
    expected = load_manifest(directory).get(file_name, {}).get("sha256")
    if not path.is_file():
        hint = " Run `python -m forensic_app.fetch_models` once (needs network) to fetch it."
        if file_name != CENTERFACE_FILE:
            hint = ""
        raise ModelError(
            f"model file missing: {path}"
            + (f" (expected SHA-256 {expected})." if expected else ".")
            + hint
        )
    actual = sha256_file(path)
    if expected and actual != expected:
        raise ModelError(
            f"model file {path} has been altered or is corrupt: SHA-256 {actual}, "
            f"expected {expected}. Restore the original file."
        )
    return path, actual


@dataclass(frozen=True)
class GenderModelSpec:
    """How to feed a gender model and read its outputs, parsed from its ONNX metadata."""

    input_size: int = 150
    color_order: str = "RGB"  # "RGB" | "BGR"
    scale: float = 1.0 / 255.0  # pixel (0-255) x scale, then (x - mean) / std per channel
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gender_output: str | None = None  # output name; None = the first output
    #: "p_male" (a probability), "logit_male" (one logit) or "logits_fm" (two logits: f, m)
    gender_output_kind: str = "p_male"
    temperature: float = 1.0  # calibration: logits are divided by it before the sigmoid/softmax
    age_output: str | None = None  # output name of apparent age in years, if any
    labels: tuple[str, str] = ("female", "male")
    uncertain_band: tuple[float, float] = (0.35, 0.65)
    crop_margin: float = 0.25
    crop_shape: str = "stretch"
    name: str = "legacy gender classifier (original tool contract)"
    version: str = "unknown"
    training_data: str = "unknown"
    legacy: bool = True
    raw: dict[str, str] = field(default_factory=dict)


def _floats(text: str, n: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in text.replace(";", ",").split(","))
    if len(values) != n:
        raise ValueError(f"expected {n} comma-separated numbers, got {text!r}")
    return values


def parse_gender_metadata(meta: dict[str, str]) -> GenderModelSpec:
    """Build a spec from ONNX custom metadata; no contract key means the legacy contract.

    The legacy contract is the original tool's ``efnet_b0.onnx``: input ``input.1``
    1x3x150x150, RGB / 255, one sigmoid output = P(male), box + 25 % per side, stretched.
    """
    if meta.get(CONTRACT_KEY) is None:
        return GenderModelSpec(raw=dict(meta))
    if meta[CONTRACT_KEY] != CONTRACT_VERSION:
        raise ModelError(
            f"gender model uses metadata contract {meta[CONTRACT_KEY]!r}; "
            f"this version of forensic_app reads contract {CONTRACT_VERSION!r}"
        )
    try:
        kind = meta.get("gender_output_kind", "p_male")
        if kind not in ("p_male", "logit_male", "logits_fm"):
            raise ValueError(f"unknown gender_output_kind {kind!r}")
        color = meta.get("color_order", "RGB").upper()
        if color not in ("RGB", "BGR"):
            raise ValueError(f"unknown color_order {color!r}")
        band = _floats(meta.get("uncertain_band", "0.35,0.65"), 2)
        if not 0.0 <= band[0] <= band[1] <= 1.0:
            raise ValueError(f"bad uncertain_band {band}")
        labels = tuple(s.strip() for s in meta.get("labels", "female,male").split(","))
        if len(labels) != 2:
            raise ValueError(f"labels must name two classes, got {labels}")
        shape = meta.get("crop_shape", "square")
        if shape not in ("square", "stretch"):
            raise ValueError(f"unknown crop_shape {shape!r}")
        return GenderModelSpec(
            input_size=int(meta["input_size"]),
            color_order=color,
            scale=float(meta.get("scale", 1.0 / 255.0)),
            mean=_floats(meta.get("mean", "0,0,0"), 3),  # type: ignore[arg-type]
            std=_floats(meta.get("std", "1,1,1"), 3),  # type: ignore[arg-type]
            gender_output=meta.get("gender_output") or None,
            gender_output_kind=kind,
            temperature=float(meta.get("temperature", 1.0)),
            age_output=meta.get("age_output") or None,
            labels=labels,  # type: ignore[arg-type]
            uncertain_band=band,  # type: ignore[arg-type]
            crop_margin=float(meta.get("crop_margin", 0.25)),
            crop_shape=shape,
            name=meta.get("model_name", "gender model"),
            version=meta.get("model_version", "unknown"),
            training_data=meta.get("training_data", "unknown"),
            legacy=False,
            raw=dict(meta),
        )
    except (KeyError, ValueError) as exc:
        raise ModelError(f"gender model metadata is invalid: {exc}") from exc
