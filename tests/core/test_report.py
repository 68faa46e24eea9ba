"""HTML report: self-contained, complete, and loud about evidence that changed."""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from fake_engine import FakeEngine, make_photo  # noqa: E402

from forensic_app.core import audit  # noqa: E402
from forensic_app.core.audit import read_audit  # noqa: E402
from forensic_app.core.batch import BatchRunner  # noqa: E402
from forensic_app.core.case import Case  # noqa: E402
from forensic_app.core.report import LIMITATIONS, write_report  # noqa: E402
from forensic_app.core.results import Face  # noqa: E402
from forensic_app.core.settings import AnalysisSettings  # noqa: E402


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def case(tmp_path):
    photos = [
        make_photo(tmp_path / "ev" / "red.jpg", color=(220, 10, 10), size=(640, 480)),
        make_photo(tmp_path / "ev" / "blue <b>.png", color=(10, 10, 220)),
    ]
    (tmp_path / "ev" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    engine = FakeEngine()
    c = Case.create(tmp_path / "case", "Op <Report>", "Examiner & Co", engine)
    c.begin_batch(engine, AnalysisSettings())
    out = BatchRunner(engine, store=c).run(
        [str(p) for p in photos] + [str(tmp_path / "ev/broken.jpg")]
    )
    c.end_batch(out)
    c.photos = photos
    return c


def test_report_is_self_contained_and_complete(case):
    outcome = write_report(case)
    html = outcome.path.read_text(encoding="utf-8")
    assert outcome.ok and outcome.photos == 3 and outcome.faces == 2
    assert outcome.sha256 == hashlib.sha256(outcome.path.read_bytes()).hexdigest()
    # nothing outside the file: every src/href is a data: URI or an in-page anchor
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert refs and all(r.startswith(("data:image/", "#")) for r in refs)
    assert not re.search(r"https?://", html)
    assert "<link" not in html and "<script" not in html and "url(" not in html
    # thumbnails for the 2 readable photos and one crop per face
    assert len(re.findall(r'<img alt="photo \d+"', html)) == 2
    assert len(re.findall(r'<img alt="face \d+"', html)) == 2
    for p in case.photos:
        assert sha(p) in html
    assert "d" * 64 in html and "e" * 64 in html  # model hashes
    assert "Op &lt;Report&gt;" in html and "Examiner &amp; Co" in html  # escaped
    assert "blue &lt;b&gt;.png" in html
    assert "not a recognised image format" in html or "truncated" in html
    assert "Perceived gender" in html or "perceived gender" in html
    assert html.count("<li>") >= len(LIMITATIONS)
    assert "INTEGRITY WARNING" not in html
    entries = read_audit(case.root / "audit.jsonl").entries
    assert entries[-1]["action"] == audit.EXPORTED
    assert entries[-1]["detail"]["report_sha256"] == outcome.sha256
    assert entries[-2]["action"] == audit.INTEGRITY_CHECK


def test_manual_marks_appear(case):
    rec = case.record_for(sha(case.photos[0]))
    res = rec.result
    f = res.faces[0]
    res.faces[0] = Face(
        box=f.box,
        score=f.score,
        gender="female",
        p_male=f.p_male,
        manual_label=True,
        model_gender="male",
    )
    case.save_manual_edit(res, {"reason": "test"})
    html = write_report(case).path.read_text(encoding="utf-8")
    # The captions' wording: "manual" and the model's own answer beside it.
    assert f"female manual (model: male {f.p_male:.2f})" in html
    assert "label set by hand" in html


def test_face_cards_use_the_captions_wording_for_uncertain_faces(case):
    rec = case.record_for(sha(case.photos[0]))
    res = rec.result
    f = res.faces[0]
    res.faces[0] = Face(box=f.box, score=f.score, gender="uncertain", p_male=0.41)
    case.save_manual_edit(res, {"reason": "test"})
    html = write_report(case).path.read_text(encoding="utf-8")
    assert "uncertain p(male) 0.41" in html
    assert "uncertain 0.59" not in html  # a confidence for a verdict the tool does not give


def test_changed_or_missing_evidence_is_reported_loudly(case, tmp_path):
    make_photo(case.photos[0], color=(0, 255, 0), size=(640, 480))
    case.photos[1].unlink()
    outcome = write_report(case, tmp_path / "r.html")
    assert not outcome.ok
    problems = sorted(i.problem for i in outcome.issues)
    assert problems == ["changed", "missing"]
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.index("INTEGRITY WARNING") < html.index("<h2>Summary")
    assert "CHANGED since it was opened" in html and "MISSING" in html
    # the changed photo's thumbnail comes from the case's annotated copy, not the new pixels
    assert "annotated copy stored in the case" in html
    last = read_audit(case.root / "audit.jsonl").entries[-1]
    assert last["action"] == audit.EXPORTED and last["detail"]["integrity_problems"] == 2


def test_report_never_overwrites_an_input(case):
    from forensic_app.core.atomic import ProtectedFileError

    before = sha(case.photos[0])
    with pytest.raises(ProtectedFileError):
        write_report(case, case.photos[0])
    assert sha(case.photos[0]) == before


def test_failed_report_write_keeps_the_previous_report(case, monkeypatch):
    """Disk full while streaming: the old report stays intact, no temp file is left."""
    import errno
    import os
    import types

    from forensic_app.core import atomic

    first = write_report(case)
    before = first.path.read_bytes()

    class Full:
        def __init__(self, fh):
            self.fh, self.n = fh, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()
            return False

        def write(self, data):
            self.n += 1
            if self.n > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

    proxy = types.SimpleNamespace(**{n: getattr(os, n) for n in dir(os) if not n.startswith("__")})
    proxy.fdopen = lambda fd, *a, **k: Full(os.fdopen(fd, *a, **k))
    monkeypatch.setattr(atomic, "os", proxy)
    with pytest.raises(OSError):
        write_report(case)
    assert first.path.read_bytes() == before
    assert not [p for p in case.root.iterdir() if p.name.endswith(".tmp")]
    assert read_audit(case.root / "audit.jsonl").entries[-1]["action"] != audit.EXPORTED


def test_settings_are_named_for_readers_without_empty_rows(case):
    html = write_report(case).path.read_text(encoding="utf-8")
    section = html[html.index("<h2>Settings and models</h2>") : html.index("<h2>Limitations")]
    for raw in ("det_threshold", "min_face", "detect_size", "nms_iou", "no_detect", "extra"):
        assert raw not in section
    assert "face detection threshold (detector score)" in section
    assert "uncertain band on P(male)" in section
    assert "<td></td>" not in section and "<td>None</td>" not in section


def test_report_names_each_models_precision(case):
    html = write_report(case).path.read_text(encoding="utf-8")
    table = html[html.index("<th>precision</th>") :]
    for model in case.manifest["models"]:
        row = table[: table.index(model["sha256"])]
        assert f"<td>{model.get('precision', 'fp32')}</td>" in row.rsplit("<tr>", 1)[-1]
