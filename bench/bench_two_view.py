"""What the two-view model (issue 19) would cost the app per face, against the shipped one-view.

    nice python bench/bench_two_view.py [--size 160] [--rounds 5] [--write]

Both networks run as the exported file runs (``model.ExportWrapper``: each face and its mirror
image), in PyTorch on the CPU with one intra-op thread, on random crops (the cost does not
depend on the pixels), one face per call and 16 per call (the app's chunk). The two are
interleaved round by round in this one process and each figure is the best round, so the
ratio holds on a shared machine. Weights are random: only the cost is measured here; accuracy
is ``python -m training cv``'s job. ``--write`` appends the table to bench/RESULTS-two-view.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.model import ExportWrapper, GenderAgeNet  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS-two-view.md"


@torch.no_grad()
def ms_per_face(wrapper: ExportWrapper, x: torch.Tensor, calls: int) -> float:
    t = time.perf_counter()
    for _ in range(calls):
        wrapper(x)
    return (time.perf_counter() - t) / calls / x.shape[0] * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=160, help="input size (the shipped file: 160)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    nets = {v: ExportWrapper(GenderAgeNet(views=v).eval()) for v in (1, 2)}
    best: dict[tuple[int, int], float] = {}
    load = os.getloadavg()[0]
    for r in range(args.rounds):
        order = (1, 2) if r % 2 == 0 else (2, 1)
        for batch in (1, 16):
            for views in order:
                x = torch.randn(batch, 3 * views, args.size, args.size)
                nets[views](x)  # warm-up for this shape
                ms = ms_per_face(nets[views], x, calls=8 if batch == 1 else 2)
                key = (views, batch)
                best[key] = min(best.get(key, float("inf")), ms)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {when}: one-view vs two-view, {args.size} px, mirror-averaged as exported",
        "",
        f"{platform.machine()}, {os.cpu_count()} CPU cores, load average {load:.1f} at the "
        f"start, torch {torch.__version__}, 1 intra-op thread, best of {args.rounds} "
        "interleaved rounds.",
        "",
        "| faces per call | one-view ms/face | two-view ms/face | two-view / one-view |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for batch in (1, 16):
        one, two = best[(1, batch)], best[(2, batch)]
        lines.append(f"| {batch} | {one:.1f} | {two:.1f} | {two / one:.2f}x |")
    body = "\n".join(lines)
    print(body)
    if args.write:
        head = "# Two-view model: inference cost (bench/bench_two_view.py)\n"
        old = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else head
        RESULTS.write_text(old.rstrip("\n") + "\n\n" + body + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
