"""Which files are the tool's own outputs: decided by where it wrote them, never by their name.

Why: an examiner's evidence may be named like anything, ``x.annotated.jpg`` included. A name
pattern used to drop such a photo from the inputs, and then the annotated copy of ``x.jpg`` was
written over it. Now every folder the tool writes outputs into (an ``--out`` folder, a case
folder, the window's export folder) carries a marker, ``.forensic_app/owner.json``, that says

* ``kind``: "output-folder", "case" or "exports";
* ``owned``: subfolders that only the tool writes into (a case's ``annotated/`` and
  ``results/``, every ``.forensic_app/`` state folder): never read as evidence;
* a ledger, ``.forensic_app/written.jsonl``: one line per output file the tool wrote into the
  folder (relative path, size, SHA-256). A file is the tool's own output only if it is listed
  there *and* its bytes still have the listed SHA-256; anything else, whatever its name, is
  evidence.

Before writing, every target is compared with every input by file identity
(:func:`is_input`, ``os.path.samefile``); planning never picks a name that exists unless the
ledger shows it is the tool's own earlier output (:func:`may_replace`).

Why the marker and every ledger line carry a ``mac`` (HMAC-SHA256 under a per-user secret key,
``<config dir>/ownership.key``, created on first use, mode 0600): the tool is public, so anyone
preparing a device can write a ``.forensic_app/`` folder into it. A planted ledger listing an
evidence photo used to drop it from the run *and* let the annotated copy of ``x.jpg`` replace it;
a planted marker "owning" ``photos/`` hid a whole subfolder. Only this installation's user key
can vouch, so a planted (or another installation's) marker or ledger line vouches for nothing:
the files are evidence, and such a folder is never used as an output folder (its files are
never changed, :class:`ForeignStateError`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forensic_app.core import atomic

STATE_DIR = ".forensic_app"
MARKER_FILE = "owner.json"
LEDGER_FILE = "written.jsonl"
KIND_OUTPUT = "output-folder"
KIND_CASE = "case"
KIND_EXPORTS = "exports"
TOOL = "forensic_app"
KEY_FILE = "ownership.key"
MAC_FIELD = "mac"

_ledger_lock = threading.Lock()
_keys: dict[str, bytes | None] = {}


class ForeignStateError(OSError):
    """The folder holds a ``.forensic_app`` state this user's key does not vouch for (planted,
    or written by another installation): it is not used for outputs, so nothing in it changes."""


def _key() -> bytes | None:
    """This user's secret key (created on first use), or None when it cannot be had: then
    nothing is vouched for and every file is evidence (the safe direction)."""
    from forensic_app.core.paths import config_dir

    path = config_dir() / KEY_FILE
    cache = str(path)
    if cache in _keys:
        return _keys[cache]
    key = None
    with contextlib.suppress(OSError, ValueError):
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
                    os.fsync(fd)
                finally:
                    os.close(fd)
        raw = bytes.fromhex(path.read_text(encoding="ascii").strip())
        key = raw if len(raw) == 32 else None
    _keys[cache] = key
    return key


def _mac(data: dict[str, Any]) -> str | None:
    key = _key()
    if key is None:
        return None
    fields = {k: v for k, v in data.items() if k != MAC_FIELD}
    text = json.dumps(fields, sort_keys=True, ensure_ascii=True)
    return hmac.new(key, text.encode("ascii"), hashlib.sha256).hexdigest()


def _vouched(data: dict[str, Any]) -> bool:
    """True when ``data`` carries a MAC made with this user's key."""
    mac, expected = data.get(MAC_FIELD), _mac(data)
    return isinstance(mac, str) and expected is not None and hmac.compare_digest(mac, expected)


def marker_path(root: str | Path) -> Path:
    return Path(root) / STATE_DIR / MARKER_FILE


def mark(root: str | Path, kind: str, owned: Iterable[str] = ()) -> None:
    """Leave (or complete) the marker saying the tool writes outputs into ``root``.

    Raises OSError when the folder cannot be written, ForeignStateError when it already holds
    a state folder this user's key does not vouch for (it is left exactly as it is). An existing
    marker keeps its kind and gains the new owned subfolders.
    """
    path = marker_path(root)
    current = read_marker(root)
    state = path.parent
    if current is None and _holds_files(state):
        from forensic_app.core.paths import config_dir

        why = "" if _key() else f" (this user's key {config_dir() / KEY_FILE} is unavailable)"
        raise ForeignStateError(
            f"{state} was not written by this tool for this user (planted, or made by another "
            f"installation){why}; it is left untouched and the folder is not used for outputs"
        )
    current = current or {}
    owned_all = sorted({STATE_DIR, *current.get("owned", []), *owned})
    if current.get("kind") and current.get("owned") == owned_all:
        return
    data: dict[str, Any] = {"tool": TOOL, "kind": current.get("kind") or kind, "owned": owned_all}
    mac = _mac(data)
    if mac is not None:
        data[MAC_FIELD] = mac
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def _holds_files(state: Path) -> bool:
    """True when a state folder is a link or holds any file or link: something to vouch for
    (a planted resume record could pass off a forged result as "unchanged"). Empty folders,
    left by a run that stopped early, hold nothing."""
    if os.path.islink(state):
        return True
    for top, dirs, files in os.walk(state):
        if files or any(os.path.islink(os.path.join(top, d)) for d in dirs):
            return True
    return False


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The folder's marker, or None when it has none, an unusable one, or one this user's key
    does not vouch for (a planted marker owns nothing)."""
    path = marker_path(folder)
    try:
        from forensic_app.core.imaging import open_regular

        with open_regular(path, max_bytes=1 << 16) as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != TOOL or not _vouched(data):
        return None
    owned = data.get("owned")
    if not isinstance(owned, list) or not all(isinstance(o, str) for o in owned):
        data["owned"] = [STATE_DIR]
    return data


def record_written(root: str | Path, target: str | Path, sha256: str, size: int) -> None:
    """Append ``target`` (a file just written inside ``root``) to the folder's ledger."""
    rel = os.path.relpath(target, root)
    entry: dict[str, Any] = {"path": rel, "size": size, "sha256": sha256}
    mac = _mac(entry)
    if mac is not None:
        entry[MAC_FIELD] = mac
    line = json.dumps(entry, ensure_ascii=True) + "\n"
    ledger = Path(root) / STATE_DIR / LEDGER_FILE
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with _ledger_lock:
        fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)


def record_file(root: str | Path, target: str | Path) -> None:
    """Record a file the tool has just written inside ``root`` (hashes it once)."""
    from forensic_app.core.imaging import sha256_path

    record_written(root, target, sha256_path(target), os.stat(target).st_size)


def record_exports(paths: Iterable[str | Path]) -> None:
    """Mark the folders of files exported beside the evidence and list the files in their
    ledgers, so a later folder batch knows them as the tool's own by identity (not by name).

    Raises OSError when the folder refuses the marker (the export itself is already written).
    """
    for p in paths:
        root = Path(p).parent
        mark(root, KIND_EXPORTS)
        record_file(root, p)


def _read_ledger(root: Path) -> dict[str, set[tuple[int, str]]]:
    out: dict[str, set[tuple[int, str]]] = {}
    try:
        from forensic_app.core.imaging import open_regular

        with open_regular(root / STATE_DIR / LEDGER_FILE, max_bytes=None) as fh:
            for raw in fh:
                try:
                    entry = json.loads(raw)
                    if not isinstance(entry, dict) or not _vouched(entry):
                        continue  # planted, or another installation's: vouches for nothing
                    key = os.path.normcase(os.path.normpath(entry["path"]))
                    out.setdefault(key, set()).add((int(entry["size"]), str(entry["sha256"])))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line: that output is then treated as evidence
    except OSError:
        pass
    return out


class OwnedFolders:
    """Answers "did the tool write this file?" for files found while walking folders.

    Markers and ledgers are read once per folder; file hashes only for files a ledger lists.
    """

    def __init__(self) -> None:
        self._markers: dict[str, dict[str, Any] | None] = {}
        self._ledgers: dict[str, dict[str, set[tuple[int, str]]]] = {}

    def _marker(self, folder: str) -> dict[str, Any] | None:
        if folder not in self._markers:
            self._markers[folder] = read_marker(folder)
        return self._markers[folder]

    def marked_ancestors(self, path: str) -> list[tuple[str, dict[str, Any]]]:
        """(folder, marker) for every marked folder holding ``path`` (nearest first)."""
        out = []
        folder = os.path.dirname(os.path.abspath(path))
        while True:
            m = self._marker(folder)
            if m is not None:
                out.append((folder, m))
            parent = os.path.dirname(folder)
            if parent == folder:
                return out
            folder = parent

    def owned_folder_reason(self, folder: str) -> str | None:
        """Why ``folder`` is never read (an owned subfolder of a marked folder), or None."""
        folder = os.path.abspath(folder)
        for root, marker in self.marked_ancestors(os.path.join(folder, "x")):
            rel = os.path.relpath(folder, root)
            if rel == ".":
                continue
            first = rel.split(os.sep, 1)[0]
            if first in marker.get("owned", []):
                return f"inside a {marker.get('kind', 'tool')} folder of this tool ({root})"
        return None

    def own_output_reason(self, path: str, size: int | None = None) -> str | None:
        """Why ``path`` is the tool's own output (and so not evidence), or None when it is not.

        Only a file listed in a marked folder's ledger whose bytes still have the listed
        SHA-256 counts; a file merely named like an output is evidence.
        """
        absolute = os.path.abspath(path)
        for root, marker in self.marked_ancestors(absolute):
            rel = os.path.relpath(absolute, root)
            first = rel.split(os.sep, 1)[0]
            if first in marker.get("owned", []) and first != rel:
                return f"inside a {marker.get('kind', 'tool')} folder of this tool ({root})"
            if root not in self._ledgers:
                self._ledgers[root] = _read_ledger(Path(root))
            listed = self._ledgers[root].get(os.path.normcase(os.path.normpath(rel)))
            if not listed:
                continue
            if size is None:
                with contextlib.suppress(OSError):
                    size = os.stat(absolute).st_size
            if size not in {s for s, _ in listed}:
                continue
            from forensic_app.core.imaging import sha256_path

            try:
                digest = sha256_path(absolute)
            except OSError:
                continue
            if (size, digest) in listed:
                return f"written by this tool into {root} (SHA-256 matches its ledger)"
        return None


def identities(paths: Iterable[str | Path]) -> set[tuple[int, int]]:
    """(device, inode) of every existing path: what "the same file" means below."""
    out = set()
    for p in paths:
        with contextlib.suppress(OSError):
            st = os.stat(p)
            out.add((st.st_dev, st.st_ino))
    return out


def is_input(target: str | Path, inputs: set[tuple[int, int]]) -> bool:
    """True when ``target`` exists and is the same file (``samefile``) as an input."""
    try:
        st = os.stat(target)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in inputs


def may_replace(root: str | Path, target: str | Path, owned: OwnedFolders) -> bool:
    """True when ``target`` may be (re)written: absent, or the tool's own earlier output."""
    if not os.path.lexists(target):
        return True
    return owned.own_output_reason(os.fspath(target)) is not None
