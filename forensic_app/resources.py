"""Where the app's bundled resources (the icon set) live, in a source checkout and a frozen build.

Why this module: the working directory is never a reliable anchor (an installed app starts from
anywhere, and PyInstaller 6 puts data under ``_internal/``). Like ``core.modelstore.models_dir``,
the folder is found from ``sys._MEIPASS`` when frozen and from this file's location otherwise.
Qt-free on purpose, so the CLI, the tests and the packaging scripts can use it; the GUI builds
its ``QIcon`` from :func:`icon_paths`::

    icon = QIcon()
    for path in icon_paths():
        icon.addFile(str(path))
    app.setWindowIcon(icon)

This module owns the icon file names and sizes; ``packaging/render_icons.py`` writes them and
the packaging spec and tests read them from here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

RESOURCES_DIR_ENV = "FORENSIC_APP_RESOURCES_DIR"
#: Square PNG sizes rendered from ``resources/icon.svg`` (the Linux hicolor sizes).
ICON_SIZES: tuple[int, ...] = (16, 24, 32, 48, 64, 128, 256, 512)
ICON_SVG = "icon.svg"
ICON_ICO = "icon.ico"
ICONS_SUBDIR = "icons"


def icon_file_name(size: int) -> str:
    """File name of one PNG size inside ``resources/icons/``."""
    return f"forensic-app-{size}.png"


def resources_dir() -> Path:
    """The folder holding ``icon.svg``, ``icon.ico`` and ``icons/``: env, bundle or source tree."""
    env = os.environ.get(RESOURCES_DIR_ENV)
    if env:
        return Path(env)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def icon_path(size: int = 256) -> Path:
    """Path of the PNG icon of ``size`` pixels (one of :data:`ICON_SIZES`)."""
    if size not in ICON_SIZES:
        raise ValueError(f"no {size}px icon; available sizes: {ICON_SIZES}")
    return resources_dir() / ICONS_SUBDIR / icon_file_name(size)


def icon_paths() -> list[Path]:
    """Every PNG size that exists, smallest first, for a multi-resolution ``QIcon``.

    Empty when the resources are missing (a bare ``pip install`` without the checkout): the app
    then runs with Qt's default icon instead of failing.
    """
    return [p for p in (icon_path(s) for s in ICON_SIZES) if p.is_file()]
