"""Engine API on the real CenterFace with the tiny gender model (outputs known exactly)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from tiny_models import tiny_expected_logit

from forensic_app.core import crops
from forensic_app.core.analysis import AnalysisCancelled, Engine
from forensic_app.core.modelstore import CENTERFACE_FILE, GENDER_FILE, ModelError
from forensic_app.core.results import AnalysisDocument
from forensic_app.core.settings import AnalysisSettings

PHOTO = Path("12--Group") / "12_Group_Team_Organized_Group_12_Group_Team_Organized_Group_12_330.jpg"


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


@pytest.fixture(scope="module")
def tiny_engine(models_dir: Path, tiny_gender_model: Path) -> Engine:
    if not (models_dir / CENTERFACE_FILE).is_file():
        pytest.skip("models/centerface.onnx missing: run python -m forensic_app.fetch_models")
    return Engine.create(models_dir, gender_model=tiny_gender_model)


@pytest.fixture(scope="module")
def photo(dev_eval_dir: Path) -> Path:
    return dev_eval_dir / "images" / PHOTO


def test_create_reports_models_and_provider(tiny_engine: Engine, tiny_gender_model: Path) -> None:
    roles = {m.role: m for m in tiny_engine.models}
    assert set(roles) == {"detector", "gender"}
    assert roles["gender"].sha256 == hashlib.sha256(tiny_gender_model.read_bytes()).hexdigest()
    assert roles["gender"].name == "tiny_test_gender"
    assert len(roles["detector"].sha256) == 64
    assert tiny_engine.provider.endswith("ExecutionProvider")
    assert tiny_engine.last_error is None


def test_missing_gender_model_names_the_expected_file(tmp_path: Path, models_dir: Path) -> None:
    if not (models_dir / CENTERFACE_FILE).is_file():
        pytest.skip("models/centerface.onnx missing")
    (tmp_path / "manifest.json").write_bytes((models_dir / "manifest.json").read_bytes())
    os.symlink(models_dir / CENTERFACE_FILE, tmp_path / CENTERFACE_FILE)
    with pytest.raises(ModelError, match=GENDER_FILE):
        Engine.create(tmp_path)
    with pytest.raises(ModelError, match="nope.onnx"):
        Engine.create(tmp_path, gender_model=tmp_path / "nope.onnx")


def test_analyze_path_faces_and_exact_gender_outputs(tiny_engine: Engine, photo: Path) -> None:
    from forensic_app.core.imaging import load_image

    settings = AnalysisSettings()
    result = tiny_engine.analyze_path(photo, settings)
    assert result.ok and result.error is None
    assert result.sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
    from PIL import Image

    with Image.open(photo) as im:
        assert (result.width, result.height) == im.size
    assert len(result.faces) >= 6, "the group photo has eight clear faces"
    assert {"load", "detect", "classify", "total"} <= set(result.timings_ms)
    assert result.settings == settings.to_dict()
    spec = tiny_engine.gender_spec
    rgb = load_image(photo).rgb
    boxes = [f.box for f in result.faces]
    batch = np.stack(
        [
            crops.extract_crop(rgb, b, spec.input_size, spec.crop_margin, spec.crop_shape)
            for b in boxes
        ]
    )
    expected = sigmoid(tiny_expected_logit(batch))
    got = np.array([f.p_male for f in result.faces])
    np.testing.assert_allclose(got, expected, atol=2e-4)  # p_male is rounded to 4 places
    for f in result.faces:
        x1, y1, x2, y2 = f.box
        assert 0 <= x1 < x2 <= result.width and 0 <= y1 < y2 <= result.height
        assert f.score >= settings.det_threshold and min(x2 - x1, y2 - y1) >= settings.min_face
        assert len(f.landmarks) == 5 and f.age is not None
        assert f.gender == tiny_engine.label_for(f.p_male) and not f.manual


def test_threshold_and_min_face_filter(tiny_engine: Engine, photo: Path) -> None:
    loose = tiny_engine.analyze_path(photo, AnalysisSettings(det_threshold=0.3, min_face=8))
    strict = tiny_engine.analyze_path(photo, AnalysisSettings(det_threshold=0.6, min_face=40))
    assert all(f.score >= 0.6 for f in strict.faces)
    assert all(min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= 40 for f in strict.faces)
    assert {tuple(f.box) for f in strict.faces} <= {tuple(f.box) for f in loose.faces}
    scores = sorted(f.score for f in loose.faces)
    top = tiny_engine.analyze_path(photo, AnalysisSettings(det_threshold=scores[-1] - 1e-3))
    assert 1 <= len(top.faces) < len(loose.faces)
    assert tiny_engine.analyze_path(photo, AnalysisSettings(min_face=2000)).faces == []


def test_no_detect_classifies_the_whole_image(tiny_engine: Engine, photo: Path) -> None:
    from forensic_app.core.imaging import load_image

    result = tiny_engine.analyze_path(photo, AnalysisSettings(no_detect=True))
    assert len(result.faces) == 1
    face = result.faces[0]
    spec = tiny_engine.gender_spec
    rgb = load_image(photo).rgb
    assert face.box == [0.0, 0.0, float(result.width), float(result.height)]
    assert face.score is None and face.landmarks is None
    whole = crops.whole_image_crop(rgb, spec.input_size, spec.crop_shape)[None]
    assert face.p_male == pytest.approx(float(sigmoid(tiny_expected_logit(whole))[0]), abs=2e-4)
    assert any("whole image" in n for n in result.notes)


def test_bad_image_is_an_error_result_not_an_exception(tiny_engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a full jpeg")
    result = tiny_engine.analyze_path(bad)
    assert not result.ok and "broken.jpg" in result.error and result.faces == []
    assert tiny_engine.last_error == result.error
    missing = tiny_engine.analyze_path(tmp_path / "gone.png")
    assert "not found" in missing.error


def test_cancel_raises(tiny_engine: Engine, photo: Path) -> None:
    with pytest.raises(AnalysisCancelled):
        tiny_engine.analyze_path(photo, cancel=lambda: True)


def test_classify_boxes_for_hand_drawn_boxes(tiny_engine: Engine) -> None:
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[:, 100:] = 255
    faces = tiny_engine.classify_boxes(rgb, [[10, 10, 60, 60], [130, 20, 190, 80]])
    assert [f.manual_box for f in faces] == [True, True]
    assert [f.score for f in faces] == [None, None]
    assert faces[0].gender == "female" and faces[1].gender == "male"  # dark vs bright crops
    assert faces[0].p_male < 0.05 < 0.95 < faces[1].p_male
    assert tiny_engine.classify_boxes(rgb, []) == []


def test_band_and_labels(tiny_engine: Engine) -> None:
    assert tiny_engine.band() == (0.35, 0.65)  # the model's own band (metadata)
    custom = AnalysisSettings(uncertain_band=(0.2, 0.9))
    assert tiny_engine.band(custom) == (0.2, 0.9)
    label = tiny_engine.label_for
    assert [label(p) for p in (0.1, 0.35, 0.5, 0.65, 0.9)] == [
        "female",
        "uncertain",
        "uncertain",
        "uncertain",
        "male",
    ]
    assert [label(p, custom) for p in (0.19, 0.5, 0.91)] == ["female", "uncertain", "male"]


def test_document_json_round_trip(tiny_engine: Engine, photo: Path, tmp_path: Path) -> None:
    settings = AnalysisSettings(detection_mode="fast")
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    images = [tiny_engine.analyze_path(photo, settings), tiny_engine.analyze_path(bad, settings)]
    doc = tiny_engine.document(settings, images)
    text = doc.to_json()
    data = json.loads(text)
    assert data["provider"] == tiny_engine.provider
    assert [m["role"] for m in data["models"]] == ["detector", "gender"]
    assert data["settings"]["detection_mode"] == "fast"
    assert data["images"][1]["error"] and data["images"][1]["faces"] == []
    face = data["images"][0]["faces"][0]
    assert set(face) >= {"box", "score", "landmarks", "gender", "p_male", "age"}
    assert face["gender"] in ("female", "male", "uncertain") and 0 <= face["p_male"] <= 1
    again = AnalysisDocument.from_dict(data)
    assert again.to_dict() == data


@pytest.mark.parametrize("size", [(1, 1), (3, 70), (5000, 20)])
def test_degenerate_image_sizes_in_every_mode(tiny_engine: Engine, tmp_path: Path, size) -> None:
    from PIL import Image

    path = tmp_path / "odd.png"
    Image.new("RGB", size, (9, 9, 9)).save(path)
    for mode in ("fast", "standard", "thorough"):
        result = tiny_engine.analyze_path(path, AnalysisSettings(detection_mode=mode))
        assert result.ok and result.faces == [] and (result.width, result.height) == size


def test_sessions_use_the_memory_options_adr_0009_chose(tiny_engine: Engine) -> None:
    """The options measured in ADR 0009 reach the real sessions: turning the arena back on (which
    kept every photo's largest activations for good) or letting the detector's idle threads spin
    fails here, not only in a 40-minute benchmark."""
    import sys

    from forensic_app.core import runtime

    det = tiny_engine.detector.session.get_session_options()
    gen = tiny_engine.classifier.session.get_session_options()
    assert runtime.DETECTOR_MEMORY == runtime.SessionMemory(cpu_arena=False, mem_pattern=True)
    assert runtime.GENDER_MEMORY == runtime.SessionMemory(cpu_arena=False, mem_pattern=True)
    assert (det.enable_cpu_mem_arena, det.enable_mem_pattern) == (False, True)
    assert (gen.enable_cpu_mem_arena, gen.enable_mem_pattern) == (False, True)
    assert det.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert det.inter_op_num_threads == gen.inter_op_num_threads == 1
    if sys.platform.startswith("linux"):  # glibc's mmap threshold fixed before the first session
        assert runtime._heap_bounded  # set by make_session itself, not by this test
