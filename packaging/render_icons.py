"""Render the app icon set in ``resources/`` from its one source, ``resources/icon.svg``.

Why a script: the PNG sizes (for Linux hicolor themes and the Qt window icon) and the
multi-size ``.ico`` (for the Windows executable and installer) must never drift from the SVG.
Edit the SVG, run ``python packaging/render_icons.py``, commit the outputs. The packaging tests
check that every size exists and has the right dimensions.

Rendering uses Qt's own SVG renderer (``PySide6.QtSvg``, part of PySide6-Essentials) on the
offscreen platform, so no display is needed; Pillow writes the files without timestamps so
re-rendering an unchanged SVG gives identical bytes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PIL import Image

from forensic_app.resources import ICON_ICO, ICON_SIZES, ICON_SVG, ICONS_SUBDIR, icon_file_name

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "resources"
SVG = RESOURCES / ICON_SVG
PNG_SIZES = ICON_SIZES
ICO_SIZES = tuple(s for s in ICON_SIZES if s <= 256)  # 256 is the largest size an .ico holds


def render(svg: Path, size: int) -> Image.Image:
    """Rasterise ``svg`` to a ``size`` x ``size`` RGBA image with Qt's SVG renderer."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QByteArray
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    renderer = QSvgRenderer(QByteArray(svg.read_bytes()))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not a valid SVG for Qt")
    image = QImage(size, size, QImage.Format.Format_RGBA8888)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = bytes(image.constBits())[: size * size * 4]
    return Image.frombytes("RGBA", (size, size), data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESOURCES, help="folder to write into")
    args = parser.parse_args(argv)
    icons = args.out / ICONS_SUBDIR
    icons.mkdir(parents=True, exist_ok=True)
    images = {size: render(SVG, size) for size in PNG_SIZES}
    for size, image in images.items():
        image.save(icons / icon_file_name(size), format="PNG", optimize=True)
    largest = images[max(ICO_SIZES)]
    others = [images[s] for s in ICO_SIZES if s != max(ICO_SIZES)]
    largest.save(
        args.out / ICON_ICO, format="ICO", sizes=[(s, s) for s in ICO_SIZES], append_images=others
    )
    print(f"wrote {len(images)} PNGs to {icons} and {args.out / ICON_ICO}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
