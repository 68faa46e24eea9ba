"""The shared crop geometry (core/crops.py): regions, padding, orientation and --no-detect."""

from __future__ import annotations

import numpy as np
import pytest

from forensic_app.core import crops


def _quadrants(h: int, w: int) -> np.ndarray:
    """Image whose quadrants are red / green / blue / white (top-left, top-right, ...)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (255, 0, 0)
    img[: h // 2, w // 2 :] = (0, 255, 0)
    img[h // 2 :, : w // 2] = (0, 0, 255)
    img[h // 2 :, w // 2 :] = (255, 255, 255)
    return img


def test_square_region_is_centred_and_uses_longer_side() -> None:
    # box 40 wide, 80 tall centred on (120, 140): side = 80 * 1.5 = 120
    assert crops.square_region([100, 100, 140, 180], 0.25) == (60.0, 80.0, 180.0, 200.0)
    assert crops.square_region([0, 0, 10, 10], 0.0) == (0.0, 0.0, 10.0, 10.0)


def test_stretch_region_grows_by_margin_and_clips() -> None:
    assert crops.stretch_region([100, 100, 140, 180], (500, 500, 3), 0.25) == (90, 80, 150, 200)
    assert crops.stretch_region([0, 0, 40, 40], (30, 30, 3), 0.25) == (0, 0, 30, 30)


def test_square_crop_keeps_orientation_and_content() -> None:
    img = _quadrants(200, 200)
    # a box on the centre with no margin: the crop must show the four quadrants in place
    out = crops.extract_crop(img, [50, 50, 150, 150], size=20, margin=0.0, shape="square")
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    assert tuple(out[2, 2]) == (255, 0, 0)
    assert tuple(out[2, 17]) == (0, 255, 0)
    assert tuple(out[17, 2]) == (0, 0, 255)
    assert tuple(out[17, 17]) == (255, 255, 255)


def test_square_crop_pads_black_outside_the_image() -> None:
    img = np.full((100, 100, 3), 200, np.uint8)
    # a face at the top-left corner: the region (side 60, centre 20) starts 10 px outside
    out = crops.extract_crop(img, [0, 0, 40, 40], size=60, margin=0.25, shape="square")
    assert out[:10, :].max() == 0 and out[:, :10].max() == 0  # outside the photo: black
    assert out[10:, 10:].min() == 200  # inside: the photo's pixels, unscaled (60 -> 60)


def test_stretch_crop_fills_whole_output() -> None:
    img = _quadrants(100, 300)
    out = crops.extract_crop(img, [0, 0, 300, 100], size=30, margin=0.25, shape="stretch")
    assert out.shape == (30, 30, 3)
    assert tuple(out[2, 2]) == (255, 0, 0) and tuple(out[27, 27]) == (255, 255, 255)


def test_unknown_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="crop shape"):
        crops.extract_crop(np.zeros((10, 10, 3), np.uint8), [0, 0, 5, 5], 8, shape="round")


def test_whole_image_crop_matches_square_crop_of_implied_box() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (90, 150, 3), dtype=np.uint8)
    box = crops.whole_image_box(img.shape, 0.25)
    # the implied box grown by 25 % per side is the whole image
    w, h = box[2] - box[0], box[3] - box[1]
    assert box[0] - 0.25 * w == pytest.approx(0) and box[3] + 0.25 * h == pytest.approx(90)
    whole = crops.whole_image_crop(img, 64, "square")
    via_box = crops.extract_crop(img, box, 64, 0.25, "square")
    assert np.abs(whole.astype(int) - via_box.astype(int)).mean() < 2.0
    # letterbox: the 150x90 image leaves black bars above and below
    assert whole[:10].max() == 0 and whole[-10:].max() == 0
