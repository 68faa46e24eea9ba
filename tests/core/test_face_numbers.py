"""Face numbers: reading order at analysis, never reused after a delete."""

from __future__ import annotations

from forensic_app.core.results import Face, face_number, next_face_number, number_faces


def test_numbers_follow_reading_order_not_score() -> None:
    faces = [
        Face(box=[300, 110, 340, 150], score=0.99),  # top row, right
        Face(box=[10, 300, 50, 340], score=0.98),  # bottom row, left
        Face(box=[20, 100, 60, 140], score=0.60),  # top row, left (a little higher)
        Face(box=[160, 95, 200, 135], score=0.70),  # top row, middle
        Face(box=[200, 305, 240, 345], score=0.50),  # bottom row, right
    ]
    ordered = number_faces(faces)
    assert [f.box[0] for f in ordered] == [20, 160, 300, 10, 200]
    assert [f.number for f in ordered] == [1, 2, 3, 4, 5]


def test_a_deleted_number_is_not_reused() -> None:
    faces = number_faces([Face(box=[10.0 * k, 0, 10.0 * k + 8, 8]) for k in range(4)])
    del faces[3]  # the last face deleted: 4 must not come back
    assert next_face_number(faces, floor=5) == 5
    del faces[1]
    assert [face_number(f, i) for i, f in enumerate(faces)] == [1, 3]
    assert next_face_number(faces) == 4
    # results written before faces carried numbers: their position
    assert face_number(Face(box=[0, 0, 1, 1]), 6) == 7
    assert Face.from_dict(faces[1].to_dict()).number == 3
