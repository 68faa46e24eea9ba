"""Cross-validation over WIDER events: what the training recipe reaches on events it never saw.

    python -m training cv --out training/runs/cv --folds 5 --budget-min 10   # train + predict
    python -m training cv --out training/runs/cv --report-only               # cv.json + cv.md

Why: ``wider-gender`` val picks the checkpoints, fits the calibration and sets the uncertain
band, so a figure taken on it is not an estimate of how the model does on a new event. Here
each of ``--folds`` event folds (``cvstats.assign_folds``) is left out in turn; inside the
training folds the recipe does everything it does for a shipped model (trains on their train
photos, selects ``best.pt`` and fits class-balanced Platt scaling and the band on their val
photos); the left-out fold is predicted once, at the end. The pooled out-of-fold predictions
give the figures, with 95 % intervals from resampling whole events.

Resumable: every fold trains into ``OUT/fold-K`` (``train`` checkpoints and resumes) and writes
``OUT/fold-K/oof.npz`` when its predictions are done; a fold with ``oof.npz`` is skipped. Cut
it off at any time and run the same command again.

Test-time variants are measured on the same out-of-fold faces at no training cost: the single
pass, the mirror average the app ships (``flip``), and ``multiscale`` (the mirror average over
face boxes scaled by 0.9, 1.0 and 1.1, the spread of the detector's box sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from training import data as D
from training.cvstats import (
    BAND_TARGET,
    COVERAGES,
    band_for_target,
    cluster_bootstrap,
    decided_accuracy,
    event_of,
    risk_coverage,
)
from training.metrics import auc, binary_metrics

#: Where ``--card`` writes ``cv.md`` in the model card (generated, so it cannot drift).
CARD_MARKERS = ("<!-- cv:start -->", "<!-- cv:end -->")
TTA_VARIANTS = ("single", "flip", "multiscale")
PRIMARY = "flip"  # what the app does (the exported graph averages each face with its mirror)
MULTISCALE = (0.9, 1.0, 1.1)
#: Issue 19's targets, checked on the pooled out-of-fold estimate.
TARGETS = {
    "balanced_accuracy": 0.90,
    "balanced_accuracy_ge64": 0.93,
    "auc": 0.96,
    "gender_gap_max": 0.03,
    "skin_ratio_max": 1.5,
    "decided_accuracy_at_80": 0.96,
    "clean_faces_accuracy": 0.985,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] cv: {msg}", flush=True)


def _scaled_box(box: np.ndarray, s: float) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * s, (y2 - y1) * s
    return np.asarray([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


def crops_of(
    split: D.Split,
    size: int,
    margin: float,
    scale: float = 1.0,
    no_detect: bool = False,
    context_margin: float = 0.0,
) -> np.ndarray:
    """Preprocessed app-geometry crops of every face of ``split`` (boxes scaled by ``scale``;
    both views of the two-view model when ``context_margin`` > 0)."""
    out = []
    for i in range(len(split)):
        if scale == 1.0:
            out.append(D.eval_crop(split, i, size, no_detect, margin, context_margin))
        else:
            box = _scaled_box(split.boxes[i], scale)
            out.append(D.box_views(D.image_of(split, i), box, size, margin, context_margin))
    return D.to_tensor_batch(out)


@torch.no_grad()
def logits_of(net: torch.nn.Module, x: np.ndarray, flip: bool, bs: int = 128) -> np.ndarray:
    """Gender logits, optionally averaged with the mirror image (the exported graph's TTA)."""
    net.eval()
    out = []
    for i in range(0, len(x), bs):
        xb = torch.from_numpy(x[i : i + bs]).contiguous(memory_format=torch.channels_last)
        g, _ = net(xb)
        if flip:
            g = (g + net(torch.flip(xb, dims=[3]))[0]) / 2
        out.append(g.float().numpy())
    return np.concatenate(out)


def variant_logits(
    net: torch.nn.Module, split: D.Split, size: int, margin: float, context_margin: float = 0.0
) -> dict:
    """Logits of every test-time variant (square framing) and of the ``--no-detect`` framing."""
    views = {"context_margin": context_margin}
    x = crops_of(split, size, margin, **views)
    res = {"single": logits_of(net, x, flip=False), "flip": logits_of(net, x, flip=True)}
    ms = [res["flip"]]
    for s in MULTISCALE:
        if s != 1.0:
            ms.append(logits_of(net, crops_of(split, size, margin, scale=s, **views), flip=True))
    res["multiscale"] = np.mean(ms, axis=0)
    nd = crops_of(split, size, margin, no_detect=True, **views)
    res["no_detect"] = logits_of(net, nd, flip=True)
    return res


def _calibrated(logits: np.ndarray, temperature: float, shift: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(logits + shift) / temperature))


def predict_fold(fold_dir: Path, hp, band_target: float) -> dict:
    """Calibrate and set the band on the fold's *training* events' val photos, then predict the
    held-out events. Returns what ``oof.npz`` stores."""
    from training.export import fit_platt_balanced, load_net

    net, ck = load_net(fold_dir / "best.pt")
    trained = ck.get("meta", {}).get("hparams", {})
    for key in ("input_size", "crop_margin", "context_margin"):
        # A fold is measured in the geometry it was trained in: rerunning cv into a folder
        # with other crop options must not measure its folds with the wrong crops.
        if key in trained and float(trained[key]) != float(getattr(hp, key, 0.0)):
            raise SystemExit(
                f"{fold_dir}: trained with {key} {trained[key]}, asked for "
                f"{getattr(hp, key, 0.0)}: use another --out for another recipe"
            )
    splits = D.load_splits(
        gtrain_framing=hp.gtrain_framing, holdout=D.Holdout(hp.cv_fold, hp.cv_folds, hp.cv_seed)
    )
    size, margin, cm = hp.input_size, hp.crop_margin, getattr(hp, "context_margin", 0.0)
    val, test = splits["wider_val"], splits["wider_test"]
    vx = crops_of(val, size, margin, context_margin=cm)
    v_sq = logits_of(net, vx, flip=True)
    v_nd = logits_of(net, crops_of(val, size, margin, no_detect=True, context_margin=cm), flip=True)
    # As at export: both framings pooled for calibration and band (training/export.py).
    cal_logits, cal_y = np.r_[v_sq, v_nd], np.r_[val.labels, val.labels]
    temperature, shift = fit_platt_balanced(cal_logits, cal_y)
    band = band_for_target(_calibrated(cal_logits, temperature, shift), cal_y, band_target)
    t = variant_logits(net, test, size, margin, cm)
    g = splits["gtrain_val"]
    gidx = np.random.default_rng(0).choice(len(g), min(1000, len(g)), replace=False)
    gx = D.to_tensor_batch(
        [D.eval_crop(g, int(i), size, margin=margin, context_margin=cm) for i in gidx]
    )
    g_logits = logits_of(net, gx, flip=True)
    return {
        "rows": test.rows,
        "labels": test.labels,
        **{f"logits_{k}": v for k, v in t.items()},
        "temperature": np.float64(temperature),
        "shift": np.float64(shift),
        "band": np.asarray(band["band"], np.float64),
        "band_met_in_fold": np.bool_(band["met"]),
        "gtrain_labels": g.labels[gidx],
        "gtrain_logits": g_logits,
        "checkpoint_step": np.int64(ck.get("row", {}).get("step", -1)),
    }


def _train_done(fold_dir: Path) -> bool:
    m = fold_dir / "metrics.json"
    return m.is_file() and bool(json.loads(m.read_text()).get("finished"))


def run_folds(out: Path, base, folds: int, band_target: float, only: list[int] | None) -> None:
    from training.train import train

    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(
        json.dumps({"hparams": asdict(base), "folds": folds, "band_target": band_target}, indent=2)
    )
    for k in range(folds):
        if only is not None and k not in only:
            continue
        fold_dir = out / f"fold-{k}"
        if (fold_dir / "oof.npz").is_file():
            log(f"fold {k}: done earlier")
            continue
        hp = replace(base, cv_fold=k, cv_folds=folds, seed=base.seed + k)
        if not _train_done(fold_dir):
            budget = f"{hp.budget_steps} steps" if hp.budget_steps else f"{hp.budget_min} min"
            log(f"fold {k}: training ({budget})")
            train(hp, fold_dir)
        log(f"fold {k}: predicting the held-out events")
        res = predict_fold(fold_dir, hp, band_target)
        tmp = fold_dir / "oof.tmp.npz"
        np.savez(tmp, **res)
        os.replace(tmp, fold_dir / "oof.npz")


# -- the report ------------------------------------------------------------------------------------
def _load_oof(out: Path) -> dict:
    parts = sorted(out.glob("fold-*/oof.npz"))
    if not parts:
        raise SystemExit(f"no fold has finished under {out}")
    loaded = [dict(np.load(p)) for p in parts]
    cat = {k: np.concatenate([d[k] for d in loaded]) for k in ("rows", "labels", "gtrain_labels")}
    for v in (*TTA_VARIANTS, "no_detect"):
        cat[f"p_{v}"] = np.concatenate(
            [_calibrated(d[f"logits_{v}"], d["temperature"], d["shift"]) for d in loaded]
        )
    cat["gtrain_p"] = np.concatenate(
        [_calibrated(d["gtrain_logits"], d["temperature"], d["shift"]) for d in loaded]
    )
    # every test face gets its own fold's band
    cat["band_c"] = np.concatenate([np.full(len(d["rows"]), d["band"][1]) for d in loaded])
    cat["folds"] = [
        {
            "fold": int(p.parent.name.split("-")[1]),
            "faces": int(len(d["rows"])),
            "temperature": float(d["temperature"]),
            "shift": float(d["shift"]),
            "band": [float(b) for b in d["band"]],
            "band_met_in_fold": bool(d["band_met_in_fold"]),
            "checkpoint_step": int(d["checkpoint_step"]),
        }
        for p, d in zip(parts, loaded, strict=True)
    ]
    return cat


def _err_gap(y: np.ndarray, p: np.ndarray) -> float:
    m = binary_metrics(y, p)
    return m["err_f"] - m["err_m"]


def _group_table(y, p, groups, events) -> dict:
    out = {}
    for g in sorted(set(groups)):
        m = np.asarray(groups) == g
        r = binary_metrics(y[m], p[m])
        out[g] = {
            "n": int(m.sum()),
            "n_female": r["female"]["n"],
            "n_male": r["male"]["n"],
            "error": 1 - r["accuracy"],
            "balanced_error": 1 - r["balanced_accuracy"],
            "err_f": r["err_f"],
            "err_m": r["err_m"],
            "error_ci95": cluster_bootstrap(
                lambda idx, m=m: (
                    float(1 - np.mean(((p >= 0.5) == y)[idx][m[idx]]))
                    if m[idx].any()
                    else float("nan")
                ),
                events,
                n_boot=500,
            ),
        }
    return out


#: The perceived skin groups the fairness target compares ("Not Sure" is no group), and the
#: fewest faces a group needs in a sample to count.
SKIN_GROUPS = ("I", "II", "III", "IV", "V", "VI")
MIN_GROUP_FACES = 30


def skin_error_ratio(y: np.ndarray, p: np.ndarray, skin: np.ndarray, idx: np.ndarray) -> float:
    """Worst / best skin group's error among the rows ``idx`` (groups of >= 30 faces there)."""
    errs = []
    for g in SKIN_GROUPS:
        m = idx[skin[idx] == g]
        if len(m) >= MIN_GROUP_FACES:
            errs.append(float(np.mean((p[m] >= 0.5) != y[m])))
    return max(errs) / max(min(errs), 1e-9) if len(errs) > 1 else float("nan")


def summarize(y, p, events, face_px, skin, age, band_c) -> dict:
    """Every figure the card leads with, for one set of pooled out-of-fold probabilities."""
    m = binary_metrics(y, p)

    def ba(idx):
        return binary_metrics(y[idx], p[idx])["balanced_accuracy"]

    big = face_px >= 64
    res = {
        "n": int(len(y)),
        "n_female": m["female"]["n"],
        "n_male": m["male"]["n"],
        "events": int(len(set(events))),
        "balanced_accuracy": m["balanced_accuracy"],
        "balanced_accuracy_ci95": cluster_bootstrap(ba, events),
        "auc": m["auc"],
        "auc_ci95": cluster_bootstrap(lambda idx: auc(y[idx], p[idx]), events),
        "err_f": m["err_f"],
        "err_m": m["err_m"],
        "gender_gap": m["err_f"] - m["err_m"],
        "gender_gap_ci95": cluster_bootstrap(lambda idx: _err_gap(y[idx], p[idx]), events),
        "ge64": {
            "n": int(big.sum()),
            "balanced_accuracy": binary_metrics(y[big], p[big])["balanced_accuracy"],
            "balanced_accuracy_ci95": cluster_bootstrap(
                lambda idx: ba(idx[big[idx]]) if big[idx].any() else float("nan"), events
            ),
        },
        "risk_coverage": risk_coverage(p, y, COVERAGES),
        "by_skin_group": _group_table(y, p, skin, events),
        "skin_ratio": skin_error_ratio(y, p, np.asarray(skin), np.arange(len(y))),
        "skin_ratio_ci95": cluster_bootstrap(
            lambda idx: skin_error_ratio(y, p, np.asarray(skin), idx), events, n_boot=500
        ),
        "by_age_group": _group_table(y, p, age, events),
    }
    # The in-fold band applied to the held-out faces: does the rule hold on unseen events?
    sure = np.maximum(p, 1 - p) > band_c
    right = (p >= 0.5).astype(int) == y

    def share(mask: np.ndarray) -> float:
        return float(right[mask].mean()) if mask.any() else float("nan")

    res["band_out_of_fold"] = {
        "coverage": float(sure.mean()),
        "accuracy": share(sure),
        "accuracy_female": share(sure & (y == 0)),
        "accuracy_male": share(sure & (y == 1)),
    }
    return res


def report(out: Path, band_target: float = BAND_TARGET) -> dict:
    cat = _load_oof(out)
    manifest = D.wider_manifest()
    rows = cat["rows"]
    y = cat["labels"].astype(int)
    events = [event_of(manifest[r]["image_path"]) for r in rows]
    px = np.asarray([float(manifest[r]["face_short_side_px"]) for r in rows])
    skin = [manifest[r]["skin"] or "Not Sure" for r in rows]
    age = [manifest[r]["age"] or "Not Sure" for r in rows]
    recipe = json.loads((out / "recipe.json").read_text())
    res: dict = {
        "what": "pooled out-of-fold predictions: each face predicted by the model of the one "
        "fold that never saw its event (training, selection, calibration and band inside the "
        "other folds)",
        "recipe": recipe,
        "folds": cat["folds"],
        "primary_variant": PRIMARY,
        "variants": {},
    }
    for v in TTA_VARIANTS:
        res["variants"][v] = summarize(y, cat[f"p_{v}"], events, px, skin, age, cat["band_c"])
    res["no_detect_framing"] = summarize(
        y, cat["p_no_detect"], events, px, skin, age, cat["band_c"]
    )
    # A single band fitted on all pooled out-of-fold faces, for the record (not an estimate).
    res["pooled_band_for_target"] = band_for_target(cat[f"p_{PRIMARY}"], y, band_target)
    g = binary_metrics(cat["gtrain_labels"], cat["gtrain_p"])
    res["clean_faces"] = {
        "set": "gender-train val (1,000 aligned faces, the same for every fold model)",
        "accuracy": g["accuracy"],
        "balanced_accuracy": g["balanced_accuracy"],
    }
    res["decided_at_80"] = decided_accuracy(
        cat[f"p_{PRIMARY}"], y, res["variants"][PRIMARY]["risk_coverage"][1]["confidence_at_cut"]
    )
    res["targets"] = targets(res)
    (out / "cv.json").write_text(json.dumps(res, indent=2, default=float))
    (out / "cv.md").write_text(markdown(res))
    return res


def _abs_interval(ci: list[float]) -> list[float]:
    """The interval of |x| from that of x (0 at the bottom when x's interval spans 0)."""
    if not ci:
        return []
    lo, hi = ci
    if lo <= 0 <= hi:
        return [0.0, max(-lo, hi)]
    return sorted([abs(lo), abs(hi)])


def targets(res: dict) -> list[dict]:
    p = res["variants"][PRIMARY]
    ratio = p["skin_ratio"] if np.isfinite(p["skin_ratio"]) else None
    rc80 = next(r for r in p["risk_coverage"] if abs(r["coverage"] - 0.8) < 1e-9)
    rows = [
        ("balanced accuracy", p["balanced_accuracy"], p["balanced_accuracy_ci95"], ">=", 0.90),
        (
            "balanced accuracy, faces >= 64 px",
            p["ge64"]["balanced_accuracy"],
            p["ge64"]["balanced_accuracy_ci95"],
            ">=",
            0.93,
        ),
        ("ROC-AUC", p["auc"], p["auc_ci95"], ">=", 0.96),
        (
            "women's minus men's error",
            abs(p["gender_gap"]),
            _abs_interval(p["gender_gap_ci95"]),
            "<=",
            0.03,
        ),
        ("worst / best skin group error (n >= 30)", ratio, p["skin_ratio_ci95"], "<=", 1.5),
        (
            "decided faces right at 80 % coverage (worse class)",
            min(rc80["accuracy_female"], rc80["accuracy_male"]),
            [],
            ">=",
            0.96,
        ),
        (
            "clean faces (gender-train val) accuracy",
            res["clean_faces"]["accuracy"],
            [],
            ">=",
            0.985,
        ),
    ]
    out = []
    for name, value, ci, op, target in rows:
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        # Met only when the whole interval is on the right side of the goal: a point estimate
        # that meets it with an interval reaching past it is not claimed.
        if met and ci and (min(ci) < target if op == ">=" else max(ci) > target):
            met = "interval"
        out.append(
            {"target": name, "value": value, "ci95": ci, "op": op, "goal": target, "met": met}
        )
    return out


def _pct(v) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.1f} %"


def _ci(ci) -> str:
    return f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""


def markdown(res: dict) -> str:
    hp = res["recipe"]["hparams"]
    p = res["variants"][PRIMARY]
    budget = (
        f"{hp['budget_steps']} steps of {hp['batch']}"
        if hp.get("budget_steps")
        else f"{hp['budget_min']:g} min"
    )
    start = f"from {hp['init_from']}" if hp.get("init_from") else "from the Lite0 warm start"
    lines = [
        f"Out of fold, {p['n']:,} faces of {p['events']} events ({p['n_female']:,} women, "
        f"{p['n_male']:,} men), {len(res['folds'])} event folds; recipe: {budget} per fold "
        f"{start} at {hp['input_size']} px, crop margin "
        f"{hp['crop_margin']}"
        + (
            f" plus a context view at {hp['context_margin']} (two-view model)"
            if hp.get("context_margin")
            else ""
        )
        + f", skin-balanced draws {'on' if hp['balance_skin'] else 'off'}. "
        "95 % intervals from resampling whole events.",
        "",
        "| test-time | balanced accuracy | ROC-AUC | women called male | men called female "
        "| BA faces >= 64 px |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for v in (*TTA_VARIANTS, "no_detect"):
        s = res["variants"][v] if v != "no_detect" else res["no_detect_framing"]
        name = v if v != "no_detect" else "flip, `--no-detect` framing"
        lines.append(
            f"| {name}{' (shipped)' if v == PRIMARY else ''} | "
            f"{_pct(s['balanced_accuracy'])}{_ci(s['balanced_accuracy_ci95'])} | "
            f"{s['auc']:.3f} | {_pct(s['err_f'])} | {_pct(s['err_m'])} | "
            f"{_pct(s['ge64']['balanced_accuracy'])} |"
        )
    lines += ["", "Risk-coverage (shipped test-time, most confident faces decided first):", ""]
    lines += ["| coverage | decided right | women | men | confidence at the cut |"]
    lines += ["| ---: | ---: | ---: | ---: | ---: |"]
    for r in p["risk_coverage"]:
        lines.append(
            f"| {100 * r['coverage']:.0f} % | {_pct(r['accuracy'])} | {_pct(r['accuracy_female'])} "
            f"| {_pct(r['accuracy_male'])} | {r['confidence_at_cut']:.3f} |"
        )
    b = p["band_out_of_fold"]
    bands = ", ".join(f"{f['band'][1]:.3f}" for f in res["folds"])
    lines += [
        "",
        f"Uncertain band from the target (>= {100 * res['recipe']['band_target']:.0f} % of decided "
        f"faces right, women and men separately), fitted inside each fold's training events "
        f"(c = {bands}), applied to its held-out events: {_pct(b['coverage'])} of faces decided, "
        f"{_pct(b['accuracy'])} of them right (women {_pct(b['accuracy_female'])}, men "
        f"{_pct(b['accuracy_male'])}).",
        "",
        "| perceived skin group | faces | error | women called male | men called female |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for k, g in p["by_skin_group"].items():
        lines.append(
            f"| {k} | {g['n']} | {_pct(g['error'])}{_ci(g['error_ci95'])} | {_pct(g['err_f'])} "
            f"| {_pct(g['err_m'])} |"
        )
    lines += ["", "| age group | faces | error | women called male | men called female |"]
    lines += ["| --- | ---: | ---: | ---: | ---: |"]
    for k, g in p["by_age_group"].items():
        lines.append(
            f"| {k} | {g['n']} | {_pct(g['error'])}{_ci(g['error_ci95'])} | {_pct(g['err_f'])} "
            f"| {_pct(g['err_m'])} |"
        )
    lines += ["", "| target | out of fold | goal | met |", "| --- | ---: | ---: | --- |"]
    for t in res["targets"]:
        v = t["value"]
        plain = "skin" in t["target"] or "AUC" in t["target"]  # ratios, not shares
        shown = "n/a" if v is None else (f"{v:.3f}" if plain else _pct(v))
        ci = t["ci95"]
        ci = (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if plain else _ci(ci)) if ci else ""
        goal = f"{t['op']} {t['goal']:g}" if plain else f"{t['op']} {_pct(t['goal'])}"
        met = {
            True: "yes",
            False: "**no**",
            None: "n/a",
            "interval": "not shown (the interval reaches past the goal)",
        }[t["met"]]
        lines.append(f"| {t['target']} | {shown}{ci} | {goal} | {met} |")
    return "\n".join(lines) + "\n"


def compare(base: Path, lever: Path, variant: str = PRIMARY) -> dict:
    """A lever against the baseline on the faces both have predicted (the folds both ran).

    Paired: the same faces, each predicted by both recipes' models of its fold; the interval of
    each difference comes from resampling whole events, so it says whether the lever's gain is
    larger than what the choice of events alone would move.
    """
    a, b = _load_oof(base), _load_oof(lever)
    common = np.intersect1d(a["rows"], b["rows"])
    if not len(common):
        raise SystemExit("the two runs share no predicted faces")
    ia = {r: i for i, r in enumerate(a["rows"])}
    ib = {r: i for i, r in enumerate(b["rows"])}
    sa = np.asarray([ia[r] for r in common])
    sb = np.asarray([ib[r] for r in common])
    y = a["labels"][sa].astype(int)
    pa, pb = a[f"p_{variant}"][sa], b[f"p_{variant}"][sb]
    manifest = D.wider_manifest()
    events = [event_of(manifest[r]["image_path"]) for r in common]
    skin = np.asarray([manifest[r]["skin"] or "Not Sure" for r in common])

    def ba(p, idx):
        return binary_metrics(y[idx], p[idx])["balanced_accuracy"]

    def skin_ratio(p, idx):
        return skin_error_ratio(y, p, skin, idx)

    out = {"faces": int(len(common)), "events": len(set(events)), "variant": variant}
    for name, fn in (
        ("balanced_accuracy", ba),
        ("auc", lambda p, idx: auc(y[idx], p[idx])),
        ("gender_gap", lambda p, idx: _err_gap(y[idx], p[idx])),
        ("skin_error_ratio", skin_ratio),
    ):
        every = np.arange(len(y))
        va, vb = fn(pa, every), fn(pb, every)
        out[name] = {
            "base": va,
            "lever": vb,
            "difference": vb - va,
            "difference_ci95": cluster_bootstrap(
                lambda idx, fn=fn: fn(pb, idx) - fn(pa, idx), events
            ),
        }
    return out


def add_args(p: argparse.ArgumentParser) -> None:
    from training.train import add_args as train_args

    train_args(p)
    p.set_defaults(out=Path("training/runs/cv"))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--cv-seed", type=int, default=0, help="which events go to which fold")
    p.add_argument("--band-target", type=float, default=BAND_TARGET)
    p.add_argument("--only-fold", type=int, action="append", help="run this fold (repeatable)")
    p.add_argument("--report-only", action="store_true", help="pool the finished folds")
    p.add_argument(
        "--card", type=Path, default=None, help="write cv.md between the card's cv markers"
    )
    p.add_argument(
        "--compare", type=Path, default=None, help="a lever run: compare it with --out, paired"
    )


def main(args: argparse.Namespace) -> None:
    from training.train import hparams_from_args

    if args.compare is not None:
        res = compare(args.out, args.compare)
        (args.compare / "compare.json").write_text(json.dumps(res, indent=2, default=float))
        print(json.dumps(res, indent=2, default=float))
        return
    if not args.report_only:
        base = replace(hparams_from_args(args), cv_seed=args.cv_seed)
        torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "2")))
        run_folds(args.out, base, args.folds, args.band_target, args.only_fold)
    res = report(args.out, args.band_target)
    print((args.out / "cv.md").read_text())
    if args.card is not None:
        from training.evaluate import splice_tables

        if not splice_tables(args.card, (args.out / "cv.md").read_text(), *CARD_MARKERS):
            raise SystemExit(f"{args.card} has no {CARD_MARKERS[0]} ... {CARD_MARKERS[1]} markers")
    log(f"wrote {args.out / 'cv.json'}; {len(res['folds'])} of {args.folds} folds pooled")
