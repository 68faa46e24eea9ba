"""Issue 17, input side: the attacks reproduced through the CLI and now refused (fake engine).

Own outputs are recognised by where the tool wrote them (core/ownership.py), never by name;
nothing that could block is opened; every skipped file is listed with its reason.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from fake_engine import make_photo
from fake_engine import run_cli as run

from forensic_app.core.audit import read_audit


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_evidence_named_like_an_output_is_analysed_and_never_overwritten(here):
    """``analyze DIR --out DIR`` with x.jpg and an evidence photo x.annotated.jpg (the attack)."""
    make_photo(Path("ev/x.jpg"), color=(200, 30, 30))
    evidence = make_photo(Path("ev/x.annotated.jpg"), color=(30, 30, 200))
    before = sha(evidence)
    for attempt in range(2):  # the rerun must not mistake anything either way
        rc, out, err = run(["analyze", "ev", "--out", "ev", "--json", f"doc{attempt}.json"])
        assert rc == 0, err
        assert sha(evidence) == before
        doc = json.loads(Path(f"doc{attempt}.json").read_text())
        analysed = sorted(Path(i["path"]).name for i in doc["images"])
        assert analysed == ["x.annotated.jpg", "x.jpg"]  # the evidence photo is an input
        blue = next(i for i in doc["images"] if i["path"].endswith("x.annotated.jpg"))
        assert blue["faces"][0]["gender"] == "female"  # its own pixels, not x.jpg's copy
        # The copies written in the first run are listed as the tool's own, by their SHA-256.
        own = [s for s in doc["skipped"] if "written by this tool" in s["reason"]]
        assert len(own) == (0 if attempt == 0 else 2)
    names = sorted(p.name for p in Path("ev").iterdir() if p.is_file())
    assert len(names) == 4  # two photos, two annotated copies, nothing replaced
    assert (Path("ev") / ".forensic_app" / "owner.json").is_file()


def test_a_file_swapped_in_under_an_output_name_is_evidence_again(here):
    """Identity, not name: replace an annotated copy with a photo and it is analysed."""
    make_photo(Path("ev/a.jpg"), color=(200, 30, 30))
    assert run(["analyze", "ev", "--out", "ev"])[0] == 0
    copy = Path("ev/a.annotated.jpg")
    assert copy.is_file()
    make_photo(copy, color=(30, 30, 200))  # not the bytes the ledger lists
    planted = sha(copy)
    rc, out, err = run(["analyze", "ev", "--out", "ev", "--json", "doc.json"])
    assert rc == 0, err
    doc = json.loads(Path("doc.json").read_text())
    assert sorted(Path(i["path"]).name for i in doc["images"]) == ["a.annotated.jpg", "a.jpg"]
    assert sha(copy) == planted  # a.jpg's new copy went to another name


def test_output_never_replaces_a_file_it_did_not_write(here):
    """A non-input file at the planned output name is kept; the copy gets another name."""
    make_photo(Path("ev/x.jpg"))
    make_photo(Path("out/x.annotated.jpg"), color=(0, 200, 0))
    before = sha(Path("out/x.annotated.jpg"))
    rc, out, err = run(["analyze", "ev/x.jpg", "--out", "out"])
    assert rc == 0, err
    assert sha(Path("out/x.annotated.jpg")) == before
    assert len([p for p in Path("out").glob("*.jpg")]) == 2


def test_case_inside_the_input_tree_is_never_reingested(here):
    """``batch DIR -r --case DIR/case`` three times: the face count stays the same."""
    for i in range(3):
        make_photo(Path(f"ev/p{i}.jpg"), color=(200, 30, 30))
    counts = []
    for n in range(3):
        rc, out, err = run(["batch", "ev", "-r", "--case", "ev/case", "--reanalyse"])
        assert rc == 0, err
        counts.append(int(out.split(" face")[0].rsplit(" ", 1)[-1]))
        if n:  # from the second run on, the case's folders are listed as not read
            assert "case/annotated/: inside" in out and "case/results/: inside" in out
    assert counts == [3, 3, 3]
    assert len(list(Path("ev/case/annotated").iterdir())) == 3


def test_fifo_in_a_walked_tree_is_listed_and_the_run_finishes(here):
    make_photo(Path("ev/a.jpg"))
    os.mkfifo("ev/sub_pipe.jpg")
    os.makedirs("ev/deep")
    os.mkfifo("ev/deep/pipe")
    os.symlink("/dev/zero", "ev/zero.jpg")
    rc, out, err = run(["analyze", "ev", "-r", "--json", "doc.json"])
    assert rc == 0, err
    doc = json.loads(Path("doc.json").read_text())
    assert [Path(i["path"]).name for i in doc["images"]] == ["a.jpg"]
    reasons = {Path(s["path"]).name: s["reason"] for s in doc["skipped"]}
    assert "FIFO" in reasons["sub_pipe.jpg"] and "FIFO" in reasons["pipe"]
    assert "device" in reasons["zero.jpg"]
    assert "sub_pipe.jpg" in out and "FIFO" in out  # and in the printed summary


def test_named_fifo_is_a_per_photo_error_not_a_hang(here):
    os.mkfifo("pipe.jpg")
    rc, out, err = run(["analyze", "pipe.jpg", "--json", "-"])
    assert rc == 1
    image = json.loads(out)["images"][0]
    assert "FIFO" in image["error"]


def test_oversized_file_is_refused_before_reading(here, monkeypatch):
    from forensic_app.core import imaging

    make_photo(Path("ev/a.jpg"))
    big = Path("ev/big.jpg")
    with open(big, "wb") as fh:  # sparse: large on paper, nothing to read
        fh.truncate(64 << 20)
    monkeypatch.setattr(imaging, "MAX_FILE_BYTES", 1 << 20)
    reads = []
    real_read = imaging.open_regular

    def spy(path, max_bytes=True):
        reads.append(os.fspath(path))
        return real_read(path, max_bytes)

    monkeypatch.setattr(imaging, "open_regular", spy)
    for target in ("ev", "ev/big.jpg"):  # walked or named
        rc, out, err = run(["analyze", target, "--json", "-"])
        assert rc == 1
        images = {Path(i["path"]).name: i for i in json.loads(out)["images"]}
        assert "over the limit" in images["big.jpg"]["error"]
        assert not any(p.endswith("big.jpg") for p in reads)  # never opened, not even hashed


def test_every_skipped_file_has_a_reason_in_json_summary_and_audit(here):
    make_photo(Path("ev/a.jpg"))
    Path("ev/notes.txt").write_text("not a photo")
    Path("ev/noext").write_bytes(b"plain text, no extension")
    make_photo(Path("ev/photo_without_extension.png")).rename("ev/photo_without_extension")
    rc, out, err = run(["analyze", "ev", "--json", "doc.json"])
    assert rc == 0, err
    doc = json.loads(Path("doc.json").read_text())
    assert sorted(Path(i["path"]).name for i in doc["images"]) == [
        "a.jpg",
        "photo_without_extension",
    ]
    reasons = {Path(s["path"]).name: s["reason"] for s in doc["skipped"]}
    assert reasons == {
        "notes.txt": "not an image file type (.txt)",
        "noext": "no extension and the content is not an image format",
    }
    assert "2 skipped" in out and "notes.txt" in out
    rc, out, err = run(["batch", "ev", "--case", "case"])
    assert rc == 0, err
    entries = read_audit("case/audit.jsonl").entries
    skipped = [e for e in entries if e["action"] == "inputs-skipped"]
    assert {Path(f["path"]).name for f in skipped[0]["detail"]["files"]} == {
        "notes.txt",
        "noext",
    }


def test_json_target_over_any_evidence_file_is_exit_2(here):
    """Not only analysed photos: a file of the walked folder that was skipped is evidence too."""
    make_photo(Path("ev/x.jpg"))
    notes = Path("ev/notes.txt")
    notes.write_text("examiner's notes, part of the evidence")
    for target in ("ev/x.jpg", "ev/notes.txt"):
        rc, out, err = run(["analyze", "ev", "--json", target])
        assert rc == 2 and "refusing to write" in err
    assert notes.read_text() == "examiner's notes, part of the evidence"
