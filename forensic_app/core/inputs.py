"""Turn the paths an investigator names into the list of photos to analyse.

Why its own module: the CLI, batches and the GUI's "open folder" must find the same photos in the
same order, keep each photo's path exactly as given or found (results and reports quote it), and
never feed the tool its own outputs back as evidence on a rerun.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from forensic_app.core.imaging import is_image_path


@dataclass(frozen=True)
class InputPhoto:
    """A photo to analyse. ``path`` is as given or found; ``relative`` is its path below the
    folder it was found in (just the file name for a file named directly)."""

    path: str
    relative: str
    root: str | None = None  # the folder argument it was found under, None for a named file
    error: str | None = None  # set when a folder could not be listed: reported per "photo"


def _under(path: Path, folders: Sequence[Path]) -> bool:
    try:
        real = path.resolve()
    except OSError:
        return False
    return any(real == f or f in real.parents for f in folders)


def expand_inputs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    exclude_dirs: Iterable[str | os.PathLike[str]] = (),
) -> list[InputPhoto]:
    """Expand folders to their image files (sorted by name; subfolders only if ``recursive``).

    A named file is always kept, whatever its suffix (a wrong extension is the loader's business
    and gets a per-photo error); a missing path is kept too, so it is reported, not silently
    dropped. Folders in ``exclude_dirs`` (the tool's own output or case folder) are skipped, and
    symlinked folders are not followed (no loops). A file reached twice is listed once.
    """
    excluded = []
    for d in exclude_dirs:
        try:
            excluded.append(Path(d).resolve())
        except OSError:
            pass
    out: list[InputPhoto] = []
    seen: set[str] = set()

    def add(photo: InputPhoto) -> None:
        try:
            key = os.path.normcase(os.path.realpath(photo.path))
        except OSError:
            key = photo.path
        if key in seen:
            return
        seen.add(key)
        out.append(photo)

    for raw in paths:
        given = os.fspath(raw)
        p = Path(given)
        if not p.is_dir():
            add(InputPhoto(given, p.name, None))
            continue
        listing_errors: list[OSError] = []
        if recursive:
            walker = os.walk(given, followlinks=False, onerror=listing_errors.append)
        else:
            try:
                walker = [(given, [], os.listdir(given))]  # type: ignore[list-item]
            except OSError as exc:
                walker = []
                listing_errors.append(exc)
        for dirpath, dirnames, filenames in walker:
            dirnames[:] = sorted(
                d for d in dirnames if not (excluded and _under(Path(dirpath, d), excluded))
            )
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                if not is_image_path(name) or os.path.isdir(full):
                    continue
                if excluded and _under(Path(full), excluded):
                    continue
                rel = os.path.relpath(full, given)
                add(InputPhoto(full, rel, given))
        for exc in listing_errors:
            where = exc.filename or given
            reason = exc.strerror or str(exc)
            add(
                InputPhoto(
                    str(where),
                    os.path.basename(str(where)),
                    given,
                    error=f"folder cannot be listed ({reason}); its photos were not analysed",
                )
            )
    return out
