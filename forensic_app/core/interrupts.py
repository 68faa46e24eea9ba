"""Ctrl-C that waits for the step in hand: a save is never cut between its files.

Why: Python raises ``KeyboardInterrupt`` in the main thread wherever it happens to be. A case
save writes the annotated copy, then the record, then the audit entry that vouches for both;
cut between them, the case holds a record that no audit entry accounts for and ``case verify``
fails on a case that nobody tampered with. ``BatchRunner._finish`` runs every save inside
:func:`deferred_sigint`: where it saves in the main thread (the cluster client, the sequential
path) a Ctrl-C that arrives meanwhile is raised as soon as the save is complete; in the
pipelined batch's finisher thread, which Ctrl-C never interrupts, it changes nothing. Only the
save is deferred: waiting for a photo or a worker stays interruptible.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def deferred_sigint() -> Iterator[None]:
    """Run the block to its end; a SIGINT received meanwhile raises KeyboardInterrupt after it.

    Outside the main thread (where Python never raises KeyboardInterrupt anyway) or when the
    process does not use Python's default handler (a GUI, an embedding), it changes nothing.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    received: list[int] = []

    def remember(signum: int, frame: Any) -> None:
        received.append(signum)

    signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt
