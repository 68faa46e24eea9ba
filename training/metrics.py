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


def wild_auc_mean(square_auc: float, no_detect_auc: float) -> float:
    """How candidate models are ranked: wider-gender val AUC averaged over the app's square
    framing and the ``--no-detect`` framing. One definition for ``train`` (which checkpoint is
    ``best.pt``) and ``compare`` (which candidate ships), so the two cannot drift apart."""
    return (square_auc + no_detect_auc) / 2


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


def bootstrap_ci(
    y: np.ndarray,
    p_male: np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    threshold: float = 0.5,
    seed: int = 0,
) -> dict:
    """Percentile bootstrap intervals for balanced accuracy, AUC and the female-male error gap.

    Why: the wild evaluation sets are small (605 and 151 faces, ~50 women among the dev-eval
    crops), so a point estimate alone cannot say whether a target is missed by more than the
    noise. Women and men are resampled separately (stratified), which keeps each resample's
    class counts equal to the set's, as balanced accuracy assumes.
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p_male, dtype=np.float64)
    f, m = p[y == 0], p[y == 1]
    if len(f) == 0 or len(m) == 0:
        return {"n_boot": 0}
    rng = np.random.default_rng(seed)
    fb = f[rng.integers(0, len(f), size=(n_boot, len(f)))]
    mb = m[rng.integers(0, len(m), size=(n_boot, len(m)))]
    yb = np.r_[np.zeros(len(f), int), np.ones(len(m), int)]
    err_f = (fb >= threshold).mean(axis=1)  # women called "male"
    err_m = (mb < threshold).mean(axis=1)  # men called "female"
    stats = {
        "balanced_accuracy": 1 - (err_f + err_m) / 2,
        "auc": np.array([auc(yb, np.r_[fi, mi]) for fi, mi in zip(fb, mb, strict=True)]),
        "err_gap": err_f - err_m,
    }
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    out: dict = {"n_boot": n_boot, "level": level}
    for k, v in stats.items():
        out[k] = [float(np.percentile(v, lo)), float(np.percentile(v, hi))]
    return out


def mean_ci(values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> list:
    """Percentile bootstrap interval of a mean (e.g. of absolute age errors).

    Why: a "< 6 years" verdict on a few thousand faces should say whether the margin is larger
    than the resampling noise, like the gender targets do.
    """
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return []
    rng = np.random.default_rng(seed)
    means = np.array([v[rng.integers(0, len(v), size=len(v))].mean() for _ in range(n_boot)])
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return [float(np.percentile(means, lo)), float(np.percentile(means, hi))]
