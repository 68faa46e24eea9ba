"""Load an evidence image once: bytes -> SHA-256 -> decode -> EXIF orientation -> RGB array.

Why one loader: the SHA-256 recorded in a result must be the hash of exactly the bytes that were
analysed, the EXIF orientation must be applied exactly once (boxes are in the oriented frame
everywhere: detection, crops, annotation, GUI), and every odd pixel format must end up as the
same HxWx3 uint8 RGB array. The file is opened read-only, read once, and never written; paths go
through Python's ``open`` (not ``cv2.imread``), so any character in a path works.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Decompression-bomb guard: images with more pixels than this are refused before decoding.
DEFAULT_MAX_PIXELS = 100_000_000
#: Files larger than this are refused before a byte is read (the one owner of the limit). The
#: largest photo the pixel limit admits, 100 MP stored uncompressed at 16 bits per channel with
#: alpha, is 800 MB; anything bigger is not a photo this tool can analyse.
MAX_FILE_BYTES = 1 << 30

#: Lower-case file suffixes the app opens (folders expand to files with these suffixes).
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp",
        ".gif", ".heic", ".heif", ".hif", ".avif",
    }
)  # fmt: skip

# HEIC/HEIF (iPhone photos); AVIF is built into Pillow >= 11. The runtime decoder is pi-heif,
# the decode-only build of pillow-heif: the same libheif/libde265, without the GPL-2.0 x265
# encoder that pillow-heif's wheel bundles (reading photos needs no encoder). pillow-heif, kept
# in the test extra to *write* HEIC test files, is used only when pi-heif is absent (imported
# by name, so the bundle's analysis never pulls it in; packaging/bundle.py excludes it too).
HEIF_DECODER: str | None = None
for _name in ("pi_heif", "pillow_heif"):
    try:
        importlib.import_module(_name).register_heif_opener()
    except ImportError:  # pragma: no cover - depends on what is installed
        continue
    HEIF_DECODER = _name
    break
HEIF_SUPPORT = HEIF_DECODER is not None  # False: a broken install; such files get a clear error

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


#: ISO-BMFF brands of HEIF/HEIC and AVIF files (bytes 8-12 after ``ftyp``).
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
)
#: How many leading bytes :func:`sniff_image_format` needs.
SNIFF_BYTES = 32


def is_image_path(path: str | Path) -> bool:
    """True if ``path`` has a suffix the app opens (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def sniff_image_format(head: bytes) -> str | None:
    """The image format named by a file's first bytes (magic numbers), or None.

    Why: a folder may hold photos without an extension (exports, carved files); they are
    recognised by content, and a file that does not start like an image is never read whole.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head.startswith(b"BM") and len(head) >= 14:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "AVIF" if head[8:12] in (b"avif", b"avis") else "HEIF"
    return None


class NotRegularFileError(OSError):
    """The path is a FIFO, device, socket or folder: it is never opened for reading."""


class FileTooLargeError(OSError):
    """The file is over :data:`MAX_FILE_BYTES`; refused before reading."""


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words (skip lists and refusals say the same)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular(path: str | Path, max_bytes: int | None | bool = True) -> os.stat_result:
    """``os.stat`` a path (links followed) and refuse anything but a regular file within the
    size limit, without opening it (opening a FIFO or a device can block or have effects).

    ``max_bytes``: True (default) = :data:`MAX_FILE_BYTES`, None = no limit.
    """
    max_bytes = _limit(max_bytes)
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFileError(f"it is {file_kind(st.st_mode)}, not a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        raise FileTooLargeError(
            f"file is {st.st_size:,} bytes, over the limit of {max_bytes:,} bytes; not read"
        )
    return st


def _limit(max_bytes: int | None | bool) -> int | None:
    return MAX_FILE_BYTES if max_bytes is True else (max_bytes or None)


def open_regular(path: str | Path, max_bytes: int | None | bool = True) -> io.BufferedReader:
    """Open a regular file for reading, never blocking: the only way evidence files are opened.

    The path is checked with ``os.stat`` first, opened with ``O_NONBLOCK`` (a FIFO swapped in
    between cannot block the open) and checked again on the open descriptor.
    """
    max_bytes = _limit(max_bytes)
    check_regular(path, max_bytes)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(f"it is {file_kind(st.st_mode)}, not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise FileTooLargeError(f"file is over the limit of {max_bytes:,} bytes; not read")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class FileChangedError(OSError):
    """The file gave more bytes than its size said (it grew while read, or it is a kernel
    pseudo-file such as ``/proc/self/pagemap`` whose size reads 0 but whose content is endless)."""


def read_regular(path: str | Path) -> bytes:
    """All bytes of a regular file (a case's own file: log, record), read like
    :func:`sha256_path`: never a FIFO or device, never past the size ``fstat`` gave."""
    with open_regular(path, max_bytes=None) as fh:
        size = os.fstat(fh.fileno()).st_size
        data = fh.read(size + 1)
    if len(data) > size:
        raise FileChangedError(
            f"{path} gave more bytes than its size: it changed while read or is not a real file"
        )
    return data


def sha256_path(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a regular file's bytes, read in chunks (no size limit: streamed).

    Reading stops one byte past the size ``fstat`` gave: a link to an endless pseudo-file
    (regular, size 0) used to make ``case verify`` read forever.
    """
    h = hashlib.sha256()
    with open_regular(path, max_bytes=None) as fh:
        left = os.fstat(fh.fileno()).st_size
        while block := fh.read(min(chunk, left + 1)):
            left -= len(block)
            if left < 0:
                raise FileChangedError(
                    f"{path} gave more bytes than its size: it changed while read or is not a "
                    "real file; not hashed"
                )
            h.update(block)
    return h.hexdigest()


def _read_bytes(path: Path) -> bytes:
    from forensic_app.core.names import display

    max_bytes = MAX_FILE_BYTES

    name = display(path.name)
    try:
        with open_regular(path, max_bytes) as fh:
            head = fh.read(SNIFF_BYTES)
            if head and sniff_image_format(head) is None:
                # Not a common magic number: let Pillow look at the header only, so a huge
                # non-image is refused without being read into memory.
                fh.seek(0)
                try:
                    with Image.open(fh):
                        pass
                except Exception:  # noqa: BLE001 - any failure means "not an image"
                    raise ImageLoadError(f"{name} is not a recognised image format") from None
            fh.seek(0)
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ImageLoadError(f"file not found: {display(str(path))}") from None
    except NotRegularFileError as exc:
        raise ImageLoadError(f"{name} was not opened: {display(str(exc))}") from None
    except FileTooLargeError as exc:
        raise ImageLoadError(f"{name} refused: {exc}") from None
    except PermissionError:
        raise ImageLoadError(f"no permission to read {display(str(path))}") from None
    except OSError as exc:
        raise ImageLoadError(f"cannot read {display(str(path))}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ImageLoadError(f"{name} refused: it grew over {max_bytes:,} bytes while read")
    return data


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
    from forensic_app.core.names import display

    p = Path(path)
    name = display(p.name)
    if not data:
        raise ImageLoadError(f"{name} is empty (0 bytes)")
    digest = sha256 or hashlib.sha256(data).hexdigest()
    notes: list[str] = []
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageLoadError(f"{name} is not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"{name} refused as a possible decompression bomb: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a hostile header can raise anything
        raise ImageLoadError(f"{name} cannot be read as an image: {exc}") from None
    with im:
        fmt = im.format or "unknown"
        width, height = im.size
        if width < 1 or height < 1:
            raise ImageLoadError(f"{name} has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise ImageLoadError(
                f"{name} claims {width}x{height} = {width * height:,} pixels, more than the "
                f"limit of {max_pixels:,}; refused as a possible decompression bomb"
            )
        try:  # counting seeks through every frame: a corrupt later page raises anything
            frames = getattr(im, "n_frames", 1) or 1
        except Exception as exc:  # noqa: BLE001
            frames = 1
            notes.append(f"frame count unreadable ({exc}); only the first frame was analysed")
        if frames > 1:
            notes.append(f"{frames} frames/pages in file: only the first was analysed")
        try:
            im.load()
        except Exception as exc:  # noqa: BLE001 - truncated/corrupt data raises many types
            raise ImageLoadError(f"{name} is truncated or corrupt ({fmt}): {exc}") from None
        try:
            # In place: without an orientation tag exif_transpose would return a full copy
            # (70 MB for a 24-megapixel photo, held while the array is made; issue 16).
            ImageOps.exif_transpose(im, in_place=True)
        except Exception as exc:  # noqa: BLE001 - broken EXIF must not lose the picture
            notes.append(f"EXIF orientation unreadable ({exc}); pixels used as stored")
        try:
            rgb = _to_rgb8(im, notes)
        except Exception as exc:  # noqa: BLE001
            raise ImageLoadError(f"{name} has an unsupported pixel format: {exc}") from None
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
