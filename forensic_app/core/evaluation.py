"""Detection recall against labelled boxes: the one definition used by tests, bench and ADR 0003.

Recall counts labelled faces whose shorter side is at least ``min_side`` pixels that are matched
by a detection at IoU >= ``iou``. Matching is greedy one-to-one by IoU over *all* labelled faces
(a detection can never count for two faces; a small unlabelled-size face may take a detection).
``unmatched`` counts detections overlapping no labelled face at IoU >= 0.3: on WIDER FACE, where
every visible face is boxed, that is a fair estimate of false detections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forensic_app.core.nms import iou_matrix


def xywh_to_xyxy(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def greedy_match(gt: np.ndarray, det: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """Boolean per labelled face: matched one-to-one (highest IoU pairs first) at >= ``iou``."""
    matched_gt = np.zeros(len(gt), dtype=bool)
    if not len(gt) or not len(det):
        return matched_gt
    m = iou_matrix(gt, det)
    used = np.zeros(len(det), dtype=bool)
    gi, di = np.nonzero(m >= iou)
    for k in np.argsort(-m[gi, di], kind="stable"):
        g, d = gi[k], di[k]
        if not matched_gt[g] and not used[d]:
            matched_gt[g] = used[d] = True
    return matched_gt


@dataclass
class RecallCount:
    found: int = 0
    total: int = 0
    unmatched: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.total if self.total else float("nan")

    def add(
        self, gt_xyxy: np.ndarray, det_xyxy: np.ndarray, min_side: float = 32, iou: float = 0.5
    ) -> np.ndarray:
        """Count one image; returns the mask of counted labelled faces that were missed."""
        gt = np.asarray(gt_xyxy, dtype=np.float64).reshape(-1, 4)
        det = np.asarray(det_xyxy, dtype=np.float64).reshape(-1, 4)
        side = np.minimum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1])
        target = side >= min_side
        hit = greedy_match(gt, det, iou)
        self.found += int((hit & target).sum())
        self.total += int(target.sum())
        if len(det):
            best = iou_matrix(det, gt).max(axis=1) if len(gt) else np.zeros(len(det))
            self.unmatched += int((best < 0.3).sum())
        return target & ~hit
