"""The emit work-around keeps the ``True`` singleton's reference count intact (PySide6 6.12.0
returns a borrowed ``True`` from ``SignalInstance.emit``; enough emits abort the interpreter)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from forensic_app.gui.qt_compat import emit

GUI = Path(__file__).resolve().parents[2] / "forensic_app" / "gui"


class Emitter(QObject):
    text = Signal(str)


def test_emit_keeps_true_refcount():
    e = Emitter()
    got = []
    e.text.connect(got.append)
    before = sys.getrefcount(True)
    for _ in range(500):
        emit(e.text, "x")
    assert len(got) == 500
    assert sys.getrefcount(True) >= before


def test_gui_code_emits_only_through_the_helper():
    offenders = []
    for path in GUI.glob("*.py"):
        if path.name == "qt_compat.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(r"\.emit\b", line):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert offenders == []
