"""Gender-train faces re-framed with the app's own detector (``python -m training cache --detect``).

A tiny cache is written in a temporary folder from real shared images, so these tests run the
real detector on real faces in seconds instead of over all 32,801 images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_gtrain_cache import DETECTOR, tiny_gtrain_cache

from forensic_app.core.crops import whole_image_box
from training import data as D


def test_detector_boxes_frame_tight_crops_like_the_app_and_are_cached(tmp_path: Path) -> None:
    cache, sources = tiny_gtrain_cache(tmp_path)
    with pytest.raises(FileNotFoundError, match="cache --detect"):
        D.load_splits(cache, gtrain_framing="detected")
    info = D.build_gtrain_boxes(DETECTOR, cache, workers=1, chunk=5)
    assert info["n"] == len(sources) and info["found"] >= len(sources) - 1
    assert info["detector_sha256"] == D.file_sha256(DETECTOR)
    boxes = np.load(cache / "gtrain_boxes.npy")
    whole = np.asarray(whole_image_box((D.GTRAIN_CACHE, D.GTRAIN_CACHE)))
    side = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    whole_side = whole[2] - whole[0]
    tight = np.array([s in ("utkface", "fairface") for s in sources])
    # UTKFace/FairFace images are tighter than "box + 25 % per side": their faces are larger
    assert np.median(side[tight] / whole_side) > 1.2
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert np.all(np.abs(centres - D.GTRAIN_CACHE / 2) <= D.GTRAIN_CACHE / 4)
    # a second call reuses the cache instead of detecting again
    stamp = (cache / "gtrain_boxes.npy").stat().st_mtime_ns
    assert D.build_gtrain_boxes(DETECTOR, cache, workers=1) == info
    assert (cache / "gtrain_boxes.npy").stat().st_mtime_ns == stamp
    det = D.load_splits(cache, gtrain_framing="detected")
    whole_splits = D.load_splits(cache, gtrain_framing="whole")
    train_idx = det["gtrain_train"].index
    np.testing.assert_array_equal(det["gtrain_train"].boxes, boxes[train_idx])
    np.testing.assert_allclose(whole_splits["gtrain_train"].boxes[0], whole)
    with pytest.raises(ValueError, match="gtrain_framing"):
        D.load_splits(cache, gtrain_framing="stretched")


def test_training_device_can_be_forced_to_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch", reason="torch is not installed (pip install -e .[train])")
    from training import train as T

    monkeypatch.setenv("TRAIN_DEVICE", "cpu")
    assert T.pick_device().type == "cpu"
    monkeypatch.delenv("TRAIN_DEVICE")
    expected = "cuda" if T.torch.cuda.is_available() else "cpu"
    assert T.pick_device().type == expected
