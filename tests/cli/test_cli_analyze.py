"""``forensic-app analyze``: exit codes, stdout discipline, outputs, resume (fake engine)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from fake_engine import FakeEngine, make_photo

from forensic_app import __version__
from forensic_app.cli import main
from forensic_app.core.modelstore import ModelError
from forensic_app.core.settings import DEFAULT_DET_THRESHOLD


def run(argv, engine=None, factory=None):
    out, err = io.StringIO(), io.StringIO()
    engine = engine or FakeEngine()
    rc = main(argv, engine_factory=factory or (lambda args: engine), stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def photos(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_photo(Path("in/a.jpg"), color=(200, 30, 30))
    make_photo(Path("in/c.png"), color=(30, 30, 200))
    make_photo(Path("in/sub/b.png"), color=(120, 120, 120))
    make_photo(Path("other/a.jpg"), color=(30, 30, 200))
    Path("in/notes.txt").write_text("not a photo")
    return tmp_path


def test_version_prints_and_exits_0():
    rc, out, _ = run(["--version"])
    assert rc == 0
    assert out.strip() == f"forensic-app {__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze"],
        ["analyze", "x.jpg", "--det-threshold", "1.5"],
        ["analyze", "x.jpg", "--mode", "turbo"],
        ["analyze", "x.jpg", "--min-face", "0"],
        ["analyze", "x.jpg", "--detect-size", "10"],
        ["frobnicate"],
    ],
)
def test_bad_usage_exits_2(argv):
    rc, out, err = run(argv)
    assert rc == 2
    assert out == ""
    assert "usage:" in err


def test_json_stdout_is_only_the_document(photos):
    rc, out, err = run(["analyze", "in", "--json", "-"])
    assert rc == 0
    doc = json.loads(out)  # nothing but JSON on stdout
    assert doc["tool_version"] == __version__
    assert doc["provider"] == "FakeExecutionProvider"
    assert [m["sha256"] for m in doc["models"]] == ["d" * 64, "e" * 64]
    assert doc["settings"]["det_threshold"] == DEFAULT_DET_THRESHOLD
    # non-recursive, sorted, paths exactly as found, the .txt is not picked up
    assert [i["path"] for i in doc["images"]] == ["in/a.jpg", "in/c.png"]
    assert doc["images"][0]["sha256"] == sha(photos / "in/a.jpg")
    assert doc["images"][0]["faces"][0]["gender"] == "male"
    assert doc["images"][1]["faces"][0]["gender"] == "female"
    assert "2/2" in err  # progress bar on stderr for more than one image
    assert "summary: 2 photos" in err


def test_settings_reach_the_engine_and_the_document(photos):
    rc, out, _ = run(
        [
            "analyze",
            "in/a.jpg",
            "--json",
            "-",
            "--det-threshold",
            "0.3",
            "--min-face",
            "20",
            "--mode",
            "thorough",
            "--detect-size",
            "1280",
            "--no-detect",
        ]
    )
    assert rc == 0
    s = json.loads(out)["settings"]
    assert (
        s["det_threshold"],
        s["min_face"],
        s["detection_mode"],
        s["detect_size"],
        s["no_detect"],
    ) == (0.3, 20, "thorough", 1280, True)


def test_recursive_and_failures_exit_1_with_reasons(photos):
    Path("in/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    Path("in/empty.png").write_bytes(b"")
    rc, out, err = run(["analyze", "in", "--recursive", "--json", "-", "--quiet"])
    assert rc == 1
    doc = json.loads(out)
    paths = [i["path"] for i in doc["images"]]
    assert paths == ["in/a.jpg", "in/broken.jpg", "in/c.png", "in/empty.png", "in/sub/b.png"]
    errors = {i["path"]: i["error"] for i in doc["images"] if i["error"]}
    assert set(errors) == {"in/broken.jpg", "in/empty.png"}
    assert "empty" in errors["in/empty.png"]
    assert all(i["faces"] for i in doc["images"] if not i["error"])
    assert "error" in err and "in/broken.jpg" in err  # failures still reported when quiet


def test_missing_file_is_a_failure_not_a_crash(photos):
    rc, out, _ = run(["analyze", "in/a.jpg", "nope/missing.jpg", "--json", "-"])
    assert rc == 1
    images = json.loads(out)["images"]
    assert images[1]["path"] == "nope/missing.jpg"
    assert "not found" in images[1]["error"]


def test_human_summary_on_stdout_without_json(photos):
    rc, out, _ = run(["analyze", "in/a.jpg"])
    assert rc == 0
    assert "in/a.jpg: 1 face (1 male)" in out
    assert "summary: 1 photo, 1 analysed" in out


def test_out_writes_annotated_copies_and_handles_name_collisions(photos):
    before = {p: sha(p) for p in photos.rglob("*") if p.is_file()}
    rc, out, _ = run(
        ["analyze", "in/a.jpg", "other/a.jpg", "in", "-r", "--out", "ann", "--json", "doc.json"]
    )
    assert rc == 0
    assert out.startswith("in/a.jpg: 1 face")
    written = sorted(
        str(p.relative_to("ann"))
        for p in Path("ann").rglob("*")
        if p.is_file() and ".forensic_app" not in p.parts
    )
    # in/a.jpg once (dedup), other/a.jpg gets a tag, folder structure mirrored
    assert len(written) == 4
    assert "a.annotated.jpg" in written and "c.annotated.png" in written
    assert "sub/b.annotated.png" in written
    tagged = [w for w in written if w.startswith("a-")]
    assert len(tagged) == 1 and tagged[0].endswith(".annotated.jpg")
    from PIL import Image

    with Image.open("ann/a.annotated.jpg") as im:
        assert im.size == (64, 48)
    # the inputs are untouched
    assert all(sha(p) == h for p, h in before.items())
    doc = json.loads(Path("doc.json").read_text())
    assert len(doc["images"]) == 4


def test_out_inside_input_folder_never_reads_own_copies(photos):
    rc, _, _ = run(["analyze", "in", "--out", "in", "--json", "doc1.json"])
    assert rc == 0
    assert Path("in/a.annotated.jpg").is_file()
    rc, _, _ = run(["analyze", "in", "--out", "in", "--json", "doc2.json", "--no-resume"])
    assert rc == 0
    paths = [i["path"] for i in json.loads(Path("doc2.json").read_text())["images"]]
    assert paths == ["in/a.jpg", "in/c.png"]


def test_json_file_refuses_to_overwrite_an_input(photos):
    before = sha(photos / "in/a.jpg")
    rc, _, err = run(["analyze", "in/a.jpg", "--json", "in/a.jpg"])
    assert rc == 2
    assert "refusing" in err
    assert sha(photos / "in/a.jpg") == before


def test_rerun_skips_unchanged_photos(photos):
    engine = FakeEngine()
    rc, _, _ = run(["analyze", "in", "-r", "--out", "ann"], engine)
    assert rc == 0 and len(engine.calls) == 3
    engine.calls.clear()
    rc, out, _ = run(["analyze", "in", "-r", "--out", "ann", "--json", "-"], engine)
    assert rc == 0 and engine.calls == []
    doc = json.loads(out)
    assert all("unchanged" in " ".join(i["notes"]) for i in doc["images"])
    assert doc["images"][0]["faces"][0]["gender"] == "male"  # stored result, not empty
    # one photo changes: only it is analysed again
    make_photo(Path("in/c.png"), color=(200, 30, 30))
    rc, _, _ = run(["analyze", "in", "-r", "--out", "ann"], engine)
    assert engine.calls == ["in/c.png"]
    # other settings: everything again
    engine.calls.clear()
    rc, _, _ = run(["analyze", "in", "-r", "--out", "ann", "--det-threshold", "0.6"], engine)
    assert len(engine.calls) == 3
    # a deleted annotated copy is rewritten even though the record exists
    engine.calls.clear()
    Path("ann/sub/b.annotated.png").unlink()
    rc, _, _ = run(["analyze", "in", "-r", "--out", "ann", "--det-threshold", "0.6"], engine)
    assert engine.calls == ["in/sub/b.png"]
    assert Path("ann/sub/b.annotated.png").is_file()


def test_csv_has_one_row_per_face_and_error(photos):
    Path("in/zz.jpg").write_text("text")
    rc, _, _ = run(["analyze", "in", "--csv", "faces.csv"])
    assert rc == 1
    rows = list(csv.DictReader(Path("faces.csv").open()))
    assert [r["path"] for r in rows] == ["in/a.jpg", "in/c.png", "in/zz.jpg"]
    assert rows[0]["gender"] == "male" and float(rows[0]["confidence"]) == pytest.approx(0.9)
    assert rows[0]["face"] == "1" and float(rows[0]["x2"]) == pytest.approx(48.0)
    assert rows[2]["error"] and rows[2]["face"] == ""


def test_model_error_gives_clear_message_and_exit_3(photos):
    def factory(args):
        raise ModelError("model file missing: /x/centerface.onnx (expected SHA-256 abc).")

    rc, out, err = run(["analyze", "in/a.jpg", "--json", "-"], factory=factory)
    assert rc == 3
    assert out == ""
    assert "centerface.onnx" in err and "expected SHA-256" in err


def test_real_engine_refuses_tampered_detector(photos):
    """The real Engine.create path: a tampered model file is named with its expected hash."""
    repo_models = Path(__file__).resolve().parents[2] / "models"
    manifest = repo_models / "manifest.json"
    if not manifest.is_file():
        pytest.skip("models/manifest.json not present")
    models = photos / "models"
    models.mkdir()
    shutil.copy(manifest, models / "manifest.json")
    (models / "centerface.onnx").write_bytes(b"tampered")
    expected = json.loads(manifest.read_text())["centerface.onnx"]["sha256"]
    out, err = io.StringIO(), io.StringIO()
    rc = main(
        ["analyze", "in/a.jpg", "--models", str(models), "--json", "-"], stdout=out, stderr=err
    )
    assert rc == 3
    assert out.getvalue() == ""
    assert "centerface.onnx" in err.getvalue() and expected in err.getvalue()
    (models / "centerface.onnx").unlink()
    rc = main(["analyze", "in/a.jpg", "--models", str(models)], stdout=out, stderr=err)
    assert rc == 3 and "missing" in err.getvalue()


def test_batch_parallelism_reaches_the_engine_factory(photos):
    seen = {}

    def factory(args):
        seen["threads"] = args.threads
        return FakeEngine()

    run(["analyze", "in/a.jpg"], factory=factory)
    assert seen["threads"] is None  # one photo: the engine's own default (all cores)
    run(["analyze", "in", "--workers", "2"], factory=factory)
    import os

    assert seen["threads"] == max(1, (os.cpu_count() or 1) // 2)
    run(["analyze", "in", "--threads", "3"], factory=factory)
    assert seen["threads"] == 3


def test_info_lists_models_hashes_and_provider():
    rc, out, _ = run(["info"])
    assert rc == 0
    assert "FakeExecutionProvider" in out and "d" * 64 in out and "e" * 64 in out
    assert out.startswith(f"forensic-app {__version__}")
