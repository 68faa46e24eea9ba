"""``python -m training run``: the whole pipeline in one command that can be cut off and rerun.

Why: a training session on a shared 2-core machine can end at any moment, and its processes
end with it. Each step here writes its output atomically into the run folder and is skipped
when that output is already there, so running the same command again goes on from the first
step that has not finished — and training itself resumes from its last checkpoint:

1. ``train``: the time-budgeted run (``last.pt``, ``best.pt``, ``metrics.json``, ``log.txt``);
   on first use it decodes the shared data into ``training/cache/`` and finds every
   gender-train face with the app's detector (both cached, as ``cache --detect`` does);
2. ``refit-age``: the age head refitted on frozen features (``final.pt``);
3. ``export``: calibrated ONNX with the metadata contract (``gender_effnet_b0.onnx``,
   ``export.json``), written into the run folder — shipping it to ``models/`` stays a separate,
   deliberate step (``python -m training export ... --update-manifest``);
4. ``evaluate``: every metric, plot and timing through the app's own classifier (``eval/``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from training import train as T
from training.train import log

ONNX_NAME = "gender_effnet_b0.onnx"


def _train_finished(out: Path) -> bool:
    path = out / "metrics.json"
    return path.is_file() and bool(json.loads(path.read_text()).get("finished"))


def steps(out: Path) -> list[tuple[str, Callable[[], bool]]]:
    """(name, is-done) for each step, in order; ``is-done`` looks only at files in ``out``."""
    return [
        ("train", lambda: _train_finished(out)),
        ("refit-age", lambda: (out / "final.pt").is_file()),
        ("export", lambda: (out / ONNX_NAME).is_file()),
        ("evaluate", lambda: (out / "eval" / "metrics.json").is_file()),
    ]


def run_pipeline(
    train_args: argparse.Namespace,
    version: str,
    evaluate: bool = True,
    runners: dict[str, Callable[[], None]] | None = None,
) -> list[str]:
    """Run every unfinished step for the run folder ``train_args.out``; return the steps run.

    ``runners`` replaces the step functions (tests use it to check the resume logic quickly;
    each real step has its own tests).
    """
    out: Path = train_args.out
    out.mkdir(parents=True, exist_ok=True)
    real = {
        "train": lambda: T.main(train_args),  # builds the caches itself when missing
        "refit-age": lambda: _refit(out),
        "export": lambda: _export(out, version),
        "evaluate": lambda: _evaluate(out),
    }
    real.update(runners or {})
    done = []
    for name, is_done in steps(out):
        if name == "evaluate" and not evaluate:
            continue
        if is_done():
            log(f"[run] {name}: already done in {out}, skipped")
            continue
        log(f"[run] {name} ...")
        t0 = time.time()
        real[name]()
        log(f"[run] {name} done in {(time.time() - t0) / 60:.1f} min")
        done.append(name)
    log(
        f"[run] finished: {out / ONNX_NAME}. To ship it: python -m training export --ckpt "
        f"{out / 'final.pt'} --version {version} --update-manifest, then python -m training "
        "evaluate --card models/MODEL_CARD.md"
    )
    return done


def _refit(out: Path) -> None:
    from training.refit_age import refit

    refit(out / "last.pt", out / "final.pt")


def _export(out: Path, version: str) -> None:
    from training.export import export

    export(out / "final.pt", out / ONNX_NAME, out / "export.json", version)


def _evaluate(out: Path) -> None:
    from training.evaluate import run

    run(out / ONNX_NAME, out / "eval", threads=2)


def add_args(p: argparse.ArgumentParser) -> None:
    T.add_args(p)
    p.add_argument("--version", default=time.strftime("%Y.%m.dev"), help="model_version")
    p.add_argument("--skip-evaluate", action="store_true", help="stop after the export")


def main(args: argparse.Namespace) -> None:
    run_pipeline(args, args.version, evaluate=not args.skip_evaluate)
