"""Load an evidence image once: bytes -> SHA-256 -> decode -> EXIF orientation -> RGB array.

Why one loader: the SHA-256 recorded in a result must be the hash of exactly the bytes that were
analysed, the EXIF orientation must be applied exactly once (boxes are in the oriented frame
everywhere: detection, crops, annotation, GUI), and every odd pixel format must end up as the
same HxWx3 uint8 RGB array. The file is opened read-only, read once, and never written; paths go
through Python's ``open`` (not ``cv2.imread``), so any character in a path works.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Decompression-bomb guard: images with more pixels than this are refused before decoding.
DEFAULT_MAX_PIXELS = 100_000_000

#: Lower-case file suffixes the app opens (folders expand to files with these suffixes).
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".gif"}
)

# We check the pixel count ourselves (``max_pixels``) before decoding; Pillow's warning for
# images between its own limit and twice that limit would only be noise.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageLoadError(Exception):
    """The file cannot be analysed as an image. The message says why, in words for the user."""


@dataclass
class LoadedImage:
    """A decoded image. ``rgb`` is HxWx3 uint8 in display orientation (EXIF applied once)."""

    path: str
    sha256: str
    rgb: np.ndarray
    width: int
    height: int
    format: str
    file_size: int
    notes: list[str] = field(default_factory=list)


def is_image_path(path: str | Path) -> bool:
    """True if ``path`` has a suffix the app opens (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def sha256_path(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ImageLoadError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise ImageLoadError(f"{path} is a folder, not an image file") from None
    except PermissionError:
        raise ImageLoadError(f"no permission to read {path}") from None
    except OSError as exc:
        raise ImageLoadError(f"cannot read {path}: {exc.strerror or exc}") from None


def _to_rgb8(im: Image.Image, notes: list[str]) -> np.ndarray:
    """Convert any Pillow mode to an HxWx3 uint8 RGB array."""
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im)
        if arr.ndim == 3:  # some plugins give (H, W, 1)
            arr = arr[..., 0]
        if mode == "F":
            arr = arr.astype(np.float64)
            if np.nanmax(arr) <= 1.0:
                arr = arr * 255.0
            gray = np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
        elif mode.startswith("I;16") or int(arr.max(initial=0)) > 255:
            wide = np.clip(arr.astype(np.int64), 0, 65535)
            gray = ((wide * 255 + 32767) // 65535).astype(np.uint8)
            notes.append("16-bit image reduced to 8 bits per channel for analysis")
        else:
            gray = np.clip(arr, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in im.info
    )
    if has_alpha:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
        notes.append("transparent areas shown on white")
    if mode == "CMYK":
        notes.append("CMYK image converted to RGB")
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read, hash and decode ``path``; raise ImageLoadError with a user-facing reason."""
    return decode_image_bytes(read_image_bytes(path), path, max_pixels)


def read_image_bytes(path: str | Path) -> bytes:
    """The file's bytes, or ImageLoadError with a user-facing reason (missing, folder, ...)."""
    return _read_bytes(Path(path))


def decode_image_bytes(
    data: bytes,
    path: str | Path,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    sha256: str | None = None,
) -> LoadedImage:
    """Hash and decode bytes already read from ``path``.

    Why separate from :func:`load_image`: a batch that resumes must hash a photo before deciding
    whether to analyse it; passing the bytes (and the digest it computed) here means the file is
    read and hashed once, not twice. ``sha256`` must be the digest of exactly ``data``.
    """
    p = Path(path)
    if not data:
        raise ImageLoadError(f"{p.name} is empty (0 bytes)")
    digest = sha256 or hashlib.sha256(data).hexdigest()
    notes: list[str] = []
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageLoadError(f"{p.name} is not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"{p.name} refused as a possible decompression bomb: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a hostile header can raise anything
        raise ImageLoadError(f"{p.name} cannot be read as an image: {exc}") from None
    with im:
        fmt = im.format or "unknown"
        width, height = im.size
        if width < 1 or height < 1:
            raise ImageLoadError(f"{p.name} has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise ImageLoadError(
                f"{p.name} claims {width}x{height} = {width * height:,} pixels, more than the "
                f"limit of {max_pixels:,}; refused as a possible decompression bomb"
            )
        frames = getattr(im, "n_frames", 1) or 1
        if frames > 1:
            notes.append(f"{frames} frames/pages in file: only the first was analysed")
        try:
            im.load()
        except Exception as exc:  # noqa: BLE001 - truncated/corrupt data raises many types
            raise ImageLoadError(f"{p.name} is truncated or corrupt ({fmt}): {exc}") from None
        try:
            oriented = ImageOps.exif_transpose(im)
        except Exception as exc:  # noqa: BLE001 - broken EXIF must not lose the picture
            oriented = im
            notes.append(f"EXIF orientation unreadable ({exc}); pixels used as stored")
        try:
            rgb = _to_rgb8(oriented, notes)
        except Exception as exc:  # noqa: BLE001
            raise ImageLoadError(f"{p.name} has an unsupported pixel format: {exc}") from None
    h, w = rgb.shape[:2]
    return LoadedImage(
        path=str(path),
        sha256=digest,
        rgb=rgb,
        width=w,
        height=h,
        format=fmt,
        file_size=len(data),
        notes=notes,
    )
