"""An output folder for annotated copies (``forensic-app analyze --out DIR``), resumable.

Why: an investigator reruns a batch after a crash, a cancel or adding photos; photos whose bytes
(SHA-256) and settings are unchanged must not be analysed again, and nothing already written may
be lost. Each annotated copy is written atomically first, then a small resume record
(``DIR/.forensic_app/results/<sha256>.json``), so a record always means its copy is complete.

Names: ``<relative path>/<stem>.annotated<suffix>`` mirroring where the photo was found; photos
that would land on the same name (``a/x.jpg`` and ``b/x.jpg`` named as files) get a short tag
from their path hash, decided in input order so reruns pick the same names. A name is never
used when a file already there is an input or anything the tool did not write itself (the
folder's marker and ledger, core/ownership.py): such a photo gets a tagged name instead, so
evidence named like an output (``x.annotated.jpg``) is never overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from forensic_app.core import atomic, ownership
from forensic_app.core.inputs import InputPhoto
from forensic_app.core.names import display
from forensic_app.core.results import ImageResult

ANNOTATED_TAG = ".annotated"
STATE_DIR = ownership.STATE_DIR
#: Suffixes the annotated copy keeps; any other input is written as PNG (lossless, universal).
WRITABLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
RECORD_VERSION = 1
#: Longest output file name in bytes: the usual 255-byte file-system limit less what an atomic
#: write adds for its temp file (``.NAME.xxxxxxxx.tmp``, core/atomic.py).
MAX_NAME_BYTES = 255 - 16


def _fit(stem: str, tail: str) -> str:
    """``stem`` shortened so ``stem + tail`` fits :data:`MAX_NAME_BYTES`, with a hash of the
    full stem so shortened names stay distinct (evidence may be named up to 255 bytes)."""
    if len(os.fsencode(stem + tail)) <= MAX_NAME_BYTES:
        return stem
    digest = hashlib.sha256(os.fsencode(stem)).hexdigest()[:8]
    budget = MAX_NAME_BYTES - len(os.fsencode(tail)) - len(digest) - 1
    cut = stem
    while len(os.fsencode(cut)) > budget:
        cut = cut[:-1]
    return f"{cut}~{digest}"


def _inside(folder: Path, root: Path) -> bool:
    """True when ``folder`` (links resolved) is ``root`` or below it: a symbolic link to a
    subfolder must not carry a write into another folder (it may hold evidence)."""
    real, top = os.path.realpath(folder), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def annotated_name(relative: str, tag: str = "") -> str:
    rel = Path(relative)
    suffix = rel.suffix.lower() if rel.suffix.lower() in WRITABLE_SUFFIXES else ".png"
    stem = _fit(rel.stem + (f"-{tag}" if tag else ""), ANNOTATED_TAG + suffix)
    parent = rel.parent
    # A relative path never climbs out of the output folder.
    parts = [p for p in parent.parts if p not in ("..", ".", "/", "\\") and not Path(p).anchor]
    return (
        str(Path(*parts, stem + ANNOTATED_TAG + suffix)) if parts else stem + ANNOTATED_TAG + suffix
    )


def plan_annotated_names(
    photos: Sequence[InputPhoto], root: str | Path | None = None
) -> dict[str, str]:
    """Map each photo path to a unique output name (relative to the output folder ``root``).

    With ``root``, a name whose file exists and is an input, or is not the tool's own earlier
    output, is not used: the photo gets a tagged name (same file by identity, not by name).
    """
    used: set[str] = set()
    names: dict[str, str] = {}
    inputs = ownership.identities(p.path for p in photos) if root is not None else set()
    owned = ownership.OwnedFolders()

    def taken(name: str) -> bool:
        if name.casefold() in used:
            return True
        if root is None:
            return False
        target = Path(root) / name
        return ownership.is_input(target, inputs) or not ownership.may_replace(root, target, owned)

    for photo in photos:
        name = annotated_name(photo.relative)
        if taken(name):
            tag = hashlib.sha256(photo.path.encode("utf-8", "surrogateescape")).hexdigest()[:8]
            name = annotated_name(photo.relative, tag)
            n = 2
            while taken(name):
                name = annotated_name(photo.relative, f"{tag}{n}")
                n += 1
        used.add(name.casefold())
        names[photo.path] = name
    return names


class OutputFolder:
    """A :class:`~forensic_app.core.batch.ResultStore` writing annotated copies into ``root``."""

    def __init__(
        self,
        root: str | Path,
        names: dict[str, str],
        key: str,
        *,
        protected: Iterable[str] = (),
        resume: bool = True,
    ) -> None:
        self.root = Path(root)
        self.names = names
        self.key = key
        self.resume = resume
        self.records = self.root / STATE_DIR / "results"
        self._protected = ownership.identities(protected)
        self._owned = ownership.OwnedFolders()
        self.written: dict[str, Path] = {}

    def prepare(self) -> None:
        """Create the folder (and its state folder); raises OSError with the reason.

        Temp files an interrupted run left in the state folder are removed (the files they were
        meant to replace are intact). The folder gets the ownership marker (core/ownership.py)
        first: a folder holding a state folder the tool cannot vouch for (planted) raises
        ForeignStateError and nothing in it is touched.
        """
        owned = ownership.OwnedFolders()
        inside = owned.owned_folder_reason(os.fspath(self.root))
        marker = ownership.read_marker(self.root)
        if inside or (marker and marker.get("kind") == ownership.KIND_CASE):
            # A case's own folders hold only what its audit log vouches for: copies written
            # there would make the examiner's own case fail verification.
            raise atomic.ProtectedFileError(
                f"refusing to write into {display(self.root)}: it is "
                + (inside or "a case folder")
                + "; choose a folder outside the case"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            ownership.mark(self.root, ownership.KIND_OUTPUT)
        except ownership.ForeignStateError:
            raise
        except OSError:
            # A folder that refuses the marker refuses every output too: each photo then fails
            # with its reason ("result not saved") while the analysis itself is still reported.
            pass
        self.records.mkdir(parents=True, exist_ok=True)
        for name in os.listdir(self.records):
            if name.startswith(".") and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.remove(self.records / name)

    def output_path(self, path: str) -> Path:
        return self.root / self.names.get(path, annotated_name(Path(path).name))

    # -- ResultStore -------------------------------------------------------------------------
    def wants_lookup(self) -> bool:
        if not self.resume:
            return False
        with contextlib.suppress(OSError):
            with os.scandir(self.records) as it:
                return any(True for _ in it)
        return False

    def lookup(self, path: str, sha256: str) -> ImageResult | None:
        record_path = self.records / f"{sha256}.json"
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if record.get("key") != self.key or record.get("sha256") != sha256:
            return None
        if not self.output_path(path).is_file():
            return None
        result = ImageResult.from_dict(record["result"])
        result.path = path
        self.written[path] = self.output_path(path)
        return result

    def save(self, item: Any, result: ImageResult, image: Any | None) -> None:
        if result.error or image is None:
            return
        from forensic_app.core.annotate import save_annotated

        target = self.output_path(item.path)
        if ownership.is_input(target, self._protected):
            raise atomic.ProtectedFileError(
                f"refusing to write {display(target)}: it is an input file of this analysis"
            )
        if not ownership.may_replace(self.root, target, self._owned):
            raise atomic.ProtectedFileError(
                f"refusing to write {display(target)}: a file the tool did not write is there"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        if not _inside(target.parent, self.root):
            raise atomic.ProtectedFileError(
                f"refusing to write {display(target)}: its folder is a link leading out of "
                f"the output folder {display(self.root)}"
            )
        save_annotated(image.rgb, result.faces, target, protected=[item.path])
        ownership.record_file(self.root, target)  # the ledger: this copy is ours, not evidence
        self.written[item.path] = target
        if result.sha256:
            record = {
                "version": RECORD_VERSION,
                "sha256": result.sha256,
                "key": self.key,
                "annotated": self.names.get(item.path),
                "result": result.to_dict(),
            }
            # ensure_ascii: a name that is not valid UTF-8 is kept exactly (\udcxx escapes).
            atomic.write_text_atomic(
                self.records / f"{result.sha256}.json", json.dumps(record, ensure_ascii=True)
            )
