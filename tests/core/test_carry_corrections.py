"""Corrections survive a fresh analysis: drawn boxes, hand-set labels, deletions, numbers."""

from __future__ import annotations

from forensic_app.core.corrections import carry_corrections
from forensic_app.core.results import Face, ImageResult


def _result(faces: list[Face]) -> ImageResult:
    return ImageResult(path="p.jpg", sha256="a" * 64, width=400, height=300, faces=faces)


def test_fresh_model_answers_under_kept_corrections() -> None:
    previous = _result(
        [
            Face(box=[10, 10, 50, 50], score=0.9, gender="female", p_male=0.1, number=1),
            Face(
                box=[100, 10, 140, 50],
                score=0.8,
                gender="male",
                p_male=0.3,
                manual_label=True,
                model_gender="female",
                number=2,
            ),
            Face(box=[200, 10, 240, 50], score=0.5, gender="uncertain", p_male=0.5, number=3),
            Face(box=[300, 10, 340, 50], gender="female", p_male=0.2, manual_box=True, number=5),
        ]
    )
    fresh = _result(
        [  # new settings: slightly moved boxes, new answers, one new face
            Face(box=[12, 11, 51, 52], score=0.91, gender="female", p_male=0.05, number=1),
            Face(box=[101, 12, 141, 51], score=0.85, gender="uncertain", p_male=0.45, number=2),
            Face(box=[201, 10, 240, 50], score=0.55, gender="uncertain", p_male=0.52, number=3),
            Face(box=[10, 200, 50, 240], score=0.7, gender="male", p_male=0.9, number=4),
        ]
    )
    redrawn = [Face(box=[300, 10, 340, 50], gender="male", p_male=0.8, manual_box=True)]
    merged, carried = carry_corrections(
        previous, fresh, removed_boxes=[[200, 10, 240, 50]], reclassified=redrawn, number_floor=6
    )
    by_number = {f.number: f for f in merged.faces}
    assert sorted(by_number) == [1, 2, 5, 6]  # 3 deleted stays deleted; the new face gets 6
    assert by_number[1].p_male == 0.05 and not by_number[1].manual  # model answer refreshed
    relabelled = by_number[2]
    assert relabelled.gender == "male" and relabelled.manual_label
    assert relabelled.model_gender == "uncertain" and relabelled.p_male == 0.45
    assert relabelled.box == [101, 12, 141, 51]
    drawn = by_number[5]
    assert drawn.manual_box and drawn.gender == "male" and drawn.p_male == 0.8
    assert by_number[6].box == [10, 200, 50, 240]
    assert carried == 3


def test_a_hand_set_label_outlives_a_detection_the_model_lost() -> None:
    previous = _result(
        [
            Face(
                box=[10, 10, 50, 50],
                score=0.5,
                gender="female",
                p_male=0.6,
                manual_label=True,
                model_gender="uncertain",
                number=1,
            )
        ]
    )
    merged, carried = carry_corrections(previous, _result([]))
    assert [f.gender for f in merged.faces] == ["female"] and merged.faces[0].manual_label
    assert carried == 1
