"""One writer per case folder: an OS file lock held for a writer's whole run.

Why: two writers on one case (two ``batch`` runs, a batch and the window, two examiners creating
the same case) would interleave records, fork the audit chain and remove each other's temporary
files. The lock is the ``filelock`` package's OS lock (``fcntl.flock`` on POSIX, ``LockFileEx``
on Windows) on ``<case>/.case.lock``: the operating system releases it when the holder exits or
crashes, so a stale lock cannot block a case. Who holds it (pid, host, user, start time,
command) is written beside it in ``.case.lock.json`` so a second writer can say whom to ask.

Within one process the lock is shared: every :class:`CaseLock` on the same folder counts
against one OS lock (the window and its batch thread are one writer).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import filelock

try:
    import fcntl
except ImportError:  # Windows: LockFileEx through filelock alone
    fcntl = None  # type: ignore[assignment]

from forensic_app.core import atomic
from forensic_app.core.audit import utc_now

LOCK_FILE = ".case.lock"
HOLDER_FILE = ".case.lock.json"


class CaseBusyError(Exception):
    """Another process is writing to the case; ``holder`` says who (may be empty)."""

    def __init__(self, root: Path, holder: dict[str, Any]) -> None:
        self.root = root
        self.holder = holder
        super().__init__(
            f"case {root} is in use by another writer ({describe_holder(holder)}); wait for "
            "it to finish, or close the case there"
        )


def describe_holder(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    parts = [
        f"pid {holder.get('pid', '?')}",
        f"on {holder.get('host', '?')}",
        f"user {holder.get('user', '?')}",
        f"since {holder.get('started', '?')}",
    ]
    if holder.get("command"):
        parts.append(f"running {holder['command']!r}")
    return ", ".join(parts)


def read_holder(root: str | Path) -> dict[str, Any]:
    """What the current (or last) holder wrote beside the lock; {} when unknown or garbled."""
    try:
        data = json.loads((Path(root) / HOLDER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _me() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is not worth failing a lock for
        user = "?"
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": user,
        "started": utc_now(),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[
            :200
        ],
    }


class _Held:
    def __init__(self, lock: filelock.BaseFileLock, folder_fd: int | None) -> None:
        self.lock = lock
        self.folder_fd = folder_fd
        self.count = 0


def _lock_folder(root: Path, timeout: float) -> int | None:
    """Also lock the case folder itself (POSIX ``flock`` on its descriptor); its fd, or None
    where that is not possible (Windows, some network file systems: the file lock alone).

    Why: ``.case.lock`` is an ordinary file that can be deleted (by hand, "a stale lock", or a
    cleanup tool) while a writer holds it; the next writer then creates and locks a new file and
    two writers run at once. The folder cannot be deleted while it holds a case. Raises
    :class:`TimeoutError` when another process holds it past ``timeout`` (-1: wait forever).
    """
    if fcntl is None:
        return None
    try:
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if timeout >= 0 and time.monotonic() >= deadline:
                os.close(fd)
                raise TimeoutError from None
            time.sleep(0.1)
        except OSError:
            os.close(fd)
            return None


_HELD: dict[str, _Held] = {}
_GUARD = threading.RLock()  # re-entrant: a Case collected inside a lock call releases here


def _key(root: Path) -> str:
    return os.path.normcase(os.path.realpath(root))


class CaseLock:
    """The writer lock of one case folder; :meth:`acquire` once, :meth:`release` once."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.held = False

    def acquire(self, wait: bool | float = False) -> None:
        """Take the lock; ``wait`` True blocks until free, a number waits that many seconds.

        Raises :class:`CaseBusyError` naming the holder when another process has it.
        """
        if self.held:
            return
        key = _key(self.root)
        with _GUARD:
            held = _HELD.get(key)
            if held is not None:
                held.count += 1
                self.held = True
                return
            lock = filelock.FileLock(
                str(self.root / LOCK_FILE), thread_local=False, fallback_to_soft=False
            )
            timeout = -1 if wait is True else (0 if wait is False else float(wait))
            try:
                lock.acquire(timeout=timeout)
            except filelock.Timeout:
                raise CaseBusyError(self.root, read_holder(self.root)) from None
            try:
                folder_fd = _lock_folder(self.root, timeout)
            except TimeoutError:
                lock.release()
                raise CaseBusyError(self.root, read_holder(self.root)) from None
            held = _HELD[key] = _Held(lock, folder_fd)
            held.count = 1
            self.held = True
        with contextlib.suppress(OSError):  # who holds it is a courtesy, not the lock itself
            atomic.write_text_atomic(self.root / HOLDER_FILE, json.dumps(_me(), indent=2))

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        key = _key(self.root)
        with _GUARD:
            held = _HELD.get(key)
            if held is None:
                return
            held.count -= 1
            if held.count > 0:
                return
            del _HELD[key]
            with contextlib.suppress(OSError):
                os.remove(self.root / HOLDER_FILE)
            # On write-blocked media the lock file cannot be removed; the OS lock itself goes
            # with the descriptor, so a failure to tidy up must not fail a reader's check.
            with contextlib.suppress(OSError):
                held.lock.release()
            if held.folder_fd is not None:
                os.close(held.folder_fd)  # closing the descriptor drops its flock

    def __enter__(self) -> CaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def held_here(root: str | Path) -> bool:
    """True when this process holds the writer lock of ``root``."""
    with _GUARD:
        return _key(Path(root)) in _HELD
