"""The streamed JSON document is byte-identical to ``AnalysisDocument.to_json()``."""

from __future__ import annotations

import io
import random

from forensic_app.core.docstream import InOrder, JsonDocumentWriter
from forensic_app.core.results import AnalysisDocument, Face, ImageResult, ModelInfo


def make_doc(n: int) -> AnalysisDocument:
    images = [
        ImageResult(
            path=f"évidence/photo {i}.jpg",
            sha256=f"{i:064x}",
            width=640,
            height=480,
            faces=[Face(box=[1.0, 2.0, 30.5, 40.25], score=0.9, gender="male", p_male=0.91)] * i,
            error="truncated" if i == 2 else None,
            timings_ms={"load": 1.234567},
            notes=["note ✓"] if i % 2 else [],
            settings={"det_threshold": 0.4},
        )
        for i in range(n)
    ]
    models = [ModelInfo(role="detector", name="d", path="/m/d.onnx", sha256="a" * 64)]
    doc = AnalysisDocument("0.1.0", models, "CPUExecutionProvider", {"mode": "standard"}, images)
    if n:  # the keys after "images" (files a walk passed over) come after the streamed images
        doc.skipped = [{"path": "notes ✓.txt", "reason": "not an image file"}]
    return doc


def stream(doc: AnalysisDocument) -> str:
    buf = io.StringIO()
    writer = JsonDocumentWriter(buf, doc)
    for image in doc.images:
        writer.write(image)
    writer.close()
    return buf.getvalue()


def test_streamed_document_equals_the_whole_document() -> None:
    for n in (0, 1, 5):
        doc = make_doc(n)
        assert stream(doc) == doc.to_json()


def test_in_order_restores_input_order_and_fills_gaps() -> None:
    got: list[str] = []
    order = InOrder(lambda r: got.append(r.path))
    indices = list(range(10))
    random.Random(3).shuffle(indices)
    for i in indices:
        if i != 7:  # photo 7 never finished (cancelled)
            order.add(i, ImageResult(path=f"p{i}"))
    assert got == [f"p{i}" for i in range(7)]  # 8 and 9 wait for 7
    assert len(order.waiting) == 2
    order.finish(10, lambda i: ImageResult(path=f"missing{i}", error="cancelled"))
    assert got == [f"p{i}" for i in range(7)] + ["missing7", "p8", "p9"]
    assert not order.waiting


def test_one_slow_photo_never_makes_memory_hold_every_later_result() -> None:
    """Photo 0 finishes last (a huge TIFF on one worker while the others finish 199 photos):
    at most ``max_held`` results wait in memory, the rest are spilled to disk, and the document
    written is byte-for-byte the one written in order."""
    doc = make_doc(200)
    buf = io.StringIO()
    writer = JsonDocumentWriter(buf, doc)
    order = InOrder(writer.write, max_held=8)
    most_held = 0
    for i in [*range(1, 200), 0]:
        order.add(i, doc.images[i])
        most_held = max(most_held, order.held)
    assert order.spill is not None and not order.waiting  # all written once photo 0 came
    order.finish(200, lambda i: ImageResult(path=f"missing{i}"))
    assert order.spill is None  # the temporary file is closed (and so deleted)
    writer.close()
    assert most_held == 8
    assert buf.getvalue() == doc.to_json()


def test_a_spilled_result_is_the_result_that_was_put_csv_included() -> None:
    """A result read back from the spill is exact (not its display-escaped JSON form), so the
    CSV of a run does not depend on which results happened to finish early."""
    from forensic_app.cli import _csv_rows

    hostile = ImageResult(
        path="ev/\udcffname\u202e.jpg",  # undecodable byte and a bidi control in the name
        sha256="ab" * 32,
        faces=[Face(box=[1.0, 2.0, 3.0, 4.0], score=0.5, gender="female", p_male=0.1)],
        notes=["bad \udcff name", "line1\nline2"],
    )
    held: list[ImageResult] = []
    order = InOrder(held.append, max_held=0)  # everything early goes to the spill
    order.add(1, hostile)
    assert order.spill is not None and 1 in order.spill
    order.add(0, ImageResult(path="first.jpg"))
    assert held[1] == hostile
    assert _csv_rows(held[1]) == _csv_rows(hostile)
    order.close()
