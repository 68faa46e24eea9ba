"""Atomic, non-destructive writes: the only way the app writes an output file.

Why: an investigator's outputs (annotated copies, JSON, reports) must never be half-written, and
an evidence file must never be overwritten. Every write goes to a temporary file in the target
folder (same file system, so ``os.replace`` is atomic), is flushed to disk, then renamed over the
target. A failure leaves the previous file intact and removes the temporary file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO


class ProtectedFileError(PermissionError):
    """Refused to write over a file that is an input (evidence) of the analysis."""


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def same_existing_file(a: str | Path, b: str | Path) -> bool:
    """True when both exist and are one file (a hard link or another spelling included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwrite_of(path: str | Path, protected: Iterable[str | Path]) -> None:
    """Raise ProtectedFileError if ``path`` is (a link to, or another spelling of) an input."""
    target = Path(path)
    for item in protected:
        if _same_file(target, Path(item)):
            raise ProtectedFileError(
                f"refusing to write {target}: it is an input file of this analysis "
                "(evidence is never overwritten); choose another output name or folder"
            )


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once at import: os.umask can only be read by setting it, which is not thread-safe later.
_UMASK = _current_umask()


def _open_temp(target: Path, folder: Path) -> tuple[int, str]:
    """A temp file beside ``target`` with the permissions a normal write would give it.

    ``mkstemp`` creates files readable by the owner only; an output replacing an existing file
    keeps that file's mode, a new one gets the usual 0666 minus the umask.
    """
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    if os.name == "posix":
        try:
            mode = target.stat().st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_UMASK
        with contextlib.suppress(OSError):
            os.fchmod(fd, mode)
    return fd, name


@contextlib.contextmanager
def atomic_stream(path: str | Path) -> Iterator[BinaryIO]:
    """Write ``path`` atomically through a file object (also used for large, streamed outputs).

    Yields a binary file in the target folder; on a clean exit it is fsynced and renamed over
    ``path``, on any exception it is removed and ``path`` is left as it was.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = _open_temp(target, folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(folder)


@contextlib.contextmanager
def named_output_stream(path: str | Path) -> Iterator[BinaryIO]:
    """Write a file the user named (``--json FILE``, ``report --out FILE``).

    Why not always :func:`atomic_stream`: ``--json /dev/null``, ``--csv /dev/stdout`` or a
    pipe (``>(jq .)``) name something that is not a file; replacing it by a renamed temp file
    turned ``/dev/null`` (as root) or the ``/dev/stdout`` link into a regular file, and a reader
    on a FIFO got nothing. A FIFO or character device is written into, as a shell redirection
    would; a block device (an evidence disk), a folder or a socket is refused; anything else
    (a regular file, nothing yet) is written atomically.
    """
    target = Path(path)
    try:
        mode = os.stat(target).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
            kind = "a block device" if stat.S_ISBLK(mode) else "not a file"
            raise ProtectedFileError(f"refusing to write {target}: it is {kind}")
        with open(target, "wb") as fh:
            yield fh
        return
    with atomic_stream(target) as fh:
        yield fh


def write_named_output(path: str | Path, text: str) -> None:
    """UTF-8 text into a file the user named (see :func:`named_output_stream`)."""
    with named_output_stream(path) as fh:
        fh.write(text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync and ``os.replace``."""
    with atomic_stream(path) as fh:
        fh.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """UTF-8 text version of :func:`write_bytes_atomic` (newlines written as given)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable where the platform allows it (POSIX); harmless elsewhere."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
