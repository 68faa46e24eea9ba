"""Red-team attacks on the command line (issue 17), each reproduced and now refused.

Every test plays a hostile party who prepared the evidence (or the output folder) and asserts
the real outcome: evidence bytes unchanged, the photo analysed, the exit status and message.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path

import pytest
from fake_engine import FakeEngine, make_photo

from forensic_app.cli import main
from forensic_app.core import ownership


def run(argv, engine=None, stdout=None, stderr=None):
    out = io.StringIO() if stdout is None else stdout
    err = io.StringIO() if stderr is None else stderr
    engine = engine or FakeEngine()
    rc = main(argv, engine_factory=lambda a: engine, stdout=out, stderr=err)
    text = lambda s: s.getvalue() if isinstance(s, io.StringIO) else ""  # noqa: E731
    return rc, text(out), text(err)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def plant_state(folder: Path, owned=(".forensic_app",), listed=()) -> list[Path]:
    """What anyone can write with the public source: a marker and a ledger in the tool's
    format, listing ``listed`` files with their true size and SHA-256 (no key)."""
    state = folder / ".forensic_app"
    state.mkdir(parents=True, exist_ok=True)
    marker = state / "owner.json"
    marker.write_text(json.dumps({"tool": "forensic_app", "kind": "case", "owned": list(owned)}))
    ledger = state / "written.jsonl"
    ledger.write_text(
        "".join(
            json.dumps({"path": p.name, "size": p.stat().st_size, "sha256": sha(p)}) + "\n"
            for p in listed
        )
    )
    return [marker, ledger]


def test_planted_ledger_neither_hides_nor_lets_the_tool_overwrite_evidence(here):
    """The attack: ev/x.annotated.jpg is evidence, a planted ledger lists it with its true
    SHA-256. It was skipped as "written by this tool" and then replaced by x.jpg's annotated
    copy (exit 0). Now it is analysed, and the folder is refused as an output folder."""
    make_photo(Path("ev/x.jpg"), color=(200, 30, 30))
    evidence = make_photo(Path("ev/x.annotated.jpg"), color=(30, 30, 200))
    planted = plant_state(Path("ev"), listed=[evidence])
    before = {p: sha(p) for p in [evidence, *planted]}

    rc, out, err = run(["analyze", "ev", "--out", "ev"])
    assert rc == 1
    assert "cannot use output folder" in err and "not written by this tool" in err
    assert {p: sha(p) for p in before} == before  # evidence and planted files untouched
    assert sorted(p.name for p in Path("ev").iterdir()) == [
        ".forensic_app",
        "x.annotated.jpg",
        "x.jpg",
    ]

    rc, out, err = run(["analyze", "ev", "--json", "doc.json"])
    assert rc == 0, err
    doc = json.loads(Path("doc.json").read_text())
    assert sorted(Path(i["path"]).name for i in doc["images"]) == ["x.annotated.jpg", "x.jpg"]
    assert not [s for s in doc["skipped"] if "written by this tool" in s["reason"]]


def test_planted_marker_owning_a_subfolder_does_not_hide_it(here):
    """The attack: a marker saying ``photos/`` is owned hid the whole subfolder from -r."""
    make_photo(Path("ev/a.jpg"))
    hidden = make_photo(Path("ev/photos/b.jpg"), color=(30, 30, 200))
    make_photo(Path("ev/.forensic_app/c.jpg"))  # even inside a planted state folder
    plant_state(Path("ev"), owned=[".forensic_app", "photos"])
    rc, out, err = run(["analyze", "ev", "-r", "--json", "doc.json"])
    assert rc == 0, err
    doc = json.loads(Path("doc.json").read_text())
    names = sorted(os.path.relpath(i["path"], "ev") for i in doc["images"])
    assert names == [os.path.join(".forensic_app", "c.jpg"), "a.jpg", str(hidden.relative_to("ev"))]


def test_own_outputs_are_still_known_on_a_rerun(here):
    """The key-vouched ledger keeps the documented workflow: ``--out`` = the input folder."""
    make_photo(Path("ev/x.jpg"))
    assert run(["analyze", "ev", "--out", "ev"])[0] == 0
    ledger = Path("ev/.forensic_app/written.jsonl").read_text().splitlines()
    assert all("mac" in json.loads(line) for line in ledger)
    rc, out, err = run(["analyze", "ev", "--out", "ev", "--json", "doc.json"])
    assert rc == 0, err
    doc = json.loads(Path("doc.json").read_text())
    assert [Path(i["path"]).name for i in doc["images"]] == ["x.jpg"]


def test_another_users_key_vouches_for_nothing(here, monkeypatch, tmp_path):
    """Outputs written under another key (another installation) are evidence, never replaced."""
    make_photo(Path("ev/x.jpg"))
    assert run(["analyze", "ev", "--out", "ev"])[0] == 0
    copy = Path("ev/x.annotated.jpg")
    before = sha(copy)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "other-user"))
    assert ownership.read_marker("ev") is None
    rc, out, err = run(["analyze", "ev", "--json", "doc.json"])
    assert rc == 0, err
    doc = json.loads(Path("doc.json").read_text())
    assert sorted(Path(i["path"]).name for i in doc["images"]) == ["x.annotated.jpg", "x.jpg"]
    assert run(["analyze", "ev", "--out", "ev"])[0] == 1
    assert sha(copy) == before


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_closed_standard_stream_neither_crashes_nor_loses_results(here, monkeypatch, closed):
    """The attack: ``analyze x.jpg >&-`` (or ``2>&-``) died with an AttributeError traceback
    after the analysis, before the summary; ``--json -`` into a closed stdout lost everything."""
    make_photo(Path("ev/a.jpg"))
    monkeypatch.setattr("sys." + closed, None)
    streams = {"stdout": None, "stderr": None}
    other = io.StringIO()
    streams["stderr" if closed == "stdout" else "stdout"] = other
    engine = FakeEngine()
    argv = ["analyze", "ev/a.jpg", "nope.jpg", "--json", "doc.json"]
    rc = main(argv, engine_factory=lambda a: engine, **streams)
    assert rc == 1  # nope.jpg failed; a.jpg is in the document all the same
    doc = json.loads(Path("doc.json").read_text())
    assert [bool(i.get("error")) for i in doc["images"]] == [False, True]
    if closed == "stdout":
        rc = main(
            ["analyze", "ev/a.jpg", "--json", "-"], engine_factory=lambda a: engine, stderr=other
        )
        assert rc == 2 and "standard output is closed" in other.getvalue()


def test_photo_with_a_255_byte_name_gets_its_annotated_copy(here):
    """The attack: evidence named with the full 255 bytes (multi-byte letters too): its
    annotated copy's name was too long, so every run failed that photo ("result not saved")."""
    long_ascii = "n" * 251 + ".jpg"
    long_utf8 = "é" * 125 + ".jpg"  # 250 + 4 bytes
    for name in (long_ascii, long_utf8):
        make_photo(Path("ev") / name)
    rc, out, err = run(["analyze", "ev", "--out", "out", "--json", "doc.json"])
    assert rc == 0, err
    copies = sorted(p.name for p in Path("out").iterdir() if p.is_file())
    assert len(copies) == 2 and all(c.endswith(".annotated.jpg") for c in copies)
    assert all(len(os.fsencode(c)) <= 255 - 16 for c in copies)
    rc, out, err = run(["analyze", "ev", "--out", "out"])  # the rerun reuses them
    assert rc == 0 and "2 unchanged (skipped)" in out, out


def test_a_linked_subfolder_of_the_output_folder_never_carries_a_write_out(here):
    """The attack: ``out/sub`` is a symbolic link to another folder; the annotated copy of
    ``ev/sub/y.jpg`` was written through it into that folder (exit 0)."""
    make_photo(Path("ev/sub/y.jpg"))
    Path("out").mkdir()
    Path("elsewhere").mkdir()
    os.symlink(Path("elsewhere").resolve(), "out/sub")
    rc, out, err = run(["analyze", "ev", "-r", "--out", "out", "--json", "doc.json"])
    assert rc == 1
    assert list(Path("elsewhere").iterdir()) == []
    assert "leading out of the output folder" in out
    doc = json.loads(Path("doc.json").read_text())
    assert len(doc["images"]) == 1 and doc["images"][0]["faces"]  # the analysis is kept


@pytest.mark.skipif(not os.path.exists("/proc/self/pagemap"), reason="needs Linux /proc")
def test_photo_replaced_by_a_link_to_an_endless_pseudo_file_fails_verify_at_once(here):
    """The attack: after a batch, ev/a.jpg becomes a link to /proc/self/pagemap (a regular
    file of size 0 whose content never ends): ``case verify`` read it forever."""
    make_photo(Path("ev/a.jpg"))
    assert run(["batch", "ev", "--case", "case"])[0] == 0
    Path("ev/a.jpg").unlink()
    os.symlink("/proc/self/pagemap", "ev/a.jpg")
    rc, out, err = run(["case", "verify", "--case", "case"])
    assert rc == 4
    assert "a.jpg: UNREADABLE" in out


def test_a_new_case_is_never_made_among_other_files(here):
    """The attack: ``batch ev --case ev`` where the evidence folder holds ``audit.jsonl`` and
    ``report.html``: the case's audit log was appended to the first and ``report`` replaced the
    second (exit 0)."""
    make_photo(Path("ev/a.jpg"))
    Path("ev/report.html").write_text("<html>evidence page</html>")
    Path("ev/audit.jsonl").write_text('{"evidence": 1}\n')
    before = {p: sha(p) for p in Path("ev").iterdir()}
    rc, out, err = run(["batch", "ev", "--case", "ev"])
    assert rc == 1
    assert "is not empty" in err and "new or empty folder" in err
    assert {p: sha(p) for p in Path("ev").iterdir()} == before
    assert run(["report", "--case", "ev"])[0] in (2, 4)  # no case was made there
    assert {p: sha(p) for p in Path("ev").iterdir()} == before
    Path("new-case").mkdir()  # an empty folder is fine
    assert run(["batch", "ev", "--case", "new-case"])[0] == 0


def test_planted_resume_record_cannot_pass_off_a_forged_result(here, monkeypatch, tmp_path):
    """The attack: the suspect runs the public tool on their own machine, edits the resume
    record of x.jpg to "no faces" and leaves the ``.forensic_app`` folder (no marker, or
    theirs) in the evidence folder; ``analyze ev --out ev`` reported the forged result as
    "unchanged (skipped)" without analysing the photo."""
    make_photo(Path("ev/x.jpg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "suspect"))
    assert run(["analyze", "ev", "--out", "ev"])[0] == 0
    (record,) = Path("ev/.forensic_app/results").glob("*.json")
    data = json.loads(record.read_text())
    data["result"]["faces"] = []
    record.write_text(json.dumps(data))
    Path("ev/.forensic_app/owner.json").unlink()  # no marker at all: still refused
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "examiner"))
    before = {p: sha(p) for p in Path("ev").rglob("*") if p.is_file()}
    rc, out, err = run(["analyze", "ev", "--out", "ev", "--json", "doc.json"])
    assert rc == 1 and "cannot use output folder" in err
    assert not Path("doc.json").exists()
    assert {p: sha(p) for p in Path("ev").rglob("*") if p.is_file()} == before
    rc, out, err = run(["analyze", "ev", "--out", "fresh", "--json", "doc.json"])
    assert rc == 0, err
    doc = json.loads(Path("doc.json").read_text())
    x = next(i for i in doc["images"] if i["path"].endswith("x.jpg"))
    assert len(x["faces"]) == 1 and "unchanged" not in out  # analysed, not the forgery


def test_case_name_from_a_handed_over_case_never_drives_the_terminal(here):
    """The attack: a case folder from the other side names itself with a clear-screen and a
    window-title escape; ``case verify`` printed it raw."""
    make_photo(Path("ev/a.jpg"))
    hostile = "Op\x1b[2J\x1b]0;pwned\x07\u202e"
    assert run(["batch", "ev", "--case", "case", "--name", hostile])[0] == 0
    rc, out, err = run(["case", "verify", "--case", "case"])
    assert rc == 0, out + err
    assert "\x1b" not in out + err and "\u202e" not in out + err
    assert "case: Op\\x1b[2J\\x1b]0;pwned\\x07\\u202e" in out


def test_json_into_a_device_or_pipe_writes_into_it_never_replaces_it(here):
    """The attack: ``--json /dev/null`` (as root) or ``--csv /dev/stdout`` replaced the device
    node or the link with a regular file (a renamed temp file); a reader on a FIFO got
    nothing. Shown with a character device and a FIFO made here, and a block device refused."""
    make_photo(Path("ev/a.jpg"))
    fifo = Path("pipe")
    os.mkfifo(fifo)
    got: list[bytes] = []
    import threading

    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    rc, out, err = run(["analyze", "ev/a.jpg", "--json", str(fifo)])
    reader.join(10)
    assert rc == 0, err
    assert fifo.is_fifo() and json.loads(got[0])["images"][0]["faces"]
    if os.path.exists("/dev/null"):
        link = Path("null-link")
        os.symlink("/dev/null", link)
        assert run(["analyze", "ev/a.jpg", "--csv", str(link)])[0] == 0
        assert link.is_symlink() and Path("/dev/null").is_char_device()
    try:  # a block device node of our own, for a loop device that does not exist
        os.mknod("disk", 0o600 | stat.S_IFBLK, os.makedev(7, 250))
    except (OSError, AttributeError):
        return  # not root: mknod is refused
    rc, out, err = run(["analyze", "ev/a.jpg", "--json", "disk"])
    assert rc == 2 and "block device" in err
    assert Path("disk").is_block_device()


def test_a_link_to_a_photo_already_listed_is_said_not_dropped_silently(here):
    """The attack: ``ev/link.jpg`` is a link to ``ev/a.jpg``; the duplicate was dropped
    without a word (JSON ``skipped`` empty, "1 photo"), hiding that the folder holds it."""
    make_photo(Path("ev/a.jpg"))
    os.symlink("a.jpg", "ev/link.jpg")
    rc, out, err = run(["analyze", "ev", "ev/a.jpg", "--json", "doc.json"])
    assert rc == 0, err
    doc = json.loads(Path("doc.json").read_text())
    assert [Path(i["path"]).name for i in doc["images"]] == ["a.jpg"]
    same = sorted(Path(s["path"]).name for s in doc["skipped"] if "same file as" in s["reason"])
    assert same == ["link.jpg"]  # the same path named twice is simply one photo


def test_skip_reason_quoting_a_hostile_folder_name_neither_crashes_nor_escapes(here):
    """The attack: an output folder named with an undecodable byte and an escape, inside the
    evidence tree; the next run's skip reason quoted it ("written by this tool into ...") and
    ``--json`` died with UnicodeEncodeError (every result lost); stdout got the escape raw."""
    make_photo(Path("ev/a.jpg"))
    hostile = os.fsdecode(b"ev/o\xff\x1b[31m")
    assert run(["analyze", "ev", "--out", hostile])[0] == 0
    rc, out, err = run(["analyze", "ev", "-r", "--json", "doc.json"])
    assert rc == 0, err
    assert "\x1b" not in out + err
    doc = json.loads(Path("doc.json").read_text(encoding="utf-8"))
    assert [Path(i["path"]).name for i in doc["images"]] == ["a.jpg"]
    reasons = [s["reason"] for s in doc["skipped"]]
    assert any("written by this tool" in r and "\\xff" in r for r in reasons), reasons


def test_fifo_planted_as_an_annotated_copy_never_hangs_verify(here):
    """The attack: a handed-over case whose annotated copy was replaced by a FIFO:
    ``case verify`` blocked forever opening it."""
    make_photo(Path("ev/a.jpg"))
    assert run(["batch", "ev", "--case", "case"])[0] == 0
    (copy,) = Path("case/annotated").iterdir()
    copy.unlink()
    os.mkfifo(copy)
    rc, out, err = run(["case", "verify", "--case", "case"])
    assert rc == 4
    assert copy.name in out and "not a regular file" in out


def test_fifo_planted_as_the_audit_log_never_hangs_verify(here):
    """The attack: the case's audit.jsonl replaced by a FIFO: ``case verify`` blocked."""
    make_photo(Path("ev/a.jpg"))
    assert run(["batch", "ev", "--case", "case"])[0] == 0
    log = Path("case/audit.jsonl")
    log.unlink()
    os.mkfifo(log)
    rc, out, err = run(["case", "verify", "--case", "case"])
    assert rc == 4
    assert "audit" in out + err and log.is_fifo()


@pytest.mark.parametrize("planted", ["record", "manifest"])
def test_fifo_planted_as_a_record_or_the_manifest_never_hangs(here, planted):
    """The attack: a case record (results/<sha>.json) or case.json replaced by a FIFO:
    ``case verify`` and ``report`` blocked forever reading it."""
    make_photo(Path("ev/a.jpg"))
    assert run(["batch", "ev", "--case", "case"])[0] == 0
    if planted == "record":
        (target,) = Path("case/results").glob("*.json")
    else:
        target = Path("case/case.json")
    target.unlink()
    os.mkfifo(target)
    rc, out, err = run(["case", "verify", "--case", "case"])
    assert rc == 4, out + err
    rc, out, err = run(["report", "--case", "case", "--out", "r.html"])
    assert rc in (2, 4), out + err
    assert target.is_fifo()


def test_json_and_csv_naming_one_file_is_refused_before_any_work(here):
    """The attack: ``--json r.txt --csv r.txt`` (or a hard link of it): the CSV replaced the
    JSON document and its results were lost, exit 0."""
    make_photo(Path("ev/a.jpg"))
    Path("r.txt").write_text("")
    os.link("r.txt", "r-link.txt")
    for other in ("r.txt", "./r.txt", "r-link.txt"):
        rc, out, err = run(["analyze", "ev/a.jpg", "--json", "r.txt", "--csv", other])
        assert rc == 2 and "name the same file" in err, err
    assert Path("r.txt").read_text() == ""


@pytest.mark.parametrize("inside", ["case", "case/annotated", "case/results/x"])
def test_output_folder_inside_a_case_is_refused(here, inside):
    """The mistake an opposing expert would exploit: ``analyze ev --out case/annotated``
    wrote copies the audit log never vouched for, so the examiner's case failed verify."""
    make_photo(Path("ev/a.jpg"))
    assert run(["batch", "ev", "--case", "case"])[0] == 0
    rc, out, err = run(["analyze", "ev", "--out", inside])
    assert rc == 1 and "choose a folder outside the case" in err, err
    assert run(["case", "verify", "--case", "case"])[0] == 0
