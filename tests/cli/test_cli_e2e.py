"""The installed command line, end to end, in a subprocess with the real engine.

Runs ``python -m forensic_app`` on real dev-eval photos with the real CenterFace model and the
tiny contract-following gender model (the trained one is used by other tests when present).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forensic_app import __version__

pytestmark = pytest.mark.slow


def cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forensic_app", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def real_models(models_dir):
    if not (models_dir / "centerface.onnx").is_file():
        pytest.skip("models/centerface.onnx missing: run python -m forensic_app.fetch_models")
    return models_dir


@pytest.fixture
def sample(dev_eval_dir, dev_eval_annotations, tmp_path):
    """Three dev-eval photos copied into a folder with awkward names."""
    names = sorted(dev_eval_annotations)[:3]
    folder = tmp_path / "séized photos"
    folder.mkdir()
    out = []
    for i, name in enumerate(names):
        target = folder / f"{i}_{Path(name).name}"
        shutil.copy(dev_eval_dir / "images" / name, target)
        out.append(target)
    return folder, out, [dev_eval_annotations[n] for n in names]


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_version_subprocess(tmp_path):
    proc = cli("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"forensic-app {__version__}"


def test_analyze_real_photos_json_stdout(real_models, tiny_gender_model, sample, tmp_path):
    folder, photos, annotations = sample
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in photos}
    proc = cli(
        "analyze",
        folder.name,
        "--json",
        "-",
        "--out",
        "annotated",
        "--gender-model",
        str(tiny_gender_model),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # stdout holds the document and nothing else
    assert doc["tool_version"] == __version__
    assert doc["provider"].endswith("ExecutionProvider")
    roles = {m["role"]: m for m in doc["models"]}
    from forensic_app.core.modelstore import CENTERFACE_FILE, DEFAULT_PRECISION, model_file

    detector_file = model_file(CENTERFACE_FILE, DEFAULT_PRECISION["detector"])
    if not (real_models / detector_file).is_file():
        detector_file = CENTERFACE_FILE  # the engine's fallback (it logs why)
    assert (
        roles["detector"]["sha256"]
        == json.loads((real_models / "manifest.json").read_text())[detector_file]["sha256"]
    )
    assert roles["detector"]["precision"] in ("int8", "fp32")
    assert len(roles["gender"]["sha256"]) == 64
    assert [i["path"] for i in doc["images"]] == [f"{folder.name}/{p.name}" for p in photos]
    found = labelled = 0
    for img, p, ann in zip(doc["images"], photos, annotations, strict=True):
        assert img["error"] is None and img["sha256"] == before[p]
        assert img["faces"], f"no faces found in {p.name}"
        for a in ann:  # labelled faces with a short side of 32 px or more
            x, y, w, h = a["bbox"]
            if min(w, h) >= 32:
                labelled += 1
                found += any(_iou([x, y, x + w, y + h], f["box"]) >= 0.5 for f in img["faces"])
        for f in img["faces"]:
            x1, y1, x2, y2 = f["box"]
            assert 0 <= x1 < x2 <= img["width"] + 1 and 0 <= y1 < y2 <= img["height"] + 1
            assert f["gender"] in ("female", "male", "uncertain") and 0 <= f["p_male"] <= 1
            assert len(f["landmarks"]) == 5
    assert labelled and found / labelled >= 0.8, (found, labelled)
    assert "3/3" in proc.stderr  # progress bar on stderr
    annotated = sorted(p.name for p in (tmp_path / "annotated").glob("*.annotated.jpg"))
    assert annotated == sorted(p.stem + ".annotated.jpg" for p in photos)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in photos} == before

    # a rerun skips every photo (same bytes, same settings) and gives the same faces
    again = cli(
        "analyze",
        folder.name,
        "--json",
        "-",
        "--out",
        "annotated",
        "--gender-model",
        str(tiny_gender_model),
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    doc2 = json.loads(again.stdout)
    assert [len(i["faces"]) for i in doc2["images"]] == [len(i["faces"]) for i in doc["images"]]
    assert "3 unchanged" in again.stderr


def test_batch_and_report_with_real_engine(real_models, tiny_gender_model, sample, tmp_path):
    folder, photos, _ = sample
    proc = cli(
        "batch",
        folder.name,
        "--case",
        "case",
        "--examiner",
        "E2E",
        "--gender-model",
        str(tiny_gender_model),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    proc = cli("report", "--case", "case", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "case" / "report.html").read_text(encoding="utf-8")
    assert html.count('<img alt="face ') >= 3
    assert "INTEGRITY WARNING" not in html


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_precision_flag_loads_those_files_and_json_names_it(
    real_models, sample, tmp_path, precision
):
    from forensic_app.core.modelstore import CENTERFACE_FILE, GENDER_FILE, model_file

    names = {model_file(CENTERFACE_FILE, precision), model_file(GENDER_FILE, precision)}
    if not all((real_models / n).is_file() for n in names):
        pytest.skip(f"{names} not all present")
    _, photos, _ = sample
    proc = cli("info", "--precision", precision, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(f"precision {precision}") == 2
    proc = cli("analyze", str(photos[0]), "--precision", precision, "--json", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {m["precision"] for m in doc["models"]} == {precision}
    assert {Path(m["path"]).name for m in doc["models"]} == names
    assert doc["images"][0]["faces"], "a dev-eval photo with faces gave none"
    bad = cli("analyze", str(photos[0]), "--precision", "fp16", cwd=tmp_path)
    assert bad.returncode == 2
