"""The one face-crop geometry, shared by the engine and by ``training/``.

Why one place: a classifier is only as good as the match between the crops it was trained on and
the crops it sees in use. ``training/`` imports these functions, so the framing cannot drift.

Geometry (see docs/adr/0002-crop-geometry.md):

* ``"square"`` (our models): a square centred on the face box, side = longer box side x
  (1 + 2 x margin), padded with black where it leaves the photo, resized to the model input.
  Aspect ratio is preserved, so a face never looks fatter or thinner than it is.
* ``"stretch"`` (the original WPF tool's model): the box grown by ``margin`` of its width and
  height on each side, clipped to the image, resized to the input (aspect not preserved).

Whole images given with ``--no-detect`` are already face crops; ``"square"`` letterboxes them
(black bars), ``"stretch"`` resizes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: Fraction of the face box's size added on each side (the original tool's framing: 25 %).
DEFAULT_MARGIN = 0.25
CROP_SHAPES = ("square", "stretch")

Box = Sequence[float]  # x1, y1, x2, y2 in image pixels


def square_region(box: Box, margin: float = DEFAULT_MARGIN) -> tuple[float, float, float, float]:
    """The square (x1, y1, x2, y2) a ``"square"`` crop covers; may extend past the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + 2.0 * margin)
    half = side / 2.0
    return cx - half, cy - half, cx + half, cy + half


def stretch_region(
    box: Box, image_shape: tuple[int, ...], margin: float = DEFAULT_MARGIN
) -> tuple[int, int, int, int]:
    """The clipped integer region (x0, y0, x1, y1) a ``"stretch"`` crop covers (exclusive end)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    height, width = image_shape[:2]
    x0 = int(max(0, np.floor(x1 - margin * w)))
    y0 = int(max(0, np.floor(y1 - margin * h)))
    xe = int(min(width, np.ceil(x2 + margin * w)))
    ye = int(min(height, np.ceil(y2 + margin * h)))
    return x0, y0, max(xe, x0 + 1), max(ye, y0 + 1)


def _resize(patch: np.ndarray, size: int) -> np.ndarray:
    h, w = patch.shape[:2]
    interp = cv2.INTER_AREA if (h > size or w > size) else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def _padded_square(image: np.ndarray, region: tuple[float, float, float, float]) -> np.ndarray:
    """Cut ``region`` from ``image``, filling the part outside the image with black."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    side = max(x1 - x0, y1 - y0, 1)
    x1, y1 = x0 + side, y0 + side
    out = np.zeros((side, side) + image.shape[2:], dtype=image.dtype)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(width, x1), min(height, y1)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def extract_crop(
    image: np.ndarray,
    box: Box,
    size: int,
    margin: float = DEFAULT_MARGIN,
    shape: str = "square",
) -> np.ndarray:
    """Return the ``size`` x ``size`` crop of ``box`` from an HxWxC uint8 ``image``."""
    if shape == "square":
        patch = _padded_square(image, square_region(box, margin))
    elif shape == "stretch":
        x0, y0, x1, y1 = stretch_region(box, image.shape, margin)
        patch = image[y0:y1, x0:x1]
    else:
        raise ValueError(f"unknown crop shape {shape!r}; expected one of {CROP_SHAPES}")
    return _resize(np.ascontiguousarray(patch), size)


def whole_image_crop(image: np.ndarray, size: int, shape: str = "square") -> np.ndarray:
    """A whole image used as one face crop (``--no-detect``), framed like ``extract_crop``."""
    if shape == "stretch":
        return _resize(image, size)
    if shape != "square":
        raise ValueError(f"unknown crop shape {shape!r}; expected one of {CROP_SHAPES}")
    h, w = image.shape[:2]
    side = max(h, w)
    y0, x0 = (h - side) / 2.0, (w - side) / 2.0
    return _resize(_padded_square(image, (x0, y0, x0 + side, y0 + side)), size)


def whole_image_box(image_shape: tuple[int, ...], margin: float = DEFAULT_MARGIN) -> list[float]:
    """The face box implied by a whole-image crop framed as box + ``margin`` per side."""
    h, w = image_shape[:2]
    mx, my = w * margin / (1 + 2 * margin), h * margin / (1 + 2 * margin)
    return [mx, my, w - mx, h - my]
