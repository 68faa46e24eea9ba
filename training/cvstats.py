"""Event folds, risk-coverage, the uncertain band from a stated target, and event-level intervals.

Why a module of its own (pure numpy, no torch): these are the numbers the model card leads with,
so they must be testable in seconds and shared by the CPU cross-validation (``training/cv.py``)
and the GPU run (``training/gpu_run.py``) without either re-implementing them.

Why folds over *events*: faces of one WIDER event (a parade, a football match) share scenes,
lighting, clothing and often people; a model that has seen one photo of an event does better on
its other photos than on a new event. The 40 ``wider-gender`` events are split into folds, and a
fold's events are left out of training, checkpoint selection, calibration and band fitting alike.

Why event-level (cluster) bootstrap intervals: faces within an event are not independent, so
resampling faces would understate the uncertainty of a figure meant for *unseen* events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: Coverages at which risk-coverage is reported (share of faces decided, most confident first).
COVERAGES = (0.7, 0.8, 0.9)
#: Default target for the uncertain band: at least this share of *decided* faces right, for women
#: and for men separately (out of fold; the card says so).
BAND_TARGET = 0.96
#: The band's half-width c is searched in [C_MIN, C_MAX]: a band can never swallow every face.
C_MIN, C_MAX = 0.5, 0.95


def event_of(image_path: str) -> str:
    """The WIDER event of a manifest row (``"10--People_Marching/10_...jpg"``: its folder)."""
    return image_path.split("/", 1)[0]


def assign_folds(events: Sequence[str], n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold (0..n_folds-1) of every row, all faces of one event in one fold.

    Events go, largest first, to the fold with the fewest faces so far (ties in size broken by a
    seeded shuffle), so folds hold similar numbers of faces although events range from a few
    dozen faces to several hundred. Deterministic for a given seed.
    """
    ev = np.asarray(events)
    names, counts = np.unique(ev, return_counts=True)
    if len(names) < n_folds:
        raise ValueError(f"{len(names)} events cannot fill {n_folds} folds")
    rng = np.random.default_rng(seed)
    tie = rng.permutation(len(names))
    order = np.lexsort((tie, -counts))
    load = np.zeros(n_folds, np.int64)
    fold_of: dict[str, int] = {}
    for i in order:
        f = int(np.argmin(load))
        fold_of[str(names[i])] = f
        load[f] += counts[i]
    return np.asarray([fold_of[str(e)] for e in ev], np.int64)


def confidence(p_male: np.ndarray) -> np.ndarray:
    p = np.asarray(p_male, np.float64)
    return np.maximum(p, 1 - p)


def decided_accuracy(p_male: np.ndarray, y: np.ndarray, c: float) -> dict:
    """Coverage and accuracy of the faces outside the band [1-c, c], overall and per true class."""
    p, y = np.asarray(p_male, np.float64), np.asarray(y).astype(int)
    sure = confidence(p) > c
    right = (p >= 0.5).astype(int) == y
    out = {"c": float(c), "coverage": float(sure.mean()) if len(p) else float("nan")}
    out["accuracy"] = float(right[sure].mean()) if sure.any() else float("nan")
    for cls, name in ((0, "female"), (1, "male")):
        m = sure & (y == cls)
        out[f"accuracy_{name}"] = float(right[m].mean()) if m.any() else float("nan")
        out[f"coverage_{name}"] = float(sure[y == cls].mean()) if (y == cls).any() else float("nan")
    return out


def band_for_target(
    p_male: np.ndarray, y: np.ndarray, target: float = BAND_TARGET, min_decided: int = 20
) -> dict:
    """The narrowest symmetric band [1-c, c] whose decided faces meet ``target`` per true class.

    Why per class: a band tuned on all faces together can meet 96 % while women (the minority in
    wild photos, and the class the model errs on more) fall short. ``c`` is the smallest value on
    a 0.005 grid in [C_MIN, C_MAX] at which both women's and men's decided faces are at least
    ``target`` right with at least ``min_decided`` decided faces of each class left; if none
    meets it, ``C_MAX`` and ``met = False`` (the caller says so rather than claiming the target).
    """
    for c in np.round(np.arange(C_MIN, C_MAX + 1e-9, 0.005), 3):
        d = decided_accuracy(p_male, y, float(c))
        p, yy = np.asarray(p_male), np.asarray(y).astype(int)
        sure = confidence(p) > c
        enough = all(int((sure & (yy == k)).sum()) >= min_decided for k in (0, 1))
        if enough and d["accuracy_female"] >= target and d["accuracy_male"] >= target:
            return {"band": [round(1 - float(c), 3), float(c)], "met": True, "fit": d}
    d = decided_accuracy(p_male, y, C_MAX)
    return {"band": [round(1 - C_MAX, 3), C_MAX], "met": False, "fit": d}


def risk_coverage(
    p_male: np.ndarray, y: np.ndarray, coverages: Sequence[float] = COVERAGES
) -> list[dict]:
    """Accuracy of the most confident ``coverage`` share of faces (overall and per true class)."""
    p, y = np.asarray(p_male, np.float64), np.asarray(y).astype(int)
    order = np.argsort(-confidence(p), kind="mergesort")
    right = ((p >= 0.5).astype(int) == y)[order]
    ys = y[order]
    rows = []
    for cov in coverages:
        k = max(1, int(round(cov * len(p))))
        row = {"coverage": float(cov), "n_decided": k, "accuracy": float(right[:k].mean())}
        for cls, name in ((0, "female"), (1, "male")):
            m = ys[:k] == cls
            row[f"accuracy_{name}"] = float(right[:k][m].mean()) if m.any() else float("nan")
        row["confidence_at_cut"] = float(confidence(p)[order][k - 1])
        rows.append(row)
    return rows


def cluster_bootstrap(
    stat: Callable[[np.ndarray], float],
    clusters: Sequence[str],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> list[float]:
    """Percentile interval of ``stat(row_indices)`` when whole clusters (events) are resampled.

    ``stat`` receives the row indices of one resample (with repeats) and returns a number;
    resamples where it is NaN (e.g. a group absent from the drawn events) are dropped.
    """
    cl = np.asarray(clusters)
    names = np.unique(cl)
    rows_of = [np.nonzero(cl == n)[0] for n in names]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(names), size=len(names))
        idx = np.concatenate([rows_of[i] for i in pick])
        v = stat(idx)
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return []
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return [float(np.percentile(vals, lo)), float(np.percentile(vals, hi))]
