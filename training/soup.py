"""Average the weights of checkpoints of one lineage into a new checkpoint ("model soup").

Why: a stage-2 run starts from stage 1's weights, so both lie in one basin of the loss and their
average is often better than either (Wortsman et al., 2022: "Model soups"). Batch-norm running
statistics are averaged too. The result is measured like any other candidate before it ships;
its ``meta`` names every source checkpoint by SHA-256 so the export's provenance keeps the chain.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from training import data as D
from training.train import _atomic_save, _load_parent, log


def soup(ckpts: list[Path], out: Path) -> dict:
    """Write the mean of the checkpoints' weights (EMA where present) to ``out``; return it."""
    if len(ckpts) < 2:
        raise ValueError("a soup needs at least two checkpoints")
    parents = [_load_parent(p) for p in ckpts]
    keys = list(parents[0]["weights"])
    for p, par in zip(ckpts, parents, strict=True):
        if list(par["weights"]) != keys:
            raise ValueError(f"{p} has different tensors: not the same architecture")
    mean = {}
    for k in keys:
        ts = [par["weights"][k] for par in parents]
        mean[k] = (
            torch.stack([t.float() for t in ts]).mean(0).to(ts[0].dtype)
            if ts[0].is_floating_point()
            else ts[-1].clone()  # counters such as num_batches_tracked: the latest
        )
    last = parents[-1]["ck"]
    meta = dict(last.get("meta") or {})
    # A source that is itself a soup keeps its own ingredients, so the chain stays complete.
    meta["soup_of"] = [
        {
            "checkpoint": str(p),
            "sha256": D.file_sha256(p),
            "weights": par["which"],
            "soup_of": (par["ck"].get("meta") or {}).get("soup_of"),
        }
        for p, par in zip(ckpts, parents, strict=True)
    ]
    obj = {
        "model": mean,
        "which": "soup (mean of " + ", ".join(par["which"] for par in parents) + ")",
        "row": {"step": last.get("state", {}).get("step", last.get("row", {}).get("step"))},
        "meta": meta,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(obj, out)
    log(f"soup of {len(ckpts)} checkpoints -> {out}")
    return obj


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("ckpts", type=Path, nargs="+", help="checkpoints (last.pt or best.pt)")
    p.add_argument("--out", type=Path, required=True)


def main(args: argparse.Namespace) -> None:
    soup(args.ckpts, args.out)
