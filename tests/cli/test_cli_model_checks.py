"""Issue 17, models: a deleted manifest no longer switches hash checks off, metadata values are
validated at load, and NaN never reaches an output. Real Engine.create through the CLI, with
tiny ONNX gender models (tests/tiny_models.py) and the real CenterFace file."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from fake_engine import make_photo

from forensic_app.cli import main
from forensic_app.core.classification import GenderClassifier
from forensic_app.core.modelstore import CENTERFACE_FILE, GENDER_FILE, ModelError


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, stdout=out, stderr=err)  # the real engine factory
    return rc, out.getvalue(), err.getvalue()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def models(tmp_path, monkeypatch, models_dir, make_gender_model):
    """A models folder: the real CenterFace (linked), a tiny gender model and their manifest."""
    if not (models_dir / CENTERFACE_FILE).is_file():
        pytest.skip("models/centerface.onnx missing: run python -m forensic_app.fetch_models")
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "models"
    folder.mkdir()
    os.symlink(models_dir / CENTERFACE_FILE, folder / CENTERFACE_FILE)
    make_gender_model(folder / GENDER_FILE)
    manifest = {name: {"sha256": sha(folder / name)} for name in (CENTERFACE_FILE, GENDER_FILE)}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    make_photo(tmp_path / "a.jpg", color=(200, 30, 30))
    return folder


def test_intact_models_run(models):
    rc, out, err = run(["analyze", "a.jpg", "--models", str(models), "--json", "-"])
    assert rc == 0, err
    assert all("unverified" not in m for m in json.loads(out)["models"])
    assert "UNVERIFIED" not in err


def test_deleted_manifest_is_exit_3_not_a_silent_pass(models):
    (models / "manifest.json").unlink()
    (models / GENDER_FILE).write_bytes((models / GENDER_FILE).read_bytes() + b"altered")
    rc, out, err = run(["analyze", "a.jpg", "--models", str(models), "--json", "-"])
    assert rc == 3
    assert out == ""
    assert "manifest missing" in err and "manifest.json" in err


def test_altered_gender_model_is_exit_3(models, make_gender_model):
    make_gender_model(models / GENDER_FILE, gain=-8.0)  # flipped genders, same file name
    rc, out, err = run(["analyze", "a.jpg", "--models", str(models), "--json", "-"])
    assert rc == 3 and out == ""
    assert "altered" in err and GENDER_FILE in err


def test_manifest_of_the_wrong_shape_is_exit_3(models):
    (models / "manifest.json").write_text('["not", "a", "manifest"]', encoding="utf-8")
    rc, out, err = run(["analyze", "a.jpg", "--models", str(models)])
    assert rc == 3 and "not a valid manifest" in err


def test_explicit_gender_model_without_manifest_runs_and_says_unverified(models, make_gender_model):
    (models / "manifest.json").unlink()
    chosen = make_gender_model()
    argv = ["analyze", "a.jpg", "--models", str(models), "--gender-model", str(chosen)]
    rc, out, err = run([*argv, "--json", "-"])
    assert rc == 0, err
    doc = json.loads(out)
    unverified = {m["role"]: m.get("unverified") for m in doc["models"]}
    assert unverified["gender"] and unverified["detector"]  # both said, neither hidden
    assert "UNVERIFIED" in err and str(chosen.name) in err


def test_model_with_a_planted_manifest_beside_it_is_still_unverified(
    models, make_gender_model, tmp_path
):
    """Red-team: an altered model in its own folder with a manifest.json listing its hash
    (what its supplier can write) ran as verified, without any warning."""
    evil = tmp_path / "evil"
    evil.mkdir()
    chosen = make_gender_model(evil / "g.onnx", gain=-1.0)  # flipped perceived genders
    (evil / "manifest.json").write_text(json.dumps({"g.onnx": {"sha256": sha(chosen)}}))
    argv = ["analyze", "a.jpg", "--models", str(models), "--gender-model", str(chosen)]
    rc, out, err = run([*argv, "--json", "-"])
    assert rc == 0, err
    unverified = {m["role"]: m.get("unverified") for m in json.loads(out)["models"]}
    assert unverified["detector"] is None  # the installation's manifest vouches for it
    assert "listed only in" in unverified["gender"] and "UNVERIFIED" in err
    # A copy of the installed model, anywhere, is vouched for by the installation's hash.
    copy = tmp_path / "copy.onnx"
    copy.write_bytes((models / GENDER_FILE).read_bytes())
    argv = ["analyze", "a.jpg", "--models", str(models), "--gender-model", str(copy)]
    rc, out, err = run([*argv, "--json", "-"])
    assert rc == 0, err
    assert all(m.get("unverified") is None for m in json.loads(out)["models"])
    assert "UNVERIFIED" not in err


def test_info_shows_a_hostile_model_name_escaped(models, make_gender_model):
    """Red-team: model_name/model_version come from the model file's metadata; ``info``
    printed them raw, so a model could drive the terminal."""
    chosen = make_gender_model(
        metadata={"model_name": "m\x1b[2J\u202e", "model_version": "1\x1b]0;t\x07"}
    )
    rc, out, err = run(["info", "--models", str(models), "--gender-model", str(chosen)])
    assert rc == 0, err
    assert "\x1b" not in out + err and "\u202e" not in out + err
    assert "m\\x1b[2J\\u202e 1\\x1b]0;t\\x07" in out


def test_model_file_with_a_hostile_name_loads_and_round_trips(models, make_gender_model, tmp_path):
    """Red-team: a gender model named with an undecodable byte and an escape could not be
    loaded (onnxruntime takes only str paths: exit 3 with a pybind dump), and its path would
    have broken the JSON document."""
    raw = os.fsencode(tmp_path) + b"/g\xff\x1b[31m.onnx"
    chosen = make_gender_model(Path(os.fsdecode(raw)), input_size=16)
    argv = ["analyze", "a.jpg", "--models", str(models), "--gender-model", str(chosen)]
    rc, out, err = run([*argv, "--json", "-"])
    assert rc == 0, err
    assert "\x1b" not in err
    from forensic_app.core.results import AnalysisDocument

    doc = AnalysisDocument.from_dict(json.loads(out))
    gender = next(m for m in doc.models if m.role == "gender")
    assert os.fsencode(gender.path) == raw and gender.unverified


BAD_METADATA = [
    {"temperature": "0"},
    {"temperature": "-1.5"},
    {"temperature": "nan"},
    {"temperature": "inf"},
    {"std": "1,0,1"},
    {"std": "1,nan,1"},
    {"scale": "0"},
    {"uncertain_band": "0,0.5"},
    {"uncertain_band": "0.6,0.4"},
    {"uncertain_band": "0.3,1"},
    {"uncertain_band": "0.5,0.5"},
    {"mean": "0,inf,0"},
]


@pytest.mark.parametrize(
    "meta", BAD_METADATA, ids=lambda m: ",".join(f"{k}={v}" for k, v in m.items())
)
def test_bad_metadata_values_are_refused_at_load(make_gender_model, meta):
    path = make_gender_model(metadata=meta)
    with pytest.raises(ModelError, match="metadata is invalid"):
        GenderClassifier(path)


@pytest.mark.parametrize("meta", [{"temperature": "0"}, {"uncertain_band": "0.7,0.2"}])
def test_bad_metadata_is_exit_3_in_the_cli(models, make_gender_model, meta):
    bad = make_gender_model(metadata=meta)
    rc, out, err = run(["analyze", "a.jpg", "--models", str(models), "--gender-model", str(bad)])
    assert rc == 3
    assert "metadata is invalid" in err and next(iter(meta)) in err


def test_nan_output_is_a_per_photo_error_never_a_number(models, make_gender_model):
    nan_model = make_gender_model(gain=float("nan"))
    argv = ["analyze", "a.jpg", "--no-detect", "--models", str(models)]
    rc, out, err = run([*argv, "--gender-model", str(nan_model), "--json", "-"])
    assert rc == 1
    assert "NaN" not in out.replace("(NaN or infinity)", "")  # no NaN token in the JSON
    image = json.loads(out)["images"][0]
    assert image["faces"] == [] and "non-numeric" in image["error"]
