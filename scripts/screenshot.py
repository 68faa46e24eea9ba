"""Start the real window, open a dev-eval photo, analyse it with the real models, select a face
and save a screenshot (docs/screenshot.png by default).

Run under Xvfb for a real X server (``xvfb-run -s "-screen 0 1920x1200x24" .venv/bin/python
scripts/screenshot.py``) or without a display (the offscreen platform is chosen automatically).
User preferences and window geometry go to a temporary home, so the picture shows defaults and
nothing of the user's set-up is changed.

The gender model is ``models/gender_effnet_b0.onnx``. If it is absent, ``--allow-test-model``
uses the tiny contract model of the test suite (its labels are meaningless; the status bar names
it), otherwise the script stops with a clear message.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV_EVAL = REPO.parent / "shared" / "data" / "dev-eval" / "images"
DEFAULT_PHOTO = "12--Group/12_Group_Team_Organized_Group_12_Group_Team_Organized_Group_12_330.jpg"


def tiny_test_model(folder: Path) -> Path:
    """Build the test suite's tiny contract model (tests/conftest.py) in ``folder``."""
    spec = importlib.util.spec_from_file_location("_tests_conftest", REPO / "tests" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_gender_onnx(folder / "tiny_test_gender.onnx")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=DEV_EVAL / DEFAULT_PHOTO)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    parser.add_argument("--gender-model", type=Path, default=None)
    parser.add_argument("--allow-test-model", action="store_true")
    parser.add_argument("--size", default="1500x940", help="window size WxH")
    parser.add_argument(
        "--face", type=int, default=-1, help="face to select (0-based); default: the largest"
    )
    parser.add_argument("--dark", action="store_true", help="ask Qt for the dark colour scheme")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the analysis")
    opts = parser.parse_args(argv)

    if not opts.photo.is_file():
        print(f"photo not found: {opts.photo} (is ../shared present?)", file=sys.stderr)
        return 2
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = Path(tempfile.mkdtemp(prefix="forensic_app_screenshot_"))
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_STATE_HOME", "state"),
        ("APPDATA", "config"),
        ("LOCALAPPDATA", "state"),
    ):
        os.environ[var] = str(home / sub)

    from forensic_app.core import modelstore

    gender_model = opts.gender_model
    default_model = modelstore.models_dir() / modelstore.GENDER_FILE
    if gender_model is None and not default_model.is_file():
        if not opts.allow_test_model:
            print(
                f"gender model missing: {default_model}. Train/export it, pass --gender-model, "
                "or --allow-test-model for a placeholder picture.",
                file=sys.stderr,
            )
            return 2
        gender_model = tiny_test_model(home)
        print(f"note: using the tiny TEST gender model {gender_model}; labels are meaningless")

    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from forensic_app.core.analysis import Engine
    from forensic_app.gui.app import create_application, setup_logging

    setup_logging()
    app = create_application()
    if opts.dark:  # what a dark desktop theme gives the window (chrome only; data colours stay)
        from PySide6.QtGui import QColor, QPalette

        app.setStyle("Fusion")
        pal = QPalette()
        roles = QPalette.ColorRole
        for role, rgb in (
            (roles.Window, (45, 45, 48)),
            (roles.WindowText, (230, 230, 230)),
            (roles.Base, (30, 30, 32)),
            (roles.AlternateBase, (45, 45, 48)),
            (roles.Text, (230, 230, 230)),
            (roles.Button, (53, 53, 56)),
            (roles.ButtonText, (230, 230, 230)),
            (roles.Highlight, (42, 130, 218)),
            (roles.HighlightedText, (255, 255, 255)),
        ):
            pal.setColor(role, QColor(*rgb))
        for role in (roles.WindowText, roles.Text, roles.ButtonText):
            pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
        app.setPalette(pal)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(home / "qs"))
    from forensic_app.gui.main_window import MainWindow

    window = MainWindow(engine_factory=lambda: Engine.create(gender_model=gender_model))
    w, h = (int(v) for v in opts.size.lower().split("x"))
    window.resize(w, h)
    window.show()
    app.processEvents()

    loop = QEventLoop()
    outcome: list[str] = []
    window.analysisFinished.connect(lambda o: (outcome.append(o), loop.quit()))
    QTimer.singleShot(int(opts.timeout * 1000), loop.quit)
    if not window.open_path(opts.photo, analyze=True):
        return 1
    loop.exec()
    if outcome != ["done"]:
        print(f"analysis did not finish: {outcome or 'timeout'}", file=sys.stderr)
        window.close()
        return 1
    faces = window.doc.faces
    if faces:
        index = (
            opts.face
            if 0 <= opts.face < len(faces)
            else max(
                range(len(faces)),
                key=lambda i: (
                    (faces[i].box[2] - faces[i].box[0]) * (faces[i].box[3] - faces[i].box[1])
                ),
            )
        )
        window.face_list.setCurrentRow(index)
    for _ in range(20):
        app.processEvents()
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    pixmap = window.grab()
    ok = pixmap.save(str(opts.out), "PNG")
    print(
        f"{'saved' if ok else 'FAILED to save'} {opts.out} ({pixmap.width()}x{pixmap.height()}), "
        f"{len(faces)} faces, platform {QApplication.platformName()}"
    )
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
