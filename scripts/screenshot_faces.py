"""Run the real window on a batch of dev-eval photos and save a screenshot of its Faces view.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_faces.py
    .venv/bin/python scripts/screenshot_faces.py --limit 24 --out /tmp/faces.png --label 3

The photos are symlinked into a temporary folder (read in place, never copied into the repo),
analysed as a batch with the real models, the Faces tab is shown sorted "uncertain first" and
the script waits until the visible thumbnails are loaded. ``--label N`` labels the first N faces
by hand (F key) first, so the picture shows the "manual" colour; ``--select`` selects a few
faces to show multi-selection. Preferences and window state go to a temporary home.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV_EVAL = REPO.parent / "shared" / "data" / "dev-eval" / "images"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=DEV_EVAL)
    parser.add_argument("--limit", type=int, default=20, help="photos in the batch")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "faces.png")
    parser.add_argument("--size", default="1500x940", help="window size WxH")
    parser.add_argument("--label", type=int, default=2, help="faces to label by hand first")
    parser.add_argument("--select", type=int, default=3, help="faces to select after that")
    parser.add_argument(
        "--enter", action="store_true", help="then press Enter and save NAME-photo.png too"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the batch")
    opts = parser.parse_args(argv)

    photos = sorted(p for p in opts.photos.rglob("*.jpg"))[: opts.limit]
    if not photos:
        print(f"no photos under {opts.photos} (is ../shared present?)", file=sys.stderr)
        return 2
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = Path(tempfile.mkdtemp(prefix="forensic_app_faces_"))
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state")):
        os.environ[var] = str(home / sub)
    batch = home / "batch"
    batch.mkdir()
    for p in photos:
        (batch / p.name).symlink_to(p)

    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from forensic_app.core.analysis import Engine
    from forensic_app.gui.app import create_application, setup_logging

    setup_logging()
    app = create_application()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(home / "qs"))
    from forensic_app.gui.main_window import MainWindow

    window = MainWindow(engine_factory=lambda: Engine.create())
    w, h = (int(v) for v in opts.size.lower().split("x"))
    window.resize(w, h)
    window.show()
    app.processEvents()
    loop = QEventLoop()
    outcome: list[str] = []
    window.casework.batch.finished.connect(lambda o: (outcome.append(o), loop.quit()))
    QTimer.singleShot(int(opts.timeout * 1000), loop.quit)
    if not window.open_folder(batch):
        return 1
    loop.exec()
    if outcome != ["done"]:
        print(f"batch did not finish: {outcome or 'timeout'}", file=sys.stderr)
        window.close()
        return 1
    ui = window.casework.faces
    ui.show_faces()
    ui.rebuild()
    grid = ui.grid
    grid.set_current_row(0)
    for _ in range(opts.label):
        QTest.keyClick(grid.view, Qt.Key.Key_F)
    row = grid.view.currentIndex().row()
    for _ in range(max(0, opts.select - 1)):
        QTest.keyClick(grid.view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        app.processEvents()
        if grid.loader.thumbs_made and not grid.loader.pending():
            break
        time.sleep(0.05)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    pixmap = window.grab()
    ok = pixmap.save(str(opts.out), "PNG")
    print(
        f"{'saved' if ok else 'FAILED to save'} {opts.out} ({pixmap.width()}x{pixmap.height()}), "
        f"{grid.model.rowCount()} faces, {grid.loader.photos_decoded} photos decoded for "
        f"{grid.loader.thumbs_made} thumbnails, current row {row}, "
        f"platform {QApplication.platformName()}"
    )
    if ok and opts.enter:  # Enter on the current face: the photo with that face selected
        QTest.keyClick(grid.view, Qt.Key.Key_Return)
        for _ in range(30):
            app.processEvents()
            time.sleep(0.02)
        second = opts.out.with_name(opts.out.stem + "-photo" + opts.out.suffix)
        ok = window.grab().save(str(second), "PNG")
        print(
            f"{'saved' if ok else 'FAILED to save'} {second}: face {window.selected_index + 1} "
            f"of {window.doc.image.path if window.doc.image else '?'} selected"
        )
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
