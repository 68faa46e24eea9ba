"""Property test of the image loader on random and mutated bytes (bounded for CI).

Whatever the bytes, ``load_image`` either returns a well-formed LoadedImage or raises
ImageLoadError with a message: never another exception, never a crash, never a write.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from forensic_app.core.imaging import ImageLoadError, LoadedImage, load_image

MAX_PIXELS = 4_000_000  # mutated headers may claim huge sizes; keep the test's memory small


def _seed_files() -> list[bytes]:
    rng = np.random.default_rng(7)
    arr = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    seeds = []
    for fmt, kw in (
        ("JPEG", {"quality": 80}),
        ("PNG", {}),
        ("GIF", {}),
        ("BMP", {}),
        ("TIFF", {}),
        ("WEBP", {"quality": 80}),
    ):
        buf = io.BytesIO()
        (im.convert("P") if fmt == "GIF" else im).save(buf, fmt, **kw)
        seeds.append(buf.getvalue())
    exif = im.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    seeds.append(buf.getvalue())
    return seeds


SEEDS = _seed_files()


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "header"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        else:  # overwrite bytes in the header, where sizes and modes live
            p = draw(st.integers(0, min(63, len(data) - 1)))
            data[p] = draw(st.integers(0, 255))
    return bytes(data)


def _check(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            img = load_image(path, max_pixels=MAX_PIXELS)
        except ImageLoadError as exc:
            assert str(exc)
        else:
            assert isinstance(img, LoadedImage)
            assert img.rgb.dtype == np.uint8 and img.rgb.ndim == 3 and img.rgb.shape[2] == 3
            assert img.rgb.shape[:2] == (img.height, img.width)
            assert img.sha256 == hashlib.sha256(data).hexdigest()
            assert img.file_size == len(data)
        assert path.read_bytes() == data  # the evidence file is never written


@settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=mutated(), suffix=st.sampled_from([".jpg", ".png", ".gif", ".tif", ".bin"]))
def test_load_image_on_mutated_files(data, suffix):
    _check(data, suffix)


@settings(max_examples=100, deadline=None, database=None)
@given(data=st.binary(max_size=4096))
def test_load_image_on_random_bytes(data):
    _check(data, ".jpg")
