"""IoU and greedy NMS: hand-computed cases and invariants over random boxes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forensic_app.core.nms import box_area, iou_matrix, nms


def test_iou_hand_computed() -> None:
    a = np.array([[0.0, 0, 10, 10]])
    b = np.array([[5.0, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [2, 2, 4, 4]])
    # overlap 50 / union 150; identical; disjoint; contained 4 / 100
    np.testing.assert_allclose(iou_matrix(a, b), [[1 / 3, 1.0, 0.0, 0.04]])


def test_degenerate_boxes_have_zero_area_and_iou() -> None:
    z = np.array([[5.0, 5, 5, 9]])
    assert box_area(z).tolist() == [0.0]
    assert iou_matrix(z, z).tolist() == [[0.0]]


def test_nms_keeps_best_of_overlapping_and_all_disjoint() -> None:
    boxes = np.array([[0.0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 1, 10, 11]])
    scores = np.array([0.6, 0.9, 0.5, 0.7])
    keep = nms(boxes, scores, 0.4)
    # box 1 (0.9) suppresses 0 (IoU 0.82) and 3 (IoU 0.68); box 2 is far away.
    assert keep.tolist() == [1, 2]


def test_nms_threshold_boundary() -> None:
    boxes = np.array([[0.0, 0, 10, 10], [5, 0, 15, 10]])  # IoU exactly 1/3
    scores = np.array([0.9, 0.8])
    assert nms(boxes, scores, 1 / 3).tolist() == [0, 1]  # not above threshold: kept
    assert nms(boxes, scores, 0.3).tolist() == [0]


def test_nms_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        nms(np.zeros((2, 4)), np.zeros(3), 0.5)


box = st.tuples(st.floats(0, 200), st.floats(0, 200), st.floats(1, 80), st.floats(1, 80)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(box, min_size=1, max_size=25), st.floats(0.1, 0.9), st.randoms())
def test_nms_invariants(boxes: list, thr: float, rnd) -> None:
    b = np.array(boxes)
    s = np.array([rnd.random() for _ in boxes])
    keep = nms(b, s, thr)
    m = iou_matrix(b, b)
    kept = set(keep.tolist())
    # kept boxes never overlap each other above the threshold
    for i in kept:
        for j in kept:
            if i != j:
                assert m[i, j] <= thr + 1e-9
    # every dropped box overlaps a kept box with at least its score above the threshold
    for j in set(range(len(b))) - kept:
        assert any(m[i, j] > thr and s[i] >= s[j] for i in kept)
    # kept in descending score order
    assert list(s[keep]) == sorted(s[keep], reverse=True)


def test_suppress_nested_keeps_the_larger_box() -> None:
    from forensic_app.core.nms import suppress_nested

    boxes = np.array([[10.0, 10, 20, 20], [0, 0, 30, 30], [100, 100, 110, 110], [25, 0, 55, 30]])
    # box 0 lies wholly inside box 1; box 3 is only 1/6 inside box 1
    assert suppress_nested(boxes, 0.8).tolist() == [1, 2, 3]
    assert suppress_nested(boxes[:1], 0.8).tolist() == [0]
