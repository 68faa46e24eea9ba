"""Reading a PDF back in tests: its text and the size its characters are printed at (pypdf)."""

from __future__ import annotations

import collections
import re
from pathlib import Path


def pdf_text(path: Path) -> str:
    """All text of the PDF with runs of white space made single spaces."""
    from pypdf import PdfReader

    text = " ".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
    return re.sub(r"\s+", " ", text)


def printed_sizes(path: Path, pages: int = 3) -> collections.Counter:
    """Characters per printed font size in points (font size x text and page matrices)."""
    from pypdf import PdfReader

    sizes: collections.Counter = collections.Counter()

    def visit(text, cm, tm, font, size) -> None:
        chars = len(text.strip())
        if chars and size:
            sizes[round(abs(size * tm[3] * cm[3]), 1)] += chars

    for page in PdfReader(str(path)).pages[:pages]:
        page.extract_text(visitor_text=visit)
    return sizes


def body_size(path: Path) -> float:
    """The size most characters are printed at: the body text."""
    return printed_sizes(path).most_common(1)[0][0]
