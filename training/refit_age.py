"""Refit the apparent-age head on frozen trunk features, in the app's framing.

Why: the age head is one linear layer over the 1,280 pooled trunk features. During training it
sees augmented, jittered crops, a class-balanced mix that is half wild faces without ages, and
shares its budget with the gender loss; measured in the app's framing (a square crop around the
CenterFace box) it ended up at about 6 years mean absolute error. Refitting only that layer by
ridge regression on the gender-train faces with known ages, cropped exactly as the app crops
them and averaged over the horizontal flip exactly as the exported file does, is closed-form,
takes minutes on the CPU, and cannot change a single gender output: the trunk and the gender
head are untouched (``refit`` checks that).

The ridge strength is chosen on a held-out tenth of gender-train *train*; the val split is only
ever used by ``evaluate`` to report the result.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import numpy as np
import torch

from training import data as D
from training.model import AGE_MEAN, AGE_STD, GenderAgeNet
from training.train import _atomic_save, _load_parent, log

#: Ridge strengths tried, as multiples of the mean feature variance (scale-free).
LAMBDAS = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
HOLDOUT_FRAC = 0.1


@torch.no_grad()
def trunk_features(
    net: GenderAgeNet, split: D.Split, rows: np.ndarray, size: int, bs: int = 128
) -> np.ndarray:
    """Pooled trunk features of app-framed crops, averaged with their mirror images.

    The exported file averages the age of a face and of its mirror image; the age head is
    linear, so that equals the head applied to the mean of the two feature vectors.
    """
    net.eval()
    out = []
    for s in range(0, len(rows), bs):
        crops = [D.eval_crop(split, int(i), size) for i in rows[s : s + bs]]
        x = torch.from_numpy(D.to_tensor_batch(crops))
        out.append(((net.trunk(x) + net.trunk(torch.flip(x, dims=[3]))) * 0.5).numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 1280))


def fit_ridge(f: np.ndarray, t: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """Weights and bias minimising squared error + ``lam * mean feature variance * |w|^2 * n``."""
    mu_f, mu_t = f.mean(0), float(t.mean())
    fc = f - mu_f
    gram = fc.T @ fc
    # mean variance * n makes lam scale-free; 1.0 when the features do not vary (a single face)
    scale = float(np.trace(gram)) / gram.shape[0] or 1.0
    w = np.linalg.solve(gram + lam * scale * np.eye(gram.shape[0]), fc.T @ (t - mu_t))
    return w, mu_t - float(mu_f @ w)


def _mae_years(f: np.ndarray, ages: np.ndarray, w: np.ndarray, b: float) -> float:
    return float(np.mean(np.abs(AGE_MEAN + AGE_STD * (f @ w + b) - ages)))


def choose_and_fit(
    f: np.ndarray, ages: np.ndarray, seed: int = 0, lambdas: tuple[float, ...] = LAMBDAS
) -> tuple[np.ndarray, float, dict]:
    """Pick the ridge strength on a held-out tenth, then refit on everything with it."""
    if len(ages) < 2:
        raise ValueError(f"the age head needs at least 2 faces with known age, not {len(ages)}")
    t = (ages - AGE_MEAN) / AGE_STD
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(t))
    n_hold = max(1, int(round(HOLDOUT_FRAC * len(t))))
    hold, fit = perm[:n_hold], perm[n_hold:]
    scores = {}
    for lam in lambdas:
        w, b = fit_ridge(f[fit], t[fit], lam)
        scores[lam] = _mae_years(f[hold], ages[hold], w, b)
    best = min(scores, key=scores.__getitem__)
    w, b = fit_ridge(f, t, best)
    info = {
        "lambda": best,
        "holdout_mae_by_lambda": {f"{k:g}": round(v, 3) for k, v in scores.items()},
        "holdout_n": int(n_hold),
        "fit_n": int(len(t)),
    }
    return w, b, info


def refit(
    ckpt: Path, out: Path, limit: int | None = None, seed: int = 0, cache: Path = D.CACHE_DIR
) -> dict:
    """Write ``ckpt`` with a refitted age head to ``out``; return what was done."""
    t0 = time.time()
    parent = _load_parent(ckpt)  # the EMA of a last.pt, else the checkpoint's model
    ck = parent["ck"]
    net = GenderAgeNet()
    net.load_state_dict(parent["weights"])
    net.eval()
    meta = dict(ck.get("meta") or {})
    size = int(meta.get("hparams", {}).get("input_size", 112))
    split = D.load_splits(cache, gtrain_framing="detected")["gtrain_train"]
    rows = np.nonzero(~np.isnan(split.ages))[0]
    if limit is not None and limit < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))
    log(f"age refit: features of {len(rows)} gender-train faces with known age ...")
    f = trunk_features(net, split, rows, size)
    ages = split.ages[rows].astype(np.float64)
    w_old = net.age.weight.detach().numpy()[0].astype(np.float64)
    b_old = float(net.age.bias.detach().numpy()[0])
    w, b, info = choose_and_fit(f, ages, seed)
    before = copy.deepcopy(net.state_dict())
    with torch.no_grad():
        net.age.weight.copy_(torch.from_numpy(w[None, :]).float())
        net.age.bias.fill_(b)
    after = net.state_dict()
    changed = [k for k in after if not torch.equal(after[k], before[k])]
    if not set(changed) <= {"age.bias", "age.weight"}:
        raise RuntimeError(f"age refit changed more than the age head: {changed}")
    info.update(
        {
            "method": "ridge regression on frozen, flip-averaged trunk features",
            "data": "gender-train train, faces with known age, app framing (CenterFace box)",
            "seed": seed,
            "train_mae_before": round(_mae_years(f, ages, w_old, b_old), 3),
            "train_mae_after": round(_mae_years(f, ages, w, b), 3),
            "source_checkpoint": str(ckpt),
            "source_sha256": D.file_sha256(ckpt),
            "gtrain_boxes": D.gtrain_boxes_info(cache),
        }
    )
    meta["age_head_refit"] = info
    obj = {
        "model": after,
        "which": f"{parent['which']} + age head refit",
        "row": {"step": ck.get("state", {}).get("step", ck.get("row", {}).get("step"))},
        "meta": meta,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(obj, out)
    log(
        f"age refit: lambda {info['lambda']:g}, train MAE {info['train_mae_before']} -> "
        f"{info['train_mae_after']} years, {time.time() - t0:.0f} s -> {out}"
    )
    return info


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("ckpt", type=Path, help="checkpoint (last.pt, best.pt or a soup)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--limit", type=int, default=None, help="use at most this many faces")
    p.add_argument("--seed", type=int, default=0)


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "2")))
    refit(args.ckpt, args.out, args.limit, args.seed)
