"""File names that are not valid UTF-8, or that hold terminal escapes and bidi controls.

Issue 17: such a name crashed ``analyze --json FILE`` (every photo's JSON and CSV lost), could
never be saved in a case, and reached the terminal and the report raw. Now names round-trip
(display form plus the exact bytes in base64) and are shown escaped (core/names.py).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
from pathlib import Path

import pytest
from fake_engine import FakeEngine, make_photo
from fake_engine import run_cli as run

from forensic_app.core.audit import read_audit
from forensic_app.core.case import Case
from forensic_app.core.names import decode_name, display

RAW_NAME = b"caf\xe9 \xff.jpg"  # Latin-1 bytes: not valid UTF-8
HOSTILE = "\x1b[2J\x1b[31mred\u202egpj.exe"  # clears a terminal; RTL override reverses text


@pytest.fixture
def bad_name(tmp_path, monkeypatch):
    if os.name != "posix":
        pytest.skip("byte file names are a POSIX feature")
    monkeypatch.chdir(tmp_path)
    os.mkdir("ev")
    raw = os.path.join(b"ev", RAW_NAME)
    try:
        make_photo(Path(os.fsdecode(raw)), color=(200, 30, 30))
    except OSError:
        pytest.skip("this file system refuses non-UTF-8 names")
    make_photo(Path("ev/good.jpg"), color=(30, 30, 200))
    return os.fsdecode(raw)


def test_json_and_csv_round_trip_a_name_that_is_not_utf8(bad_name):
    rc, out, err = run(["analyze", "ev", "--json", "doc.json", "--csv", "faces.csv"])
    assert rc == 0, err
    data = Path("doc.json").read_bytes()
    doc = json.loads(data.decode("utf-8"))  # valid UTF-8 JSON
    entry = next(i for i in doc["images"] if "path_b64" in i)
    assert base64.b64decode(entry["path_b64"]) == os.path.join(b"ev", RAW_NAME)
    assert decode_name(entry, "path") == bad_name
    assert Path(decode_name(entry, "path")).is_file()  # the exact name opens the file
    assert entry["path"] == "ev/caf\\xe9 \\xff.jpg" and entry["faces"]
    rows = list(csv.DictReader(io.StringIO(Path("faces.csv").read_text(encoding="utf-8"))))
    row = next(r for r in rows if r["path_b64"])
    assert os.fsdecode(base64.b64decode(row["path_b64"])) == bad_name
    assert "ev/caf\\xe9 \\xff.jpg" in out  # shown escaped, printed without a crash
    rc, out, err = run(["analyze", bad_name, "--json", "-"])
    assert rc == 0, err
    assert decode_name(json.loads(out)["images"][0], "path") == bad_name


def test_output_folder_resumes_a_name_that_is_not_utf8(bad_name):
    assert run(["analyze", "ev", "--out", "out"])[0] == 0
    rc, out, err = run(["analyze", "ev", "--out", "out"])
    assert rc == 0, err
    assert "2 unchanged" in out


def test_case_records_report_and_audit_keep_a_name_that_is_not_utf8(bad_name):
    rc, out, err = run(["batch", "ev", "--case", "case"])
    assert rc == 0, err
    case = Case.open("case", log_open=False)
    paths = sorted(r.path for r in case.records())
    assert paths == sorted([bad_name, "ev/good.jpg"])
    assert all(r.ok for r in case.records())
    rc, out, err = run(["report", "--case", "case"])
    assert rc == 0, err
    html = Path("case/report.html").read_text(encoding="utf-8")
    assert "caf\\xe9 \\xff.jpg" in html and "2 photos" in out
    state = read_audit("case/audit.jsonl")
    assert state.ok
    analysed = [e for e in state.entries if e["action"] == "analysed"]
    assert bad_name in {e["detail"]["path"] for e in analysed}
    rc, out, err = run(["batch", "ev", "--case", "case"])
    assert rc == 0 and "2 unchanged" in out


def test_escape_sequences_and_bidi_controls_are_shown_escaped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        make_photo(Path("ev") / f"{HOSTILE}.jpg", color=(200, 30, 30))
    except OSError:
        pytest.skip("this file system refuses control characters in names")
    Path("ev", f"{HOSTILE}.txt").write_text("skipped, and listed escaped")
    rc, out, err = run(["analyze", "ev"])
    assert rc == 0, err
    rc2, out2, err2 = run(["batch", "ev", "--case", "case"])
    assert rc2 == 0, err2
    rc3, out3, err3 = run(["report", "--case", "case"])
    assert rc3 == 0, err3
    html = Path("case/report.html").read_text(encoding="utf-8")
    for text in (out, err, out2, err2, out3, err3, html):
        assert "\x1b" not in text and "\u202e" not in text
    assert display(HOSTILE) in out and "\\x1b[2J" in out and "\\u202e" in out
    assert "\\u202egpj.exe" in html
    rc, out, err = run(["analyze", "ev/missing\x1b[31m.jpg"])
    assert rc == 1 and "\x1b" not in out + err


def test_log_lines_quoting_a_name_are_escaped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        make_photo(Path("ev") / "boom\x1b]0;owned\x07.jpg")
    except OSError:
        pytest.skip("this file system refuses control characters in names")
    rc, out, err = run(["analyze", "ev"], FakeEngine(fail_on="boom"))
    assert rc == 1
    assert "engine failed on" in err and "boom\\x1b]0;owned\\x07.jpg" in err
    assert "\x1b" not in out + err and "\x07" not in out + err
