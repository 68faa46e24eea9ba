"""The real CenterFace model: in-memory preparation, verified file, sessions, providers."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from forensic_app.core.detection import CenterFaceDetector, make_dynamic
from forensic_app.core.imaging import load_image
from forensic_app.core.modelstore import CENTERFACE_FILE, ModelError, verified_model_path
from forensic_app.core.runtime import CPU, choose_providers
from forensic_app.core.settings import AnalysisSettings


@pytest.fixture(scope="module")
def centerface_path(models_dir: Path) -> Path:
    path = models_dir / CENTERFACE_FILE
    if not path.is_file():
        pytest.skip("models/centerface.onnx missing: run python -m forensic_app.fetch_models")
    return path


@pytest.fixture(scope="module")
def detector(centerface_path: Path) -> CenterFaceDetector:
    return CenterFaceDetector(centerface_path)


def test_prepared_graph_is_dynamic_and_clean(centerface_path: Path) -> None:
    before = hashlib.sha256(centerface_path.read_bytes()).hexdigest()
    model = onnx.load_from_string(make_dynamic(centerface_path.read_bytes()))
    g = model.graph
    assert [i.name for i in g.input] == ["input.1"]
    dims = [d.dim_param or d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    for out in g.output:
        out_dims = out.type.tensor_type.shape.dim
        assert out_dims[0].dim_param == "batch" and out_dims[2].dim_param and out_dims[3].dim_param
    assert len(g.value_info) == 0
    # the file on disk is untouched and still verifies against the manifest
    assert hashlib.sha256(centerface_path.read_bytes()).hexdigest() == before
    assert verified_model_path(CENTERFACE_FILE, centerface_path.parent)[1] == before


@pytest.mark.parametrize("hw", [(64, 96), (160, 128)])
def test_session_runs_any_size_at_stride_4(detector: CenterFaceDetector, hw) -> None:
    h, w = hw
    heat, scale, offset, lms = detector.run(np.zeros((1, 3, h, w), np.float32))
    assert heat.shape == (1, 1, h // 4, w // 4)
    assert scale.shape == offset.shape == (1, 2, h // 4, w // 4)
    assert lms.shape == (1, 10, h // 4, w // 4)


def test_provider_reported_and_cpu_last(detector: CenterFaceDetector) -> None:
    assert detector.provider in detector.session.get_providers()
    assert choose_providers(None)[-1] == CPU
    assert choose_providers(["NoSuchExecutionProvider", CPU]) == [CPU]


def test_blank_image_has_no_faces(detector: CenterFaceDetector) -> None:
    det = detector.detect(np.full((480, 640, 3), 127, np.uint8), AnalysisSettings())
    assert len(det) == 0


def test_landmarks_are_plausible_on_a_real_photo(detector: CenterFaceDetector, dev_eval_dir):
    """Decoding order check: eyes above the nose, nose above the mouth, all inside the box."""
    photo = dev_eval_dir / "images" / "1--Handshaking" / "1_Handshaking_Handshaking_1_380.jpg"
    img = load_image(photo)
    det = detector.detect(img.rgb, AnalysisSettings(det_threshold=0.6))
    big = [i for i in range(len(det)) if det.boxes[i, 2] - det.boxes[i, 0] >= 40]
    assert big, "expected at least one clear face"
    for i in big:
        (x1, y1, x2, y2), lm = det.boxes[i], det.landmarks[i]
        assert ((lm[:, 0] >= x1) & (lm[:, 0] <= x2) & (lm[:, 1] >= y1) & (lm[:, 1] <= y2)).all()
        eyes_y, nose_y, mouth_y = lm[:2, 1].mean(), lm[2, 1], lm[3:, 1].mean()
        assert eyes_y < nose_y < mouth_y
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left eye/mouth corner first


def test_flip_pass_maps_back_to_the_same_face(detector: CenterFaceDetector, dev_eval_dir) -> None:
    from forensic_app.core.detection import Pass
    from forensic_app.core.nms import iou_matrix

    photo = dev_eval_dir / "images" / "1--Handshaking" / "1_Handshaking_Handshaking_1_380.jpg"
    rgb = load_image(photo).rgb
    plain = detector.run_pass(rgb, Pass(1.0), 0.3)
    mirrored = detector.run_pass(rgb, Pass(1.0, flip=True), 0.5)
    assert len(plain) and len(mirrored)
    # every confident face of the mirrored pass, mapped back, lies on a face of the plain pass
    assert (iou_matrix(mirrored.boxes, plain.boxes).max(axis=1) > 0.6).all()


def test_tampered_or_missing_model_names_file_and_hash(tmp_path: Path, centerface_path: Path):
    manifest = json.loads((centerface_path.parent / "manifest.json").read_text())
    expected = manifest[CENTERFACE_FILE]["sha256"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=expected) as err:
        verified_model_path(CENTERFACE_FILE, tmp_path)
    assert "missing" in str(err.value)
    data = bytearray(centerface_path.read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / CENTERFACE_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="altered") as err:
        verified_model_path(CENTERFACE_FILE, tmp_path)
    assert expected in str(err.value) and CENTERFACE_FILE in str(err.value)
    shutil.rmtree(tmp_path)


def test_tiled_pass_finds_the_same_faces(
    detector: CenterFaceDetector, dev_eval_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiles (used for big passes) map faces back to image coordinates without shifting them."""
    from forensic_app.core import detection
    from forensic_app.core.nms import iou_matrix

    photo = (
        dev_eval_dir
        / "images"
        / "12--Group"
        / ("12_Group_Team_Organized_Group_12_Group_Team_Organized_Group_12_330.jpg")
    )
    rgb = load_image(photo).rgb  # 1024 px wide, eight faces of 40-70 px
    whole = detector.detect_scaled(rgb, 0.5)
    monkeypatch.setattr(detection, "TILE_SIZE", 384)
    monkeypatch.setattr(detection, "TILE_OVERLAP", 128)
    assert len(detection._tile_starts(rgb.shape[1], 384 - 128)) >= 3
    tiled = detector.detect_scaled(rgb, 0.5)
    assert len(whole) >= 6
    best = iou_matrix(whole.boxes, tiled.boxes).max(axis=1)
    assert (best > 0.8).all(), best


def test_a_running_inference_stops_when_cancelled(detector: CenterFaceDetector) -> None:
    # Esc during a long pass: onnxruntime is told to terminate the run in progress (the
    # watcher polls cancel() while the network runs), so nothing waits for the whole pass.
    from forensic_app.core.detection import DetectionCancelled, to_input

    polls = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) > 1  # not before the run starts; as soon as the watcher asks

    blob = to_input(np.zeros((2048, 2048, 3), np.uint8))
    with pytest.raises(DetectionCancelled):
        detector.run(blob, cancel)
    assert len(detector.run(to_input(np.zeros((64, 64, 3), np.uint8)))) == 4  # still usable
