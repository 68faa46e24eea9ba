"""Where models live, what their hashes must be, and the ONNX metadata contract.

Why: models describe themselves. Preprocessing, labels, the uncertain band and provenance are
read from the ONNX file's metadata (docs/adr/0001-model-metadata-contract.md); this module is the
only code that knows the key names. ``models/manifest.json`` is the one place that owns the
expected SHA-256 of each shipped model file.
"""

from __future__ import annotations

import hashlib
import json
import math
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
#: Numeric precision of a model file (``int8`` for quantized derivatives; absent means fp32),
#: the fp32 file and SHA-256 it was quantized from (JSON), and its calibration set (free text).
#: Any model may carry them, the detector too (docs/adr/0011-int8-and-threads.md).
PRECISION_KEY = "precision"
QUANTIZED_FROM_KEY = "quantized_from"
CALIBRATION_KEY = "calibration"
PRECISIONS = ("int8", "fp32")
#: The precision each role loads when the user does not choose one: int8 only where it held
#: on accuracy and won on speed on the project's machine (bench/RESULTS-int8.md).
DEFAULT_PRECISION = {"detector": "fp32", "gender": "fp32"}


class ModelError(RuntimeError):
    """A model file is missing, altered or unusable. The message names the file and the fix."""


def model_file(fp32_name: str, precision: str) -> str:
    """The file name of a model at a precision: ``centerface.onnx`` -> ``centerface.int8.onnx``.

    Why here: one owner for model file naming (the CLI, engine, quantizer and packaging agree).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return fp32_name
    stem, dot, ext = fp32_name.rpartition(".")
    return f"{stem}.{precision}.{ext}" if dot else f"{fp32_name}.{precision}"


def parse_precision(text: str | None) -> dict[str, str]:
    """A precision choice -> {role: precision} for the roles it names (others: default).

    ``"int8"`` / ``"fp32"`` apply to both models; ``"detector=int8,gender=fp32"`` names roles,
    so the int8 detector can be used without the int8 gender model (which fails the accuracy
    rule). Raises ValueError naming what is wrong.
    """
    if not text:
        return {}
    if text in PRECISIONS:
        return dict.fromkeys(DEFAULT_PRECISION, text)
    out: dict[str, str] = {}
    for part in text.split(","):
        role, sep, value = (v.strip() for v in part.partition("="))
        if not sep or role not in DEFAULT_PRECISION or value not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {PRECISIONS} or role=precision pairs "
                f"(roles {tuple(DEFAULT_PRECISION)}), got {text!r}"
            )
        out[role] = value
    return out


def precision_of(meta: dict[str, str]) -> str:
    """The precision a model file declares in its metadata (no key: fp32)."""
    return meta.get(PRECISION_KEY, "fp32")


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


def _manifest_problem(data: object) -> str | None:
    if not isinstance(data, dict):
        return f"expected a JSON object of model files, got {type(data).__name__}"
    for name, entry in data.items():
        if not isinstance(entry, dict):
            return f"entry {name!r} is not an object"
        sha = entry.get("sha256")
        if not (isinstance(sha, str) and len(sha) == 64 and all(c in HEX for c in sha.lower())):
            return f"entry {name!r} has no valid sha256"
    return None


HEX = frozenset("0123456789abcdef")


def load_manifest(
    directory: Path | None = None, *, required: bool = True
) -> dict[str, dict[str, str]] | None:
    """The model manifest (file name -> {"sha256", ...}).

    Why required: the manifest is what makes an altered model detectable. A missing manifest
    used to switch every hash check off silently; now it is a ModelError (exit 3), and only a
    caller that names a model file explicitly may pass ``required=False`` (None is returned and
    the models are reported as unverified).
    """
    directory = directory or models_dir()
    path = directory / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not required:
            return None
        raise ModelError(
            f"model manifest missing: {path}. It holds the expected SHA-256 of every model "
            "file; without it an altered model could not be detected, so no model is loaded. "
            "Restore it from the installation (or pass --gender-model FILE to use a model "
            "explicitly, reported as unverified)."
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model manifest {path} is unreadable: {exc}") from exc
    problem = _manifest_problem(data)
    if problem:
        raise ModelError(f"model manifest {path} is not a valid manifest: {problem}")
    return data


def _missing(path: Path, expected: str | None) -> ModelError:
    hint = " Run `python -m forensic_app.fetch_models` once (needs network) to fetch it."
    if path.name != CENTERFACE_FILE:
        hint = ""
    return ModelError(
        f"model file missing: {path}"
        + (f" (expected SHA-256 {expected})." if expected else ".")
        + hint
    )


def check_model_file(
    path: Path, manifest: dict[str, dict[str, str]] | None, *, must_be_listed: bool = True
) -> tuple[str, str | None]:
    """(SHA-256, None) for a file matching its manifest entry, or (SHA-256, why unverified).

    Raises ModelError when the file is missing, altered, or (``must_be_listed``) not listed.
    """
    expected = (manifest or {}).get(path.name, {}).get("sha256")
    if not path.is_file():
        raise _missing(path, expected)
    actual = sha256_file(path)
    if expected and actual != expected:
        raise ModelError(
            f"model file {path} has been altered or is corrupt: SHA-256 {actual}, "
            f"expected {expected}. Restore the original file."
        )
    if expected:
        return actual, None
    if manifest is None:
        return actual, f"not verified: no {MANIFEST_NAME} beside the models"
    if must_be_listed:
        raise ModelError(
            f"model file {path} is not listed in {MANIFEST_NAME}, so its SHA-256 cannot be "
            "checked; add its entry or restore the manifest"
        )
    return actual, f"not verified: {path.name} is not listed in {MANIFEST_NAME}"


def vouched_by_installation(
    path: Path,
    sha256: str,
    note: str | None,
    directory: Path,
    installed: dict[str, dict[str, str]] | None,
) -> str | None:
    """The "unverified" note of an explicitly named model, judged by the installation.

    Why: a manifest lying beside a model in another folder comes from whoever supplied the
    model, so an altered model with a matching planted manifest passed as verified (no
    warning). Only the installation's manifest (``directory``) vouches: a file whose SHA-256
    it lists is verified wherever it lies; a file listed only beside itself is checked against
    that manifest (an altered copy still fails) but reported as unverified.
    """
    if any(e.get("sha256") == sha256 for e in (installed or {}).values()):
        return None
    if note is None and path.resolve().parent != directory.resolve():
        return (
            f"not verified: listed only in {path.parent / MANIFEST_NAME}, not in the "
            f"installation's {directory / MANIFEST_NAME}"
        )
    return note


def verified_model_path(file_name: str, directory: Path | None = None) -> tuple[Path, str]:
    """Return (path, sha256) of a model file, checked against ``manifest.json`` (required).

    Raises ModelError naming the file and the expected hash when it is missing or altered, and
    when the manifest is missing or does not list the file.
    """
    directory = directory or models_dir()
    path = directory / file_name
    manifest = load_manifest(directory)
    if not path.is_file():  # name the missing model before anything else
        raise _missing(path, (manifest or {}).get(file_name, {}).get("sha256"))
    sha, _ = check_model_file(path, manifest)
    return path, sha


def resolve_model(
    fp32_name: str, role: str, precision: str | None = None, directory: Path | None = None
) -> tuple[Path, str, str | None]:
    """(path, sha256, note) of the file a role loads at ``precision``, verified.

    ``precision`` None means the role's default (``DEFAULT_PRECISION``); when that default is
    int8 but the int8 file is absent (a models folder holding only the fp32 files), the fp32
    file is used and ``note`` says so, so the fallback is never silent. An explicit precision
    whose file is missing or altered raises ModelError like any model file.
    """
    directory = directory or models_dir()
    wanted = precision or DEFAULT_PRECISION[role]
    name = model_file(fp32_name, wanted)
    if precision is None and wanted != "fp32" and not (directory / name).is_file():
        path, sha = verified_model_path(fp32_name, directory)
        return path, sha, f"{name} not found in {directory}: the {role} runs in fp32"
    path, sha = verified_model_path(name, directory)
    return path, sha, None


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


#: Largest model input side accepted (a bigger value is a typo or an attack on memory).
MAX_INPUT_SIZE = 1024


def _check_values(spec: GenderModelSpec) -> None:
    """Numbers from metadata must be usable: a zero std or temperature would turn every
    probability into NaN, a band outside (0, 1) would label every face the same way."""
    finite = math.isfinite
    if not 8 <= spec.input_size <= MAX_INPUT_SIZE:
        raise ValueError(f"input_size must be 8..{MAX_INPUT_SIZE}, got {spec.input_size}")
    if not (finite(spec.temperature) and spec.temperature > 0):
        raise ValueError(f"temperature must be finite and > 0, got {spec.temperature}")
    if not (finite(spec.scale) and spec.scale > 0):
        raise ValueError(f"scale must be finite and > 0, got {spec.scale}")
    if not all(finite(v) and v > 0 for v in spec.std):
        raise ValueError(f"std must be finite and > 0 per channel, got {spec.std}")
    if not all(finite(v) for v in spec.mean):
        raise ValueError(f"mean must be finite, got {spec.mean}")
    if not (finite(spec.crop_margin) and 0 <= spec.crop_margin <= 2):
        raise ValueError(f"crop_margin must be in [0, 2], got {spec.crop_margin}")


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
        if not 0.0 < band[0] < band[1] < 1.0:
            raise ValueError(f"uncertain_band must satisfy 0 < low < high < 1, got {band}")
        labels = tuple(s.strip() for s in meta.get("labels", "female,male").split(","))
        if len(labels) != 2:
            raise ValueError(f"labels must name two classes, got {labels}")
        shape = meta.get("crop_shape", "square")
        if shape not in ("square", "stretch"):
            raise ValueError(f"unknown crop_shape {shape!r}")
        spec = GenderModelSpec(
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
        _check_values(spec)
        return spec
    except (KeyError, ValueError) as exc:
        raise ModelError(f"gender model metadata is invalid: {exc}") from exc
