"""A tiny gender-train cache written from real shared images, for tests of the training code.

Why a module of its own: several test files need it, and importing from a test module would
tie them together. Imported by basename, like ``tiny_models``: ``from tiny_gtrain_cache import``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from training import data as D

DETECTOR = D.REPO_ROOT / "models" / "centerface.onnx"


def tiny_gtrain_cache(root: Path, per_group: int = 2) -> tuple[Path, list[str]]:
    """``per_group`` images of each source and split, plus two blank wider-gender rows."""
    if (
        not (D.GTRAIN_DIR / "manifest.csv").is_file()
        or not (D.WIDER_DIR / "manifest.csv").is_file()
    ):
        pytest.skip("../shared not present: gender-train / wider-gender data missing")
    if not DETECTOR.is_file():
        pytest.skip("models/centerface.onnx missing: run `python -m forensic_app.fetch_models`")
    rows = list(csv.DictReader(open(D.GTRAIN_DIR / "manifest.csv", encoding="utf-8")))
    picked: list[dict[str, str]] = []
    for source in ("utkface", "fairface", "celeba-wild"):
        for split in ("train", "val"):
            picked += [r for r in rows if r["source"] == source and r["split"] == split][:per_group]
    blobs = D._read_members(D.GTRAIN_DIR, picked)
    cache = root / "cache"
    cache.mkdir()
    import cv2

    imgs = []
    for r in picked:
        img = D._decode(blobs[(r["shard"], r["member"])])
        imgs.append(cv2.resize(img, (D.GTRAIN_CACHE, D.GTRAIN_CACHE)))
    np.save(cache / "gtrain_images.npy", np.stack(imgs))
    (cache / "gtrain_meta.json").write_text(json.dumps(D.gtrain_meta(picked)))
    # two wider-gender faces so load_splits finds a complete cache
    np.save(cache / "wider_images.npy", np.zeros((2, D.WIDER_CACHE, D.WIDER_CACHE, 3), np.uint8))
    np.save(cache / "wider_boxes.npy", np.tile(np.float32([36, 36, 108, 108]), (2, 1)))
    (cache / "wider_meta.json").write_text(
        json.dumps(
            {
                "labels": [0, 1],
                "split": ["train", "val"],
                "face_px": [72, 72],
                "age_group": ["", ""],
                "valid": [[0, 0, D.WIDER_CACHE, D.WIDER_CACHE]] * 2,
            }
        )
    )
    (cache / "VERSION").write_text(D.CACHE_VERSION)
    return cache, [r["source"] for r in picked]
