"""Memory does not grow with faces per photo: the gender model is fed fixed-size chunks (ADR 0009).

The session's ``run`` is wrapped so the test sees every batch the model receives; a photo with
1,000 faces (hand-drawn boxes, and a detector stub returning 1,000 boxes through the analysis
path) must come back whole, with each face's output equal to the tiny model's exact answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import tiny_expected_logit

from forensic_app.core import crops
from forensic_app.core.analysis import Engine
from forensic_app.core.classification import CHUNK_SIZE
from forensic_app.core.detection import Detections
from forensic_app.core.imaging import load_image
from forensic_app.core.modelstore import CENTERFACE_FILE
from forensic_app.core.settings import AnalysisSettings

PHOTO = Path("10--People_Marching") / "10_People_Marching_People_Marching_2_2.jpg"
N_FACES = 1000


class RecordingSession:
    """Wraps an onnxruntime session; records the batch size of every ``run``."""

    def __init__(self, session) -> None:
        self._session = session
        self.batches: list[int] = []

    def run(self, outputs, feeds):
        (blob,) = feeds.values()
        self.batches.append(int(blob.shape[0]))
        return self._session.run(outputs, feeds)

    def __getattr__(self, name):
        return getattr(self._session, name)


@pytest.fixture()
def tiny_engine(models_dir: Path, tiny_gender_model: Path) -> Engine:
    if not (models_dir / CENTERFACE_FILE).is_file():
        pytest.skip("models/centerface.onnx missing: run python -m forensic_app.fetch_models")
    return Engine.create(models_dir, gender_model=tiny_gender_model, threads=1)


@pytest.fixture()
def crowd_rgb(dev_eval_dir: Path) -> np.ndarray:
    return load_image(dev_eval_dir / "images" / PHOTO).rgb


def grid_boxes(width: int, height: int, n: int, seed: int = 0) -> np.ndarray:
    """``n`` face-sized boxes spread over the photo (some overlap, some touch the border)."""
    rng = np.random.default_rng(seed)
    side = rng.uniform(12, 80, n)
    x1 = rng.uniform(-10, width - 10, n)
    y1 = rng.uniform(-10, height - 10, n)
    return np.stack([x1, y1, x1 + side, y1 + side * 1.2], axis=1).clip(0, [width, height] * 2)


def expected_p_male(engine: Engine, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    spec = engine.gender_spec
    batch = np.stack(
        [
            crops.extract_crop(rgb, b, spec.input_size, spec.crop_margin, spec.crop_shape)
            for b in boxes
        ]
    )
    z = tiny_expected_logit(batch)
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def test_thousand_hand_drawn_boxes_are_classified_in_chunks(
    tiny_engine: Engine, crowd_rgb: np.ndarray
) -> None:
    h, w = crowd_rgb.shape[:2]
    boxes = grid_boxes(w, h, N_FACES)
    recorder = RecordingSession(tiny_engine.classifier.session)
    tiny_engine.classifier.session = recorder
    faces = tiny_engine.classify_boxes(crowd_rgb, boxes.tolist())
    assert len(faces) == N_FACES
    assert recorder.batches and max(recorder.batches) <= CHUNK_SIZE
    assert sum(recorder.batches) == N_FACES  # every face exactly once, none dropped
    got = np.array([f.p_male for f in faces])
    np.testing.assert_allclose(got, expected_p_male(tiny_engine, crowd_rgb, boxes), atol=1e-5)
    assert all(f.manual_box for f in faces)


def test_thousand_detections_through_the_analysis_path(
    tiny_engine: Engine, crowd_rgb: np.ndarray, dev_eval_dir: Path, monkeypatch
) -> None:
    image = load_image(dev_eval_dir / "images" / PHOTO)
    boxes = grid_boxes(image.width, image.height, N_FACES, seed=1)
    landmarks = np.repeat(boxes[:, None, :2], 5, axis=1)
    scores = np.linspace(0.99, 0.11, N_FACES)
    monkeypatch.setattr(
        tiny_engine.detector,
        "detect",
        lambda rgb, settings, cancel=None: Detections(boxes.copy(), scores, landmarks),
    )
    recorder = RecordingSession(tiny_engine.classifier.session)
    tiny_engine.classifier.session = recorder
    crop_calls: list[int] = []
    real_crops = tiny_engine.classifier.crops_for_boxes

    def counting_crops(rgb, chunk):
        crop_calls.append(len(chunk))
        return real_crops(rgb, chunk)

    monkeypatch.setattr(tiny_engine.classifier, "crops_for_boxes", counting_crops)
    result = tiny_engine.analyze_image(image, AnalysisSettings(det_threshold=0.1))
    assert result.ok, result.error
    assert len(result.faces) == N_FACES
    assert max(recorder.batches) <= CHUNK_SIZE and sum(recorder.batches) == N_FACES
    assert max(crop_calls) <= CHUNK_SIZE  # never all 1,000 crops at once
    # faces come back in reading order (results.number_faces): match them by their box
    want = expected_p_male(tiny_engine, image.rgb, boxes)
    by_box = {tuple(round(float(v), 2) for v in b): p for b, p in zip(boxes, want, strict=True)}
    got = np.array([f.p_male for f in result.faces])
    np.testing.assert_allclose(got, [by_box[tuple(f.box)] for f in result.faces], atol=2e-4)


def test_a_chunk_larger_than_the_chunk_size_is_refused(tiny_engine: Engine) -> None:
    s = tiny_engine.gender_spec.input_size
    blob = np.zeros((CHUNK_SIZE + 1, 3, s, s), dtype=np.float32)
    with pytest.raises(ValueError, match="chunk size"):
        tiny_engine.classifier.run(blob)
