"""The face list of a 1,000-face photo holds thumbnails only for rows in view (capped)."""

from __future__ import annotations

import numpy as np

from forensic_app.core.results import Face
from forensic_app.gui.face_list import MAX_THUMBS, FaceList


def test_thousand_faces_make_thumbnails_on_demand(qtbot) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (1536, 2048, 3), dtype=np.uint8)
    faces = [
        Face([float(x), float(y), x + 40.0, y + 48.0], score=0.5, gender="male", p_male=0.9)
        for y in range(0, 1400, 56)
        for x in range(0, 2000, 50)
    ][:1000]
    assert len(faces) == 1000
    fl = FaceList()
    qtbot.addWidget(fl)
    fl.resize(300, 600)
    fl.show()
    fl.set_faces(rgb, faces)
    assert fl.count() == 1000
    shown = fl.thumbnail_rows()
    assert 0 in shown and 0 < len(shown) <= MAX_THUMBS
    assert not fl.item(0).icon().isNull() and fl.item(999).icon().isNull()
    fl.verticalScrollBar().setValue(fl.verticalScrollBar().maximum())  # scroll to the end
    assert 999 in fl.thumbnail_rows() and not fl.item(999).icon().isNull()
    for row in range(0, 1000, 25):  # visit the whole list
        fl.select(row)
    rows = fl.thumbnail_rows()
    assert len(rows) <= MAX_THUMBS  # never more than the cap
    with_icon = [i for i in range(1000) if not fl.item(i).icon().isNull()]
    assert sorted(rows) == with_icon  # dropped rows really let their pixmap go
