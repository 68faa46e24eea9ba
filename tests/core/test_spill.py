"""ResultSpill: full results on disk, read back by index; PhotoSummary counts for filters."""

from __future__ import annotations

from forensic_app.core.filters import PhotoSummary, ResultFilter
from forensic_app.core.results import Face, ImageResult
from forensic_app.core.spill import ResultSpill


def result(i: int) -> ImageResult:
    faces = [Face([i, 0, i + 9, 9], score=0.9, gender="male", p_male=0.9)] * (i % 3)
    return ImageResult(path=f"photo {i} é.jpg", sha256=f"{i:064x}", faces=faces)


def test_spill_round_trips_and_replaces() -> None:
    spill = ResultSpill()
    for i in range(50):
        spill.put(i, result(i))
    assert len(spill) == 50 and 7 in spill and 50 not in spill
    assert spill.get(7).to_dict() == result(7).to_dict()
    edited = result(7)
    edited.faces = [Face([1, 2, 3, 4], gender="female", manual_label=True, model_gender="male")]
    spill.put(7, edited)
    assert spill.get(7).to_dict() == edited.to_dict()
    assert spill.get(8).to_dict() == result(8).to_dict()  # neighbours untouched
    assert spill.get(99) is None
    spill.close()


def test_summary_filters_agree_with_result_filters() -> None:
    photos = [result(i) for i in range(6)] + [ImageResult("bad.jpg", error="truncated")]
    for flt in (
        ResultFilter(faces=True),
        ResultFilter(faces=False, errors=False),
        ResultFilter(gender="male"),
        ResultFilter(errors=True),
        ResultFilter(manual=True),
    ):
        assert [flt(p) for p in photos] == [flt(PhotoSummary.of(p)) for p in photos]
    assert PhotoSummary.of(photos[2]).faces == 2 and PhotoSummary.of(photos[2]).count("male") == 2
