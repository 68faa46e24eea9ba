"""Annotated copies: face boxes and captions drawn on a copy of the image.

Why here: the box colours are defined once (``BOX_COLORS``) and used by the GUI too, so a saved
annotation and the screen always agree. Line width and text size scale with the image, so labels
stay readable on a phone snapshot and on a 50-megapixel photo alike. Colours come from the
Okabe-Ito palette (distinguishable with common colour-vision deficiencies) and stay fixed in
light and dark themes: they are data, not chrome.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from forensic_app.core.atomic import refuse_overwrite_of, write_bytes_atomic
from forensic_app.core.results import Face, face_number

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


def model_answer(gender: str | None, p_male: float | None) -> str:
    """The model's answer in the one wording used everywhere (screen, exports, report).

    "female 0.94" / "male 0.91": the label and the confidence in it (``Face.confidence``).
    "uncertain p(male) 0.55": inside the band the tool gives no verdict, so it shows the model's
    p(male), never a "confidence" ("uncertain 0.80" would read as 80 % sure of something).
    """
    if gender is None:
        return ""
    if p_male is None:
        return gender
    if gender == "uncertain":
        return f"uncertain p(male) {p_male:.2f}"
    conf = p_male if gender == "male" else 1.0 - p_male
    return f"{gender} {conf:.2f}"


def face_label(face: Face) -> str:
    """What a face is labelled, without its number: e.g. ``"female 0.94"``,
    ``"uncertain p(male) 0.55"``, ``"male 0.80 manual"`` (a hand-drawn box the model labelled)
    or ``"female manual (model: male 0.81)"``.

    A label set by hand says "manual" and keeps the model's own answer beside it, as the JSON
    and CSV do (``model_gender``), so nobody mistakes the examiner's call for the model's.
    """
    if face.manual_label:
        answer = model_answer(face.model_gender, face.p_male)
        return f"{face.gender} manual" + (f" (model: {answer})" if answer else "")
    suffix = " manual" if face.manual_box else ""
    if face.p_male is None:
        return "manual" if face.manual_box else face.gender
    return model_answer(face.gender, face.p_male) + suffix


def face_caption(face: Face, index: int | None = None) -> str:
    """Caption such as ``"2 female 0.94"``: the face's number (when given) and ``face_label``."""
    prefix = f"{index} " if index is not None else ""
    return prefix + face_label(face)


def _text_color(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    luma = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


Rect = tuple[float, float, float, float]  # x1, y1, x2, y2
Point = tuple[float, float]


def _overlap(a: Rect, b: Rect) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0


@dataclass(frozen=True)
class LabelSpot:
    """Where one label goes: its rectangle and, when it had to move away from its box, a leader
    line from the label to the box (image pixels)."""

    rect: Rect
    leader: tuple[Point, Point] | None = None


def _nearest(rect: Rect, box: Rect) -> tuple[Point, Point]:
    """The closest pair of points between two rectangles (for a leader line)."""

    def axis(a1: float, a2: float, b1: float, b2: float) -> tuple[float, float]:
        if a2 < b1:
            return a2, b1
        if b2 < a1:
            return a1, b2
        mid = (max(a1, b1) + min(a2, b2)) / 2
        return mid, mid

    ax, bx = axis(rect[0], rect[2], box[0], box[2])
    ay, by = axis(rect[1], rect[3], box[1], box[3])
    return (ax, ay), (bx, by)


def layout_labels(
    boxes: Sequence[Sequence[float]],
    sizes: Sequence[tuple[float, float]],
    width: float,
    height: float,
    snap: bool = False,
) -> list[LabelSpot]:
    """Place every label so that none overlaps another label or covers any face box.

    The one layout for the screen (``gui.photo_view``, with the captions' size in image pixels at
    the current zoom) and for saved images and reports (``render_annotated``), so both read the
    same. Each label (``sizes``: width, height) first tries the spots touching its box: above it
    (left-, then right-aligned), below it, beside it. When all of those are taken, as in a
    crowd, it goes to the free spot nearest its box on a fine grid over the image and gets a
    leader line to its box. Labels are placed in reading order of their boxes. Only when the
    image has no free spot left for it does a label take the spot with the least overlap.
    ``snap`` keeps every spot on whole pixels (for drawing into an image).
    """
    n = len(boxes)
    spots: list[LabelSpot | None] = [None] * n
    if n == 0:
        return []
    face_rects = np.asarray([[float(v) for v in b[:4]] for b in boxes], dtype=np.float64)
    obstacles = [tuple(r) for r in face_rects]
    order = sorted(range(n), key=lambda i: (face_rects[i][1], face_rects[i][0]))
    for i in order:
        x1, y1, x2, y2 = face_rects[i]
        cw, ch = float(sizes[i][0]), float(sizes[i][1])
        max_x, max_y = max(0.0, width - cw), max(0.0, height - ch)
        near = [
            (x1, y1 - ch),
            (x2 - cw, y1 - ch),
            (x1, y2),
            (x2 - cw, y2),
            (x2, y1),
            (x1 - cw, y1),
            (x2, y2 - ch),
            (x1 - cw, y2 - ch),
        ]
        near = [(sx, sy) for sx, sy in near if 0 <= sx <= max_x and 0 <= sy <= max_y]
        step_x, step_y = max(2.0, cw / 8), max(2.0, ch / 2)
        gx = np.append(np.arange(0.0, max_x, step_x), max_x)
        gy = np.append(np.arange(0.0, max_y, step_y), max_y)
        grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        cand = np.concatenate([np.asarray(near, dtype=np.float64).reshape(-1, 2), grid])
        if snap:
            cand = np.floor(cand)
        rects = np.concatenate([cand, cand + [cw, ch]], axis=1)
        obs = np.asarray(obstacles, dtype=np.float64)
        ow = np.minimum(rects[:, None, 2], obs[None, :, 2]) - np.maximum(
            rects[:, None, 0], obs[None, :, 0]
        )
        oh = np.minimum(rects[:, None, 3], obs[None, :, 3]) - np.maximum(
            rects[:, None, 1], obs[None, :, 1]
        )
        cost = (np.clip(ow, 0, None) * np.clip(oh, 0, None)).sum(axis=1)
        # distance from each candidate to its box (0 for the spots touching it)
        dx = np.maximum(0.0, np.maximum(x1 - rects[:, 2], rects[:, 0] - x2))
        dy = np.maximum(0.0, np.maximum(y1 - rects[:, 3], rects[:, 1] - y2))
        dist = np.hypot(dx, dy)
        dist[: len(near)] = -1.0  # the touching spots first, in their order of preference
        free = np.nonzero(cost <= 1e-9)[0]
        if free.size:
            k = int(free[np.argmin(dist[free])])  # first of equals: the preferred order
        else:
            k = int(np.lexsort((dist, cost))[0])
        rect: Rect = tuple(float(v) for v in rects[k])  # type: ignore[assignment]
        leader = None
        if dist[k] > max(2.0, ch / 4):
            (ax, ay), (bx, by) = _nearest(rect, (x1, y1, x2, y2))
            leader = ((float(ax), float(ay)), (float(bx), float(by)))
        spots[i] = LabelSpot(rect, leader)
        obstacles.append(rect)
    return [s for s in spots if s is not None]


def place_captions(
    boxes: Sequence[Sequence[float]],
    sizes: Sequence[tuple[float, float]],
    width: float,
    height: float,
) -> list[Rect]:
    """The label rectangles of ``layout_labels`` (without leader lines)."""
    return [s.rect for s in layout_labels(boxes, sizes, width, height)]


@dataclass(frozen=True)
class CaptionStyle:
    """Line and text sizes for an annotated image: they scale with the image so labels read
    the same on a phone snapshot and on a 50-megapixel photo."""

    thick: int
    font_scale: float
    text_thick: int
    pad: int

    @classmethod
    def for_size(cls, width: int, height: int) -> CaptionStyle:
        base = max(height, width)
        font_scale = max(0.45, base / 1800)
        thick = max(2, round(base / 600))
        return cls(thick, font_scale, max(1, round(font_scale * 1.5)), max(2, thick))


_FONT = cv2.FONT_HERSHEY_SIMPLEX


def caption_layout(
    width: int, height: int, faces: Sequence[Face]
) -> tuple[list[str], list[LabelSpot], CaptionStyle]:
    """Captions, their spots and the style ``render_annotated`` uses for an image this size."""
    style = CaptionStyle.for_size(width, height)
    captions = [face_caption(f, face_number(f, i)) for i, f in enumerate(faces)]
    sizes = []
    for c in captions:
        (tw, th), bl = cv2.getTextSize(c, _FONT, style.font_scale, style.text_thick)
        sizes.append((tw + 2 * style.pad, th + bl + 2 * style.pad))
    # The drawn outline: whole pixels around the box plus half the line width.
    m = style.thick / 2
    boxes = [
        [math.floor(x1 - m), math.floor(y1 - m), math.ceil(x2 + m), math.ceil(y2 + m)]
        for x1, y1, x2, y2 in (f.box for f in faces)
    ]
    spots = layout_labels(boxes, sizes, width, height, snap=True)
    return captions, spots, style


def render_annotated(
    rgb: np.ndarray, faces: Sequence[Face], selected: int | None = None
) -> np.ndarray:
    """Return a copy of ``rgb`` (HxWx3 uint8) with numbered boxes and captions."""
    out = np.ascontiguousarray(rgb.copy())
    h, w = out.shape[:2]
    captions, spots, style = caption_layout(w, h, faces)
    thick, pad = style.thick, style.pad
    boxes = [tuple(int(round(v)) for v in f.box) for f in faces]
    order = [i for i in range(len(faces)) if i != selected]
    if selected is not None and 0 <= selected < len(faces):
        order.append(selected)  # draw the selected face last, on top
    for i in order:  # boxes first, so no box line runs through a caption
        x1, y1, x2, y2 = boxes[i]
        if i == selected:
            cv2.rectangle(out, (x1, y1), (x2, y2), BOX_COLORS["selected"], thick * 3, cv2.LINE_AA)
        cv2.rectangle(out, (x1, y1), (x2, y2), face_color(faces[i]), thick, cv2.LINE_AA)
    for i in order:
        leader = spots[i].leader
        if leader is not None:
            (ax, ay), (bx, by) = leader
            cv2.line(
                out,
                (round(ax), round(ay)),
                (round(bx), round(by)),
                face_color(faces[i]),
                max(1, thick // 2),
                cv2.LINE_AA,
            )
    for i in order:
        color = face_color(faces[i])
        tx, ty, tx2, ty2 = (int(v) for v in spots[i].rect)
        (_, th), _ = cv2.getTextSize(captions[i], _FONT, style.font_scale, style.text_thick)
        cv2.rectangle(out, (tx, ty), (tx2, ty2), color, -1)
        cv2.putText(
            out,
            captions[i],
            (tx + pad, ty + pad + th),
            _FONT,
            style.font_scale,
            _text_color(color),
            style.text_thick,
            cv2.LINE_AA,
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


@dataclass(frozen=True)
class EncodedCopy:
    """An annotated copy already rendered and encoded (by a cluster worker, core/cluster.py,
    with :func:`render_annotated` and :func:`encode_image`), for the file suffix it names."""

    data: bytes
    suffix: str


def save_annotated(
    rgb: np.ndarray | EncodedCopy,
    faces: Sequence[Face],
    out_path: str | Path,
    protected: Iterable[str | Path] = (),
    selected: int | None = None,
) -> Path:
    """Render and write an annotated copy atomically; never over an input file.

    ``rgb`` may be an :class:`EncodedCopy` drawn elsewhere from the same pixels: it is written
    as it is (so a cluster's client never decodes a photo), after checking it was encoded for
    this file's format.
    """
    target = Path(out_path)
    refuse_overwrite_of(target, protected)
    if isinstance(rgb, EncodedCopy):
        if _SAVE_FORMATS.get(rgb.suffix.lower()) != _SAVE_FORMATS.get(target.suffix.lower()):
            raise ValueError(f"annotated copy encoded as {rgb.suffix}, not for {target.name}")
        data = rgb.data
    else:
        data = encode_image(render_annotated(rgb, faces, selected), target.suffix)
    write_bytes_atomic(target, data)
    return target
