"""The question asked before unsaved corrections would be lost (quit, next photo, open, drop).

Why a module of its own: the window asks it from several places and tests answer it without a
modal dialog (they replace ``ask``). Answers: ``SAVE_TO_CASE``, ``EXPORT``, ``DISCARD`` or
``CANCEL``. In an open case corrections are saved automatically and this is not asked.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

SAVE_TO_CASE = "save-to-case"
EXPORT = "export"
DISCARD = "discard"
CANCEL = "cancel"


def ask(parent: QWidget | None, photo: str, what: str, case_open: bool) -> str:
    """Ask what to do with the corrections of ``photo`` before ``what`` (e.g. "quitting")."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved corrections")
    box.setText(f"The corrections to {photo} are not saved.")
    box.setInformativeText(f"Save them before {what}? Discarded corrections cannot be recovered.")
    answers = {}
    if case_open:
        answers[box.addButton("Save to case", QMessageBox.ButtonRole.AcceptRole)] = SAVE_TO_CASE
    answers[box.addButton("Export\u2026", QMessageBox.ButtonRole.AcceptRole)] = EXPORT
    answers[box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)] = DISCARD
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    answers[cancel] = CANCEL
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.exec()
    return answers.get(box.clickedButton(), CANCEL)
