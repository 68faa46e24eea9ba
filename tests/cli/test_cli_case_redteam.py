"""issue 17, second round: the opposing expert's attacks on a case folder, each reproduced
through the real CLI. A break must now give exit 4 naming the file (or be healed by a rerun),
and nothing the tool wrote may be lost. See docs/adr/0007-tamper-evident-case.md."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fake_engine import FakeEngine, make_photo

from forensic_app.cli import EXIT_INTEGRITY, EXIT_OK, main


def run(argv, engine=None):
    out, err = io.StringIO(), io.StringIO()
    eng = engine or FakeEngine()
    rc = main(argv, engine_factory=lambda a: eng, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def case(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    make_photo(Path("ev/a.jpg"), color=(200, 10, 10))
    make_photo(Path("ev/b.png"), color=(10, 10, 200))
    rc, _, err = run(["batch", "ev", "--case", "case"])
    assert rc == EXIT_OK, err
    return tmp_path / "case"


def verify(case_dir: Path):
    return run(["case", "verify", "--case", str(case_dir), "--no-log"])


def integrity_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "INTEGRITY" in line]


@pytest.mark.parametrize("folder", ["annotated", "results", "results/history"])
def test_file_hidden_in_an_added_subfolder_is_named(case, folder):
    hidden = case / folder / "extra"
    hidden.mkdir()
    (hidden / "planted.jpg").write_bytes(b"not from the tool")
    rc, out, err = verify(case)
    assert rc == EXIT_INTEGRITY, out + err
    assert any(f"{folder}/extra/" in line for line in integrity_lines(out)), out
    rc, out, err = run(["report", "--case", str(case), "--no-log", "--out", "r.html"])
    assert rc == EXIT_INTEGRITY and f"{folder}/extra/" in err
    assert (hidden / "planted.jpg").read_bytes() == b"not from the tool"  # reported, not touched
