"""Annotated copies: face boxes and captions drawn on a copy of the image.

Why here: the box colours are defined once (``BOX_COLORS``) and used by the GUI too, so a saved
annotation and the screen always agree. Line width and text size scale with the image, so labels
stay readable on a phone snapshot and on a 50-megapixel photo alike. Colours come from the
Okabe-Ito palette (distinguishable with common colour-vision deficiencies) and stay fixed in
light and dark themes: they are data, not chrome.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from forensic_app.core.atomic import refuse_overwrite_of, write_bytes_atomic
from forensic_app.core.results import Face

#: The one place for box colours (RGB).
BOX_COLORS: dict[str, tuple[int, int, int]] = {
    "female": (230, 159, 0),  # orange
    "male": (86, 180, 233),  # sky blue
    "uncertain": (240, 228, 66),  # yellow
    "selected": (255, 255, 255),  # white, drawn thicker
    "manual": (0, 158, 115),  # bluish green: a box drawn or a label set by the investigator
}

_SAVE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF"}


def face_color(face: Face) -> tuple[int, int, int]:
    """Colour of a face's box: "manual" when the investigator set it, else its label's colour."""
    if face.manual:
        return BOX_COLORS["manual"]
    return BOX_COLORS.get(face.gender, BOX_COLORS["uncertain"])


def face_caption(face: Face, index: int | None = None) -> str:
    """Caption such as ``"2 female 0.94"``, ``"3 uncertain p(male) 0.55"`` or ``"4 male manual"``.

    The number after a label is the confidence in that label (see ``Face.confidence``). An
    uncertain face shows the model's p(male) instead: "uncertain 0.80" would read as 80 %
    confidence in a verdict the tool deliberately does not give. A label set by hand has no model
    confidence and says "manual"; a hand-drawn box the model labelled keeps the confidence and
    adds "manual", so every export shows which faces a person added.
    """
    prefix = f"{index} " if index is not None else ""
    if face.manual_label:
        return f"{prefix}{face.gender} manual"
    suffix = " manual" if face.manual_box else ""
    if face.p_male is None:
        return f"{prefix}manual" if face.manual_box else f"{prefix}{face.gender}"
    if face.gender == "uncertain":
        return f"{prefix}uncertain p(male) {face.p_male:.2f}{suffix}"
    return f"{prefix}{face.gender} {face.confidence:.2f}{suffix}"


def _text_color(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    luma = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


Rect = tuple[int, int, int, int]  # x1, y1, x2, y2


def _overlap(a: Rect, b: Rect) -> int:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0


def place_captions(
    boxes: Sequence[Rect], sizes: Sequence[tuple[int, int]], width: int, height: int
) -> list[Rect]:
    """Choose where each caption goes so that captions of nearby faces do not cover each other.

    Why: in crowd photos faces stand shoulder to shoulder, and captions all drawn "above the
    box" pile up until a number or a label cannot be read, which defeats an annotated exhibit.
    Each caption (``sizes``: width, height) tries, in order, above its box (left- then
    right-aligned), below it, then stacked higher; the first spot that collides with no caption
    placed so far wins, else the one with the least overlap (other faces' boxes count half).
    """
    placed: list[Rect] = []
    for i, ((x1, y1, x2, y2), (cw, ch)) in enumerate(zip(boxes, sizes, strict=True)):
        spots = [(x1, y1 - ch), (x2 - cw, y1 - ch), (x1, y2), (x2 - cw, y2),
                 (x1, y1 - 2 * ch), (x1, y2 + ch), (x1, y1)]
        best: tuple[float, Rect] | None = None
        for sx, sy in spots:
            sx = min(max(0, sx), max(0, width - cw))
            sy = min(max(0, sy), max(0, height - ch))
            rect = (sx, sy, sx + cw, sy + ch)
            cost = sum(_overlap(rect, r) for r in placed)
            cost += 0.5 * sum(_overlap(rect, b) for j, b in enumerate(boxes) if j != i)
            if best is None or cost < best[0]:
                best = (cost, rect)
            if cost == 0:
                break
        assert best is not None
        placed.append(best[1])
    return placed


def render_annotated(
    rgb: np.ndarray, faces: Sequence[Face], selected: int | None = None
) -> np.ndarray:
    """Return a copy of ``rgb`` (HxWx3 uint8) with numbered boxes and captions (1-based)."""
    out = np.ascontiguousarray(rgb.copy())
    h, w = out.shape[:2]
    base = max(h, w)
    thick = max(2, round(base / 600))
    font = cv2.FONT_HERSHEY_SIMPLEX
    font_scale = max(0.45, base / 1800)
    text_thick = max(1, round(font_scale * 1.5))
    pad = max(2, thick)
    boxes: list[Rect] = [tuple(int(round(v)) for v in f.box) for f in faces]  # type: ignore[misc]
    captions = [face_caption(f, i + 1) for i, f in enumerate(faces)]
    metrics = [cv2.getTextSize(c, font, font_scale, text_thick) for c in captions]
    sizes = [(tw + 2 * pad, th + bl + 2 * pad) for (tw, th), bl in metrics]
    spots = place_captions(boxes, sizes, w, h)
    order = [i for i in range(len(faces)) if i != selected]
    if selected is not None and 0 <= selected < len(faces):
        order.append(selected)  # draw the selected face last, on top
    for i in order:  # boxes first, so no box line runs through a caption
        x1, y1, x2, y2 = boxes[i]
        if i == selected:
            cv2.rectangle(out, (x1, y1), (x2, y2), BOX_COLORS["selected"], thick * 3, cv2.LINE_AA)
        cv2.rectangle(out, (x1, y1), (x2, y2), face_color(faces[i]), thick, cv2.LINE_AA)
    for i in order:
        color = face_color(faces[i])
        tx, ty, tx2, ty2 = spots[i]
        (_, th), _ = metrics[i]
        cv2.rectangle(out, (tx, ty), (tx2, ty2), color, -1)
        cv2.putText(
            out, captions[i], (tx + pad, ty + pad + th), font, font_scale, _text_color(color),
            text_thick, cv2.LINE_AA,
        )
    return out


def encode_image(rgb: np.ndarray, suffix: str) -> bytes:
    """Encode an RGB array for a file suffix (.jpg/.jpeg/.png/.tif/.tiff)."""
    fmt = _SAVE_FORMATS.get(suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot save annotated image as {suffix!r}; use one of {sorted(_SAVE_FORMATS)}"
        )
    buf = io.BytesIO()
    params = {"quality": 92, "subsampling": 0} if fmt == "JPEG" else {}
    if fmt == "TIFF":
        params = {"compression": "tiff_lzw"}
    Image.fromarray(rgb, "RGB").save(buf, format=fmt, **params)
    return buf.getvalue()


def save_annotated(
    rgb: np.ndarray,
    faces: Sequence[Face],
    out_path: str | Path,
    protected: Iterable[str | Path] = (),
    selected: int | None = None,
) -> Path:
    """Render and write an annotated copy atomically; never over an input file."""
    target = Path(out_path)
    refuse_overwrite_of(target, protected)
    data = encode_image(render_annotated(rgb, faces, selected), target.suffix)
    write_bytes_atomic(target, data)
    return target
