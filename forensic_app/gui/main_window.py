"""The investigator's window: photo in the middle, faces on the right, log below.

The window wires widgets to the core; it holds no analysis logic. The photo under review lives
in a ``PhotoDocument``; edits go through the undo stack; analysis runs in a ``Task`` (worker
thread) so the window stays responsive and can cancel. Every failure ends in ``show_error``:
a dialog and a log line, never a crash.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QPoint, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QIcon, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QToolBar,
    QWidget,
)

from forensic_app import __version__
from forensic_app.core.annotate import save_annotated
from forensic_app.core.atomic import ProtectedFileError, refuse_overwrite_of
from forensic_app.core.corrections import carry_corrections
from forensic_app.core.imaging import ImageLoadError, is_image_path, load_image
from forensic_app.core.preferences import Preferences, load_preferences, save_preferences
from forensic_app.core.results import Face, ImageResult, face_number
from forensic_app.gui import exporting, unsaved
from forensic_app.gui.about_dialog import AboutDialog
from forensic_app.gui.commands import (
    AddFaceCommand,
    DeleteFaceCommand,
    ReanalyzeCommand,
    RelabelCommand,
)
from forensic_app.gui.document import PhotoDocument
from forensic_app.gui.engine_holder import EngineHolder
from forensic_app.gui.face_list import FaceList
from forensic_app.gui.face_panel import FacePanel
from forensic_app.gui.log_pane import LogPane
from forensic_app.gui.photo_view import PhotoView
from forensic_app.gui.qt_compat import emit
from forensic_app.gui.settings_dialog import SettingsDialog
from forensic_app.gui.workers import Task

log = logging.getLogger("forensic_app.gui")
APP_LOGGER = logging.getLogger("forensic_app")

IMAGE_FILTER = (
    "Images (*.jpg *.jpeg *.jpe *.jfif *.png *.bmp *.tif *.tiff *.webp *.gif);;All files (*)"
)
SAVE_FILTERS = {
    "JPEG image (*.jpg *.jpeg)": ".jpg",
    "PNG image (*.png)": ".png",
    "TIFF image (*.tif *.tiff)": ".tif",
}


#: Photos this large (pixels, read from the file's header) are decoded off the UI thread.
LARGE_PHOTO_PIXELS = 12_000_000


def header_pixels(path: Path) -> int:
    """Width x height from the image header (cheap: nothing is decoded); 0 when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(im.size[0]) * int(im.size[1])
    except Exception:  # noqa: BLE001 - load_image gives the real error
        return 0


#: First-run sizes (px): the face docks' width and the log/batch dock's height.
RIGHT_DOCK_WIDTH = 300
LOG_DOCK_HEIGHT = 100


class MainWindow(QMainWindow):
    #: Emitted when an analysis ends: "done", "failed" or "cancelled".
    analysisFinished = Signal(str)
    #: Emitted when a hand-drawn box has been classified and added (its list index).
    faceAdded = Signal(int)

    def __init__(
        self,
        engine_factory: Callable[[], Any] | None = None,
        preferences: Preferences | None = None,
        batch_engine_factory: Callable[[int | None], Any] | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("forensic_app")
        self.setAcceptDrops(True)
        self.prefs = preferences or load_preferences()
        self.engines = EngineHolder(engine_factory, batch_engine_factory)
        self.engines.precision = self.prefs.precision
        self.doc = PhotoDocument(self)
        self.undo_stack = QUndoStack(self)
        self.task: Task | None = None
        self._task_kind = ""  # "analysis", "classify" or "load": what self.task does
        self._loaded: tuple | None = None  # a photo decoded in the background, to show
        self._outcome = ""
        self._closing = False
        self._selected = -1
        self._analysis_started = 0.0
        self.edit_hooks: list[Callable[[str, dict[str, Any]], None]] = []
        #: Corrections made since the photo was opened, exported or saved into the case.
        self._unsaved = False
        #: Asked before unsaved corrections would be lost (tests replace it).
        self.ask_unsaved: Callable[[QWidget, str, str, bool], str] = unsaved.ask

        self.view = PhotoView()
        self.setCentralWidget(self.view)
        self.face_list = FaceList()
        self.face_panel = FacePanel()
        self.log_pane = LogPane()
        if APP_LOGGER.level == logging.NOTSET or APP_LOGGER.level > logging.INFO:
            APP_LOGGER.setLevel(logging.INFO)
        self.log_pane.attach(APP_LOGGER)

        self.panel_dock = self._dock(
            "Selected face", "dock_face", self.face_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.list_dock = self._dock(
            "Faces", "dock_faces", self.face_list, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.log_dock = self._dock(
            "Log", "dock_log", self.log_pane, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        # The face docks run the full height (the list shows many rows); the log sits only
        # under the photo.
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self._build_status_bar()
        self._build_actions()
        self._build_menus_and_toolbar()
        self._connect()
        from forensic_app.gui.casework_ui import CaseworkUi

        self.casework = CaseworkUi(self)
        self._restore_window_state()
        self._update_actions()
        self._update_status()
        self._update_placeholders()
        log.info("forensic_app %s ready", __version__)

    # ---- construction ------------------------------------------------------------------
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # needed for saveState/restoreState
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.status_model = QLabel()
        self.status_provider = QLabel()
        self.status_size = QLabel()
        self.status_time = QLabel()
        self.status_zoom = QLabel()
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy indicator
        self.progress.setMaximumWidth(140)
        self.progress.setVisible(False)
        for w in (
            self.progress,
            self.status_zoom,
            self.status_size,
            self.status_time,
            self.status_model,
            self.status_provider,
        ):
            sb.addPermanentWidget(w)

    def _action(
        self,
        text: str,
        slot: Callable | None = None,
        shortcut: Any = None,
        tip: str = "",
        checkable: bool = False,
        icon: str | None = None,
    ) -> QAction:
        act = QAction(text, self)
        if icon:
            act.setIcon(QIcon.fromTheme(icon))
        if shortcut is not None:
            seqs = shortcut if isinstance(shortcut, list) else [shortcut]
            act.setShortcuts([QKeySequence(s) for s in seqs])
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(
                f"{text.replace('&', '').rstrip('…')} "
                f"({act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                if shortcut is not None
                else tip
            )
        act.setCheckable(checkable)
        if slot is not None:
            act.triggered.connect(slot)
        self.addAction(act)  # shortcuts work even when menus/toolbars are hidden
        return act

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey  # noqa: N806
        self.act_open = self._action(
            "&Open photo…",
            self.open_dialog,
            K.Open,
            "Open a photo for review",
            icon="document-open",
        )
        self.act_next = self._action(
            "&Next photo",
            self.next_photo,
            [Qt.Key.Key_PageDown, "Ctrl+Right"],
            "Next photo in the folder (or in the batch list)",
            icon="go-next",
        )
        self.act_prev = self._action(
            "&Previous photo",
            self.previous_photo,
            [Qt.Key.Key_PageUp, "Ctrl+Left"],
            "Previous photo in the folder (or in the batch list)",
            icon="go-previous",
        )
        self.act_save = self._action(
            "&Save annotated image as…",
            self.save_annotated_dialog,
            K.Save,
            "Save a copy with the boxes drawn (JPEG/PNG/TIFF)",
            icon="document-save-as",
        )
        self.act_export = self._action(
            "&Export results (image + JSON + CSV)…",
            self.export_dialog,
            "Ctrl+E",
            "Annotated image with its JSON and CSV results beside it",
            icon="document-export",
        )
        self.act_quit = self._action("&Quit", self.close, K.Quit)
        self.act_analyze = self._action(
            "&Analyze",
            self.analyze,
            [Qt.Key.Key_F5, "Ctrl+R"],
            "Find faces and estimate perceived gender",
            icon="system-run",
        )
        self.act_cancel = self._action(
            "&Cancel analysis",
            self.cancel_analysis,
            Qt.Key.Key_Escape,
            "Stop the running analysis",
            icon="process-stop",
        )
        self.act_settings = self._action(
            "Analysis &settings…",
            self.settings_dialog,
            "Ctrl+,",
            "Detection threshold, face size, uncertain band",
            icon="preferences-system",
        )
        self.act_undo = self.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcuts(QKeySequence.keyBindings(K.Undo))
        self.act_redo = self.undo_stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.act_undo.setIcon(QIcon.fromTheme("edit-undo"))
        self.act_redo.setIcon(QIcon.fromTheme("edit-redo"))
        self.addAction(self.act_undo)
        self.addAction(self.act_redo)
        self.act_add_face = self._action(
            "&Add face box (drag on photo)",
            None,
            "A",
            "Drag a box around a face the detector missed",
            checkable=True,
            icon="list-add",
        )
        self.act_add_face.toggled.connect(self.view.set_add_mode)
        self.act_delete = self._action(
            "&Delete face",
            self.delete_selected,
            [Qt.Key.Key_Delete, Qt.Key.Key_Backspace],
            "Remove the selected box (a false detection)",
            icon="edit-delete",
        )
        self.label_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for gender, key in (("female", "Shift+F"), ("male", "Shift+M"), ("uncertain", "Shift+U")):
            act = self._action(
                f"Label as &{gender}",
                None,
                key,
                f"Set the selected face's perceived gender to {gender} by hand",
            )
            act.triggered.connect(lambda _=False, g=gender: self.relabel_selected(g))
            group.addAction(act)
            self.label_actions[gender] = act
        group.setExclusive(False)
        self.act_zoom_in = self._action(
            "Zoom &in", self.view.zoom_in, [K.ZoomIn, "Ctrl+="], icon="zoom-in"
        )
        self.act_zoom_out = self._action(
            "Zoom &out", self.view.zoom_out, K.ZoomOut, icon="zoom-out"
        )
        self.act_fit = self._action(
            "&Fit to window", self.view.fit_to_window, "Ctrl+0", icon="zoom-fit-best"
        )
        self.act_actual = self._action(
            "&100 %", self.view.actual_size, "Ctrl+1", icon="zoom-original"
        )
        self.act_about = self._action("&About forensic_app", self.about_dialog)
        # Short toolbar labels; menus keep the full text and show the shortcuts.
        for act, short in (
            (self.act_open, "Open"),
            (self.act_prev, "\u25c0 Previous"),
            (self.act_next, "Next \u25b6"),
            (self.act_cancel, "Cancel"),
            (self.act_add_face, "Add face"),
            (self.act_delete, "Delete"),
            (self.act_undo, "Undo"),
            (self.act_redo, "Redo"),
            (self.act_fit, "Fit"),
            (self.act_actual, "100 %"),
            (self.act_save, "Save as\u2026"),
            (self.act_export, "Export\u2026"),
            (self.act_settings, "Settings\u2026"),
        ):
            act.setIconText(short)

    def _build_menus_and_toolbar(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open)
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        m.addSeparator()
        m.addAction(self.act_next)
        m.addAction(self.act_prev)
        m.addSeparator()
        m.addAction(self.act_save)
        m.addAction(self.act_export)
        m.addSeparator()
        m.addAction(self.act_quit)
        self.file_menu = m
        m = mb.addMenu("&Edit")
        m.addAction(self.act_undo)
        m.addAction(self.act_redo)
        m.addSeparator()
        m.addAction(self.act_add_face)
        m.addAction(self.act_delete)
        for act in self.label_actions.values():
            m.addAction(act)
        m.addSeparator()
        m.addAction(self.act_settings)
        m = mb.addMenu("&Analysis")
        m.addAction(self.act_analyze)
        m.addAction(self.act_cancel)
        m = mb.addMenu("&View")
        for act in (self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_actual):
            m.addAction(act)
        m.addSeparator()
        for dock in (self.panel_dock, self.list_dock, self.log_dock):
            m.addAction(dock.toggleViewAction())
        self.view_menu = m
        m = mb.addMenu("&Help")
        m.addAction(self.act_about)
        self.help_menu = m

        tb = QToolBar("Main", self)
        tb.setObjectName("toolbar_main")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for act in (
            self.act_open,
            self.act_prev,
            self.act_next,
            None,
            self.act_analyze,
            self.act_cancel,
            None,
            self.act_add_face,
            self.act_delete,
            self.act_undo,
            self.act_redo,
            None,
            self.act_fit,
            self.act_actual,
            None,
            self.act_save,
            self.act_export,
            None,
            self.act_settings,
        ):
            if act is None:
                tb.addSeparator()
            else:
                tb.addAction(act)
        self.addToolBar(tb)
        self.toolbar = tb

    def _connect(self) -> None:
        self.doc.facesChanged.connect(self._refresh_faces)
        self.view.faceClicked.connect(lambda i: self.select_face(i, source="view"))
        self.face_list.faceSelected.connect(lambda i: self.select_face(i, source="list"))
        self.view.boxDrawn.connect(self.add_face_box)
        self.view.zoomChanged.connect(lambda z: self.status_zoom.setText(f"{z * 100:.0f} %"))
        self.view.contextMenuAt.connect(self._show_photo_menu)
        self.view.addModeChanged.connect(self.act_add_face.setChecked)
        self.face_panel.contextMenuAt.connect(self._show_panel_menu)
        self.undo_stack.cleanChanged.connect(lambda _: self._update_title())
        self.undo_stack.indexChanged.connect(lambda _: self._update_actions())

    # ---- window state ------------------------------------------------------------------
    def _restore_window_state(self) -> None:
        qs = QSettings()
        geometry = qs.value("window/geometry")
        state = qs.value("window/state")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            # First run: 90 % of the screen's free area, capped at 1400x900, so the window
            # fits a 1280x720 laptop screen as well as a large monitor.
            screen = self.screen().availableGeometry() if self.screen() else None
            if screen is not None and screen.width() > 0:
                self.resize(
                    min(1400, int(screen.width() * 0.9)), min(900, int(screen.height() * 0.9))
                )
            else:
                self.resize(1400, 900)
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        else:
            self.resizeDocks(
                [self.panel_dock, self.list_dock], [RIGHT_DOCK_WIDTH] * 2, Qt.Orientation.Horizontal
            )
            self.resizeDocks(
                [self.panel_dock, self.list_dock], [230, 10_000], Qt.Orientation.Vertical
            )
            self.resizeDocks([self.log_dock], [LOG_DOCK_HEIGHT], Qt.Orientation.Vertical)
        self._docks_checked = False
        self._restored_state = isinstance(state, QByteArray) and not state.isEmpty()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._docks_checked:
            self._docks_checked = True
            QTimer.singleShot(0, self._clamp_docks)

    def _clamp_docks(self) -> None:
        """A restored layout must leave the photo most of the window: the log/batch dock is
        empty at start, so it comes back small however large it was left."""
        if self._closing:
            return
        first_run = not self._restored_state
        if first_run or self.log_dock.height() > self.height() // 5:
            self.resizeDocks([self.log_dock], [LOG_DOCK_HEIGHT], Qt.Orientation.Vertical)
        if first_run or self.panel_dock.width() > self.width() // 3:
            self.resizeDocks([self.panel_dock], [RIGHT_DOCK_WIDTH], Qt.Orientation.Horizontal)
        if first_run:
            self.resizeDocks(
                [self.panel_dock, self.list_dock], [230, 10_000], Qt.Orientation.Vertical
            )

    def _save_window_state(self) -> None:
        qs = QSettings()
        qs.setValue("window/geometry", self.saveGeometry())
        qs.setValue("window/state", self.saveState())
        qs.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        if not self._closing and not (
            self.confirm_leave("quitting") and self.casework.corrections.confirm_leave("quitting")
        ):
            event.ignore()
            return
        self.shutdown()
        super().closeEvent(event)

    # ---- never lose a correction -------------------------------------------------------
    def has_unsaved_corrections(self) -> bool:
        return self.doc.image is not None and self._unsaved and not self.undo_stack.isClean()

    def corrections_saved(self) -> None:
        """The corrections as they are now are stored (exported or in the case)."""
        self._unsaved = False
        self.undo_stack.setClean()  # undoing a stored correction is a change to save again
        self.casework.corrections.review_saved()
        self._update_title()

    def confirm_leave(self, what: str) -> bool:
        """True when the photo under review may be left without losing a correction.

        In an open case the corrections are saved into it automatically (every edit already
        is; this covers a case opened after the edits). Otherwise the examiner chooses: save to
        the case, export (image + JSON + CSV), discard, or cancel (stay on the photo).
        """
        if self.task is not None and self._task_kind == "classify":
            # A drawn box still being classified is a correction too: let it land first.
            self.task.wait(60_000)
            QApplication.processEvents()
        if not self.has_unsaved_corrections():
            return True
        cases = self.casework.cases
        if cases.case is not None and cases.save_corrections("saved before " + what):
            return True
        name = Path(self.doc.image.path).name if self.doc.image else "this photo"
        answer = self.ask_unsaved(self, name, what, cases.case is not None)
        if answer == unsaved.SAVE_TO_CASE:
            return cases.save_corrections("saved before " + what)
        if answer == unsaved.EXPORT:
            self.export_dialog()
            return not self.has_unsaved_corrections()
        if answer == unsaved.DISCARD:
            log.warning("corrections to %s discarded (%s)", name, what)
            self._unsaved = False
            self.casework.corrections.review_discarded()  # its batch row took them too
            return True
        return False

    def shutdown(self) -> None:
        """Stop and join background work, remember the window, detach from logging."""
        if self._closing:
            return
        self._closing = True
        # Child objects emit while being destroyed; nothing may reach half-deleted widgets.
        self.undo_stack.blockSignals(True)
        self.doc.blockSignals(True)
        if self.task is not None:
            self.task.cancel()
            self.task.wait(60_000)
        self.casework.shutdown()
        self._save_window_state()
        self._save_prefs()
        self.log_pane.detach(APP_LOGGER)

    def _save_prefs(self) -> None:
        try:
            save_preferences(self.prefs)
        except OSError as exc:
            log.warning("could not save preferences: %s", exc)

    # ---- errors ------------------------------------------------------------------------
    def show_error(self, title: str, message: str) -> None:
        """A clear dialog plus a log line; the window keeps working."""
        log.error("%s: %s", title, message)
        QMessageBox.critical(self, title, message)

    # ---- opening -----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.task is not None

    def open_dialog(self) -> None:
        start = self.prefs.last_dir or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open photo", start, IMAGE_FILTER)
        if path:
            self.open_path(path)

    def open_path(
        self, path: str | Path, analyze: bool | None = None, then: Callable[[], None] | None = None
    ) -> bool:
        """Load a photo (read-only) and show it; analyse it if the preference says so.

        A large photo (``LARGE_PHOTO_PIXELS`` or more, by its header) is decoded in a worker
        thread: a 24-megapixel JPEG takes seconds and the window must not freeze meanwhile.
        ``then`` runs once the photo is shown (at once, or when the background load is done).
        Returns False when nothing was (or will be) opened.
        """
        if self.busy:
            self.statusBar().showMessage("Wait for the analysis to finish or cancel it.", 5000)
            return False
        if not self.confirm_leave("opening another photo"):
            return False
        path = Path(path)
        if header_pixels(path) >= LARGE_PHOTO_PIXELS:
            return self._open_in_background(path, analyze, then)
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            image = load_image(path)
        except ImageLoadError as exc:
            QApplication.restoreOverrideCursor()
            self.show_error("Cannot open photo", str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a per-photo error
            QApplication.restoreOverrideCursor()
            self.show_error("Cannot open photo", f"{path}: {exc}")
            return False
        QApplication.restoreOverrideCursor()
        self._show_image(path, image, analyze, then)
        return True

    def _open_in_background(
        self, path: Path, analyze: bool | None, then: Callable[[], None] | None
    ) -> bool:
        def work(cancelled: Callable[[], bool], progress: Callable[[Any], None]) -> Any:
            return load_image(path)

        def failed(message: str, _details: str) -> None:
            self.show_error(
                "Cannot open photo", message if str(path) in message else f"{path}: {message}"
            )

        task = Task(work, name="load photo", parent=self)
        task.succeeded.connect(lambda image: setattr(self, "_loaded", (path, image, analyze, then)))
        task.failed.connect(failed)
        task.finished.connect(self._task_finished)
        self.task, self._task_kind, self._loaded = task, "load", None
        self._set_busy(True, f"Opening {path.name}…")
        task.start()
        return True

    def _show_image(
        self, path: Path, image: Any, analyze: bool | None, then: Callable[[], None] | None = None
    ) -> None:
        self.undo_stack.clear()
        self._unsaved = False
        self._selected = -1
        self.view.set_image(image.rgb)
        self.doc.set_image(image)
        self.prefs.add_recent(path)
        self.prefs.last_dir = str(path.resolve().parent)
        self._save_prefs()
        self._update_title()
        self.status_time.setText("")
        log.info(
            "opened %s (%d\u00d7%d, %s, SHA-256 %s)",
            path,
            image.width,
            image.height,
            image.format,
            image.sha256,
        )
        for note in image.notes:
            log.info("note: %s", note)
        self._update_actions()
        self._update_status()
        self._notify("open", {"width": image.width, "height": image.height})
        if then is not None:
            then()
        if self.prefs.analyze_on_open if analyze is None else analyze:
            self.analyze()

    def open_folder(self, folder: str | Path) -> bool:
        """Analyse every photo in ``folder`` (recursively) as a batch; see casework_ui."""
        return self.casework.open_folder(folder)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for p in self.prefs.recent_files:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _=False, p=p: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.prefs.recent_files) and not self.busy)

    def folder_photos(self) -> list[Path]:
        if self.doc.image is None:
            return []
        folder = Path(self.doc.image.path).parent
        try:
            return sorted(
                (p for p in folder.iterdir() if p.is_file() and is_image_path(p)),
                key=lambda p: p.name.lower(),
            )
        except OSError:
            return []

    def _step_photo(self, step: int) -> None:
        if self.casework.step_review(step):  # reviewing a batch: follow the batch list
            return
        photos = self.folder_photos()
        if not photos or self.doc.image is None:
            return
        current = Path(self.doc.image.path)
        names = [p.name for p in photos]
        i = names.index(current.name) if current.name in names else -1
        j = i + step
        if 0 <= j < len(photos):
            self.open_path(photos[j])
        else:
            self.statusBar().showMessage("No more photos in this folder.", 3000)

    def next_photo(self) -> None:
        self._step_photo(+1)

    def previous_photo(self) -> None:
        self._step_photo(-1)

    # ---- drag and drop -----------------------------------------------------------------
    def _dropped_paths(self, mime) -> list[Path]:
        if not mime.hasUrls():
            return []
        return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = self._dropped_paths(event.mimeData())
        if any(p.is_dir() or is_image_path(p) for p in paths):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = self._dropped_paths(event.mimeData())
        images = [p for p in paths if p.is_file() and is_image_path(p)]
        folders = [p for p in paths if p.is_dir()]
        if images:
            event.acceptProposedAction()
            if len(images) > 1:
                log.info("%d photos dropped; opening the first", len(images))
            self.open_path(images[0])
        elif folders:
            event.acceptProposedAction()
            self.open_folder(folders[0])
        else:
            event.ignore()

    # ---- analysis ----------------------------------------------------------------------
    def analyze(self) -> None:
        """Analyse the open photo in a worker thread with the current settings."""
        image = self.doc.image
        if image is None or self.busy:
            return
        settings = self.prefs.analysis
        engines = self.engines
        # Re-analysis refreshes the model's answers and keeps every correction (core.corrections).
        previous = copy.deepcopy(self.doc.result) if self.doc.analysed else None
        removed = self._removed_boxes()
        floor = self.doc.take_number() if previous is not None else 1
        drawn = [f.box for f in previous.faces if f.manual_box] if previous else []

        def work(cancelled: Callable[[], bool], progress: Callable[[Any], None]) -> Any:
            engine = engines.get()
            fresh = engine.analyze_image(image, settings, cancel=cancelled)
            if previous is None or fresh.error:
                return fresh, 0
            redone = engine.classify_boxes(image.rgb, drawn, settings) if drawn else None
            return carry_corrections(previous, fresh, removed, redone, floor)

        task = Task(work, name="analysis", parent=self)
        task.succeeded.connect(lambda r: self._analysis_done(*r))
        task.failed.connect(self._analysis_failed)
        task.cancelled.connect(self._analysis_cancelled)
        task.finished.connect(self._task_finished)
        self.task, self._task_kind = task, "analysis"
        self._outcome = ""
        self._analysis_started = time.perf_counter()
        self._set_busy(True)
        log.info(
            "analysing %s (threshold %.2f, min face %d px, detection size %d, %s)",
            Path(image.path).name,
            settings.det_threshold,
            settings.min_face,
            settings.detect_size,
            settings.detection_mode,
        )
        task.start()

    def cancel_analysis(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.statusBar().showMessage("Cancelling…")

    def _removed_boxes(self) -> list[list[float]]:
        """Boxes of detections the examiner deleted (and did not undo) on this photo."""
        out = []
        for i in range(self.undo_stack.index()):
            cmd = self.undo_stack.command(i)
            if isinstance(cmd, DeleteFaceCommand) and cmd.face and not cmd.face.manual_box:
                out.append(list(cmd.face.box))
        return out

    def _analysis_done(self, result: ImageResult, carried: int) -> None:
        if self.doc.image is None or result.path != self.doc.image.path:
            return
        self._outcome = "failed" if result.error else "done"
        if result.error:
            self.show_error("Analysis failed", result.error)
            return
        elapsed = (time.perf_counter() - self._analysis_started) * 1000.0
        result.timings_ms.setdefault("total", elapsed)
        self._selected = -1
        if self.undo_stack.count():
            # Keep the edit history: the re-analysis is one more undoable step.
            self.undo_stack.push(ReanalyzeCommand(self.doc, result, self._on_edit))
        else:
            self.doc.set_result(result)
        if carried:
            log.info("kept %d correction(s) from before under the fresh results", carried)
        s = exporting.summary(result)
        log.info(
            "detected %d face(s) in %s: %d female, %d male, %d uncertain (%.0f ms)",
            s["faces"],
            Path(result.path).name,
            s["female"],
            s["male"],
            s["uncertain"],
            result.timings_ms.get("total", elapsed),
        )
        self.status_time.setText(f"{result.timings_ms.get('total', elapsed):.0f} ms")
        self._notify("analyze", {"faces": s["faces"], "settings": result.settings})
        if self.doc.faces:
            self.select_face(0, source="auto")

    def _analysis_failed(self, message: str, details: str) -> None:
        self._outcome = "failed"
        log.debug("analysis failure details:\n%s", details)
        self.show_error("Analysis failed", message)

    def _analysis_cancelled(self) -> None:
        self._outcome = "cancelled"
        log.info("analysis cancelled")
        self.statusBar().showMessage("Analysis cancelled.", 5000)

    def _task_finished(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.wait()
            task.deleteLater()
        if self._closing:
            return
        self._set_busy(False)
        self._update_status()
        if self._task_kind == "analysis":
            emit(self.analysisFinished, self._outcome or "done")
        elif self._task_kind == "load" and self._loaded is not None:
            loaded, self._loaded = self._loaded, None
            self._show_image(*loaded)  # now that the window is no longer busy

    def _set_busy(self, busy: bool, message: str = "Analysing…") -> None:
        self.progress.setVisible(busy)
        self._update_placeholders()
        if busy:
            self.view.set_add_mode(False)
            self.statusBar().showMessage(message)
        else:
            self.statusBar().clearMessage()
        self._update_actions()

    # ---- selection ---------------------------------------------------------------------
    def select_face(self, index: int, source: str = "code") -> None:
        faces = self.doc.faces
        if not 0 <= index < len(faces):
            index = -1
        self._selected = index
        self.view.select(index, center=source in ("list", "code"))
        if source != "list":
            self.face_list.select(index)
        rgb = self.doc.image.rgb if self.doc.image is not None else None
        self.face_panel.show_face(rgb, faces[index] if index >= 0 else None, index)
        self._update_actions()

    @property
    def selected_index(self) -> int:
        return self._selected

    def _refresh_faces(self) -> None:
        faces = self.doc.faces
        if self._selected >= len(faces):
            self._selected = len(faces) - 1
        rgb = self.doc.image.rgb if self.doc.image is not None else None
        self.view.set_faces(faces, self._selected)
        self.face_list.set_faces(rgb, faces, self._selected)
        self.face_panel.show_face(
            rgb, faces[self._selected] if self._selected >= 0 else None, self._selected
        )
        self.list_dock.setWindowTitle(f"Faces ({len(faces)})" if self.doc.image else "Faces")
        self._update_placeholders()
        self._update_actions()

    def _update_placeholders(self) -> None:
        """Empty states: how to start, and "No faces found" after an analysis found none."""
        if self.doc.image is None:
            self.view.set_placeholder("Open a photo (Ctrl+O) or drop a photo or a folder here.")
            self.face_list.set_placeholder("No photo open.")
        elif self.doc.analysed and not self.doc.faces and not self.busy:
            self.view.set_placeholder("No faces found")
            self.face_list.set_placeholder("No faces found. Add face (A) draws one by hand.")
        else:
            self.view.set_placeholder("")
            self.face_list.set_placeholder("" if self.doc.analysed else "Not analysed yet (F5).")

    # ---- corrections -------------------------------------------------------------------
    def _on_edit(self, action: str, detail: dict[str, Any]) -> None:
        log.info("%s %s", action.replace("_", " "), detail)
        self._unsaved = True
        self._notify(action, detail)  # an open case saves the correction (corrections_saved)
        self._update_title()

    def _notify(self, action: str, detail: dict[str, Any]) -> None:
        """Tell listeners (e.g. a case's audit log) what happened to the open photo."""
        for hook in list(self.edit_hooks):
            try:
                hook(
                    action,
                    {
                        "path": self.doc.image.path if self.doc.image else None,
                        "sha256": self.doc.image.sha256 if self.doc.image else None,
                        **detail,
                    },
                )
            except Exception:  # noqa: BLE001 - a listener failing must not break editing
                log.exception("edit listener failed")

    def add_face_box(self, box: list[float]) -> None:
        """Classify a hand-drawn box in the background, then add it (undoable), marked manual.

        Off the UI thread: the first box loads the models (seconds). A box that cannot be
        classified (model missing, Esc) is still added, as "uncertain": it is the examiner's.
        """
        image = self.doc.image
        if image is None or self.busy:
            return
        box = [float(v) for v in box]
        settings, engines = self.prefs.analysis, self.engines
        unclassified = Face(box=box, gender="uncertain", manual_box=True)

        def work(cancelled: Callable[[], bool], progress: Callable[[Any], None]) -> Face:
            face = engines.get().classify_boxes(image.rgb, [box], settings)[0]
            face.manual_box = True
            return face

        def failed(message: str, _details: str) -> None:
            log.warning("could not classify the new box (%s); added as uncertain", message)
            self._box_classified(image, unclassified)

        task = Task(work, name="classify box", parent=self)
        task.succeeded.connect(lambda face: self._box_classified(image, face))
        task.failed.connect(failed)
        task.cancelled.connect(lambda: self._box_classified(image, unclassified))
        task.finished.connect(self._task_finished)
        self.task, self._task_kind = task, "classify"
        self._set_busy(True, "Classifying the new box…")
        task.start()

    def _box_classified(self, image: Any, face: Face) -> None:
        if self.doc.image is not image:
            return
        cmd = AddFaceCommand(self.doc, face, self._on_edit)
        self.undo_stack.push(cmd)
        self.select_face(cmd.index, source="code")
        self.act_add_face.setChecked(False)
        emit(self.faceAdded, cmd.index)

    def delete_selected(self) -> None:
        if self.busy or not 0 <= self._selected < len(self.doc.faces):
            return
        index = self._selected
        self.undo_stack.push(DeleteFaceCommand(self.doc, index, self._on_edit))
        self.select_face(min(index, len(self.doc.faces) - 1), source="code")

    def relabel_selected(self, gender: str) -> None:
        if self.busy or not 0 <= self._selected < len(self.doc.faces):
            return
        index = self._selected
        self.undo_stack.push(RelabelCommand(self.doc, index, gender, self._on_edit))
        self.select_face(index, source="code")

    # ---- context menus and saving ------------------------------------------------------
    def photo_context_menu(self, index: int = -1) -> QMenu:
        """The right-click menu of the photo (and, with index -1, of the enlarged face)."""
        menu = QMenu(self)
        if 0 <= index < len(self.doc.faces):
            self.select_face(index, source="view")
            menu.addSection(f"Face {face_number(self.doc.faces[index], index)}")
            for act in self.label_actions.values():
                menu.addAction(act)
            menu.addAction(self.act_delete)
            menu.addSeparator()
        menu.addAction(self.act_save)
        menu.addAction(self.act_export)
        return menu

    def _show_photo_menu(self, pos: QPoint, index: int) -> None:
        self.photo_context_menu(index).exec(pos)

    def _show_panel_menu(self, pos: QPoint) -> None:
        menu = self.photo_context_menu(-1) if self.face_panel.has_face() else None
        if menu is not None:
            menu.exec(pos)

    def _ask_save_path(self, title: str, error_title: str) -> Path | None:
        """Ask where to save, starting in the last output folder.

        An input photo is refused here, before anything asks "replace it?" (the dialog's own
        overwrite question is off; ours comes after the check)."""
        image = self.doc.image
        assert image is not None
        default = exporting.default_annotated_path(image.path)
        last = Path(self.prefs.last_output_dir) if self.prefs.last_output_dir else None
        if last is not None and last.is_dir():
            default = last / default.name
        path, chosen = QFileDialog.getSaveFileName(
            self,
            title,
            str(default),
            ";;".join(SAVE_FILTERS),
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not path:
            return None
        p = Path(path)
        if p.suffix.lower() not in exporting.ANNOTATED_SUFFIXES:
            p = p.with_name(p.name + SAVE_FILTERS.get(chosen, ".jpg"))
        try:
            refuse_overwrite_of(p, [image.path])
        except ProtectedFileError as exc:
            self.show_error(error_title, str(exc))
            return None
        if p.exists():
            answer = QMessageBox.question(
                self, "Replace file?", f"{p.name} already exists in {p.parent}. Replace it?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return None
        self.prefs.last_output_dir = str(p.parent)
        self._save_prefs()
        return p

    def save_annotated_dialog(self) -> None:
        if self.doc.image is None:
            return
        path = self._ask_save_path("Save annotated image", "Could not save the annotated image")
        if path is not None:
            self.save_annotated_to(path)

    def save_annotated_to(self, path: str | Path) -> Path | None:
        image = self.doc.image
        if image is None:
            return None
        try:
            out = save_annotated(
                image.rgb,
                self.doc.faces,
                path,
                protected=[image.path],
                selected=self._selected if self._selected >= 0 else None,
            )
            exporting.note_exported([out])  # a later folder batch knows it is ours
        except Exception as exc:  # noqa: BLE001 - shown to the user, nothing is lost
            self.show_error("Could not save the annotated image", str(exc))
            return None
        log.info(
            "saved annotated image %s (%d face(s), %d manual)",
            out,
            len(self.doc.faces),
            self.doc.manual_count(),
        )
        self._notify("export_annotated", {"output": str(out)})
        self.statusBar().showMessage(f"Saved {out}", 5000)
        return out

    def export_dialog(self) -> None:
        if self.doc.image is None:
            return
        path = self._ask_save_path(
            "Export results: annotated image (JSON and CSV go beside it)",
            "Could not export the results",
        )
        if path is not None:
            self.export_to(path)

    def export_to(self, path: str | Path) -> dict[str, Path] | None:
        image, result = self.doc.image, self.doc.result
        if image is None or result is None:
            return None
        try:
            text = self.document_json(result)
            written = exporting.export_results(
                image, result, path, text, selected=self._selected if self._selected >= 0 else None
            )
        except Exception as exc:  # noqa: BLE001
            self.show_error("Could not export the results", str(exc))
            return None
        log.info("exported %s", ", ".join(str(p) for p in written.values()))
        self.corrections_saved()
        self._notify("export_results", {k: str(v) for k, v in written.items()})
        self.statusBar().showMessage(f"Exported to {written['image'].parent}", 5000)
        return written

    def document_json(self, result: ImageResult) -> str:
        """The export's JSON document for ``result`` (the engine's, with models and settings)."""
        engine = self.engines.engine
        if engine is not None:
            return engine.document(self.prefs.analysis, [result]).to_json()
        import json

        return json.dumps(
            {"tool": "forensic_app", "tool_version": __version__, "images": [result.to_dict()]},
            indent=2,
        )

    # ---- dialogs -----------------------------------------------------------------------
    def settings_dialog(self) -> None:
        band = None
        engine = self.engines.engine
        if engine is not None:
            band = tuple(engine.gender_spec.uncertain_band)
        dlg = SettingsDialog(
            self.prefs.analysis,
            self.prefs.analyze_on_open,
            band,
            self,
            precision=self.prefs.precision,
        )
        if dlg.exec() != SettingsDialog.DialogCode.Accepted:
            return
        self.prefs.precision = dlg.precision()
        if self.engines.set_precision(self.prefs.precision):
            log.info(
                "model precision set to %s; models reload on next use",
                self.prefs.precision or "default",
            )
            self._update_status()
        self.apply_settings(
            dlg.settings(), dlg.analyze_on_open.isChecked(), reanalyze=dlg.reanalyze_requested
        )

    def apply_settings(self, settings, analyze_on_open: bool, reanalyze: bool = False) -> None:
        self.prefs.analysis = settings
        self.prefs.analyze_on_open = analyze_on_open
        self._save_prefs()
        log.info("settings saved: %s", settings.to_dict())
        if reanalyze and self.doc.image is not None:
            self.analyze()
        elif self.doc.image is not None:
            self.statusBar().showMessage("Settings saved; Re-analyze (F5) applies them.", 8000)

    def about_dialog(self) -> None:
        AboutDialog(self.engines.engine, self.engines.error, self).exec()

    # ---- state -------------------------------------------------------------------------
    def _update_actions(self) -> None:
        busy = self.busy
        has_image = self.doc.image is not None
        has_sel = 0 <= self._selected < len(self.doc.faces)
        self.act_open.setEnabled(not busy)
        for act in (self.act_next, self.act_prev):  # nothing to step from without a photo
            act.setEnabled(not busy and has_image)
        self.recent_menu.setEnabled(not busy and bool(self.prefs.recent_files))
        self.act_analyze.setEnabled(has_image and not busy)
        self.act_analyze.setText("Re-&analyze" if self.doc.analysed else "&Analyze")
        self.act_analyze.setIconText("Re-analyze" if self.doc.analysed else "Analyze")
        self.act_cancel.setEnabled(busy)
        self.act_save.setEnabled(has_image and not busy)
        self.act_export.setEnabled(has_image and not busy)
        self.act_add_face.setEnabled(has_image and not busy)
        self.act_delete.setEnabled(has_sel and not busy)
        for act in self.label_actions.values():
            act.setEnabled(has_sel and not busy)
        self.act_undo.setEnabled(self.undo_stack.canUndo() and not busy)
        self.act_redo.setEnabled(self.undo_stack.canRedo() and not busy)
        for act in (self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_actual):
            act.setEnabled(has_image)

    def _update_title(self) -> None:
        name = Path(self.doc.image.path).name if self.doc.image else ""
        dirty = " \u2022 corrected" if self.has_unsaved_corrections() else ""
        self.setWindowTitle(f"{name}{dirty} \u2014 forensic_app" if name else "forensic_app")

    def _update_status(self) -> None:
        engine = self.engines.engine
        if engine is not None:
            gender = next((m for m in engine.models if m.role == "gender"), None)
            precision = ", ".join(f"{r} {p}" for r, p in getattr(engine, "precision", {}).items())
            suffix = f" ({precision})" if precision else ""
            self.status_model.setText(f"Model: {gender.name if gender else '?'}{suffix}")
            self.status_provider.setText(engine.provider)
        elif self.casework.batch.last_models and not self.engines.error:
            models = self.casework.batch.last_models  # the batch's own engine
            gender = next((m for m in models if m.role == "gender"), None)
            self.status_model.setText(f"Model: {gender.name if gender else '?'}")
            self.status_provider.setText("")
            return self._update_size()
        else:
            self.status_model.setText(
                "Model: loads on first analysis" if not self.engines.error else "Model: unavailable"
            )
            self.status_model.setToolTip(self.engines.error or "")
            self.status_provider.setText("")
        self._update_size()

    def _update_size(self) -> None:
        image = self.doc.image
        self.status_size.setText(f"{image.width}\u00d7{image.height} px" if image else "")


def single_shot(ms: int, fn: Callable[[], None]) -> None:
    """Run ``fn`` on the event loop after ``ms`` milliseconds (used by startup)."""
    QTimer.singleShot(ms, fn)
