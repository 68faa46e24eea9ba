"""``forensic-app report --format pdf``: a readable A4 PDF from the command line (Qt offscreen)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fake_engine import FakeEngine, make_photo

from forensic_app.cli import main
from forensic_app.core.audit import read_audit

pytest.importorskip("pypdf")
from pdf_text import body_size, pdf_text, printed_sizes  # noqa: E402


def run(argv, engine):
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, engine_factory=lambda a: engine, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def test_pdf_report_is_readable_and_names_the_case(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_photo(Path("ev/a.jpg"), color=(200, 10, 10))
    make_photo(Path("ev/b.png"), color=(10, 10, 200))
    engine = FakeEngine()
    rc, _out, err = run(["batch", "ev", "--case", "case", "--name", "Operation Harbour"], engine)
    assert rc == 0, err
    rc, out, err = run(["report", "--case", "case", "--format", "pdf", "--out", "r.pdf"], engine)
    assert rc == 0, err
    pdf = Path("r.pdf")
    assert pdf.read_bytes().startswith(b"%PDF") and "r.pdf" in out
    assert "Case report: Operation Harbour" in pdf_text(pdf)
    # The body is printed at 9 pt or more (it was about 0.7 pt), and so is nearly everything.
    assert body_size(pdf) >= 9.0, printed_sizes(pdf)
    sizes = printed_sizes(pdf)
    assert sum(n for s, n in sizes.items() if s >= 7.5) >= 0.95 * sum(sizes.values()), sizes
    kinds = [e["detail"].get("kind") for e in read_audit(Path("case/audit.jsonl")).entries]
    assert "pdf-report" in kinds


def test_pdf_report_never_overwrites_an_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo = make_photo(Path("ev/a.jpg"), color=(200, 10, 10))
    before = photo.read_bytes()
    engine = FakeEngine()
    assert run(["batch", "ev", "--case", "case"], engine)[0] == 0
    rc, _out, err = run(
        ["report", "--case", "case", "--format", "pdf", "--out", str(photo)], engine
    )
    assert rc == 2 and "input" in err.lower()
    assert photo.read_bytes() == before
