"""The real models through the real window on a dev-eval photo, checked against its labels."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from gui_helpers import open_and_wait
from PIL import Image
from PySide6.QtCore import Qt

PHOTO = "11--Meeting/11_Meeting_Meeting_11_Meeting_Meeting_11_573.jpg"
LARGE = 40  # faces at least this wide (pixels) must be found


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@pytest.mark.slow
def test_real_engine_end_to_end_through_window(
    qtbot, make_window, engine, dev_eval_dir, dev_eval_annotations, tmp_path
):
    photo = dev_eval_dir / "images" / PHOTO
    before = hashlib.sha256(photo.read_bytes()).hexdigest()
    window = make_window(engine)
    open_and_wait(qtbot, window, photo, timeout=120_000)
    assert window.doc.result is not None and window.doc.result.error is None

    truth = [f for f in dev_eval_annotations[PHOTO] if f["bbox"][2] >= LARGE]
    assert truth, "the chosen photo must have large labelled faces"
    boxes = [item.rect().getCoords() for item in window.view.box_items()]
    assert len(boxes) == len(window.doc.faces) == window.face_list.count()
    matched = 0
    for f in truth:
        x, y, w, h = f["bbox"]
        if max((iou((x, y, x + w, y + h), b) for b in boxes), default=0.0) >= 0.5:
            matched += 1
    assert matched >= max(1, int(0.75 * len(truth))), (matched, len(truth), boxes)

    # Every face shows a label with a confidence (or is uncertain) in the list and on the photo.
    for i, face in enumerate(window.doc.faces):
        assert face.gender in ("female", "male", "uncertain") and face.p_male is not None
        assert window.face_list.item(i).text().startswith(f"Face {i + 1} \u2014 {face.gender}")

    # Click the largest face on the photo: it becomes selected and enlarged.
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    big = areas.index(max(areas))
    centre = window.view.mapFromScene(window.view.box_items()[big].rect().center())
    qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert window.selected_index == big and window.face_panel.has_face()

    gender_real = not Path(engine.models[1].path).name.startswith("tiny")
    if gender_real:
        # Perceived-gender labels of matched large faces mostly agree (uncertain is allowed).
        agree = wrong = 0
        for f in truth:
            if f["gender"] is None:
                continue
            x, y, w, h = f["bbox"]
            best = max(range(len(boxes)), key=lambda i: iou((x, y, x + w, y + h), boxes[i]))
            label = window.doc.faces[best].gender
            if label == "uncertain":
                continue
            agree += label == ("male" if f["gender"] == 1 else "female")
            wrong += label != ("male" if f["gender"] == 1 else "female")
        assert agree >= wrong

    out = tmp_path / "annotated.jpg"
    assert window.save_annotated_to(out) == out
    with Image.open(out) as im:
        assert im.size == (window.doc.image.width, window.doc.image.height)
    assert hashlib.sha256(photo.read_bytes()).hexdigest() == before
