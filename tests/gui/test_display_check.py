"""Without a display the window refuses to start with a message, instead of Qt aborting."""

from __future__ import annotations

import os
import subprocess
import sys

from forensic_app.gui.app import missing_display_message


def test_linux_without_display_is_explained() -> None:
    msg = missing_display_message({}, "linux")
    assert msg is not None and "no display" in msg and "forensic-app analyze" in msg


def test_display_wayland_or_explicit_platform_is_accepted() -> None:
    assert missing_display_message({"DISPLAY": ":0"}, "linux") is None
    assert missing_display_message({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert missing_display_message({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert missing_display_message({}, "win32") is None


def test_app_exits_cleanly_without_display(tmp_path) -> None:
    if not sys.platform.startswith("linux"):
        return
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env["HOME"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "forensic_app"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1, proc.stderr
    assert "no display found" in proc.stderr
