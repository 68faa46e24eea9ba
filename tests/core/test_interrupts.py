"""Ctrl-C during a save waits for the save's end, then stops the run."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from forensic_app.core.interrupts import deferred_sigint

pytestmark = pytest.mark.skipif(os.name != "posix", reason="os.kill(SIGINT) is a POSIX test")


def test_a_sigint_during_the_block_is_raised_after_it_completes() -> None:
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_sigint():
            steps.append("record")
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between the record and its audit line
            steps.append("audit entry")
    assert steps == ["record", "audit entry"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_a_sigint_nothing_changes_and_errors_pass_through() -> None:
    with deferred_sigint():
        pass
    with pytest.raises(ValueError):
        with deferred_sigint():
            raise ValueError("a failed save is still a failed save")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_outside_the_main_thread_it_touches_no_signal_handler() -> None:
    seen: list[object] = []

    def other() -> None:
        with deferred_sigint():
            seen.append(signal.getsignal(signal.SIGINT))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == [signal.default_int_handler]
