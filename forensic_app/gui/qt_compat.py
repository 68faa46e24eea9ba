"""Work-arounds for bugs in the Qt binding, in one place.

``emit``: in PySide6 6.12.0 ``SignalInstance.emit()`` returns ``True`` without taking a reference,
so every emit from Python takes one reference away from the ``True`` singleton. On Python 3.11
(where ``True`` is not immortal) a long session or test run eventually frees ``True`` and the
interpreter aborts ("bool_dealloc: deallocating True or False"). Every signal the GUI emits goes
through :func:`emit`, which gives the reference back when (and only when) a probe at import
shows the binding has the bug; on fixed versions and on Python >= 3.12 it is a plain emit.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal()


def _emit_steals_true() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    return sys.getrefcount(True) - before <= -8


EMIT_STEALS_TRUE = _emit_steals_true()
_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, repairing the binding's reference-count bug when present."""
    signal.emit(*args)
    if EMIT_STEALS_TRUE:
        _incref(True)
