"""Every face of a batch or case as one flat, compact list that can be filtered and sorted.

Why here and without Qt: reviewing at volume (the window's Faces view) means listing 10,000
faces, ordering them so the doubtful ones come first and keeping that list in step with
corrections. Doing it on plain records keeps it testable without a window and cheap: one small
slotted record per face (no pixels, no copies of results), rebuilt per photo when a photo changes.

The order of a view is a list of positions into ``FaceIndex.entries``; a view keeps its order
while the examiner works through it (a face relabelled from "uncertain" to "female" stays where it
is until the filter or sort is chosen again), so the list never jumps under the keyboard.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from forensic_app.core.results import GENDER_LABELS, Face, ImageResult, face_number

#: Sort orders of a face view: key -> words shown to the examiner.
SORTS: dict[str, str] = {
    "uncertain": "Uncertain first",
    "gender": "Perceived gender",
    "confidence": "Confidence (lowest first)",
    "size": "Face size (smallest first)",
    "photo": "Photo",
}
_GENDER_RANK = {g: i for i, g in enumerate(GENDER_LABELS)}


def face_size(box: Iterable[float]) -> float:
    """A face's size in pixels: the shorter side of its box (what ``min_face`` compares)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return max(0.0, min(x2 - x1, y2 - y1))


@dataclass(frozen=True, slots=True)
class PhotoRef:
    """A photo of the view: where it is, the SHA-256 it had when analysed, the source's key."""

    path: str
    sha256: str | None
    key: Hashable  # what the face source uses to find the photo again (batch row, record name)


@dataclass(frozen=True, slots=True)
class FaceEntry:
    """One face of the view, small on purpose (10,000 of them must stay cheap)."""

    photo: int  # position in FaceIndex.photos
    face: int  # 0-based position in that photo's faces
    box: tuple[float, float, float, float]
    gender: str  # label shown: "female" | "male" | "uncertain"
    p_male: float | None  # the model's p(perceived male); None for an unclassified drawn box
    manual_label: bool
    manual_box: bool
    size: float  # shorter side of the box, px
    model_gender: str | None = None  # the model's own label when the label was set by hand
    number: int = 0  # the face's number on screen and in exports (``results.face_number``)

    @property
    def manual(self) -> bool:
        return self.manual_label or self.manual_box

    @property
    def confidence(self) -> float | None:
        """The model's confidence in its own answer, max(p, 1 - p); None when unclassified."""
        return None if self.p_male is None else max(self.p_male, 1.0 - self.p_male)

    @classmethod
    def of(cls, photo: int, face: int, f: Face) -> FaceEntry:
        x1, y1, x2, y2 = (float(v) for v in f.box)
        box = (x1, y1, x2, y2)
        return cls(
            photo,
            face,
            box,
            f.gender,
            f.p_male,
            f.manual_label,
            f.manual_box,
            face_size(box),
            f.model_gender,
            face_number(f, face),
        )


@dataclass(frozen=True)
class FaceFilter:
    """Which faces a view shows; None means "don't care", every set condition must hold."""

    gender: str | None = None  # shown label
    manual: bool | None = None  # True: corrected by hand; False: not yet
    min_size: float | None = None  # px, shorter side

    def __post_init__(self) -> None:
        if self.gender is not None and self.gender not in GENDER_LABELS:
            raise ValueError(
                f"unknown perceived-gender label {self.gender!r}; use one of {GENDER_LABELS}"
            )

    def __call__(self, e: FaceEntry) -> bool:
        if self.gender is not None and e.gender != self.gender:
            return False
        if self.manual is not None and e.manual != self.manual:
            return False
        return self.min_size is None or e.size >= self.min_size


def _sort_key(sort: str) -> Callable[[FaceEntry], tuple]:
    def conf(e: FaceEntry) -> float:
        return -1.0 if e.confidence is None else e.confidence

    if sort == "uncertain":
        # What most needs a look first: faces nobody corrected yet, uncertain ones before the
        # rest, and within each group the least confident first.
        return lambda e: (e.manual_label, e.gender != "uncertain", conf(e), e.photo, e.face)
    if sort == "gender":
        return lambda e: (_GENDER_RANK.get(e.gender, 99), -conf(e), e.photo, e.face)
    if sort == "confidence":
        return lambda e: (conf(e), e.photo, e.face)
    if sort == "size":
        return lambda e: (e.size, e.photo, e.face)
    if sort == "photo":
        return lambda e: (e.photo, e.face)
    raise ValueError(f"unknown sort {sort!r}; use one of {list(SORTS)}")


class FaceIndex:
    """The faces of a list of photos (each photo's faces kept together, in photo order)."""

    def __init__(self) -> None:
        self.photos: list[PhotoRef] = []
        self.entries: list[FaceEntry] = []
        self._start: list[int] = []  # first entry of each photo
        self._count: list[int] = []
        self._by_key: dict[Hashable, int] = {}

    @classmethod
    def from_results(cls, items: Iterable[tuple[Hashable, str, ImageResult]]) -> FaceIndex:
        """Build from ``(key, path, result)``; failed photos add no faces (nothing to review)."""
        index = cls()
        for key, path, result in items:
            index.add_photo(key, path, result)
        return index

    def add_photo(self, key: Hashable, path: str, result: ImageResult) -> int:
        p = len(self.photos)
        self.photos.append(PhotoRef(path, result.sha256, key))
        self._by_key[key] = p
        self._start.append(len(self.entries))
        faces = result.faces if result.error is None else []
        self.entries.extend(FaceEntry.of(p, i, f) for i, f in enumerate(faces))
        self._count.append(len(faces))
        return p

    def __len__(self) -> int:
        return len(self.entries)

    def photo_of_key(self, key: Hashable) -> int | None:
        return self._by_key.get(key)

    def position(self, photo: int, face: int) -> int | None:
        """Where face ``face`` of photo ``photo`` is in ``entries``."""
        if not 0 <= photo < len(self.photos) or not 0 <= face < self._count[photo]:
            return None
        return self._start[photo] + face

    def positions(self, photo: int) -> range:
        """The positions in ``entries`` of one photo's faces."""
        return range(self._start[photo], self._start[photo] + self._count[photo])

    def update_photo(self, photo: int, result: ImageResult) -> bool:
        """Refresh one photo's faces in place; False when its face count changed (a face was
        added or deleted: positions move, so the caller rebuilds the index)."""
        faces = result.faces if result.error is None else []
        if len(faces) != self._count[photo]:
            return False
        start = self._start[photo]
        for i, f in enumerate(faces):
            self.entries[start + i] = FaceEntry.of(photo, i, f)
        return True

    def select(
        self, flt: FaceFilter | None = None, sort: str = "uncertain", reverse: bool = False
    ) -> list[int]:
        """Positions of the faces that pass ``flt``, in ``sort`` order (stable, ties by photo
        and face number)."""
        key = _sort_key(sort)
        entries = self.entries
        chosen = [i for i, e in enumerate(entries) if flt is None or flt(e)]
        chosen.sort(key=lambda i: key(entries[i]), reverse=reverse)
        return chosen

    def counts(self) -> dict[str, int]:
        """Faces per shown label and how many were corrected by hand."""
        out = {g: 0 for g in GENDER_LABELS}
        manual = 0
        for e in self.entries:
            out[e.gender] = out.get(e.gender, 0) + 1
            manual += e.manual
        out["manual"] = manual
        out["faces"] = len(self.entries)
        return out


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A size-bounded least-recently-used map (thumbnails, decoded photos): memory stays flat
    however many faces a view scrolls past. ``max_weight`` with ``weight(value)`` bounds the
    total too (bytes of decoded photos); the newest item is always kept. Not locked: each cache
    belongs to one thread."""

    def __init__(
        self, capacity: int, max_weight: int | None = None, weight: Callable[[V], int] | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.max_weight = max_weight
        self._weigh = weight or (lambda _v: 0)
        self.weight = 0
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.weight -= self._weigh(old)
        self._items[key] = value
        self.weight += self._weigh(value)
        while len(self._items) > 1 and (
            len(self._items) > self.capacity
            or (self.max_weight is not None and self.weight > self.max_weight)
        ):
            _, dropped = self._items.popitem(last=False)
            self.weight -= self._weigh(dropped)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
        self.weight = 0
