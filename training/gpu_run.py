"""One prepared GPU run: pack the training crops here, then cross-validate, train and export there.

    python -m training gpu pack --out .gpu_pack                 # here, from training/cache
    python -m training gpu plan --pack .gpu_pack                # the device calls it takes
    python -m training gpu go --pack .gpu_pack --work /tmp/g --out "$OUT" --budget-steps 3000

Why: a lent GPU (``device``) has no ``../shared`` and takes 64 MiB per call, working tree
included, with 15 minutes of device time in all. So the decoded training crops travel as
uint8 arrays in chunks (``--chunk-mib``, sized so that one chunk plus the repository fits one
call), with both data manifests (the provenance hash and the event folds need them) and a
``pack.json`` that records every chunk's SHA-256. ``go`` checks the chunks, unpacks them into a
training cache, and runs the very code the CPU runs — ``python -m training cv`` (event folds,
calibration and band inside the training folds) and then the final model on every event, with
``--input-size`` up to 224, exported with its metadata — and leaves in ``--out`` only what
comes back from a device: the ONNX file, ``cv.json``, ``cv.md``, the final run's metrics and the
export report (at most 8 files, each under 16 MiB). It is the same command on the CPU with a
tiny budget (``tests/training/test_gpu_run.py`` runs it end to end), so a device call does not
discover its bugs.

Why chunks of stored arrays, not the shared JPEG shards: the device decodes nothing and needs no
access to ``../shared``; the stored size (``--wider-size``, ``--gtrain-size``) and how many
gender-train faces go in (``--gtrain-limit``) decide how many calls the data takes (``plan``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from training import data as D

PACK_VERSION = "1"
#: What comes back from a device call: at most 8 files (README of the device tool).
RESULT_FILES = ("gender_effnet_b0.onnx", "cv.json", "cv.md", "final_metrics.json", "export.json")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] gpu: {msg}", file=sys.stderr, flush=True)


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _resize_all(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1] == size:
        return np.ascontiguousarray(images)
    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, img in enumerate(images):
        interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
        out[i] = cv2.resize(np.asarray(img), (size, size), interpolation=interp)
    return out


def _write_chunks(
    out: Path, name: str, images: np.ndarray, fields: dict, chunk_bytes: int
) -> list[dict]:
    row_bytes = images[0].nbytes + sum(np.asarray(v[0]).nbytes for v in fields.values())
    per = max(1, (chunk_bytes - 4096) // row_bytes)  # 4 KiB for the npz headers
    chunks = []
    for k, a in enumerate(range(0, len(images), per)):
        b = min(a + per, len(images))
        path = out / f"{name}-{k:03d}.npz"
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, images=images[a:b], **{f: v[a:b] for f, v in fields.items()})
        os.replace(tmp, path)
        chunks.append({"file": path.name, "rows": [a, b], "bytes": path.stat().st_size})
        chunks[-1]["sha256"] = _sha(path)
    return chunks


def pack(
    out: Path,
    chunk_mib: float = 28.0,
    wider_size: int = 128,
    gtrain_size: int = 96,
    gtrain_limit: int | None = None,
    wider_limit: int | None = None,
    seed: int = 0,
) -> dict:
    """Write the chunks and ``pack.json`` from the local training cache (``training/cache``)."""
    D.ensure_caches()
    info = D.build_gtrain_boxes(D.detector_path())
    out.mkdir(parents=True, exist_ok=True)
    chunk_bytes = int(chunk_mib * 2**20)
    cache = D.CACHE_DIR
    rng = np.random.default_rng(seed)

    wm = json.loads((cache / "wider_meta.json").read_text())
    wimg = np.load(cache / "wider_images.npy", mmap_mode="r")
    n_w = len(wm["labels"])
    w_rows = np.arange(n_w) if wider_limit is None else np.sort(rng.choice(n_w, wider_limit, False))
    f_w = wider_size / wimg.shape[1]
    wider_fields = {
        "rows": w_rows,
        "boxes": np.load(cache / "wider_boxes.npy")[w_rows] * f_w,
        "valid": np.asarray(wm["valid"], np.float32).reshape(-1, 4)[w_rows] * f_w,
    }
    log(f"wider-gender: {len(w_rows)} faces at {wider_size} px")
    wider_chunks = _write_chunks(
        out, "wider", _resize_all(wimg[w_rows], wider_size), wider_fields, chunk_bytes
    )

    gm = json.loads((cache / "gtrain_meta.json").read_text())
    gimg = np.load(cache / "gtrain_images.npy", mmap_mode="r")
    n_g = len(gm["labels"])
    split = np.asarray(gm["split"])
    if gtrain_limit is None or gtrain_limit >= n_g:
        g_rows = np.arange(n_g)
    else:  # keep the val split's share, drawn without regard to label (the sampler balances)
        g_rows = np.sort(rng.choice(n_g, gtrain_limit, replace=False))
        if not (split[g_rows] == "val").any() or not (split[g_rows] == "train").any():
            raise ValueError("--gtrain-limit too small to keep both gender-train splits")
    f_g = gtrain_size / gimg.shape[1]
    gtrain_fields = {"rows": g_rows, "boxes": np.load(cache / "gtrain_boxes.npy")[g_rows] * f_g}
    log(f"gender-train: {len(g_rows)} faces at {gtrain_size} px")
    gtrain_chunks = _write_chunks(
        out, "gtrain", _resize_all(gimg[g_rows], gtrain_size), gtrain_fields, chunk_bytes
    )

    from training.model import LITE0_WEIGHTS

    manifests = {}  # the small files; the warm-start weights travel with them
    for name, src in (
        ("wider-manifest.csv", D.WIDER_DIR / "manifest.csv"),
        ("gtrain-manifest.csv", D.GTRAIN_DIR / "manifest.csv"),
        (LITE0_WEIGHTS.name, LITE0_WEIGHTS),
    ):
        shutil.copyfile(src, out / name)
        manifests[name] = _sha(out / name)
    desc = {
        "version": PACK_VERSION,
        "made": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cache_version": D.CACHE_VERSION,
        "data_manifest_sha256": D.data_manifest_hash(),
        "gtrain_boxes": info,
        "wider": {"size": wider_size, "n": int(len(w_rows)), "chunks": wider_chunks},
        "gtrain": {"size": gtrain_size, "n": int(len(g_rows)), "chunks": gtrain_chunks},
        "manifests": manifests,
        "chunk_mib": chunk_mib,
    }
    (out / "pack.json").write_text(json.dumps(desc, indent=2))
    total = sum(c["bytes"] for c in wider_chunks + gtrain_chunks)
    log(f"{len(wider_chunks) + len(gtrain_chunks)} chunks, {total / 2**20:.0f} MiB in {out}")
    return desc


def plan(pack_dir: Path) -> list[list[str]]:
    """Which files each device call carries: chunks are added while the machine stays warm.

    A device keeps ignored files between calls of one lease, so call k carries chunk k (and the
    small files) and the last call carries the last chunk and runs ``go``.
    """
    desc = json.loads((pack_dir / "pack.json").read_text())
    files = [c["file"] for part in ("wider", "gtrain") for c in desc[part]["chunks"]]
    calls = [[f"{pack_dir.name}/{f}"] for f in files]
    calls[0] += [f"{pack_dir.name}/{m}" for m in (*desc["manifests"], "pack.json")]
    return calls


def _check(pack_dir: Path, desc: dict) -> None:
    for part in ("wider", "gtrain"):
        for c in desc[part]["chunks"]:
            p = pack_dir / c["file"]
            if not p.is_file():
                raise SystemExit(f"missing chunk {p}: carry it first (python -m training gpu plan)")
            if _sha(p) != c["sha256"]:
                raise SystemExit(f"chunk {p} does not match pack.json (SHA-256): not using it")
    for name, sha in desc["manifests"].items():
        if _sha(pack_dir / name) != sha:
            raise SystemExit(f"{pack_dir / name} does not match pack.json (SHA-256)")


def _manifest(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def unpack(pack_dir: Path, work: Path) -> tuple[Path, Path]:
    """Rebuild a training cache and a ``shared`` tree (manifests only) under ``work``."""
    desc = json.loads((pack_dir / "pack.json").read_text())
    if desc.get("version") != PACK_VERSION:
        raise SystemExit(f"pack version {desc.get('version')} is not {PACK_VERSION}")
    _check(pack_dir, desc)
    shared = work / "shared"
    for name, sub in (
        ("wider-manifest.csv", "wider-gender"),
        ("gtrain-manifest.csv", "gender-train"),
    ):
        (shared / "data" / sub).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pack_dir / name, shared / "data" / sub / "manifest.csv")
    (shared / "weights").mkdir(parents=True, exist_ok=True)
    for name in (n for n in desc["manifests"] if n.endswith(".pth")):
        shutil.copyfile(pack_dir / name, shared / "weights" / name)
    cache = work / "cache"
    cache.mkdir(parents=True, exist_ok=True)

    def load(part: str) -> dict:
        parts = [dict(np.load(pack_dir / c["file"])) for c in desc[part]["chunks"]]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    w = load("wider")
    rows = _manifest(pack_dir / "wider-manifest.csv")
    sub = [rows[int(i)] for i in w["rows"]]
    np.save(cache / "wider_images.npy", w["images"])
    np.save(cache / "wider_boxes.npy", w["boxes"].astype(np.float32))
    (cache / "wider_meta.json").write_text(json.dumps(D.wider_meta(sub, w["valid"])))
    if len(sub) != len(rows):  # a partial pack: the manifest must list the packed rows only
        wm = shared / "data" / "wider-gender" / "manifest.csv"
        with open(wm, "w", encoding="utf-8", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
            wr.writeheader()
            wr.writerows(sub)
    g = load("gtrain")
    grows = _manifest(pack_dir / "gtrain-manifest.csv")
    gsub = [grows[int(i)] for i in g["rows"]]
    np.save(cache / "gtrain_images.npy", g["images"])
    np.save(cache / "gtrain_boxes.npy", g["boxes"].astype(np.float32))
    (cache / "gtrain_meta.json").write_text(json.dumps(D.gtrain_meta(gsub)))
    info = dict(desc["gtrain_boxes"])  # the detector's provenance; ``n`` is the full set's
    info["sha256"] = _sha(cache / "gtrain_boxes.npy")
    info["packed"] = len(gsub)
    (cache / "gtrain_boxes.json").write_text(json.dumps(info, indent=2))
    (cache / "VERSION").write_text(desc["cache_version"])
    log(f"unpacked {len(sub)} wild and {len(gsub)} clean faces into {cache}")
    return cache, shared


def go(args: argparse.Namespace) -> int:
    """Unpack, cross-validate, train the final model, export; results into ``args.out``."""
    t0 = time.monotonic()
    work, out = args.work.resolve(), args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    cache, shared = unpack(args.pack, work)
    env = dict(os.environ, TRAINING_CACHE=str(cache), TRAINING_SHARED=str(shared))
    env.setdefault("TRAIN_THREADS", str(os.cpu_count() or 2))
    recipe = [
        "--input-size", str(args.input_size),
        "--batch", str(args.batch),
        "--budget-steps", str(args.budget_steps),
        "--lr", str(args.lr),
        "--crop-margin", str(args.crop_margin),
        "--eval-min", "1000",
        "--ckpt-min", "2",
        "--seed", str(args.seed),
    ] + (["--balance-skin"] if args.balance_skin else [])  # fmt: skip
    py = [sys.executable, "-m", "training"]
    if args.folds > 0:
        cv_out = work / "cv"
        cmd = [*py, "cv", "--out", str(cv_out), "--folds", str(args.folds), *recipe]
        log(" ".join(cmd))
        subprocess.run(cmd, env=env, check=True, cwd=D.REPO_ROOT)
        for name in ("cv.json", "cv.md"):
            shutil.copyfile(cv_out / name, out / name)
    if args.final:
        final = work / "final"
        cmd = [*py, "train", "--out", str(final), *recipe]
        log(" ".join(cmd))
        subprocess.run(cmd, env=env, check=True, cwd=D.REPO_ROOT)
        onnx = out / "gender_effnet_b0.onnx"
        cmd = [*py, "export", "--ckpt", str(final / "best.pt"), "--out", str(onnx)]
        cmd += ["--version", args.version]
        subprocess.run(cmd, env=env, check=True, cwd=D.REPO_ROOT)
        shutil.copyfile(final / "metrics.json", out / "final_metrics.json")
        shutil.copyfile(final / "export.json", out / "export.json")
    log(f"done in {(time.monotonic() - t0) / 60:.1f} min; results in {out}")
    return 0


def add_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="gpu_cmd", required=True)
    pk = sub.add_parser("pack", help="chunks of decoded crops from training/cache")
    pk.add_argument("--out", type=Path, default=Path(".gpu_pack"))
    pk.add_argument("--chunk-mib", type=float, default=28.0)
    pk.add_argument("--wider-size", type=int, default=128)
    pk.add_argument("--gtrain-size", type=int, default=96)
    pk.add_argument("--gtrain-limit", type=int, default=None)
    pk.add_argument("--wider-limit", type=int, default=None, help="a subset (tests only)")
    pl = sub.add_parser("plan", help="the device calls that carry a pack")
    pl.add_argument("--pack", type=Path, default=Path(".gpu_pack"))
    g = sub.add_parser("go", help="unpack, cross-validate, train the final model, export")
    g.add_argument("--pack", type=Path, default=Path(".gpu_pack"))
    g.add_argument("--work", type=Path, default=Path("/tmp/forensic_gpu_run"))
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--folds", type=int, default=5, help="0: no cross-validation")
    g.add_argument("--no-final", dest="final", action="store_false")
    g.add_argument("--input-size", type=int, default=224)
    g.add_argument("--batch", type=int, default=128)
    g.add_argument("--budget-steps", type=int, default=3000)
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--crop-margin", type=float, default=0.25)
    g.add_argument("--balance-skin", action="store_true")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--version", default=time.strftime("%Y.%m.gpu"))


def main(args: argparse.Namespace) -> int:
    if args.gpu_cmd == "pack":
        pack(
            args.out,
            args.chunk_mib,
            args.wider_size,
            args.gtrain_size,
            args.gtrain_limit,
            args.wider_limit,
        )
        return 0
    if args.gpu_cmd == "plan":
        for i, files in enumerate(plan(args.pack)):
            print(f"call {i + 1}: carry {' '.join(files)}")
        print('last call: also run `python -m training gpu go --pack ... --out "$OUT"`')
        return 0
    return go(args)
