"""Turn the paths an investigator names into the list of photos to analyse, and say what was not.

Why its own module: the CLI, batches and the GUI's "open folder" must find the same photos in the
same order, keep each photo's path exactly as given or found (results and reports quote it),
never feed the tool its own outputs back as evidence on a rerun, never open anything that could
block (a FIFO, a device) and never skip a file silently: every file a walk passes over is listed
in :attr:`InputScan.skipped` with its reason.

What counts as a photo in a folder: a regular file with an image suffix (HEIC/HEIF and AVIF
included), or a regular file without a suffix whose first bytes are an image format. The tool's
own outputs are recognised by where they were written (core/ownership.py), never by their name.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensic_app.core import imaging
from forensic_app.core.names import display, encode_name, text_safe
from forensic_app.core.ownership import OwnedFolders


@dataclass(frozen=True)
class InputPhoto:
    """A photo to analyse. ``path`` is as given or found; ``relative`` is its path below the
    folder it was found in (just the file name for a file named directly)."""

    path: str
    relative: str
    root: str | None = None  # the folder argument it was found under, None for a named file
    error: str | None = None  # set when it is known to fail before reading: reported per photo


@dataclass(frozen=True)
class SkippedFile:
    """A file (or folder) a walk passed over, and why; listed in summaries, JSON and audit."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        # The reason may quote a folder (a marked root): never a name that breaks UTF-8.
        return {**encode_name("path", self.path), "reason": text_safe(self.reason)}


@dataclass
class InputScan:
    photos: list[InputPhoto] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def _under(path: str, folders: Sequence[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == f or real.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def _too_large(size: int) -> str | None:
    """The per-photo error for a file over the size limit (known before any byte is read)."""
    if size <= imaging.MAX_FILE_BYTES:
        return None
    return (
        f"refused: file is {size:,} bytes, over the limit of {imaging.MAX_FILE_BYTES:,} "
        "bytes; not read"
    )


def _sniff(path: str) -> str | None:
    try:
        with imaging.open_regular(path) as fh:
            return imaging.sniff_image_format(fh.read(imaging.SNIFF_BYTES))
    except OSError:
        return None


def scan_inputs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    exclude_dirs: Iterable[str | os.PathLike[str]] = (),
    exclude_reason: str = "inside the case folder of this run",
) -> InputScan:
    """Expand folders to their photos (sorted by name; subfolders only if ``recursive``).

    A named file is always kept, whatever its suffix or type (the loader gives it a per-photo
    error saying why it cannot be read), unless it is the tool's own output; a missing path is
    kept too, so it is reported. Folders in ``exclude_dirs`` and the owned parts of marked
    folders are not entered; symlinked folders are not followed (no loops). A file reached twice
    is listed once.
    """
    excluded = [os.path.realpath(os.fspath(d)) for d in exclude_dirs]
    owned = OwnedFolders()
    scan = InputScan()
    seen: dict[str, str] = {}

    def skip(path: str, reason: str) -> None:
        scan.skipped.append(SkippedFile(path, reason))

    def add(photo: InputPhoto) -> None:
        try:
            key = os.path.normcase(os.path.realpath(photo.path))
        except (OSError, ValueError):
            key = photo.path
        if key in seen:  # a link to, or another spelling of, a photo already listed: said so
            if photo.path != seen[key]:
                skip(photo.path, f"same file as {display(seen[key])}: analysed once")
            return
        seen[key] = photo.path
        scan.photos.append(photo)

    def consider(full: str, name: str, given: str) -> None:
        suffix = Path(name).suffix.lower()
        try:
            st = os.stat(full)  # follows links: a link to /dev/zero is a device
        except OSError as exc:
            if suffix in imaging.IMAGE_SUFFIXES:  # a photo we cannot reach: a per-photo error
                add(InputPhoto(full, os.path.relpath(full, given), given))
            elif isinstance(exc, FileNotFoundError):
                skip(full, "broken symbolic link")
            else:
                skip(full, f"unreadable: {exc.strerror or exc}")
            return
        if stat.S_ISDIR(st.st_mode):
            skip(full, "symbolic link to a folder: not followed")
            return
        if not stat.S_ISREG(st.st_mode):
            skip(full, f"{imaging.file_kind(st.st_mode)}: never opened")
            return
        if suffix not in imaging.IMAGE_SUFFIXES:
            if suffix:
                skip(full, f"not an image file type ({suffix})")
                return
            if st.st_size == 0:
                skip(full, "empty file without an extension")
                return
            if _sniff(full) is None:
                skip(full, "no extension and the content is not an image format")
                return
        if excluded and _under(full, excluded):
            skip(full, exclude_reason)
            return
        reason = owned.own_output_reason(full, st.st_size)
        if reason:
            skip(full, reason)
            return
        error = _too_large(st.st_size)
        add(InputPhoto(full, os.path.relpath(full, given), given, error=error))

    def listing_error(where: str, given: str, exc: OSError) -> None:
        reason = exc.strerror or str(exc)
        add(
            InputPhoto(
                where,
                os.path.basename(where),
                given,
                error=f"folder cannot be listed ({reason}); its photos were not analysed",
            )
        )

    for raw in paths:
        given = os.fspath(raw)
        if not os.path.isdir(given):
            reason = error = None
            with contextlib.suppress(OSError):
                if os.path.isfile(given):
                    reason = owned.own_output_reason(given)
                    error = _too_large(os.stat(given).st_size)
            if reason:
                skip(given, reason)
            else:
                add(InputPhoto(given, os.path.basename(given), None, error=error))
            continue
        stack = [given]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                listing_error(folder, given, exc)
                continue
            subdirs = []
            for entry in entries:
                full = os.path.join(folder, entry.name)
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if is_dir:
                    subdirs.append(full)
                else:
                    consider(full, entry.name, given)
            to_walk = []
            for sub in subdirs:
                reason = owned.owned_folder_reason(sub)
                if reason is None and excluded and _under(sub, excluded):
                    reason = exclude_reason
                if reason is None and not recursive:
                    reason = "subfolder: not searched without --recursive"
                if reason is None:
                    to_walk.append(sub)
                else:
                    skip(sub + os.sep, reason)
            stack.extend(reversed(to_walk))
    return scan


def expand_inputs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    exclude_dirs: Iterable[str | os.PathLike[str]] = (),
) -> list[InputPhoto]:
    """The photos of :func:`scan_inputs` (for callers that report skipped files elsewhere)."""
    return scan_inputs(paths, recursive=recursive, exclude_dirs=exclude_dirs).photos
