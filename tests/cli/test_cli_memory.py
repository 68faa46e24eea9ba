"""``analyze --json/--csv`` over many photos holds neither their pixels nor their results.

The decoder is wrapped so every decoded image is counted while alive (weakref finalizers); the
streaming JSON writer is wrapped so the test sees each result as it is written. A document of
N photos must come out whole, in input order, with only a few decoded images alive at any time
and no result kept on the batch's items.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import threading
import weakref
from pathlib import Path

import pytest
from fake_engine import FakeEngine, make_photo

from forensic_app import cli
from forensic_app.core import docstream, imaging
from forensic_app.core.batch import recommended_parallelism

N = 40


@pytest.fixture
def many_photos(tmp_path: Path) -> list[Path]:
    return [
        make_photo(
            tmp_path / "in" / f"p{i:03d}.png", color=(200, 30, 30) if i % 2 else (30, 30, 200)
        )
        for i in range(N)
    ]


@pytest.fixture
def live_images(monkeypatch) -> dict[str, int]:
    live = {"now": 0, "max": 0, "decoded": 0}
    lock = threading.Lock()
    real_decode = imaging.decode_image_bytes

    def gone() -> None:
        with lock:
            live["now"] -= 1

    def counting_decode(*args, **kwargs):
        image = real_decode(*args, **kwargs)
        with lock:
            live["now"] += 1
            live["decoded"] += 1
            live["max"] = max(live["max"], live["now"])
        weakref.finalize(image.rgb, gone)
        return image

    monkeypatch.setattr(imaging, "decode_image_bytes", counting_decode)  # load_image uses it
    return live


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("with_out", [False, True])
def test_document_of_n_photos_is_streamed_without_holding_them(
    tmp_path, many_photos, live_images, monkeypatch, workers, with_out
) -> None:
    writes: list[tuple[str, int]] = []
    real_write = docstream.JsonDocumentWriter.write

    def recording_write(self, result):
        writes.append((Path(result.path).name, live_images["now"]))
        real_write(self, result)

    monkeypatch.setattr(docstream.JsonDocumentWriter, "write", recording_write)
    outcomes = []
    real_run = cli._run_batch

    def keep_outcome(*args, **kwargs):
        outcomes.append(real_run(*args, **kwargs))
        return outcomes[-1]

    monkeypatch.setattr(cli, "_run_batch", keep_outcome)
    doc_path, csv_path = tmp_path / "doc.json", tmp_path / "faces.csv"
    argv = [
        "analyze",
        str(tmp_path / "in"),
        "--json",
        str(doc_path),
        "--csv",
        str(csv_path),
        "--workers",
        str(workers),
    ]
    if with_out:
        argv += ["--out", str(tmp_path / "annotated")]
    out, err = io.StringIO(), io.StringIO()
    engine = FakeEngine()
    rc = cli.main(argv, engine_factory=lambda args: engine, stdout=out, stderr=err)
    assert rc == 0, err.getvalue()

    doc = json.loads(doc_path.read_text(encoding="utf-8"))
    names = [Path(i["path"]).name for i in doc["images"]]
    assert names == [p.name for p in many_photos]  # every photo, in input order
    assert all(len(i["faces"]) == 1 and i["error"] is None for i in doc["images"])
    genders = [i["faces"][0]["gender"] for i in doc["images"]]
    assert genders == ["female" if n % 2 == 0 else "male" for n in range(N)]
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    assert [Path(r["path"]).name for r in rows] == names

    assert [w[0] for w in writes] == names  # one result at a time, as the run went
    assert live_images["decoded"] == N
    # the pipeline's bound: 2 decoded ahead + 1 waiting to be queued + one per worker in
    # inference + 1 queued to finish + 1 being written (tests/core/test_batch.py)
    bound = 2 + 1 + workers + 2
    assert live_images["max"] <= bound < N, live_images
    assert max(alive for _, alive in writes) <= bound
    (outcome,) = outcomes
    assert all(item.result is None for item in outcome.items)  # only compact summaries kept
    assert sum(sum(item.counts.values()) for item in outcome.items) == N
    outcomes.clear()
    del outcome
    gc.collect()
    assert live_images["now"] == 0


def test_json_on_stdout_is_streamed_the_same(tmp_path, many_photos, live_images) -> None:
    out, err = io.StringIO(), io.StringIO()
    engine = FakeEngine()
    rc = cli.main(
        ["analyze", str(tmp_path / "in"), "--json", "-"],
        engine_factory=lambda args: engine,
        stdout=out,
        stderr=err,
    )
    assert rc == 0, err.getvalue()
    doc = json.loads(out.getvalue())
    assert len(doc["images"]) == N and out.getvalue().endswith("}\n")
    _, workers = recommended_parallelism(N)  # the CLI's default: one photo per core
    assert live_images["max"] <= 2 + 1 + workers + 2 < N


def test_a_failed_run_leaves_no_partial_document(tmp_path, many_photos, monkeypatch) -> None:
    doc_path = tmp_path / "doc.json"
    doc_path.write_text("previous document", encoding="utf-8")

    class Boom(FakeEngine):
        def analyze_image(self, image, settings=None, cancel=None):
            if image.path.endswith("p010.png"):
                raise KeyboardInterrupt
            return super().analyze_image(image, settings or cli.AnalysisSettings(), cancel)

    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(
        ["analyze", str(tmp_path / "in"), "--json", str(doc_path), "--workers", "1"],
        engine_factory=lambda args: Boom(),
        stdout=out,
        stderr=err,
    )
    assert rc == cli.EXIT_INTERRUPTED
    assert doc_path.read_text(encoding="utf-8") == "previous document"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".doc.json")]
