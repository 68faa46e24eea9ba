"""The emit work-around keeps the ``True`` singleton's reference count intact (PySide6 6.12.0
returns a borrowed ``True`` from ``SignalInstance.emit``; enough emits abort the interpreter)."""

from __future__ import annotations

import os
import re
import subprocess
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


VOID_CALLS = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication, QLabel
calls = sys.getrefcount(None) + 20_000  # more calls than None has references
if sys.argv[1] == "fixed":
    import forensic_app.gui.qt_compat  # noqa: F401
app = QApplication([])
label = QLabel()
for _ in range(calls):
    label.setText("x")
print("survived")
"""


def run_void_calls(mode: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(GUI.parents[1]))
    return subprocess.run(
        [sys.executable, "-c", VOID_CALLS, mode],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_methods_returning_nothing_cannot_free_none():
    from forensic_app.gui.qt_compat import VOID_STEALS_NONE

    if VOID_STEALS_NONE and sys.version_info < (3, 12):  # the bug is there: show it bites ...
        bare = run_void_calls("bare")
        assert bare.returncode != 0 and "survived" not in bare.stdout
    fixed = run_void_calls("fixed")  # ... and that importing the work-around stops it
    assert fixed.returncode == 0 and "survived" in fixed.stdout, fixed.stderr[-2000:]
