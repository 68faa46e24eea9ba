"""CenterFace decoding, padding, pass planning and merging on hand-made maps (no model needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forensic_app.core.detection import (
    Detections,
    decode,
    merge,
    pad_to_multiple,
    plan_passes,
    to_input,
)
from forensic_app.core.settings import AnalysisSettings


def _maps(h: int = 20, w: int = 30):
    heat = np.zeros((h, w), np.float32)
    scale = np.zeros((2, h, w), np.float32)
    offset = np.zeros((2, h, w), np.float32)
    lms = np.zeros((10, h, w), np.float32)
    return heat, scale, offset, lms


def test_decode_single_peak_exact_box_and_landmarks() -> None:
    heat, scale, offset, lms = _maps()
    r, c = 5, 7
    heat[r, c] = 0.9
    scale[0, r, c] = math.log(40 / 4)  # box height 40 px
    scale[1, r, c] = math.log(24 / 4)  # box width 24 px
    offset[0, r, c] = 0.25  # y offset in cells
    offset[1, r, c] = -0.5  # x offset in cells
    # landmark j: (y, x) relative to the box's top-left corner, in box heights/widths
    rel = [(0.3, 0.25), (0.3, 0.75), (0.55, 0.5), (0.8, 0.3), (0.8, 0.7)]
    for j, (ry, rx) in enumerate(rel):
        lms[2 * j, r, c] = ry
        lms[2 * j + 1, r, c] = rx

    det = decode(heat, scale, offset, lms, threshold=0.5)

    cy = (r + 0.25 + 0.5) * 4  # 23
    cx = (c - 0.5 + 0.5) * 4  # 28
    assert len(det) == 1
    np.testing.assert_allclose(det.boxes[0], [cx - 12, cy - 20, cx + 12, cy + 20], atol=1e-4)
    assert det.scores[0] == pytest.approx(0.9)
    expected = [[cx - 12 + rx * 24, cy - 20 + ry * 40] for ry, rx in rel]
    np.testing.assert_allclose(det.landmarks[0], expected, atol=1e-4)


def test_decode_threshold_is_inclusive_and_filters() -> None:
    heat, scale, offset, lms = _maps()
    heat[2, 2] = 0.5
    heat[10, 10] = 0.49
    heat[15, 20] = 0.8
    det = decode(heat, scale, offset, lms, threshold=0.5)
    assert sorted(det.scores.round(3).tolist()) == [0.5, 0.8]
    # zero log-size means a 4x4 box centred on (cell + 0.5) * 4
    centres = sorted(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in det.boxes)
    assert centres == [(10.0, 10.0), (82.0, 62.0)]


def test_decode_empty_map_gives_empty_arrays() -> None:
    det = decode(*_maps(), threshold=0.5)
    assert len(det) == 0
    assert det.boxes.shape == (0, 4) and det.landmarks.shape == (0, 5, 2)


def test_padding_to_multiples_of_32_keeps_pixels_at_origin() -> None:
    assert pad_to_multiple(1, 1) == (32, 32)
    assert pad_to_multiple(480, 640) == (480, 640)
    assert pad_to_multiple(481, 650) == (512, 672)
    rgb = np.random.default_rng(0).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    blob = to_input(rgb)
    assert blob.shape == (1, 3, 64, 64) and blob.dtype == np.float32
    np.testing.assert_array_equal(blob[0, :, :37, :45], rgb.transpose(2, 0, 1).astype(np.float32))
    assert not blob[0, :, 37:, :].any() and not blob[0, :, :, 45:].any()
    assert blob[0, 0, 3, 4] == rgb[3, 4, 0]  # channel 0 is red: RGB order, 0-255 scale


def test_pass_plans_per_mode() -> None:
    fast = plan_passes(4000, 3000, AnalysisSettings(detection_mode="fast", detect_size=1000))
    assert [p.scale for p in fast] == [pytest.approx(0.25)]
    std = plan_passes(800, 600, AnalysisSettings(detection_mode="standard", detect_size=1920))
    assert std[0].scale == 1.0  # never upscales the main pass
    assert len(std) >= 2 and min(p.scale for p in std) < 1.0  # a downscaled large-face pass
    thorough = plan_passes(800, 600, AnalysisSettings(detection_mode="thorough"))
    assert len(thorough) > len(std)
    assert any(p.flip for p in thorough) and max(p.scale for p in thorough) > 1.0


def test_merge_nms_clip_and_min_face() -> None:
    a = Detections(
        np.array([[10.0, 10, 60, 60], [-5, -5, 40, 40], [100, 100, 108, 108]]),
        np.array([0.9, 0.8, 0.95]),
        np.zeros((3, 5, 2)),
    )
    b = Detections(np.array([[12.0, 12, 62, 62]]), np.array([0.7]), np.zeros((1, 5, 2)))
    out = merge([a, b], width=200, height=150, settings=AnalysisSettings(min_face=12))
    # [12,12,62,62] overlaps the 0.9 box (IoU 0.85) and goes; the 8-px face is below min_face;
    # the box leaving the image is clipped to it.
    assert out.scores.tolist() == [0.9, 0.8]
    np.testing.assert_allclose(out.boxes, [[10, 10, 60, 60], [0, 0, 40, 40]])


def test_merge_drops_a_box_nested_inside_a_larger_one_of_the_same_face() -> None:
    # dev-eval 18_Concerts: a full face box and a second box on its lower half, IoU 0.35 (NMS
    # keeps both) but 88 % of the small one inside the big one: one face, counted once.
    det = Detections(
        np.array([[239.0, 172, 280, 220], [246, 197, 277, 223], [300, 172, 341, 220]]),
        np.array([0.71, 0.65, 0.80]),
        np.zeros((3, 5, 2)),
    )
    out = merge([det], width=400, height=300, settings=AnalysisSettings())
    np.testing.assert_allclose(out.boxes, [[300, 172, 341, 220], [239, 172, 280, 220]])


def test_faces_that_merely_touch_are_both_kept() -> None:
    det = Detections(
        np.array([[0.0, 0, 40, 40], [30, 10, 70, 50]]), np.array([0.9, 0.8]), np.zeros((2, 5, 2))
    )
    out = merge([det], width=100, height=100, settings=AnalysisSettings())
    assert len(out) == 2


def test_a_tiled_pass_stops_at_the_next_tile_when_cancelled() -> None:
    # Esc during a thorough pass over a large photo: one tile more at most, not the whole pass.
    from forensic_app.core.detection import TILE_SIZE, CenterFaceDetector

    detector = object.__new__(CenterFaceDetector)
    tiles: list[tuple[int, int]] = []

    def one_tile(rgb: np.ndarray, threshold: float, cancel=None) -> Detections:
        tiles.append(rgb.shape[:2])
        return Detections.empty()

    detector._detect_tile = one_tile  # type: ignore[method-assign]
    big = np.zeros((TILE_SIZE * 2, TILE_SIZE * 3, 3), np.uint8)
    detector.detect_scaled(big, 0.5)
    all_tiles = len(tiles)
    assert all_tiles >= 6
    tiles.clear()
    detector.detect_scaled(big, 0.5, cancel=lambda: len(tiles) >= 1)
    assert len(tiles) == 1
