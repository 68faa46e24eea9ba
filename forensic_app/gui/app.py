"""Window start-up: logging, crash handling, the Qt application and the main window.

Why here and not in the window: a crash must be logged even if the window never appears, Qt's
own messages must reach the same log, and the log file must live in the platform's log folder
(``core.paths.log_dir``) where an investigator can find it and attach it to a report.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from forensic_app import __version__
from forensic_app.core.paths import ensure_dir, log_dir

log = logging.getLogger("forensic_app.gui.app")

ORGANIZATION = "forensic_app"
APPLICATION = "forensic_app"
LOG_FILE = "forensic_app.log"
_file_handler: logging.Handler | None = None


def setup_logging(level: int = logging.INFO) -> Path | None:
    """Log to a rotating file in the platform log folder (and stderr). Returns the file path."""
    global _file_handler
    logger = logging.getLogger("forensic_app")
    logger.setLevel(level)
    if _file_handler is not None:
        return Path(getattr(_file_handler, "baseFilename", ""))
    try:
        path = ensure_dir(log_dir()) / LOG_FILE
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=5, encoding="utf-8"
        )
    except OSError as exc:
        print(
            f"forensic_app: cannot write a log file ({exc}); logging to stderr only",
            file=sys.stderr,
        )
        return None
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    )
    logger.addHandler(handler)
    _file_handler = handler
    return path


def log_file_path() -> Path:
    return log_dir() / LOG_FILE


def qt_message_handler(mode, context, message: str) -> None:
    """Route Qt's own warnings into Python logging (one log for everything)."""
    from PySide6.QtCore import QtMsgType

    level = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }.get(mode, logging.WARNING)
    logging.getLogger("forensic_app.qt").log(level, "%s", message)


def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """Unhandled exception: log it with its traceback and tell the user, don't die silently."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    log.critical("unhandled exception:\n%s", text)
    try:
        from PySide6.QtWidgets import QApplication, QMessageBox

        if QApplication.instance() is not None:
            box = QMessageBox(
                QMessageBox.Icon.Critical,
                "Unexpected error",
                f"An unexpected error occurred: {exc_type.__name__}: {exc}\n\n"
                "Your photos were not changed. The details are in the log file:\n"
                f"{log_file_path()}",
            )
            box.setDetailedText(text)
            box.exec()
    except Exception:  # noqa: BLE001 - the hook itself must never raise
        sys.__excepthook__(exc_type, exc, tb)


def install_crash_handlers() -> None:
    from PySide6.QtCore import qInstallMessageHandler

    sys.excepthook = excepthook
    qInstallMessageHandler(qt_message_handler)


def parse_args(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="forensic-app", description="Open the window.")
    parser.add_argument("path", nargs="?", help="photo (or folder) to open")
    parser.add_argument("--models-dir", type=Path, default=None, help="folder with the models")
    parser.add_argument(
        "--gender-model",
        type=Path,
        default=None,
        help="gender ONNX model following the metadata contract",
    )
    return parser.parse_args(args)


def create_application(argv: list[str] | None = None):
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("forensic-app")  # Wayland matches the window to its .desktop icon
    try:
        from forensic_app.resources import icon_paths

        icon = QIcon()
        for p in icon_paths():
            icon.addFile(str(p))
        app.setWindowIcon(icon)
    except Exception:  # noqa: BLE001 - an icon is not worth failing for
        log.debug("no application icon", exc_info=True)
    return app


def missing_display_message(
    env: dict[str, str] | None = None, platform: str | None = None
) -> str | None:
    """Why the window cannot open here, or None when it can.

    Qt aborts the whole process (no Python exception) when Linux has no display to connect to;
    saying so plainly, with the command-line alternative, is kinder than a core dump.
    """
    env = dict(os.environ if env is None else env)
    platform = platform or sys.platform
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return (
        "forensic-app: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set), so the "
        "window cannot open.\n"
        "  Start it from a desktop session, or under a virtual screen: xvfb-run forensic-app\n"
        "  The command line works without a display: forensic-app analyze PHOTO --json -"
    )


def engine_factories(
    opts: argparse.Namespace,
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(window engine factory, batch engine factory) for the models chosen on the command line.

    Why both: given only the first, the window's batches had no way to make single-threaded
    engines and ran one photo at a time, losing the CLI's per-core speed-up
    (core.batch.recommended_parallelism); both must load the same models.
    """

    def factory(precision: str | None = None) -> Any:
        from forensic_app.core.analysis import Engine

        return Engine.create(
            models_dir=opts.models_dir, gender_model=opts.gender_model, precision=precision
        )

    def batch_factory(
        threads: int | None, precision: str | None = None, detector_threads: int | None = None
    ) -> Any:
        from forensic_app.core.analysis import Engine

        return Engine.create(
            models_dir=opts.models_dir,
            gender_model=opts.gender_model,
            threads=threads,
            precision=precision,
            detector_threads=detector_threads,
        )

    return factory, batch_factory


def run_gui(args: list[str] | None = None) -> int:
    """Start the window; ``args`` are the command-line words after the program name."""
    opts = parse_args(list(args or []))
    problem = missing_display_message()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    log_path = setup_logging()
    install_crash_handlers()
    app = create_application()
    from forensic_app.gui.main_window import MainWindow

    factory, batch_factory = engine_factories(opts)
    window = MainWindow(engine_factory=factory, batch_engine_factory=batch_factory)
    window.show()
    log.info("forensic_app %s started; log file %s", __version__, log_path)
    if opts.path:
        target = Path(opts.path)
        if target.is_dir():
            window.open_folder(target)
        else:
            window.open_path(target)
    return int(app.exec())
