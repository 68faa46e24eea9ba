"""Perceived-gender (and optional apparent-age) classification of face crops, batched.

Why: everything about how to feed the model and read its output comes from the model's own
metadata (``GenderModelSpec``, docs/adr/0001-model-metadata-contract.md), so a new model needs no
code change.

Memory: faces go through the network in chunks of at most :data:`CHUNK_SIZE` crops, and crops
are cut per chunk, so memory does not grow with the number of faces in a photo (a 276-face
parade photo in one call took 4.3 GB; docs/adr/0009-onnxruntime-memory.md). A model whose input
has a fixed batch (possible for the original tool's ``efnet_b0.onnx``) is fed that many at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensic_app.core import crops
from forensic_app.core.modelstore import GenderModelSpec, ModelError, parse_gender_metadata
from forensic_app.core.runtime import GENDER_MEMORY, make_session

#: The most crops in one gender-model call: the one owner of the chunk size (ADR 0009).
#: Activation memory is about 15 MB per crop at 160 px (the graph mirrors each crop in-graph,
#: so the network sees twice this batch); 16 keeps a call near 0.5 GB with no measurable loss
#: of speed against larger batches on CPU.
CHUNK_SIZE = 16


@dataclass
class GenderPrediction:
    """Model outputs for a batch of crops (same order as the crops)."""

    p_male: np.ndarray  # (N,) float, calibrated probability of perceived "male"
    age: np.ndarray | None  # (N,) float years, when the model has an age output


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def _as_vector(out: np.ndarray, n: int, what: str) -> np.ndarray:
    arr = np.asarray(out, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n,):
        raise ModelError(f"{what} output has shape {np.shape(out)}, expected ({n},) or ({n}, 1)")
    return arr


def p_male_from_output(out: np.ndarray, spec: GenderModelSpec, n: int) -> np.ndarray:
    """Calibrated P(male) from the gender output, per the spec's output kind and temperature."""
    t = float(spec.temperature) if spec.temperature else 1.0
    kind = spec.gender_output_kind
    if kind == "logits_fm":
        arr = np.asarray(out, dtype=np.float64)
        if arr.shape != (n, 2):
            raise ModelError(f"gender output has shape {arr.shape}, expected ({n}, 2) logits")
        z = arr / t
        return _sigmoid(z[:, 1] - z[:, 0])  # softmax over (female, male), male column
    vec = _as_vector(out, n, "gender")
    if kind == "logit_male":
        return _sigmoid(vec / t)
    if kind == "p_male":
        p = np.clip(vec, 0.0, 1.0)
        if t == 1.0:
            return p
        eps = 1e-7
        logit = np.log(np.clip(p, eps, 1 - eps)) - np.log(np.clip(1 - p, eps, 1 - eps))
        return _sigmoid(logit / t)
    raise ModelError(f"unknown gender output kind {kind!r}")


def preprocess(batch_rgb: np.ndarray, spec: GenderModelSpec) -> np.ndarray:
    """N x S x S x 3 uint8 RGB crops -> N x 3 x S x S float32, per the spec's normalisation."""
    x = batch_rgb.astype(np.float32)
    if spec.color_order == "BGR":
        x = x[..., ::-1]
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    x = (x * np.float32(spec.scale) - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


class GenderClassifier:
    """One onnxruntime session for the gender model, reused for every image."""

    def __init__(
        self,
        model_path: Path,
        providers: list[str] | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = Path(model_path)
        try:  # bytes, not the path: onnxruntime cannot open a name that is not valid UTF-8
            raw = self.path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read gender model {self.path}: {exc}") from exc
        label = f"gender model {self.path}"
        self.session, self.provider = make_session(
            raw, providers, threads, label, memory=GENDER_MEMORY
        )
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.spec = parse_gender_metadata(meta)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"gender model {self.path} must have one input, has {len(inputs)}")
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        if len(shape) != 4:
            raise ModelError(f"gender model input must be NCHW, got shape {shape}")
        for dim in shape[2:]:
            if isinstance(dim, int) and dim != self.spec.input_size:
                raise ModelError(
                    f"gender model input is {shape} but its metadata says input_size "
                    f"{self.spec.input_size}"
                )
        self.max_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        names = [o.name for o in self.session.get_outputs()]
        self.gender_output = self.spec.gender_output or names[0]
        if self.gender_output not in names:
            raise ModelError(f"gender model has no output {self.gender_output!r} (has {names})")
        self.age_output = self.spec.age_output
        if self.age_output is not None and self.age_output not in names:
            raise ModelError(f"gender model has no age output {self.age_output!r} (has {names})")

    @property
    def chunk_size(self) -> int:
        """Crops per session call: the model's fixed batch, else :data:`CHUNK_SIZE`."""
        return self.max_batch if self.max_batch is not None else CHUNK_SIZE

    def crops_for_boxes(self, rgb: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """The model's crops (N x S x S x 3 uint8) for face boxes, geometry from the spec.

        Holds all N crops at once: for many boxes use :meth:`predict_boxes`, which crops per
        chunk."""
        s = self.spec
        if not len(boxes):
            return np.zeros((0, s.input_size, s.input_size, 3), dtype=np.uint8)
        return np.stack(
            [crops.extract_crop(rgb, b, s.input_size, s.crop_margin, s.crop_shape) for b in boxes]
        )

    def whole_image_crop(self, rgb: np.ndarray) -> np.ndarray:
        s = self.spec
        return crops.whole_image_crop(rgb, s.input_size, s.crop_shape)[None]

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        """Raw outputs for a preprocessed NCHW batch of at most :attr:`chunk_size` crops."""
        outputs = [self.gender_output] + ([self.age_output] if self.age_output else [])
        n = blob.shape[0]
        if n > self.chunk_size:
            raise ValueError(f"{n} crops in one call, more than the chunk size {self.chunk_size}")
        if self.max_batch is None:
            return self.session.run(outputs, {self.input_name: blob})
        if n < self.max_batch:  # fixed-batch model: fill the call, trim after
            fill = np.zeros((self.max_batch - n,) + blob.shape[1:], dtype=blob.dtype)
            blob = np.concatenate([blob, fill])
        return [o[:n] for o in self.session.run(outputs, {self.input_name: blob})]

    def _predict_chunk(self, batch_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n = int(batch_rgb.shape[0])
        outs = self.run(preprocess(batch_rgb, self.spec))
        p = p_male_from_output(outs[0], self.spec, n)
        age = _as_vector(outs[1], n, "age") if self.age_output else None
        return p, age

    def _predict_chunks(self, chunks: Iterator[np.ndarray], n: int) -> GenderPrediction:
        p_male = np.zeros((n,))
        age = np.zeros((n,)) if self.age_output else None
        i = 0
        for chunk in chunks:
            p, a = self._predict_chunk(chunk)
            p_male[i : i + len(p)] = p
            if age is not None and a is not None:
                age[i : i + len(p)] = a
            i += len(p)
        bad = ~np.isfinite(p_male) if age is None else ~(np.isfinite(p_male) & np.isfinite(age))
        if bad.any():  # NaN never reaches a result: the caller turns this into a photo error
            faces = ", ".join(str(i + 1) for i in np.flatnonzero(bad))
            raise ModelError(
                f"the gender model gave a non-numeric output (NaN or infinity) for face(s) "
                f"{faces}; no perceived gender can be reported for this photo"
            )
        return GenderPrediction(p_male, age)

    def predict(self, batch_rgb: np.ndarray) -> GenderPrediction:
        """Calibrated P(male) (and age) for N crops made by :meth:`crops_for_boxes`."""
        n = int(batch_rgb.shape[0])
        step = self.chunk_size
        return self._predict_chunks((batch_rgb[i : i + step] for i in range(0, n, step)), n)

    def predict_boxes(self, rgb: np.ndarray, boxes: Sequence[Sequence[float]]) -> GenderPrediction:
        """Calibrated P(male) (and age) for face boxes in ``rgb``, cropping one chunk at a time.

        Why: memory stays that of one chunk whatever the number of faces (1,000 boxes hold at
        most :attr:`chunk_size` crops and one chunk's network activations at any time)."""
        step = self.chunk_size
        n = len(boxes)
        chunks = (self.crops_for_boxes(rgb, boxes[i : i + step]) for i in range(0, n, step))
        return self._predict_chunks(chunks, n)
