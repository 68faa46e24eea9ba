"""The photo view: captions of tightly packed faces stay readable on screen at any zoom."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PySide6.QtCore import QRectF

from forensic_app.core.results import Face
from forensic_app.gui.photo_view import PhotoView


def _caption_rects(view: PhotoView) -> list[QRectF]:
    """Each caption's rectangle in viewport pixels, where the investigator reads it."""
    out = []
    for item in view.box_items():
        cap = item.caption
        out.append(cap.deviceTransform(view.viewportTransform()).mapRect(cap.boundingRect()))
    return out


def _overlaps(rects: list[QRectF]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for (i, a), (j, b) in itertools.combinations(enumerate(rects), 2)
        if a.intersected(b).width() > 0.5 and a.intersected(b).height() > 0.5
    ]


@pytest.fixture
def crowd_view(qtbot) -> PhotoView:
    view = PhotoView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(np.full((600, 800, 3), 120, np.uint8))
    # Eight faces shoulder to shoulder in two rows: captions drawn "above each box" would pile up.
    faces = []
    for row, col in itertools.product(range(2), range(4)):
        x, y = 200 + col * 36, 200 + row * 40
        faces.append(Face(box=[x, y, x + 34, y + 38], score=0.9, gender="female", p_male=0.12))
    view.set_faces(faces)
    return view


def test_captions_of_packed_faces_do_not_cover_each_other(qtbot, crowd_view):
    view = crowd_view
    assert view.box_items()
    assert _overlaps(_caption_rects(view)) == []
    # Without the layout every caption sits on its box's top-left corner, and those overlap.
    for item in view.box_items():
        item.caption.setPos(item.face.box[0], item.face.box[1])
    assert _overlaps(_caption_rects(view))


def test_captions_are_placed_again_after_zooming(qtbot, crowd_view):
    view = crowd_view
    before = [r.topLeft() for r in _caption_rects(view)]
    view.zoom_by(2.0)  # the faces grow, the captions keep their screen size: new places
    qtbot.waitUntil(lambda: not view._caption_timer.isActive(), timeout=2000)
    assert _overlaps(_caption_rects(view)) == []
    assert [r.topLeft() for r in _caption_rects(view)] != before


def _box_rects(view: PhotoView) -> list[QRectF]:
    return [view.viewportTransform().mapRect(item.rect()) for item in view.box_items()]


def test_captions_never_cover_a_face_and_moved_ones_get_a_leader_line(qtbot, crowd_view):
    view = crowd_view
    captions, boxes = _caption_rects(view), _box_rects(view)
    for i, cap in enumerate(captions):
        for j, box in enumerate(boxes):
            inter = cap.intersected(box)
            assert inter.width() <= 1.0 or inter.height() <= 1.0, (i, j, cap, box)
    # the inner faces of the packed rows have no free spot beside them: their captions moved
    leaders = [item.leader for item in view.box_items() if item.leader.isVisible()]
    assert leaders
    for leader in leaders:
        assert leader.zValue() < min(item.zValue() for item in view.box_items())  # under boxes
