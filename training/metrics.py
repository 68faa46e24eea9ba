"""Binary-classification metrics without scikit-learn (not a dependency of this project)."""

from __future__ import annotations

import numpy as np


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates over all thresholds (positive class = 1 = male)."""
    order = np.argsort(-score, kind="mergesort")
    y = np.asarray(y)[order]
    s = np.asarray(score)[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    pos, neg = max(int(y.sum()), 1), max(int(len(y) - y.sum()), 1)
    return np.r_[0.0, fps / neg], np.r_[0.0, tps / pos]


def auc(y: np.ndarray, score: np.ndarray) -> float:
    fpr, tpr = roc_curve(y, score)
    return float(np.trapezoid(tpr, fpr))


def binary_metrics(y: np.ndarray, p_male: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, balanced accuracy, per-class P/R/F1, AUC, confusion and per-gender error rate."""
    y = np.asarray(y).astype(int)
    pred = (np.asarray(p_male) >= threshold).astype(int)
    cm = np.zeros((2, 2), int)  # rows = true (female, male), cols = predicted
    np.add.at(cm, (y, pred), 1)
    out: dict = {"n": int(len(y)), "confusion": cm.tolist()}
    recalls = []
    for c, name in ((0, "female"), (1, "male")):
        tp = cm[c, c]
        prec = tp / max(cm[:, c].sum(), 1)
        rec = tp / cm[c, :].sum() if cm[c, :].sum() else float("nan")  # no faces: unknown
        f1 = 2 * prec * rec / max(prec + rec, 1e-12)
        out[name] = {
            "precision": float(prec),
            "recall": float(rec),
            "f1": float(f1),
            "n": int(cm[c, :].sum()),
        }
        recalls.append(rec)
    out["accuracy"] = float(np.trace(cm) / max(len(y), 1))
    out["balanced_accuracy"] = (
        float(np.nanmean(recalls)) if not np.all(np.isnan(recalls)) else float("nan")
    )
    out["err_f"] = float(1 - recalls[0])  # women called "male"
    out["err_m"] = float(1 - recalls[1])  # men called "female"
    out["auc"] = auc(y, np.asarray(p_male)) if 0 < y.sum() < len(y) else float("nan")
    return out
