"""Detector runs from several photos take turns within a pixel budget (issue 16, ADR 0009).

One 1,920-px main pass holds ~420 MB of activations; with one photo per core two of them ran at
once and were the largest part of peak memory. These tests drive the real CenterFace session
from two threads, as a two-worker batch does, and check what was in inference at once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from forensic_app.core.detection import (
    DETECT_PIXELS_IN_FLIGHT,
    CenterFaceDetector,
    DetectionCancelled,
    PixelBudget,
)
from forensic_app.core.imaging import load_image
from forensic_app.core.modelstore import CENTERFACE_FILE
from forensic_app.core.settings import AnalysisSettings

MAIN_PASS = 1920 * 1440  # the main pass of a 4:3 photo at the default detect size


def test_budget_admits_small_requests_together_and_a_big_one_alone() -> None:
    budget = PixelBudget(10)
    budget.acquire(4)
    budget.acquire(6)  # fits beside the first
    assert budget.in_flight == 10
    admitted = threading.Event()

    def big() -> None:
        budget.acquire(25)  # over the limit: waits until nothing else is in flight
        admitted.set()

    t = threading.Thread(target=big)
    t.start()
    assert not admitted.wait(0.2)
    budget.release(4)
    assert not admitted.wait(0.2)  # still one request in flight
    budget.release(6)
    assert admitted.wait(2.0)  # alone now: never refused
    t.join()
    assert budget.in_flight == 25 and budget.peak == 25
    budget.release(25)
    assert budget.in_flight == 0


def test_waiting_for_the_budget_honours_cancel() -> None:
    budget = PixelBudget(10)
    budget.acquire(8)
    cancelled = threading.Event()
    start = time.monotonic()
    with pytest.raises(DetectionCancelled):
        threading.Timer(0.1, cancelled.set).start()
        budget.acquire(8, cancel=cancelled.is_set)
    assert time.monotonic() - start < 2.0
    assert budget.in_flight == 8  # the cancelled request took nothing


@pytest.fixture(scope="module")
def big_photos(dev_eval_dir: Path) -> list[np.ndarray]:
    """Two real dev-eval photos scaled to 1,920x1,440: each main pass is a full-size run."""
    paths = sorted((dev_eval_dir / "images").glob("*/*.jpg"))[:2]
    return [
        cv2.resize(load_image(p).rgb, (1920, 1440), interpolation=cv2.INTER_LINEAR) for p in paths
    ]


def _detect_concurrently(detector: CenterFaceDetector, photos: list[np.ndarray]) -> list:
    """Detect each photo on its own thread, as two batch workers do; record the in-flight peak."""
    settings = AnalysisSettings()
    out: list = [None] * len(photos)
    go = threading.Barrier(len(photos))

    def work(i: int) -> None:
        go.wait()
        out[i] = detector.detect(photos[i], settings)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(photos))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_two_photos_never_run_two_main_passes_at_once(models_dir: Path, big_photos) -> None:
    path = models_dir / CENTERFACE_FILE
    if not path.is_file():
        pytest.skip("models/centerface.onnx missing: run python -m forensic_app.fetch_models")
    detector = CenterFaceDetector(path, threads=2)
    settings = AnalysisSettings()
    alone = [detector.detect(p, settings) for p in big_photos]
    assert all(len(d) > 0 for d in alone)  # real faces found: the runs did real work

    detector.budget.peak = 0
    together = _detect_concurrently(detector, big_photos)
    assert detector.budget.peak <= DETECT_PIXELS_IN_FLIGHT < 2 * MAIN_PASS
    assert detector.budget.peak >= MAIN_PASS  # a main pass did run (the budget was exercised)
    assert detector.budget.in_flight == 0
    for a, b in zip(alone, together, strict=True):  # taking turns changes no result
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)

    # Without the budget the same two threads do overlap their main passes: the test can fail.
    loose = CenterFaceDetector(path, threads=2, max_pixels_in_flight=10 * MAIN_PASS)
    _detect_concurrently(loose, big_photos)
    assert loose.budget.peak >= 2 * MAIN_PASS
