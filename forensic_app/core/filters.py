"""Filters over a batch's results, as pure functions (the GUI's filter box and reports use them).

Why pure functions on ImageResult (or its compact :class:`PhotoSummary`): a triage filter must
mean the same in the window, the CLI and the report, and be testable without a window or a case
folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from forensic_app.core.results import GENDER_LABELS, ImageResult


@dataclass(frozen=True)
class PhotoSummary:
    """All a filter needs of one photo: a few counts, whatever its number of faces.

    Why: a window batch over a seized device keeps one of these per photo, not its result
    (memory must not grow with faces or photos; docs/adr/0009-onnxruntime-memory.md)."""

    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # faces per shown label
    manual: int = 0  # faces drawn or relabelled by the investigator
    sha256: str | None = None

    @classmethod
    def of(cls, r: ImageResult | PhotoSummary) -> PhotoSummary:
        if isinstance(r, PhotoSummary):
            return r
        counts: dict[str, int] = {}
        for f in r.faces:
            counts[f.gender] = counts.get(f.gender, 0) + 1
        return cls(r.error, counts, sum(1 for f in r.faces if f.manual), r.sha256)

    @property
    def faces(self) -> int:
        return sum(self.counts.values())

    def count(self, gender: str) -> int:
        return self.counts.get(gender, 0)


Photo = ImageResult | PhotoSummary
Predicate = Callable[[Photo], bool]


def has_faces(r: Photo) -> bool:
    s = PhotoSummary.of(r)
    return s.error is None and s.faces > 0


def has_uncertain(r: Photo) -> bool:
    s = PhotoSummary.of(r)
    return s.error is None and s.count("uncertain") > 0


def has_manual(r: Photo) -> bool:
    """Photos where the investigator drew a box or corrected a label."""
    return PhotoSummary.of(r).manual > 0


def has_gender(gender: str) -> Predicate:
    """Photos with at least one face shown as ``gender`` ("female", "male", "uncertain")."""
    if gender not in GENDER_LABELS:
        raise ValueError(f"unknown perceived-gender label {gender!r}; use one of {GENDER_LABELS}")

    def pred(r: Photo) -> bool:
        s = PhotoSummary.of(r)
        return s.error is None and s.count(gender) > 0

    return pred


def failed(r: Photo) -> bool:
    return r.error is not None


@dataclass(frozen=True)
class ResultFilter:
    """A combination of conditions; None means "don't care". All set conditions must hold."""

    faces: bool | None = None
    uncertain: bool | None = None
    manual: bool | None = None
    gender: str | None = None
    errors: bool | None = None

    def predicates(self) -> list[Predicate]:
        preds: list[Predicate] = []
        for flag, pred in (
            (self.faces, has_faces),
            (self.uncertain, has_uncertain),
            (self.manual, has_manual),
            (self.errors, failed),
        ):
            if flag is not None:
                preds.append(pred if flag else (lambda r, p=pred: not p(r)))
        if self.gender is not None:
            preds.append(has_gender(self.gender))
        return preds

    def __call__(self, r: Photo) -> bool:
        s = PhotoSummary.of(r)
        return all(p(s) for p in self.predicates())


def filter_results(
    results: Iterable[ImageResult], flt: ResultFilter | Predicate
) -> list[ImageResult]:
    """The results that pass ``flt``, in their original order."""
    return [r for r in results if flt(r)]
