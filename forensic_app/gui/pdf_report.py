"""The case report as PDF: ``core.report``'s HTML laid out by ``QTextDocument`` on A4.

Why Qt: it is already a dependency and prints HTML without a browser. Why this module owns the
page set-up: the earlier code sized the text document in *printer pixels* (1200 dpi) while its
fonts were measured at screen resolution, so every letter came out about 0.7 pt high. Here the
document is laid out in points (the page's size in pt, fonts in pt) and the painter is scaled
from points to the writer's device pixels, so 10 pt body text prints at 10 pt.

Used by the window (in a worker thread: ``QTextDocument``, ``QPdfWriter`` and ``QPainter`` on a
PDF are reentrant) and by ``forensic-app report --format pdf`` (offscreen Qt, imported lazily so
the command line's other commands never load Qt). Written atomically; the export is audited.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensic_app.core import audit
from forensic_app.core.atomic import refuse_overwrite_of, write_bytes_atomic
from forensic_app.core.case import Case
from forensic_app.core.report import ReportOutcome, build_report_html, refuse_case_file

#: Body text size in the PDF (points); headings scale from it.
BODY_PT = 10.0
#: Page margins (millimetres).
MARGIN_MM = 15.0
_POINTS_PER_INCH = 72.0
_MM_PER_INCH = 25.4


@dataclass
class PdfOutcome(ReportOutcome):
    """The HTML report's outcome (what was written, what the checks found), plus page count."""

    pages: int = 0


def ensure_gui_application() -> Any:
    """The Qt application the command line needs for fonts (offscreen when no display is set).

    A full ``QApplication``, not a ``QGuiApplication``: a process that later shows a window (or
    a test session) would otherwise be left with an application that cannot make widgets.
    """
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QApplication(["forensic-app"])
    return app


def render_pdf(html: str, title: str) -> tuple[bytes, int]:
    """Lay ``html`` out on A4 pages in points and return the PDF bytes and the page count."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QRectF, QSizeF
    from PySide6.QtGui import (
        QAbstractTextDocumentLayout,
        QFont,
        QImage,
        QPageLayout,
        QPageSize,
        QPainter,
        QPdfWriter,
        QTextDocument,
    )

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setResolution(300)
    margin = MARGIN_MM
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            QMarginsF(margin, margin, margin, margin),
            QPageLayout.Unit.Millimeter,
        )
    )
    writer.setTitle(title)
    writer.setCreator("forensic_app")
    # The printable area in points: the unit the document's fonts are measured in once the
    # document is told that one layout unit is one point (72 "dpi").
    paint_pt = writer.pageLayout().paintRect(QPageLayout.Unit.Point)
    doc = QTextDocument()
    font = QFont()
    font.setPointSizeF(BODY_PT)
    doc.setDefaultFont(font)
    # Lay out at 72 dpi, so one layout unit is one point whatever the screen (or no screen).
    points = QImage(1, 1, QImage.Format.Format_RGB32)
    dots_per_metre = round(_POINTS_PER_INCH / _MM_PER_INCH * 1000)
    points.setDotsPerMeterX(dots_per_metre)
    points.setDotsPerMeterY(dots_per_metre)
    doc.documentLayout().setPaintDevice(points)
    doc.setHtml(html)
    doc.setPageSize(QSizeF(paint_pt.width(), paint_pt.height()))
    pages = max(1, doc.pageCount())
    painter = QPainter(writer)
    try:
        scale = writer.resolution() / _POINTS_PER_INCH  # points -> device pixels
        painter.scale(scale, scale)
        height = paint_pt.height()
        for page in range(pages):
            if page:
                writer.newPage()
            painter.save()
            painter.translate(0, -page * height)
            ctx = QAbstractTextDocumentLayout.PaintContext()
            ctx.clip = QRectF(0, page * height, paint_pt.width(), height)
            doc.documentLayout().draw(painter, ctx)
            painter.restore()
    finally:
        painter.end()
    del writer  # finishes the PDF
    buffer.close()
    return bytes(data.data()), pages


def write_pdf_report(
    case: Case, out_path: str | Path, generated_by: str | None = None, log: bool = True
) -> PdfOutcome:
    """Verify the case and its inputs, print the report to ``out_path`` atomically and log the
    export (when ``log`` and the case may be written now), as ``core.report.write_report``."""
    out = Path(out_path)
    refuse_case_file(case, out)
    refuse_overwrite_of(out, [r.abs_path for r in case.records()])
    html, facts = build_report_html(case, generated_by=generated_by)
    check = facts.get("verification")
    problems = check.problems() if check is not None else []
    head = check.head if check is not None else None
    not_logged: str | None = "not asked to log" if not log else None
    if log:
        _, not_logged = case.try_log(
            audit.INTEGRITY_CHECK,
            None,
            photos=facts["photos"],
            problems=problems,
            verified_head=head,
        )
    pdf, pages = render_pdf(html, f"forensic_app report: {case.name}")
    refuse_overwrite_of(out, facts["inputs"])
    write_bytes_atomic(out, pdf)
    digest = hashlib.sha256(pdf).hexdigest()
    if log and not_logged is None:
        _, not_logged = case.try_log(
            audit.EXPORTED,
            None,
            kind="pdf-report",
            file=str(out.resolve()),
            report_sha256=digest,
            integrity_problems=len(problems),
            verified_head=head,
        )
    return PdfOutcome(
        out,
        digest,
        facts["photos"],
        facts["faces"],
        list(facts.get("issues", [])),
        list(facts.get("audit_problems", [])),
        check,
        not_logged,
        pages=pages,
    )
