"""Carrying an examiner's corrections over to a fresh analysis of the same photo.

Why: a correction is work and evidence. Re-analysing with new settings (F5, "Save and
re-analyze", a batch re-run into a case) must refresh what the *model* says and keep what the
*examiner* said: boxes drawn by hand stay, labels set by hand stay (with the model's fresh answer
kept beside them in ``model_gender``), detections the examiner deleted stay deleted, and a face
keeps its number. The GUI and ``core.case`` both call ``carry_corrections``; nothing else
decides how corrections survive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from forensic_app.core.nms import iou_matrix
from forensic_app.core.results import Face, ImageResult, face_number, next_face_number

#: A fresh detection is "the same face" as an earlier one at this IoU or more.
MATCH_IOU = 0.5


def _pairs(old: Sequence[Face], new: Sequence[Face]) -> dict[int, int]:
    """Greedy one-to-one matching by IoU (best pairs first): {new index: old index}."""
    if not old or not new:
        return {}
    iou = iou_matrix(np.asarray([f.box for f in new]), np.asarray([f.box for f in old]))
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        i, j = divmod(int(flat), len(old))
        if iou[i, j] < MATCH_IOU:
            break
        if i in pairs or j in taken:
            continue
        pairs[i] = j
        taken.add(j)
    return pairs


def _refreshed_manual_box(old: Face, model: Face | None) -> Face:
    """A hand-drawn box with the model's fresh answer for it (when the caller re-classified)."""
    if model is None:
        return old
    if old.manual_label:
        return replace(old, p_male=model.p_male, age=model.age, model_gender=model.gender)
    return replace(old, gender=model.gender, p_male=model.p_male, age=model.age)


def carry_corrections(
    previous: ImageResult,
    fresh: ImageResult,
    removed_boxes: Sequence[Sequence[float]] = (),
    reclassified: Sequence[Face] | None = None,
    number_floor: int = 1,
) -> tuple[ImageResult, int]:
    """``fresh`` (a new model result) with the corrections of ``previous`` put back.

    * Boxes drawn by hand are kept, and a fresh detection of a drawn face (IoU >= ``MATCH_IOU``,
      not matched to an earlier detection) is dropped; ``reclassified`` (the model's fresh
      answers for them, in their order in ``previous``) refreshes their model fields, never a
      label set by hand.
    * A label set by hand moves to the fresh detection of the same face (IoU >= ``MATCH_IOU``),
      whose own answer becomes ``model_gender``; with no such detection the old face is kept.
    * Fresh detections of a box in ``removed_boxes`` or ``previous.removed`` (deleted by the
      examiner) are dropped, and the merged result remembers those boxes as deleted.
    * Faces matched to an earlier face keep its number; new faces get numbers never used
      (above every number in ``previous`` and at least ``number_floor``).

    Returns the merged result (faces in number order) and how many corrections were carried.
    """
    drawn = [f for f in previous.faces if f.manual_box]
    if reclassified is not None and len(reclassified) != len(drawn):
        raise ValueError(f"{len(reclassified)} re-classified faces for {len(drawn)} drawn boxes")
    removed = [list(b) for b in previous.removed]
    for b in removed_boxes:
        if list(b) not in removed:
            removed.append(list(b))
    removed_boxes = removed
    new = list(fresh.faces)
    if removed_boxes and new:
        iou = iou_matrix(np.asarray([f.box for f in new]), np.asarray(removed_boxes, float))
        new = [f for f, row in zip(new, iou, strict=True) if row.max() < MATCH_IOU]
    detected_before = [f for f in previous.faces if not f.manual_box]
    pairs = _pairs(detected_before, new)
    if drawn and new:
        # A fresh detection of a face the examiner drew (missed before, found now at a lower
        # threshold) is that same face: the drawn box stands for it, so it is not counted twice.
        iou = iou_matrix(np.asarray([f.box for f in new]), np.asarray([f.box for f in drawn]))
        keep = [i in pairs or row.max() < MATCH_IOU for i, row in enumerate(iou)]
        pairs = {sum(keep[:i]): j for i, j in pairs.items()}
        new = [f for f, k in zip(new, keep, strict=True) if k]
    carried = len(drawn) + len(removed_boxes)
    out: list[Face] = []
    matched_old: set[int] = set()
    for i, face in enumerate(new):
        j = pairs.get(i)
        if j is None:
            out.append(replace(face, number=None))
            continue
        matched_old.add(j)
        old = detected_before[j]
        number = face_number(old, previous.faces.index(old))
        if old.manual_label:
            carried += 1
            out.append(
                replace(
                    face,
                    gender=old.gender,
                    manual_label=True,
                    model_gender=face.gender,
                    number=number,
                )
            )
        else:
            out.append(replace(face, number=number))
    for j, old in enumerate(detected_before):
        if old.manual_label and j not in matched_old:
            carried += 1
            out.append(old)  # the examiner's label outlives a detection the model lost
    for k, old in enumerate(drawn):
        out.append(_refreshed_manual_box(old, reclassified[k] if reclassified else None))
    known = [f.number for f in out if f.number is not None]
    nxt = max([number_floor - 1, next_face_number(previous.faces) - 1, *known]) + 1
    for face in out:
        if face.number is None:
            face.number = nxt
            nxt += 1
    out.sort(key=lambda f: f.number or 0)
    return replace(fresh, faces=out, notes=list(fresh.notes), removed=removed), carried
