"""Filters over a batch's results, as pure functions (the GUI's filter box and reports use them).

Why pure functions on ImageResult: a triage filter must mean the same in the window, the CLI and
the report, and be testable without a window or a case folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from forensic_app.core.results import GENDER_LABELS, ImageResult

Predicate = Callable[[ImageResult], bool]


def has_faces(r: ImageResult) -> bool:
    return r.error is None and bool(r.faces)


def has_uncertain(r: ImageResult) -> bool:
    return r.error is None and any(f.gender == "uncertain" for f in r.faces)


def has_manual(r: ImageResult) -> bool:
    """Photos where the investigator drew a box or corrected a label."""
    return any(f.manual for f in r.faces)


def has_gender(gender: str) -> Predicate:
    """Photos with at least one face shown as ``gender`` ("female", "male", "uncertain")."""
    if gender not in GENDER_LABELS:
        raise ValueError(f"unknown perceived-gender label {gender!r}; use one of {GENDER_LABELS}")
    return lambda r: r.error is None and any(f.gender == gender for f in r.faces)


def failed(r: ImageResult) -> bool:
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

    def __call__(self, r: ImageResult) -> bool:
        return all(p(r) for p in self.predicates())


def filter_results(
    results: Iterable[ImageResult], flt: ResultFilter | Predicate
) -> list[ImageResult]:
    """The results that pass ``flt``, in their original order."""
    return [r for r in results if flt(r)]
