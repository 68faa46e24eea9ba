"""The Faces view's Qt-free core: one entry per face, filters, sort orders, in-place updates."""

from __future__ import annotations

import pytest

from forensic_app.core.face_index import (
    SORTS,
    FaceEntry,
    FaceFilter,
    FaceIndex,
    LruCache,
    face_size,
)
from forensic_app.core.results import Face, ImageResult


def face(x: float, w: float, gender: str, p: float | None, manual_label: bool = False) -> Face:
    return Face(
        box=[x, 10.0, x + w, 10.0 + w * 1.2],
        score=0.9,
        gender=gender,
        p_male=p,
        manual_label=manual_label,
        model_gender="male" if manual_label else None,
    )


@pytest.fixture
def index() -> FaceIndex:
    a = ImageResult(
        path="/ev/a.jpg",
        sha256="a" * 64,
        faces=[
            face(0, 40, "female", 0.10),  # conf 0.90
            face(100, 20, "uncertain", 0.55),  # conf 0.55
        ],
    )
    b = ImageResult(
        path="/ev/b.jpg",
        sha256="b" * 64,
        faces=[
            face(0, 80, "male", 0.97),  # conf 0.97
            face(100, 30, "uncertain", 0.48),  # conf 0.52
            face(200, 60, "female", 0.80, manual_label=True),  # corrected by hand
        ],
    )
    broken = ImageResult(path="/ev/broken.jpg", error="truncated")
    return FaceIndex.from_results(
        [("a", a.path, a), ("broken", broken.path, broken), ("b", b.path, b)]
    )


def names(index: FaceIndex, order: list[int]) -> list[str]:
    return [f"{index.photos[index.entries[i].photo].key}{index.entries[i].face + 1}" for i in order]


def test_every_face_of_every_readable_photo_is_listed(index):
    assert len(index) == 5 and len(index.photos) == 3
    e = index.entries[index.position(2, 2)]
    assert (e.photo, e.face, e.gender, e.manual, e.manual_label) == (2, 2, "female", True, True)
    assert e.box == (200.0, 10.0, 260.0, 82.0) and e.size == 60.0
    assert index.position(1, 0) is None  # the failed photo has no faces
    assert index.counts() == {"female": 2, "male": 1, "uncertain": 2, "manual": 1, "faces": 5}


def test_sort_orders(index):
    assert names(index, index.select(sort="photo")) == ["a1", "a2", "b1", "b2", "b3"]
    # not corrected first; uncertain before the rest; least confident first; by-hand last
    assert names(index, index.select(sort="uncertain")) == ["b2", "a2", "a1", "b1", "b3"]
    assert names(index, index.select(sort="confidence")) == ["b2", "a2", "b3", "a1", "b1"]
    assert names(index, index.select(sort="size")) == ["a2", "b2", "a1", "b3", "b1"]
    # female, male, uncertain; most confident first inside a label
    assert names(index, index.select(sort="gender")) == ["a1", "b3", "b1", "a2", "b2"]
    assert names(index, index.select(sort="size", reverse=True)) == ["b1", "b3", "a1", "b2", "a2"]
    with pytest.raises(ValueError, match="unknown sort"):
        index.select(sort="age")
    assert set(SORTS) == {"uncertain", "gender", "confidence", "size", "photo"}


def test_filters(index):
    assert names(index, index.select(FaceFilter(gender="uncertain"), "photo")) == ["a2", "b2"]
    assert names(index, index.select(FaceFilter(manual=True), "photo")) == ["b3"]
    assert names(index, index.select(FaceFilter(gender="female", manual=False), "photo")) == ["a1"]
    assert names(index, index.select(FaceFilter(min_size=40), "photo")) == ["a1", "b1", "b3"]
    with pytest.raises(ValueError, match="perceived-gender"):
        FaceFilter(gender="woman")


def test_update_in_place_keeps_positions_and_refuses_a_changed_face_count(index):
    p = index.photo_of_key("b")
    order = index.select(sort="uncertain")
    faces = list(ImageResult(path="", faces=[]).faces)
    b_faces = [
        face(0, 80, "male", 0.97),
        face(100, 30, "female", 0.48, manual_label=True),
        face(200, 60, "female", 0.80, manual_label=True),
    ]
    assert index.update_photo(p, ImageResult(path="/ev/b.jpg", sha256="b" * 64, faces=b_faces))
    e = index.entries[index.position(p, 1)]
    assert e.gender == "female" and e.manual_label and e.p_male == 0.48
    assert names(index, order)[0] == "b2"  # an existing order is not re-sorted behind the back
    assert index.counts()["manual"] == 2
    assert not index.update_photo(p, ImageResult(path="/ev/b.jpg", faces=faces))


def test_entry_confidence_is_the_models_own():
    e = FaceEntry.of(0, 0, Face(box=[0, 0, 10, 20], gender="female", p_male=0.3))
    assert e.confidence == pytest.approx(0.7) and e.size == face_size([0, 0, 10, 20]) == 10
    drawn = FaceEntry.of(0, 1, Face(box=[0, 0, 10, 10], manual_box=True))
    assert drawn.confidence is None and drawn.manual and not drawn.manual_label
    # the face's own stable number (a face deleted before it keeps its number), else position
    assert FaceEntry.of(0, 2, Face(box=[0, 0, 9, 9], number=7)).number == 7
    assert drawn.number == 2 and e.number == 1


def test_lru_cache_is_bounded_and_keeps_recent_items():
    cache: LruCache[int, str] = LruCache(3)
    for i in range(5):
        cache.put(i, str(i))
    assert len(cache) == 3 and 0 not in cache and 1 not in cache
    assert cache.get(2) == "2"  # now most recent
    cache.put(5, "5")
    assert 3 not in cache and 2 in cache and cache.get(99) is None
    with pytest.raises(ValueError):
        LruCache(0)


def test_lru_cache_bounded_by_weight_keeps_the_newest_item():
    cache: LruCache[str, bytes] = LruCache(10, max_weight=100, weight=len)
    cache.put("a", b"x" * 60)
    cache.put("b", b"x" * 30)
    assert len(cache) == 2 and cache.weight == 90
    cache.put("c", b"x" * 50)  # over the budget: the oldest goes
    assert "a" not in cache and cache.weight == 80
    cache.put("huge", b"x" * 500)  # larger than the budget: kept alone
    assert list(cache._items) == ["huge"] and cache.weight == 500
    cache.put("huge", b"x" * 5)  # replacing an item re-weighs it
    assert cache.weight == 5
