"""Image loading on a corpus of odd and malformed files generated here (core/imaging.py)."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from forensic_app.core.imaging import (
    IMAGE_SUFFIXES,
    ImageLoadError,
    is_image_path,
    load_image,
    sha256_path,
)

# six distinct colours in a 2 x 3 grid of 16-px blocks: any flip or rotation is visible
GRID = [[(255, 0, 0), (0, 255, 0), (0, 0, 255)], [(255, 255, 0), (255, 0, 255), (0, 255, 255)]]
BLOCK = 16


def grid_image() -> np.ndarray:
    img = np.zeros((2 * BLOCK, 3 * BLOCK, 3), np.uint8)
    for r, row in enumerate(GRID):
        for c, col in enumerate(row):
            img[r * BLOCK : (r + 1) * BLOCK, c * BLOCK : (c + 1) * BLOCK] = col
    return img


def encode(arr_or_img: np.ndarray | Image.Image, fmt: str, **params: object) -> bytes:
    img = arr_or_img if isinstance(arr_or_img, Image.Image) else Image.fromarray(arr_or_img)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def fingerprint(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size


# -- formats and pixel modes ---------------------------------------------------------------

LOSSLESS = {"png": "PNG", "bmp": "BMP", "tif": "TIFF", "webp": "WEBP"}


@pytest.mark.parametrize("suffix", sorted(LOSSLESS))
def test_lossless_formats_decode_exactly(tmp_path: Path, suffix: str) -> None:
    arr = grid_image()
    params = {"lossless": True} if suffix == "webp" else {}
    path = write(tmp_path / f"img.{suffix}", encode(arr, LOSSLESS[suffix], **params))
    before = fingerprint(path)
    img = load_image(path)
    assert img.rgb.dtype == np.uint8 and img.rgb.shape == (32, 48, 3)
    np.testing.assert_array_equal(img.rgb, arr)
    assert (img.width, img.height) == (48, 32)
    assert img.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_path(path)
    assert img.file_size == path.stat().st_size
    assert fingerprint(path) == before  # the evidence file is untouched


def test_jpeg_rgb_and_grayscale(tmp_path: Path) -> None:
    arr = grid_image()
    img = load_image(write(tmp_path / "c.jpg", encode(arr, "JPEG", quality=95)))
    assert img.format == "JPEG"
    assert np.abs(img.rgb[8, 8].astype(int) - (255, 0, 0)).max() < 20
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))
    g = load_image(write(tmp_path / "g.jpg", encode(gray, "JPEG", quality=100)))
    assert g.rgb.shape == (16, 64, 3)
    assert (g.rgb[..., 0] == g.rgb[..., 1]).all() and (g.rgb[..., 1] == g.rgb[..., 2]).all()
    assert np.abs(g.rgb[..., 0].astype(int) - gray).max() <= 3


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    img = load_image(write(tmp_path / "cmyk.jpg", encode(cmyk, "JPEG", quality=95)))
    r, g, b = img.rgb[16, 16].astype(int)
    assert r > 220 and g < 40 and b < 40
    assert any("CMYK" in n for n in img.notes)


def test_16bit_grayscale_png_scaled_to_8bit(tmp_path: Path) -> None:
    arr = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    path = write(tmp_path / "g16.png", encode(Image.fromarray(arr), "PNG"))
    img = load_image(path)
    assert img.rgb[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (img.rgb[..., 0] == img.rgb[..., 2]).all()
    assert any("16-bit" in n for n in img.notes)


def test_16bit_rgb_png(tmp_path: Path) -> None:
    rgb16 = np.zeros((4, 4, 3), np.uint16)
    rgb16[..., 0] = 65535  # red
    rgb16[..., 2] = 32896  # half blue
    ok, buf = cv2.imencode(".png", rgb16[..., ::-1].copy())  # OpenCV writes BGR order
    assert ok
    img = load_image(write(tmp_path / "c16.png", buf.tobytes()))
    r, g, b = img.rgb[0, 0].astype(int)
    assert r == 255 and g == 0 and abs(b - 128) <= 1


def test_palette_and_alpha(tmp_path: Path) -> None:
    pal = Image.fromarray(grid_image()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    img = load_image(write(tmp_path / "p.png", encode(pal, "PNG")))
    np.testing.assert_array_equal(img.rgb, grid_image())

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (10, 20, 30, 255)  # opaque left half
    rgba[:, 4:] = (10, 20, 30, 0)  # transparent right half
    a = load_image(write(tmp_path / "a.png", encode(Image.fromarray(rgba, "RGBA"), "PNG")))
    assert a.rgb[0, 0].tolist() == [10, 20, 30]
    assert a.rgb[0, 7].tolist() == [255, 255, 255]
    assert any("transparent" in n for n in a.notes)

    la_arr = np.dstack([np.full((4, 4), 90, np.uint8), np.full((4, 4), 255, np.uint8)])
    la = Image.fromarray(la_arr, "LA")
    assert load_image(write(tmp_path / "la.png", encode(la, "PNG"))).rgb[0, 0].tolist() == [90] * 3


def test_one_pixel_and_multipage_tiff(tmp_path: Path) -> None:
    one = load_image(write(tmp_path / "one.png", encode(np.array([[[7, 8, 9]]], np.uint8), "PNG")))
    assert one.rgb.shape == (1, 1, 3) and one.rgb[0, 0].tolist() == [7, 8, 9]

    pages = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:])
    tif = load_image(write(tmp_path / "pages.tiff", buf.getvalue()))
    assert tif.rgb[0, 0].tolist() == [255, 0, 0]  # the first page
    assert any("first" in n for n in tif.notes)


# -- EXIF orientation ------------------------------------------------------------------------

# what a viewer shows for each EXIF orientation value, given the stored pixels S (EXIF spec)
DISPLAY = {
    1: lambda s: s,
    2: np.fliplr,
    3: lambda s: np.rot90(s, 2),
    4: np.flipud,
    5: lambda s: np.rot90(np.fliplr(s), 1),  # transpose
    6: lambda s: np.rot90(s, -1),  # rotate 90 degrees clockwise
    7: lambda s: np.rot90(np.fliplr(s), -1),  # transverse
    8: lambda s: np.rot90(s, 1),  # rotate 90 degrees counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(DISPLAY))
def test_exif_orientation_applied_once(tmp_path: Path, orientation: int) -> None:
    stored = grid_image()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = write(
        tmp_path / f"o{orientation}.jpg",
        encode(stored, "JPEG", quality=100, subsampling=0, exif=exif.tobytes()),
    )
    img = load_image(path)
    expected = DISPLAY[orientation](stored)
    assert img.rgb.shape == expected.shape
    assert (img.width, img.height) == (expected.shape[1], expected.shape[0])
    # compare the centre of every 16-px block (JPEG blurs only the block edges)
    for y in range(BLOCK // 2, expected.shape[0], BLOCK):
        for x in range(BLOCK // 2, expected.shape[1], BLOCK):
            diff = np.abs(img.rgb[y, x].astype(int) - expected[y, x].astype(int)).max()
            assert diff < 24, (orientation, y, x, img.rgb[y, x], expected[y, x])


# -- malformed files --------------------------------------------------------------------------


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    jpeg = encode(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8), "JPEG")
    png = encode(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8), "PNG")
    return {
        "empty": (write(tmp / "empty.jpg", b""), "empty"),
        "truncated jpeg": (write(tmp / "cut.jpg", jpeg[: len(jpeg) // 2]), "truncated"),
        "truncated png": (write(tmp / "cut.png", png[: len(png) // 2]), "truncated"),
        "text as jpg": (write(tmp / "notes.jpg", b"just some text\n"), "not a recognised"),
        "bomb": (write(tmp / "bomb.png", _png_header_only(100_000, 100_000)), "decompression bomb"),
        "moderate bomb": (
            write(tmp / "big.png", _png_header_only(12_000, 9_000)),
            "decompression bomb",
        ),
    }


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    "name",
    ["empty", "truncated jpeg", "truncated png", "text as jpg", "bomb", "moderate bomb"],
)
def test_malformed_files_give_clear_errors_and_stay_untouched(tmp_path: Path, name: str) -> None:
    path, phrase = _bad_files(tmp_path)[name]
    before = fingerprint(path)
    with pytest.raises(ImageLoadError, match=phrase) as err:
        load_image(path)
    assert path.name in str(err.value)
    assert fingerprint(path) == before


def test_own_pixel_limit_is_enforced(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.png", encode(grid_image(), "PNG"))
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(path, max_pixels=1000)
    assert load_image(path, max_pixels=48 * 32).width == 48


def test_missing_and_folder_paths(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_non_ascii_path(tmp_path: Path) -> None:
    folder = tmp_path / "Beweis ßäöü 証拠"
    folder.mkdir()
    path = write(folder / "Foto – été 🙂.png", encode(grid_image(), "PNG"))
    img = load_image(path)
    np.testing.assert_array_equal(img.rgb, grid_image())
    assert img.path == str(path)
    assert os.path.exists(img.path)


def test_suffixes() -> None:
    for name in ("a.JPG", "b.jpeg", "c.png", "d.Tif", "e.tiff", "f.webp", "g.bmp"):
        assert is_image_path(name), name
    assert not is_image_path("notes.txt") and not is_image_path("archive.jpg.zip")
    assert all(s == s.lower() and s.startswith(".") for s in IMAGE_SUFFIXES)


def test_tiff_with_a_corrupt_later_page_keeps_its_first_page(tmp_path: Path) -> None:
    """Red-team (found by the loader fuzz test): a 2-page TIFF whose second page has no width
    tag made counting pages raise TypeError out of the loader (a crash, not a per-photo
    error). The first page is analysed and the note says why the count is unknown."""
    pages = [Image.new("RGB", (32, 24), c) for c in ((200, 30, 30), (30, 30, 200))]
    buf = io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:])
    data = bytearray(buf.getvalue())
    first = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, first)[0]
    second = struct.unpack_from("<I", data, first + 2 + 12 * count)[0]
    for i in range(struct.unpack_from("<H", data, second)[0]):
        entry = second + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == 256:  # ImageWidth: gone
            struct.pack_into("<H", data, entry, 0x7FFF)
    path = tmp_path / "two-pages.tif"
    path.write_bytes(bytes(data))
    image = load_image(path)
    assert (image.width, image.height) == (32, 24)
    assert tuple(image.rgb[0, 0]) == (200, 30, 30)
    assert any("frame count unreadable" in n for n in image.notes)
