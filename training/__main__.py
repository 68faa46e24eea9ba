"""``python -m training COMMAND``: the whole pipeline.

Commands: run (all of cache, train, refit-age, export and evaluate, resumable), cache, train,
recover, soup, compare, refit-age, export, evaluate, cv (cross-validation over WIDER events),
gpu (pack, plan and run the prepared GPU run), reband (a file's band by the target rule).
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    cache = sub.add_parser("cache", help="decode the shared data into caches (training/cache/)")
    cache.add_argument(
        "--detect",
        action="store_true",
        help="also find every gender-train face with the app's detector (a few minutes)",
    )
    from training import train as T

    T.add_args(sub.add_parser("train", help="train or resume (time-budgeted, checkpoints)"))
    try:
        from training import export as E

        E.add_args(sub.add_parser("export", help="calibrate and export ONNX with metadata"))
    except ImportError:  # pragma: no cover - export lands after train
        E = None
    try:
        from training import evaluate as V

        V.add_args(sub.add_parser("evaluate", help="metrics, plots and timings of an ONNX model"))
    except ImportError:  # pragma: no cover
        V = None
    from training import soup as S

    S.add_args(sub.add_parser("soup", help="average the weights of checkpoints of one lineage"))
    from training import refit_age as R

    R.add_args(sub.add_parser("refit-age", help="refit the age head on frozen features"))
    from training import recover as RC

    RC.add_args(sub.add_parser("recover", help="rebuild a trainable checkpoint from an ONNX file"))
    from training import compare as C

    C.add_args(sub.add_parser("compare", help="score candidate checkpoints on wild faces"))
    from training import cv as CV

    CV.add_args(
        sub.add_parser("cv", help="cross-validation over WIDER events (resumable), then cv.md")
    )
    from training import reband as RB

    RB.add_args(sub.add_parser("reband", help="set a file's band by the per-class target rule"))
    from training import gpu_run as G

    G.add_args(sub.add_parser("gpu", help="pack for a GPU run, plan its calls, or run it"))
    from training import pipeline as P

    P.add_args(
        sub.add_parser(
            "run", help="the whole pipeline: cache, train, refit-age, export, evaluate (resumable)"
        )
    )
    args = parser.parse_args()
    if args.cmd == "cache":
        from training.data import build_gtrain_boxes, detector_path, ensure_caches

        ensure_caches()
        if args.detect:
            print(build_gtrain_boxes(detector_path()))
    elif args.cmd == "train":
        T.main(args)
    elif args.cmd == "soup":
        S.main(args)
    elif args.cmd == "refit-age":
        R.main(args)
    elif args.cmd == "recover":
        RC.main(args)
    elif args.cmd == "compare":
        C.main(args)
    elif args.cmd == "run":
        P.main(args)
    elif args.cmd == "cv":
        CV.main(args)
    elif args.cmd == "reband":
        RB.main(args)
    elif args.cmd == "gpu":
        raise SystemExit(G.main(args))
    elif args.cmd == "export" and E is not None:
        E.main(args)
    elif args.cmd == "evaluate" and V is not None:
        V.main(args)


if __name__ == "__main__":
    main()
