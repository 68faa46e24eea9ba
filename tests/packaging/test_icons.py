"""The icon set: every size exists with the right dimensions, matches its SVG source, and the
app finds it from any working directory and inside a frozen bundle."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensic_app import resources

REPO = Path(__file__).resolve().parents[2]
RES = REPO / "resources"


@pytest.mark.parametrize("size", resources.ICON_SIZES)
def test_png_sizes_exist_with_right_dimensions(size: int) -> None:
    path = RES / resources.ICONS_SUBDIR / resources.icon_file_name(size)
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == (size, size)
        assert im.mode == "RGBA"
        alpha = np.asarray(im)[..., 3]
    # A rounded tile: opaque centre, transparent corners.
    assert alpha[size // 2, size // 2] == 255
    assert alpha[0, 0] == 0


def test_ico_holds_every_windows_size() -> None:
    with Image.open(RES / resources.ICON_ICO) as ico:
        assert ico.format == "ICO"
        sizes = ico.info["sizes"]
    assert sizes == {(s, s) for s in resources.ICON_SIZES if s <= 256}


def test_svg_source_is_a_square_svg() -> None:
    root = ET.parse(RES / resources.ICON_SVG).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 512 512"


def test_pngs_are_rendered_from_the_current_svg(tmp_path: Path) -> None:
    """Re-render in a subprocess (its own offscreen Qt) and compare pixels: a stale PNG set,
    an SVG edited without re-running packaging/render_icons.py, fails here."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "packaging" / "render_icons.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.returncode == 0, proc.stderr
    for size in resources.ICON_SIZES:
        name = resources.icon_file_name(size)
        fresh = np.asarray(Image.open(tmp_path / "icons" / name), dtype=np.int16)
        committed = np.asarray(Image.open(RES / "icons" / name), dtype=np.int16)
        assert fresh.shape == committed.shape
        assert np.abs(fresh - committed).max() <= 2, f"{name} differs from icon.svg"


def test_icons_found_from_any_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(resources.RESOURCES_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    paths = resources.icon_paths()
    assert [p.name for p in paths] == [resources.icon_file_name(s) for s in resources.ICON_SIZES]
    assert all(p.is_absolute() and p.is_file() for p in paths)
    assert resources.icon_path(256) == RES / "icons" / "forensic-app-256.png"


def test_icons_found_inside_a_frozen_bundle(tmp_path: Path, monkeypatch) -> None:
    """PyInstaller 6 sets sys._MEIPASS to the bundle's _internal/ folder."""
    internal = tmp_path / "_internal"
    (internal / "resources" / "icons").mkdir(parents=True)
    (internal / "resources" / "icons" / resources.icon_file_name(48)).write_bytes(b"png")
    monkeypatch.delenv(resources.RESOURCES_DIR_ENV, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    assert resources.resources_dir() == internal / "resources"
    assert resources.icon_paths() == [internal / "resources" / "icons" / "forensic-app-48.png"]


def test_missing_icons_give_an_empty_list_not_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(resources.RESOURCES_DIR_ENV, str(tmp_path))
    assert resources.icon_paths() == []
    with pytest.raises(ValueError, match="no 20px icon"):
        resources.icon_path(20)
