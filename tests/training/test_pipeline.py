"""``python -m training run``: a cut-off run goes on from the first unfinished step.

The steps themselves (training, refit, export, evaluation) have their own tests; these check the
order, the skipping and the resume logic with step functions that write what the real ones write.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from training import pipeline as P  # noqa: E402


class CutOff(RuntimeError):
    """Stands in for a session ending mid-step."""


def _args(out: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    P.add_args(parser)
    return parser.parse_args(["--out", str(out), "--seed", "3", "--version", "2026.12.0"])


def _runners(out: Path, calls: list[str], fail: set[str], train_finishes: bool = True) -> dict:
    def train() -> None:
        calls.append("train")
        (out / "metrics.json").write_text(json.dumps({"finished": train_finishes}))

    def write(name: str, path: Path):
        def step() -> None:
            calls.append(name)
            if name in fail:
                raise CutOff(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(name)

        return step

    return {
        "train": train,
        "refit-age": write("refit-age", out / "final.pt"),
        "export": write("export", out / P.ONNX_NAME),
        "evaluate": write("evaluate", out / "eval" / "metrics.json"),
    }


def test_a_run_cut_off_in_export_resumes_there_and_then_does_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = _args(out)
    assert args.seed == 3 and args.out == out and args.version == "2026.12.0"

    calls: list[str] = []
    with pytest.raises(CutOff):
        P.run_pipeline(args, args.version, runners=_runners(out, calls, fail={"export"}))
    assert calls == ["train", "refit-age", "export"]
    assert (out / "final.pt").is_file() and not (out / P.ONNX_NAME).exists()

    calls.clear()
    done = P.run_pipeline(args, args.version, runners=_runners(out, calls, fail=set()))
    assert done == calls == ["export", "evaluate"]
    assert (out / "eval" / "metrics.json").read_text() == "evaluate"

    calls.clear()
    assert P.run_pipeline(args, args.version, runners=_runners(out, calls, fail=set())) == []
    assert calls == []


def test_unfinished_training_runs_again_and_evaluation_can_be_skipped(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = _args(out)
    calls: list[str] = []
    runners = _runners(out, calls, fail=set(), train_finishes=False)
    P.run_pipeline(args, args.version, evaluate=False, runners=runners)
    assert calls == ["train", "refit-age", "export"]
    calls.clear()
    # the budget was not spent (cut off, or --max-steps): training resumes, the rest stays done
    P.run_pipeline(args, args.version, evaluate=False, runners=runners)
    assert calls == ["train"]
    assert not (out / "eval").exists()


def test_the_run_command_is_registered_with_the_training_flags() -> None:
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "training", "run", "-h"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    for flag in ("--budget-min", "--seed", "--out", "--init-from", "--version", "--skip-evaluate"):
        assert flag in res.stdout
