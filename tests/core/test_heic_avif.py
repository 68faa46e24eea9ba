"""HEIC/HEIF (decoded by pi-heif) and AVIF (Pillow) photos are read, oriented once and found.

iPhone photos are HEIC; a folder of them used to be "no photos". The files here are real
encodings made by the same libraries, with an EXIF orientation that must be honoured once.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensic_app.core.imaging import load_image, sniff_image_format
from forensic_app.core.inputs import scan_inputs

FORMATS = {"HEIF": ".heic", "AVIF": ".avif"}


def _encode(rgb: np.ndarray, fmt: str, orientation: int | None = None) -> bytes:
    """Encode with the writers (pillow-heif from the test extra for HEIF, Pillow for AVIF);
    Pillow's registered HEIF *opener* stays the app's decoder (pi-heif), so decoding is tested
    with what ships."""
    im = Image.fromarray(rgb)
    buf = io.BytesIO()
    kwargs = {"quality": 95}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    if fmt == "HEIF":
        pillow_heif = pytest.importorskip("pillow_heif", reason="test extra: writes HEIC files")
        pillow_heif.from_pillow(im).save(buf, **kwargs)
    else:
        im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def test_runtime_decoder_is_the_decode_only_pi_heif() -> None:
    """pi-heif ships no HEVC encoder (pillow-heif's wheel bundles GPL-2.0 x265)."""
    pi_heif = pytest.importorskip("pi_heif")
    from forensic_app.core import imaging

    assert imaging.HEIF_DECODER == "pi_heif"
    assert not any("265" in e for e in pi_heif.libheif_info()["encoders"])
    heif_open = Image.OPEN.get("HEIF")
    assert heif_open is not None and heif_open[0].__module__.startswith("pi_heif")


def _left_red_right_blue(h: int = 48, w: int = 96) -> np.ndarray:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2] = (220, 20, 20)
    rgb[:, w // 2 :] = (20, 20, 220)
    return rgb


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_decodes_and_honours_exif_orientation(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"photo{FORMATS[fmt]}"
    path.write_bytes(_encode(_left_red_right_blue(), fmt, orientation=6))
    image = load_image(path)
    # Orientation 6 = rotate 90 degrees clockwise for display: the left (red) half goes on top.
    assert (image.width, image.height) == (48, 96)
    top, bottom = image.rgb[:40].reshape(-1, 3).mean(0), image.rgb[-40:].reshape(-1, 3).mean(0)
    assert top[0] > 150 and top[2] < 80, top
    assert bottom[2] > 150 and bottom[0] < 80, bottom
    assert image.format in ("HEIF", "AVIF")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_plain_file_decodes_to_its_pixels(tmp_path: Path, fmt: str) -> None:
    rgb = _left_red_right_blue()
    path = tmp_path / f"plain{FORMATS[fmt]}"
    path.write_bytes(_encode(rgb, fmt))
    image = load_image(path)
    assert (image.width, image.height) == (96, 48)
    assert np.abs(image.rgb.astype(int) - rgb.astype(int)).mean() < 12  # lossy, same picture


def test_folder_walk_finds_heic_avif_and_extensionless_photos(tmp_path: Path) -> None:
    rgb = _left_red_right_blue()
    (tmp_path / "a.HEIC").write_bytes(_encode(rgb, "HEIF"))
    (tmp_path / "b.heif").write_bytes(_encode(rgb, "HEIF"))
    (tmp_path / "c.avif").write_bytes(_encode(rgb, "AVIF"))
    (tmp_path / "IMG_0001").write_bytes(_encode(rgb, "HEIF"))  # no extension: sniffed
    (tmp_path / "IMG_0002").write_bytes(_encode(rgb, "AVIF"))
    scan = scan_inputs([tmp_path])
    assert [Path(p.path).name for p in scan.photos] == [
        "IMG_0001",
        "IMG_0002",
        "a.HEIC",
        "b.heif",
        "c.avif",
    ]
    assert scan.skipped == []
    assert sniff_image_format((tmp_path / "IMG_0001").read_bytes()[:32]) == "HEIF"
    assert sniff_image_format((tmp_path / "IMG_0002").read_bytes()[:32]) == "AVIF"
    for p in scan.photos:
        assert load_image(p.path).width == 96


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_real_photo_as_heic_or_avif_finds_the_same_faces(engine, dev_eval_dir, tmp_path, fmt):
    """A dev-eval photo re-encoded as HEIC/AVIF: the faces found in the JPEG are found again."""
    from forensic_app.core.nms import iou_matrix

    jpeg = sorted((dev_eval_dir / "images").rglob("*.jpg"))[0]
    original = engine.analyze_path(jpeg)
    assert original.error is None and original.faces
    path = tmp_path / f"{jpeg.stem}{FORMATS[fmt]}"
    path.write_bytes(_encode(load_image(jpeg).rgb, fmt))
    again = engine.analyze_path(path)
    assert again.error is None
    best = sorted(original.faces, key=lambda f: -(f.score or 0))[: max(1, len(original.faces) // 2)]
    confident = np.asarray([f.box for f in best])  # the clearer half: robust to re-encoding
    assert len(confident) and again.faces
    overlap = iou_matrix(confident, np.asarray([f.box for f in again.faces]))
    assert (overlap.max(axis=1) >= 0.5).all()
