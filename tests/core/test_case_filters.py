"""Triage filters over results (pure functions)."""

from __future__ import annotations

import pytest

from forensic_app.core.filters import (
    ResultFilter,
    filter_results,
    has_faces,
    has_gender,
    has_manual,
    has_uncertain,
)
from forensic_app.core.results import Face, ImageResult


@pytest.fixture
def results():
    return [
        ImageResult("none.jpg", faces=[]),
        ImageResult("f.jpg", faces=[Face([0, 0, 9, 9], gender="female", p_male=0.1)]),
        ImageResult(
            "mu.jpg",
            faces=[
                Face([0, 0, 9, 9], gender="male", p_male=0.9),
                Face([9, 9, 19, 19], gender="uncertain", p_male=0.5),
            ],
        ),
        ImageResult(
            "manual.jpg",
            faces=[Face([0, 0, 9, 9], gender="female", manual_label=True, model_gender="male")],
        ),
        ImageResult("err.jpg", error="truncated"),
    ]


def names(rs):
    return [r.path for r in rs]


def test_single_predicates(results):
    assert names(filter_results(results, has_faces)) == ["f.jpg", "mu.jpg", "manual.jpg"]
    assert names(filter_results(results, has_uncertain)) == ["mu.jpg"]
    assert names(filter_results(results, has_manual)) == ["manual.jpg"]
    assert names(filter_results(results, has_gender("female"))) == ["f.jpg", "manual.jpg"]
    assert names(filter_results(results, has_gender("male"))) == ["mu.jpg"]
    with pytest.raises(ValueError):
        has_gender("other")


def test_combined_filter(results):
    assert names(filter_results(results, ResultFilter(faces=False))) == ["none.jpg", "err.jpg"]
    assert names(filter_results(results, ResultFilter(gender="female", manual=False))) == ["f.jpg"]
    assert names(filter_results(results, ResultFilter(errors=True))) == ["err.jpg"]
    assert names(filter_results(results, ResultFilter())) == names(results)
