"""Time-budgeted, resumable training of the B0 perceived-gender + apparent-age model.

Why time-budgeted: the target machine is a shared 2-core CPU, so the schedule (learning rate,
data mix) is a function of the fraction of the wall-clock budget used, not of a step count that
nobody can predict. Why resumable: a run can be cut off at any time; every few minutes the full
state (weights, EMA, optimiser, sampler RNG, step, elapsed time) is written atomically, and
running the same command again continues from it.

Data mix: phase 1 draws wild ``wider-gender`` faces (oversampled about 4x) and clean
``gender-train`` faces; phase 2 (the last ``--phase2-frac`` of the budget, low learning rate)
draws mostly wild faces. Every draw is class-balanced (female/male 50:50) because the earlier
models leaned "male". Models are selected on the ``wider-gender`` val split's balanced accuracy.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training import data as D
from training.metrics import binary_metrics, wild_auc_mean
from training.model import AGE_MEAN, AGE_STD, GenderAgeNet, warm_start_from_lite0


@dataclass
class HParams:
    budget_min: float = 80.0
    #: A budget in optimiser steps instead of minutes (None: minutes). Why: the schedule then
    #: does not depend on how loaded the machine is, so cross-validation folds, and a GPU run
    #: and its CPU rehearsal, train the same recipe.
    budget_steps: int | None = None
    seed: int = 0
    input_size: int = 112
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.02
    warmup_steps: int = 100
    phase2_frac: float = 0.25
    p_wider_phase1: float = 0.45
    p_wider_phase2: float = 0.8
    age_weight: float = 0.5
    #: Geometric augmentation (``data.CropAug``); 0 in every run before 2026.11.5. Turned heads
    #: and the letterboxed ``--no-detect`` framing are both common in what the app is given.
    p_rotate: float = 0.5
    rotate_sd: float = 15.0
    p_rotate90: float = 0.05
    p_no_detect: float = 0.4
    ema_decay: float = 0.998
    ckpt_min: float = 4.0
    eval_min: float = 8.0
    gtrain_val_n: int = 1000
    #: How gender-train faces are framed (``data.GTRAIN_FRAMINGS``): "detected" re-crops every
    #: image around the app's own CenterFace box, so clean faces are framed like the app's.
    gtrain_framing: str = "detected"
    #: Checkpoint (``last.pt`` or ``best.pt`` of an earlier run) whose weights start this run with
    #: a fresh optimiser and schedule: a second stage after a run whose budget is spent.
    init_from: str | None = None
    #: Crop margin per side (the app's ``crop_margin`` metadata; 0.25 = the original framing).
    #: Larger margins give the model hair, head shape and shoulders (issue 19's context lever).
    crop_margin: float = 0.25
    #: > 0: the two-view model (``model.GenderAgeNet(views=2)``), whose second view is the same
    #: face at this margin per side (issue 19's context lever without losing face resolution).
    context_margin: float = 0.0
    #: Draw wild faces uniformly over perceived skin group within each gender (fairness lever).
    balance_skin: bool = False
    #: Cross-validation: leave event fold ``cv_fold`` of ``cv_folds`` out entirely (-1 = none).
    cv_fold: int = -1
    cv_folds: int = 5
    cv_seed: int = 0


def pick_device() -> torch.device:
    """CUDA when present (``TRAIN_DEVICE=cpu`` forces the CPU), else the CPU.

    Why an override: the CPU path is the one every session can run, and tests pin it.
    """
    want = os.environ.get("TRAIN_DEVICE", "").strip().lower()
    if want:
        return torch.device(want)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=D.REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class BalancedSampler:
    """Draws (source, index) pairs class-balanced within each source; its RNG is checkpointed."""

    def __init__(self, sources: dict[str, D.Split], seed: int, balance_skin: bool = False) -> None:
        self.sources = sources
        self.by_class = {
            name: [np.nonzero(s.labels == c)[0] for c in (0, 1)] for name, s in sources.items()
        }
        # With balance_skin, wild faces of one gender are drawn uniformly over skin groups:
        # the rarer groups (V-VI), where the errors on women concentrate, are seen more often.
        self.cells: dict[str, list[list[np.ndarray]]] = {}
        skin = getattr(sources.get("wider_train"), "skin", None)
        if balance_skin and skin is not None:
            lab = sources["wider_train"].labels
            self.cells["wider_train"] = [
                [c for g in np.unique(skin) if len(c := np.nonzero((lab == k) & (skin == g))[0])]
                for k in (0, 1)
            ]
        self.rng = np.random.default_rng(seed)

    def draw(self, n: int, p_wider: float) -> list[tuple[str, int]]:
        out = []
        for _ in range(n):
            name = "wider_train" if self.rng.random() < p_wider else "gtrain_train"
            k = int(self.rng.integers(0, 2))
            if name in self.cells:
                groups = self.cells[name][k]
                pool = groups[int(self.rng.integers(0, len(groups)))]
            else:
                pool = self.by_class[name][k]
            out.append((name, int(pool[self.rng.integers(0, len(pool))])))
        return out

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def load_state(self, st: dict) -> None:
        self.rng.bit_generator.state = st


class ThreadTuner:
    """Picks 1 or 2 intra-op threads by measuring, because the CPU is shared.

    With other jobs busy on a 2-core machine, two OpenMP threads wait on each other and a step
    can be 5-10x slower than with one (measured here); on an idle machine two threads are ~1.6x
    faster. Start with one; every ``period`` steps the other setting is tried for up to
    ``probe`` steps (abandoned at the first clearly slower step) and the faster one is kept.
    """

    def __init__(self, max_threads: int, period: int = 150, probe: int = 8) -> None:
        self.options = [1, 2] if max_threads >= 2 else [1]
        self.current = 1  # safe under contention; 2 must prove itself
        self.period, self.probe = period, probe
        self.recent: list[float] = []
        self.trial: list[float] = []
        self.trying: int | None = None
        torch.set_num_threads(self.current)

    def record(self, step: int, seconds: float) -> None:
        if len(self.options) == 1:
            return
        if self.trying is None:
            self.recent = (self.recent + [seconds])[-self.probe :]
            if step % self.period == 0 and len(self.recent) == self.probe:
                self.trying = 3 - self.current
                self.trial = []
                torch.set_num_threads(self.trying)
            return
        self.trial.append(seconds)
        if len(self.trial) >= 2 and self.trial[-1] > 1.3 * float(np.median(self.recent)):
            self.trial = [float("inf")] * self.probe  # clearly slower: stop the probe now
        if len(self.trial) >= self.probe:
            if np.median(self.trial[1:]) < np.median(self.recent):
                log(
                    f"threads {self.current} -> {self.trying} "
                    f"({np.median(self.recent):.2f} s -> {np.median(self.trial[1:]):.2f} s/step)"
                )
                self.current = self.trying
            self.recent = []
            self.trying = None
            torch.set_num_threads(self.current)


#: What ``best.pt`` keeps: the mean wider-gender val AUC over the app's square framing and the
#: ``--no-detect`` framing. AUC, not balanced accuracy, because balanced accuracy at one
#: threshold moves by ±1.5 points on ~600 faces (stages 7 and 8 kept a "best" from early in
#: the run by it, below their final AUC) and the threshold is calibrated at export anyway;
#: both framings, because ``python -m training compare`` ranks candidates the same way.
SELECTION_METRIC = wild_auc_mean.__name__


#: The best-so-far of a run that has not evaluated yet under SELECTION_METRIC (a fresh run, or
#: one resumed from a checkpoint scored by an older criterion).
NO_BEST = {"best": -1.0, "best_metric": SELECTION_METRIC, "best_step": None}


def selection_score(row: dict) -> float:
    """The number ``best.pt`` is chosen by, from one model's eval row (see SELECTION_METRIC)."""
    return wild_auc_mean(row["wider_val"]["auc"], row["wider_val_no_detect"]["auc"])


def lr_at(progress: float, step: int, hp: HParams) -> float:
    """Linear warm-up over ``warmup_steps`` steps, then one cosine to zero over the budget.

    Warm-up counts steps, not time: on a contended CPU a time-based warm-up could end after a
    handful of steps.
    """
    warm = min(1.0, (step + 1) / hp.warmup_steps)
    return hp.lr * warm * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def crop_aug(hp: HParams) -> D.CropAug:
    return D.CropAug(hp.p_rotate, hp.rotate_sd, hp.p_rotate90, hp.p_no_detect)


def make_batch(
    sampler: BalancedSampler,
    n: int,
    p_wider: float,
    size: int,
    aug: D.CropAug | None = None,
    margin: float = D.DEFAULT_MARGIN,
    context_margin: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    picks = sampler.draw(n, p_wider)
    crops, labels, ages = [], [], []
    for name, i in picks:
        split = sampler.sources[name]
        crops.append(D.train_crop(split, i, size, sampler.rng, aug, margin, context_margin))
        labels.append(float(split.labels[i]))
        ages.append(float(split.ages[i]))
    x = torch.from_numpy(D.to_tensor_batch(crops)).contiguous(memory_format=torch.channels_last)
    return x, torch.tensor(labels), torch.tensor(ages)


def loss_fn(
    net_out: tuple[torch.Tensor, torch.Tensor], y: torch.Tensor, age: torch.Tensor, hp: HParams
) -> tuple[torch.Tensor, float, float]:
    g, a = net_out
    lg = F.binary_cross_entropy_with_logits(g, y)
    known = ~torch.isnan(age)
    la = torch.zeros((), device=g.device)
    if known.any():
        la = F.smooth_l1_loss(a[known], (age[known] - AGE_MEAN) / AGE_STD, beta=0.5)
    return lg + hp.age_weight * la, float(lg.detach()), float(la.detach())


class EvalSet:
    """Fixed app-geometry crops, preprocessed once, so every evaluation is comparable."""

    def __init__(
        self,
        split: D.Split,
        size: int,
        limit: int | None = None,
        seed: int = 0,
        no_detect: bool = False,
        margin: float = D.DEFAULT_MARGIN,
        context_margin: float = 0.0,
    ) -> None:
        idx = np.arange(len(split))
        if limit is not None and limit < len(idx):
            idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
        crops = [D.eval_crop(split, int(i), size, no_detect, margin, context_margin) for i in idx]
        self.x = torch.from_numpy(D.to_tensor_batch(crops))
        self.y = split.labels[idx]
        self.ages = split.ages[idx]
        self.face_px = split.face_px[idx]


@torch.no_grad()
def predict(net: torch.nn.Module, x: torch.Tensor, bs: int = 128) -> tuple[np.ndarray, np.ndarray]:
    net.eval()
    dev = next(net.parameters()).device
    gs, ages = [], []
    for i in range(0, len(x), bs):
        g, a = net(x[i : i + bs].to(dev).contiguous(memory_format=torch.channels_last))
        gs.append(g.float().cpu().numpy())
        ages.append((AGE_MEAN + AGE_STD * a).float().cpu().numpy())
    return np.concatenate(gs), np.concatenate(ages)


def evaluate(
    net: torch.nn.Module, wider: EvalSet, gval: EvalSet, wider_nd: EvalSet | None = None
) -> dict:
    gw, _ = predict(net, wider.x)
    gg, ag = predict(net, gval.x)
    mw = binary_metrics(wider.y, 1 / (1 + np.exp(-gw)))
    mg = binary_metrics(gval.y, 1 / (1 + np.exp(-gg)))
    known = ~np.isnan(gval.ages)
    extra = {}
    if wider_nd is not None:  # the --no-detect framing of the same faces
        mn = binary_metrics(wider_nd.y, 1 / (1 + np.exp(-predict(net, wider_nd.x)[0])))
        extra["wider_val_no_detect"] = {k: mn[k] for k in ("balanced_accuracy", "auc")}
    return {
        **extra,
        "wider_val": {k: mw[k] for k in ("accuracy", "balanced_accuracy", "auc", "err_f", "err_m")},
        "gtrain_val": {k: mg[k] for k in ("accuracy", "balanced_accuracy", "auc")},
        "age_mae": float(np.mean(np.abs(ag[known] - gval.ages[known]))) if known.any() else None,
    }


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_json(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def _load_parent(path: Path) -> dict:
    """Weights to start a stage-2 run from: the EMA of a ``last.pt``, or a ``best.pt``'s model.

    The EMA is preferred because it was the better model at the end of every run so far.
    """
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if "ema" in ck:
        return {"weights": ck["ema"], "which": "ema", "ck": ck}
    return {"weights": ck["model"], "which": ck.get("which", "model"), "ck": ck}


def _parent_provenance(path: Path) -> dict:
    """What the parent run was (its own meta, step and time), so the chain stays traceable."""
    ck = _load_parent(path)["ck"]
    st = ck.get("state", {})
    return {
        "checkpoint": path.name,
        "checkpoint_sha256": D.file_sha256(path),
        "meta": ck.get("meta"),
        "steps": st.get("step", ck.get("row", {}).get("step")),
        "elapsed_min": (st.get("elapsed_s") or 0.0) / 60 or None,
    }


def ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    """Exponential moving average of weights *and* batch-norm statistics.

    Averaging the statistics too matters: the first shipped run copied the live running
    mean/var next to the averaged weights, and its EMA model was far worse than the raw one
    (AUC 0.34-0.85 vs 0.85-0.91) for the first half of the run.
    """
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
            pe.lerp_(p, 1.0 - decay)
        for be, b in zip(ema.buffers(), net.buffers(), strict=True):
            if be.is_floating_point():
                be.lerp_(b, 1.0 - decay)
            else:
                be.copy_(b)


def train(
    hp: HParams, out: Path, max_steps: int | None = None, eval_limit: int | None = None
) -> dict:
    """Train (or resume) into ``out``; returns the final metrics dict (also in metrics.json)."""
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "2")))
    torch.manual_seed(hp.seed)
    boxes_info = None
    if hp.gtrain_framing == "detected":
        boxes_info = D.build_gtrain_boxes(D.detector_path())
        log(f"gender-train framing: detector boxes, {boxes_info['found']}/{boxes_info['n']} found")
    holdout = D.Holdout(hp.cv_fold, hp.cv_folds, hp.cv_seed) if hp.cv_fold >= 0 else None
    splits = D.load_splits(gtrain_framing=hp.gtrain_framing, holdout=holdout)
    if holdout is not None:
        log(
            f"event fold {hp.cv_fold}/{hp.cv_folds} held out: {len(splits['wider_test'])} faces; "
            f"training on {len(splits['wider_train'])}, selecting on {len(splits['wider_val'])}"
        )
    device = pick_device()
    log(f"device: {device}")
    sources = {k: splits[k] for k in ("wider_train", "gtrain_train")}
    sampler = BalancedSampler(sources, hp.seed, hp.balance_skin)
    net = GenderAgeNet(views=2 if hp.context_margin else 1)
    copied = warm_start_from_lite0(net)
    net = net.to(device=device, memory_format=torch.channels_last)
    ema = copy.deepcopy(net)
    opt = torch.optim.AdamW(net.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
    state = {"step": 0, "elapsed_s": 0.0, **NO_BEST, "history": []}
    ckpt_path = out / "last.pt"
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        net.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optim"])
        sampler.load_state(ck["sampler_rng"])
        torch.set_rng_state(ck["torch_rng"].cpu())
        state = ck["state"]
        log(f"resumed from {ckpt_path} at step {state['step']}, {state['elapsed_s'] / 60:.1f} min")
        if state.get("best_metric") != SELECTION_METRIC:
            # A run started before the criterion changed: its best score is on another scale.
            state.update(NO_BEST)
    elif hp.init_from:
        parent = _load_parent(Path(hp.init_from))
        net.load_state_dict(parent["weights"])
        ema.load_state_dict(parent["weights"])
        log(f"stage 2: weights ({parent['which']}) from {hp.init_from}, fresh schedule")
    else:
        log(f"warm start: {copied} Lite0 tensors copied into B0")
    log("building eval sets ...")
    views = {"margin": hp.crop_margin, "context_margin": hp.context_margin}
    wider_eval = EvalSet(
        splits["wider_val"], hp.input_size, limit=eval_limit, seed=hp.seed, **views
    )
    wider_nd = EvalSet(
        splits["wider_val"],
        hp.input_size,
        limit=eval_limit,
        seed=hp.seed,
        no_detect=True,
        context_margin=hp.context_margin,
    )
    g_eval = EvalSet(
        splits["gtrain_val"], hp.input_size, limit=hp.gtrain_val_n, seed=hp.seed, **views
    )
    meta = {
        "hparams": asdict(hp),
        "commit": git_commit(),
        "data_manifest_sha256": D.data_manifest_hash(),
        "lite0_tensors_copied": copied,
        "gtrain_boxes": boxes_info,
        "device": str(device),
        "parent": _parent_provenance(Path(hp.init_from)) if hp.init_from else None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }

    def save(path: Path, with_optim: bool = True) -> None:
        obj = {
            "model": net.state_dict(),
            "ema": ema.state_dict(),
            "state": state,
            "hparams": asdict(hp),
            "meta": meta,
        }
        if with_optim:
            obj.update(
                optim=opt.state_dict(),
                sampler_rng=sampler.state(),
                torch_rng=torch.get_rng_state(),
            )
        _atomic_save(obj, path)

    def do_eval() -> None:
        row = {"step": state["step"], "elapsed_min": state["elapsed_s"] / 60}
        for tag, m in (("raw", net), ("ema", ema)):
            row[tag] = evaluate(m, wider_eval, g_eval, wider_nd)
        log(f"eval step {state['step']}: " + json.dumps(row))
        state["history"].append(row)
        for tag in ("raw", "ema"):
            score = selection_score(row[tag])
            if score > state["best"]:
                state["best"], state["best_step"] = score, state["step"]
                src = net if tag == "raw" else ema
                _atomic_save(
                    {"model": src.state_dict(), "which": tag, "row": row, "meta": meta},
                    out / "best.pt",
                )
        _write_json({"meta": meta, **state}, out / "metrics.json")

    budget_s = hp.budget_min * 60.0
    t_last = time.monotonic()
    last_ckpt = last_eval = state["elapsed_s"]
    seen, t_rate = 0, time.monotonic()
    tuner = ThreadTuner(int(os.environ.get("TRAIN_THREADS", "2")))

    def progress_of() -> float:
        if hp.budget_steps:
            return state["step"] / hp.budget_steps
        return state["elapsed_s"] / budget_s

    while progress_of() < 1.0 and (max_steps is None or state["step"] < max_steps):
        progress = progress_of()
        lr = lr_at(progress, state["step"], hp)
        for group in opt.param_groups:
            group["lr"] = lr
        phase2 = progress >= 1.0 - hp.phase2_frac
        p_wider = hp.p_wider_phase2 if phase2 else hp.p_wider_phase1
        x, y, age = make_batch(
            sampler,
            hp.batch,
            p_wider,
            hp.input_size,
            crop_aug(hp),
            hp.crop_margin,
            hp.context_margin,
        )
        x, y, age = x.to(device), y.to(device), age.to(device)
        net.train()
        loss, lg, la = loss_fn(net(x), y, age, hp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema_update(ema, net, hp.ema_decay if state["step"] > 100 else 0.0)
        state["step"] += 1
        seen += hp.batch
        now = time.monotonic()
        tuner.record(state["step"], now - t_last)
        state["elapsed_s"] += now - t_last
        t_last = now
        if state["step"] % 20 == 0:
            rate = seen / (now - t_rate)
            seen, t_rate = 0, now
            log(
                f"step {state['step']}{f'/{hp.budget_steps}' if hp.budget_steps else ''} "
                f"{state['elapsed_s'] / 60:.1f}/{hp.budget_min:.0f} min "
                f"lr {lr:.2e} {'P2' if phase2 else 'P1'} loss {float(loss.detach()):.3f} "
                f"(gender {lg:.3f} age {la:.3f}) {rate:.0f} img/s, {tuner.current} thr"
            )
        if state["elapsed_s"] - last_eval >= hp.eval_min * 60:
            do_eval()
            last_eval = state["elapsed_s"]
            t_last = time.monotonic()
        if state["elapsed_s"] - last_ckpt >= hp.ckpt_min * 60:
            save(ckpt_path)
            last_ckpt = state["elapsed_s"]
            log(f"checkpoint step {state['step']}")
            t_last = time.monotonic()
    do_eval()
    save(ckpt_path)
    state["finished"] = progress_of() >= 1.0
    _write_json({"meta": meta, **state}, out / "metrics.json")
    log(
        f"done: step {state['step']}, best {SELECTION_METRIC} {state['best']:.4f} "
        f"at step {state['best_step']}"
    )
    return {"meta": meta, **state}


def add_args(p: argparse.ArgumentParser) -> None:
    d = HParams()
    p.add_argument("--budget-min", type=float, default=d.budget_min)
    p.add_argument("--budget-steps", type=int, default=None, help="steps instead of minutes")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", type=Path, default=Path("training/runs/main"))
    p.add_argument("--input-size", type=int, default=d.input_size)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--ckpt-min", type=float, default=d.ckpt_min)
    p.add_argument("--eval-min", type=float, default=d.eval_min)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--phase2-frac", type=float, default=d.phase2_frac)
    p.add_argument("--p-wider-phase1", type=float, default=d.p_wider_phase1)
    p.add_argument("--p-wider-phase2", type=float, default=d.p_wider_phase2)
    p.add_argument("--p-rotate", type=float, default=d.p_rotate, help="turn by N(0, sd) degrees")
    p.add_argument("--rotate-sd", type=float, default=d.rotate_sd)
    p.add_argument("--p-rotate90", type=float, default=d.p_rotate90, help="a lying head")
    p.add_argument(
        "--p-no-detect", type=float, default=d.p_no_detect, help="letterboxed --no-detect framing"
    )
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from this checkpoint's weights with a fresh optimiser and schedule",
    )
    p.add_argument(
        "--gtrain-framing",
        choices=D.GTRAIN_FRAMINGS,
        default=d.gtrain_framing,
        help="gender-train face boxes: the app's detector boxes, or the whole image",
    )
    p.add_argument("--crop-margin", type=float, default=d.crop_margin, help="per side")
    p.add_argument(
        "--context-margin",
        type=float,
        default=d.context_margin,
        help="> 0: two-view model, the second view at this margin per side",
    )
    p.add_argument(
        "--balance-skin", action="store_true", help="wild draws uniform over skin groups"
    )
    p.add_argument("--max-steps", type=int, default=None, help="stop early (smoke tests)")


def hparams_from_args(args: argparse.Namespace) -> HParams:
    """The hyper-parameters ``add_args`` put on the command line (``train`` and ``cv`` share it)."""
    if args.crop_margin < 0 or args.context_margin < 0:
        raise SystemExit("--crop-margin and --context-margin must be 0 or more")
    return HParams(
        budget_min=args.budget_min,
        budget_steps=args.budget_steps,
        seed=args.seed,
        input_size=args.input_size,
        batch=args.batch,
        lr=args.lr,
        ckpt_min=args.ckpt_min,
        eval_min=args.eval_min,
        warmup_steps=args.warmup_steps,
        phase2_frac=args.phase2_frac,
        p_wider_phase1=args.p_wider_phase1,
        p_wider_phase2=args.p_wider_phase2,
        p_rotate=args.p_rotate,
        rotate_sd=args.rotate_sd,
        p_rotate90=args.p_rotate90,
        p_no_detect=args.p_no_detect,
        init_from=str(args.init_from) if args.init_from else None,
        gtrain_framing=args.gtrain_framing,
        crop_margin=args.crop_margin,
        context_margin=args.context_margin,
        balance_skin=args.balance_skin,
    )


def main(args: argparse.Namespace) -> None:
    train(hparams_from_args(args), args.out, max_steps=args.max_steps)
