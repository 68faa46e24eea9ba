"""The window's exports are its own outputs by identity (ownership ledger), never evidence on a
later folder batch; a photo merely *named* like an export is still analysed (issue 17)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from gui_helpers import open_and_wait, write_photo


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_folder_batch_skips_the_windows_exports_but_not_lookalikes(qtbot, make_window, tmp_path):
    folder = tmp_path / "seized"
    photo = write_photo(folder / "img0.png", seed=0)
    write_photo(folder / "img1.png", seed=1)
    window = make_window()
    open_and_wait(qtbot, window, photo)
    written = window.export_to(folder / "img0_annotated.jpg")
    assert written is not None and written["image"].is_file()
    saved = window.save_annotated_to(folder / "img0_copy.png")
    assert saved is not None
    # Evidence that only looks like an export: a photo named the way exports are named.
    lookalike = folder / "img1_annotated.jpg"
    write_photo(lookalike, seed=5)
    before = _sha(lookalike)
    with qtbot.waitSignal(window.casework.batch.finished, timeout=20_000):
        assert window.open_folder(folder)
    names = sorted(Path(r.path).name for r in window.casework.panel.model.rows)
    assert names == ["img0.png", "img1.png", "img1_annotated.jpg"]
    assert _sha(lookalike) == before
