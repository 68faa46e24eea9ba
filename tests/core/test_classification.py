"""Gender model metadata contract and batched classification, against tiny computable models."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import TINY_AGE_SLOPE, TINY_GAIN, tiny_expected_logit

from forensic_app.core.classification import GenderClassifier, p_male_from_output, preprocess
from forensic_app.core.modelstore import GenderModelSpec, ModelError, parse_gender_metadata


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def uniform_crops(values: list[int], size: int = 32) -> np.ndarray:
    return np.stack([np.full((size, size, 3), v, np.uint8) for v in values])


# -- metadata parsing --------------------------------------------------------------------------


def test_no_contract_key_means_legacy_contract() -> None:
    spec = parse_gender_metadata({"producer": "whatever"})
    assert spec.legacy and spec.input_size == 150 and spec.color_order == "RGB"
    assert spec.scale == pytest.approx(1 / 255) and spec.gender_output_kind == "p_male"
    assert spec.crop_shape == "stretch" and spec.crop_margin == 0.25
    assert spec.uncertain_band == (0.35, 0.65)


def test_contract_metadata_is_read() -> None:
    spec = parse_gender_metadata(
        {
            "forensic_app.contract": "1",
            "input_size": "112",
            "color_order": "bgr",
            "scale": "0.00392156862745098",
            "mean": "0.5,0.5,0.5",
            "std": "0.25;0.5;1",
            "gender_output": "g",
            "gender_output_kind": "logits_fm",
            "temperature": "1.5",
            "age_output": "age",
            "uncertain_band": "0.2,0.8",
            "crop_shape": "square",
            "model_name": "m",
            "model_version": "v9",
        }
    )
    assert not spec.legacy and spec.input_size == 112 and spec.color_order == "BGR"
    assert spec.std == (0.25, 0.5, 1.0) and spec.mean == (0.5, 0.5, 0.5)
    assert spec.gender_output_kind == "logits_fm" and spec.temperature == 1.5
    assert spec.age_output == "age" and spec.uncertain_band == (0.2, 0.8)
    assert (spec.name, spec.version) == ("m", "v9")


@pytest.mark.parametrize(
    "bad",
    [
        {"forensic_app.contract": "2", "input_size": "112"},
        {"forensic_app.contract": "1"},  # input_size missing
        {"forensic_app.contract": "1", "input_size": "112", "gender_output_kind": "softmax3"},
        {"forensic_app.contract": "1", "input_size": "112", "uncertain_band": "0.7,0.3"},
        {"forensic_app.contract": "1", "input_size": "112", "mean": "0.5,0.5"},
        {"forensic_app.contract": "1", "input_size": "112", "color_order": "HSV"},
        {"forensic_app.contract": "1", "input_size": "112", "labels": "a,b,c"},
    ],
)
def test_invalid_contract_metadata_is_a_model_error(bad: dict[str, str]) -> None:
    with pytest.raises(ModelError):
        parse_gender_metadata(bad)


# -- preprocessing and output kinds -----------------------------------------------------------


def test_preprocess_applies_color_order_scale_mean_std() -> None:
    crop = np.zeros((1, 2, 2, 3), np.uint8)
    crop[..., 0], crop[..., 1], crop[..., 2] = 255, 128, 0
    spec = GenderModelSpec(
        color_order="BGR", scale=1 / 255, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 1.0), legacy=False
    )
    x = preprocess(crop, spec)
    assert x.shape == (1, 3, 2, 2) and x.dtype == np.float32
    # channel 0 is blue (0) after BGR reordering: (0 - 0.5) / 0.5 = -1
    np.testing.assert_allclose(x[0, :, 0, 0], [-1.0, (128 / 255 - 0.5) / 0.25, 0.5], atol=1e-6)


def test_output_kinds_and_temperature() -> None:
    z = np.array([-2.0, 0.0, 3.0])
    spec = GenderModelSpec(gender_output_kind="logit_male", temperature=2.0)
    np.testing.assert_allclose(p_male_from_output(z[:, None], spec, 3), sigmoid(z / 2))
    spec = GenderModelSpec(gender_output_kind="logits_fm", temperature=1.0)
    logits = np.stack([np.zeros(3), z], axis=1)  # female logit 0, male logit z
    np.testing.assert_allclose(p_male_from_output(logits, spec, 3), sigmoid(z))
    spec = GenderModelSpec(gender_output_kind="p_male")
    np.testing.assert_allclose(p_male_from_output(np.array([0.2, 1.3, -1]), spec, 3), [0.2, 1, 0])
    spec = GenderModelSpec(gender_output_kind="p_male", temperature=2.0)
    np.testing.assert_allclose(p_male_from_output(sigmoid(z), spec, 3), sigmoid(z / 2), atol=1e-6)
    with pytest.raises(ModelError, match="shape"):
        p_male_from_output(np.zeros((3, 3)), GenderModelSpec(gender_output_kind="logits_fm"), 3)


# -- real (tiny) ONNX models --------------------------------------------------------------------


class CountingSession:
    """Wraps an InferenceSession to count ``run`` calls (batching is part of the contract)."""

    def __init__(self, session) -> None:
        self._s = session
        self.calls = 0

    def run(self, *args, **kwargs):
        self.calls += 1
        return self._s.run(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._s, name)


def test_tiny_model_outputs_are_exact_and_batched(tiny_gender_model) -> None:
    clf = GenderClassifier(tiny_gender_model, threads=1)
    assert clf.spec.input_size == 32 and clf.age_output == "age"
    crops = uniform_crops([0, 64, 128, 200, 255])
    counter = CountingSession(clf.session)
    clf.session = counter
    pred = clf.predict(crops)
    assert counter.calls == 1  # all faces of an image in one call
    np.testing.assert_allclose(pred.p_male, sigmoid(tiny_expected_logit(crops)), atol=1e-5)
    m = np.array([0, 64, 128, 200, 255]) / 255
    np.testing.assert_allclose(pred.age, 20 + TINY_AGE_SLOPE * m, rtol=1e-5)
    assert pred.p_male[0] < 0.05 and pred.p_male[-1] > 0.95  # the gain makes ends confident


@pytest.mark.parametrize("kind", ["p_male", "logits_fm"])
def test_other_output_kinds_agree(make_gender_model, kind: str) -> None:
    crops = uniform_crops([10, 120, 250])
    clf = GenderClassifier(make_gender_model(output_kind=kind, with_age=False), threads=1)
    pred = clf.predict(crops)
    assert pred.age is None
    np.testing.assert_allclose(pred.p_male, sigmoid(tiny_expected_logit(crops)), atol=1e-5)


def test_temperature_from_metadata(make_gender_model) -> None:
    crops = uniform_crops([30, 220])
    clf = GenderClassifier(make_gender_model(metadata={"temperature": "2.0"}), threads=1)
    expected = sigmoid(tiny_expected_logit(crops) / 2.0)
    np.testing.assert_allclose(clf.predict(crops).p_male, expected, atol=1e-5)


def test_normalisation_from_metadata_changes_the_input(make_gender_model) -> None:
    # mean 0.5 / std 0.5 maps pixel 255 to +1 and 0 to -1: logit = gain * (x_mean - 0.5)
    clf = GenderClassifier(
        make_gender_model(metadata={"mean": "0.5,0.5,0.5", "std": "0.5,0.5,0.5"}), threads=1
    )
    pred = clf.predict(uniform_crops([255, 0]))
    np.testing.assert_allclose(
        pred.p_male, sigmoid(TINY_GAIN * (np.array([1.0, -1.0]) - 0.5)), atol=1e-5
    )


def test_fixed_batch_model_gives_the_same_answers(make_gender_model) -> None:
    crops = uniform_crops([5, 50, 100, 150, 200, 250, 30])
    dynamic = GenderClassifier(make_gender_model(), threads=1).predict(crops)
    fixed = GenderClassifier(make_gender_model(fixed_batch=4), threads=1)
    assert fixed.max_batch == 4
    pred = fixed.predict(crops)
    np.testing.assert_allclose(pred.p_male, dynamic.p_male, atol=1e-6)
    np.testing.assert_allclose(pred.age, dynamic.age, atol=1e-5)


def test_legacy_model_without_metadata(make_gender_model) -> None:
    path = make_gender_model(
        contract=False, input_size=150, output_kind="p_male", with_age=False, input_name="input.1"
    )
    clf = GenderClassifier(path, threads=1)
    assert clf.spec.legacy and clf.spec.crop_shape == "stretch" and clf.input_name == "input.1"
    rgb = np.full((300, 400, 3), 230, np.uint8)
    crops = clf.crops_for_boxes(rgb, [[100, 100, 200, 180]])
    assert crops.shape == (1, 150, 150, 3)
    expected = sigmoid(TINY_GAIN * (230 / 255 - 0.5))
    np.testing.assert_allclose(clf.predict(crops).p_male, expected, atol=1e-4)  # float32 mean


def test_input_size_mismatch_is_refused(make_gender_model) -> None:
    path = make_gender_model(input_size=32, metadata={"input_size": "64"})
    with pytest.raises(ModelError, match="input_size"):
        GenderClassifier(path, threads=1)


def test_missing_named_output_is_refused(make_gender_model) -> None:
    with pytest.raises(ModelError, match="no output"):
        GenderClassifier(make_gender_model(metadata={"gender_output": "nope"}), threads=1)


def test_corrupt_model_file_is_a_model_error(tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match="bad.onnx"):
        GenderClassifier(bad, threads=1)
