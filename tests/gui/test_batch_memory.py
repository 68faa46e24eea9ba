"""The window's batch keeps compact per-photo summaries; full results live in a disk spill.

Memory must not grow with photos per run in the window either: rows hold counts (not faces),
the runner's items hold no results, and a photo opened for review still shows its batch result
(read back from the spill) without being analysed again.
"""

from __future__ import annotations

from pathlib import Path

from gui_helpers import write_photo

from forensic_app.core.filters import PhotoSummary, ResultFilter
from forensic_app.core.results import ImageResult


def test_batch_rows_are_summaries_and_review_reads_the_spill(qtbot, make_window, tmp_path):
    root = tmp_path / "seized"
    for i in range(12):
        write_photo(root / f"img{i:02d}.png", seed=i)
    window = make_window()
    ui = window.casework
    with qtbot.waitSignal(ui.batch.finished, timeout=30_000):
        assert window.open_folder(root)
    rows = ui.panel.model.rows
    assert len(rows) == 12 and all(r.status == "done" for r in rows)
    assert all(isinstance(r.summary, PhotoSummary) for r in rows)
    assert not any(isinstance(v, ImageResult) for r in rows for v in vars(r).values())  # on disk
    assert all(item.result is None for item in ui.batch.last_outcome.items)
    assert len(ui.panel.model.spill) == 12

    calls = window.engines.engine.calls
    ui.open_review(5)
    assert Path(window.doc.image.path).name == "img05.png"
    stored = ui.panel.model.result_of(5)
    assert [f.box for f in window.doc.result.faces] == [f.box for f in stored.faces]
    assert window.engines.engine.calls == calls  # shown from the spill, not re-analysed

    window.select_face(0)
    window.relabel_selected("female")  # the correction reaches the row's summary and the spill
    assert rows[5].summary.manual == 1
    assert ui.panel.model.result_of(5).faces[0].manual_label
    assert [r.index for r in ui.panel.visible_rows() if ResultFilter(manual=True)(r.summary)] == [5]
