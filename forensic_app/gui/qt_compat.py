"""Work-arounds for bugs in the Qt binding, in one place.

``emit``: in PySide6 6.12.0 ``SignalInstance.emit()`` returns ``True`` without taking a reference,
so every emit from Python takes one reference away from the ``True`` singleton. On Python 3.11
(where ``True`` is not immortal) a long session or test run eventually frees ``True`` and the
interpreter aborts ("bool_dealloc: deallocating True or False"). Every signal the GUI emits goes
through :func:`emit`, which gives the reference back when (and only when) a probe at import
shows the binding has the bug; on fixed versions and on Python >= 3.12 it is a plain emit.

The same binding returns a borrowed ``None`` from every method that returns nothing; see
``VOID_STEALS_NONE`` below for why that is repaired once, at import, instead.
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


def _void_call_steals_none() -> bool:
    probe = _Probe()
    before = sys.getrefcount(None)
    for _ in range(8):
        probe.setObjectName("probe")
    return sys.getrefcount(None) - before <= -8


#: PySide6 6.12.0 also returns a borrowed ``None`` from every wrapped method that returns
#: nothing (``QPainter.setPen``, ``QLabel.setText``, ...): each call takes one reference from
#: ``None``. Paint code makes thousands of such calls per second, so a long session (scrolling
#: the Faces view through 10,000 faces does it in seconds) frees ``None`` and aborts
#: ("none_dealloc"). No wrapper per call can keep up, so when the probe finds the bug the three
#: singletons get what Python 3.12 gives them anyway (PEP 683): a reference count so large that
#: no session can use it up. They are statically allocated and never freed, so this changes
#: nothing else.
VOID_STEALS_NONE = _void_call_steals_none()
_HEADROOM = 1 << 40


def _immortalize(*objects: object) -> None:
    if hasattr(sys, "getobjects"):  # a Py_TRACE_REFS build: the count is not the first field
        for obj in objects:
            for _ in range(1 << 20):
                _incref(obj)
        return
    for obj in objects:
        ctypes.c_ssize_t.from_address(id(obj)).value += _HEADROOM


if (VOID_STEALS_NONE or EMIT_STEALS_TRUE) and sys.version_info < (3, 12):
    _immortalize(None, True, False)


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, repairing the binding's reference-count bug when present."""
    signal.emit(*args)
    if EMIT_STEALS_TRUE:
        _incref(True)
