"""Decoded-crop caches, the app's crop geometry with jitter, and cheap evidence-photo augmentation.

Why caches: JPEG decoding 40k images per epoch would eat the 2-core CPU budget, so every image is
decoded once into a uint8 ``.npy`` (memory-mapped at training time). Why ``extract_crop``: the
classifier must see exactly the framing the app produces (docs/adr/0002-crop-geometry.md), so
the final training crop is cut by ``forensic_app.core.crops`` from a jittered face box.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from forensic_app.core.crops import (
    DEFAULT_MARGIN,
    extract_crop,
    stretch_region,
    whole_image_box,
    whole_image_crop,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
#: ``TRAINING_SHARED`` / ``TRAINING_CACHE`` point elsewhere on a machine without ``../shared``:
#: the GPU run (``training/gpu_run.py``) unpacks its data and manifests there.
SHARED = Path(os.environ.get("TRAINING_SHARED") or REPO_ROOT.parent / "shared")
WIDER_DIR = SHARED / "data" / "wider-gender"
GTRAIN_DIR = SHARED / "data" / "gender-train"
DEV_DIR = SHARED / "data" / "dev-eval"
CACHE_DIR = Path(os.environ.get("TRAINING_CACHE") or REPO_ROOT / "training" / "cache")

#: Side of the cached wider-gender context crops (the face box is ~half of it). 192 px is the
#: shared crops' own maximum, so no face loses resolution to the cache (it was 144 px, which
#: shrank faces over 72 px before the model saw them; version "1").
WIDER_CACHE = 192
#: Side of the cached gender-train images (their native size; FairFace 112 px is upscaled).
GTRAIN_CACHE = 128
CACHE_VERSION = "2"


@dataclass
class Split:
    """One cached source: images (N,S,S,3 uint8 RGB), face boxes x1y1x2y2 (cache px), labels.

    ``valid`` is the part of each cached image that lies inside the original photo (x1y1x2y2,
    cache px; ``None`` = all of it): wider-gender context crops are black where they leave the
    photo, and a ``--no-detect`` crop (box + 25 % per side) is clipped to the photo, not to that.
    """

    name: str
    images: np.ndarray
    boxes: np.ndarray  # float32 (N, 4)
    labels: np.ndarray  # int64 (N,), 0 female / 1 male
    ages: np.ndarray  # float32 (N,), NaN where unknown
    face_px: np.ndarray  # float32 (N,), shorter face side in the original photo (NaN unknown)
    valid: np.ndarray | None = None  # float32 (N, 4) or None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> Split:
        return Split(
            self.name,
            self.images[idx],
            self.boxes[idx],
            self.labels[idx],
            self.ages[idx],
            self.face_px[idx],
            None if self.valid is None else self.valid[idx],
        )


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_manifest_hash() -> str:
    """SHA-256 over both manifests: identifies the exact training data in provenance."""
    h = hashlib.sha256()
    for p in (WIDER_DIR / "manifest.csv", GTRAIN_DIR / "manifest.csv"):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("undecodable JPEG")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_members(directory: Path, rows: list[dict[str, str]]) -> dict[tuple[str, str], bytes]:
    wanted: dict[str, set[str]] = {}
    for r in rows:
        wanted.setdefault(r["shard"], set()).add(r["member"])
    out: dict[tuple[str, str], bytes] = {}
    for shard, members in wanted.items():
        with tarfile.open(directory / shard) as tf:
            for m in tf:
                if m.name in members:
                    fh = tf.extractfile(m)
                    assert fh is not None
                    out[(shard, m.name)] = fh.read()
    return out


def _save(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


def _age(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def wider_meta(rows: list[dict[str, str]], valid: np.ndarray) -> dict:
    """``wider_meta.json`` for cached wider-gender ``rows`` (manifest order = cache order)."""
    return {
        "labels": [int(r["label"]) for r in rows],
        "split": [r["split"] for r in rows],
        "face_px": [float(r["face_short_side_px"]) for r in rows],
        "age_group": [r["age"] for r in rows],
        "valid": np.asarray(valid).round(2).tolist(),
    }


def gtrain_meta(rows: list[dict[str, str]]) -> dict:
    """``gtrain_meta.json`` for cached gender-train ``rows``."""
    return {
        "labels": [int(r["label"]) for r in rows],
        "split": [r["split"] for r in rows],
        "ages": [_age(r["age"]) for r in rows],
        "source": [r["source"] for r in rows],
    }


def build_wider_cache(cache: Path = CACHE_DIR) -> None:
    """Decode wider-gender context crops, resized to WIDER_CACHE, boxes rescaled to match."""
    rows = list(csv.DictReader(open(WIDER_DIR / "manifest.csv", encoding="utf-8")))
    blobs = _read_members(WIDER_DIR, rows)
    n = len(rows)
    images = np.zeros((n, WIDER_CACHE, WIDER_CACHE, 3), np.uint8)
    boxes = np.zeros((n, 4), np.float32)
    valid = np.zeros((n, 4), np.float32)
    for i, r in enumerate(rows):
        img = _decode(blobs[(r["shard"], r["member"])])
        h, w = img.shape[:2]
        interp = cv2.INTER_AREA if max(h, w) > WIDER_CACHE else cv2.INTER_LINEAR
        images[i] = cv2.resize(img, (WIDER_CACHE, WIDER_CACHE), interpolation=interp)
        x, y, bw, bh = (float(v) for v in r["box_in_crop"].split())
        sx, sy = WIDER_CACHE / w, WIDER_CACHE / h
        boxes[i] = (x * sx, y * sy, (x + bw) * sx, (y + bh) * sy)
        vx0, vy0, vx1, vy1 = (float(v) for v in r["valid_in_crop"].split())
        valid[i] = (vx0 * sx, vy0 * sy, vx1 * sx, vy1 * sy)
    cache.mkdir(parents=True, exist_ok=True)
    _save(cache / "wider_images.npy", images)
    _save(cache / "wider_boxes.npy", boxes)
    (cache / "wider_meta.json").write_text(json.dumps(wider_meta(rows, valid)))


def build_gtrain_cache(cache: Path = CACHE_DIR) -> None:
    """Decode gender-train 128x128 crops (FairFace 112 px upscaled); the whole image is the crop."""
    rows = list(csv.DictReader(open(GTRAIN_DIR / "manifest.csv", encoding="utf-8")))
    blobs = _read_members(GTRAIN_DIR, rows)
    n = len(rows)
    images = np.lib.format.open_memmap(
        cache / "gtrain_images.tmp.npy", "w+", np.uint8, (n, GTRAIN_CACHE, GTRAIN_CACHE, 3)
    )
    for i, r in enumerate(rows):
        img = _decode(blobs[(r["shard"], r["member"])])
        if img.shape[0] != GTRAIN_CACHE or img.shape[1] != GTRAIN_CACHE:
            img = cv2.resize(img, (GTRAIN_CACHE, GTRAIN_CACHE), interpolation=cv2.INTER_LINEAR)
        images[i] = img
    images.flush()
    del images
    os.replace(cache / "gtrain_images.tmp.npy", cache / "gtrain_images.npy")
    (cache / "gtrain_meta.json").write_text(json.dumps(gtrain_meta(rows)))


def ensure_caches(cache: Path = CACHE_DIR) -> None:
    stamp = cache / "VERSION"
    if stamp.is_file() and stamp.read_text() == CACHE_VERSION:
        # Caches written before the photo regions were recorded: the wider part is rebuilt
        # (seconds) rather than the whole cache, whose detector boxes take minutes.
        if "valid" not in json.loads((cache / "wider_meta.json").read_text()):
            build_wider_cache(cache)
        return
    cache.mkdir(parents=True, exist_ok=True)
    build_wider_cache(cache)
    build_gtrain_cache(cache)
    stamp.write_text(CACHE_VERSION)


#: Framings of the gender-train images: "whole" treats each whole image as face box + margin;
#: "detected" uses the app's own CenterFace box for each image (``build_gtrain_boxes``).
GTRAIN_FRAMINGS = ("whole", "detected")
#: Edge padding around a gender-train image before detection: faces that fill the image are
#: only found when there is some background around them.
DETECT_PAD = 32
BOXES_VERSION = "1"


def detector_path() -> Path:
    """The app's CenterFace file, checked against models/manifest.json like the app does."""
    from forensic_app.core.modelstore import CENTERFACE_FILE, verified_model_path

    return verified_model_path(CENTERFACE_FILE)[0]


def detect_face_box(detector, image: np.ndarray, settings) -> np.ndarray | None:
    """The app's CenterFace box (x1y1x2y2, image px) of the one face an image is centred on.

    Why: UTKFace and FairFace images are tighter crops than the app's "face box + 25 % per
    side" framing (CenterFace finds their faces ~1.4x larger than the whole-image assumption),
    so training on whole images shows those faces zoomed in compared with what the app feeds
    the model. The most confident detection whose centre lies in the middle half of the image
    is taken; ``None`` when there is none.
    """
    h, w = image.shape[:2]
    padded = np.pad(image, ((DETECT_PAD, DETECT_PAD), (DETECT_PAD, DETECT_PAD), (0, 0)), "edge")
    det = detector.detect(padded, settings)
    best, best_score = None, -1.0
    for box, score in zip(det.boxes, det.scores, strict=True):
        b = box - DETECT_PAD
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        if abs(cx - w / 2) <= w / 4 and abs(cy - h / 2) <= h / 4 and score > best_score:
            best, best_score = b.astype(np.float32), float(score)
    return best


def _detect_chunk(args: tuple[str, str, int, int]) -> tuple[int, np.ndarray, np.ndarray]:
    """Worker: detect the faces of images ``[a, b)`` of the cached gender-train array."""
    from forensic_app.core.detection import CenterFaceDetector
    from forensic_app.core.settings import AnalysisSettings

    images_path, model_path, a, b = args
    images = np.load(images_path, mmap_mode="r")
    detector = CenterFaceDetector(Path(model_path), threads=1)
    settings = AnalysisSettings()
    fallback = np.asarray(whole_image_box(images.shape[1:3]), np.float32)
    boxes = np.tile(fallback, (b - a, 1))
    found = np.zeros(b - a, bool)
    for i in range(a, b):
        box = detect_face_box(detector, np.asarray(images[i]), settings)
        if box is not None:
            boxes[i - a], found[i - a] = box, True
    return a, boxes, found


def build_gtrain_boxes(
    detector_path: Path, cache: Path = CACHE_DIR, workers: int = 2, chunk: int = 1000
) -> dict:
    """Detect every gender-train face once with the app's detector; cache boxes + provenance.

    Images where no face is found keep the whole-image framing and are counted. Rebuilt when
    the detector file changes (its SHA-256 is recorded), or ``BOXES_VERSION`` or the decoded
    image cache's ``CACHE_VERSION`` does.
    """
    from concurrent.futures import ProcessPoolExecutor

    ensure_caches(cache)
    info_path = cache / "gtrain_boxes.json"
    sha = file_sha256(detector_path)
    if info_path.is_file() and (cache / "gtrain_boxes.npy").is_file():
        info = json.loads(info_path.read_text())
        if (
            info.get("detector_sha256") == sha
            and info.get("version") == BOXES_VERSION
            and info.get("cache_version") == CACHE_VERSION
        ):
            return info
    images_path = cache / "gtrain_images.npy"
    n = np.load(images_path, mmap_mode="r").shape[0]
    boxes = np.zeros((n, 4), np.float32)
    found = np.zeros(n, bool)
    src, det = str(images_path), str(detector_path)
    jobs = [(src, det, a, min(a + chunk, n)) for a in range(0, n, chunk)]
    done = 0
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for a, b, f in pool.map(_detect_chunk, jobs):
            boxes[a : a + len(b)], found[a : a + len(f)] = b, f
            done += len(b)
            print(f"detected gender-train faces: {done}/{n}", flush=True)
    _save(cache / "gtrain_boxes.npy", boxes)
    info = {
        "version": BOXES_VERSION,
        "cache_version": CACHE_VERSION,  # the decoded images the boxes belong to
        "detector": Path(detector_path).name,
        "detector_sha256": sha,
        "n": int(n),
        "found": int(found.sum()),
        "pad": DETECT_PAD,
        "sha256": file_sha256(cache / "gtrain_boxes.npy"),
    }
    tmp = info_path.with_name(info_path.name + ".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, info_path)
    return info


def gtrain_boxes_info(cache: Path = CACHE_DIR) -> dict | None:
    """Provenance of the cached detector boxes (None if never built)."""
    p = cache / "gtrain_boxes.json"
    return json.loads(p.read_text()) if p.is_file() else None


def wider_manifest() -> list[dict[str, str]]:
    """The wider-gender manifest rows, in the order of the cache (row i = cached image i)."""
    with open(WIDER_DIR / "manifest.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@dataclass(frozen=True)
class Holdout:
    """Leave one event fold out of training, selection and calibration (``training/cv.py``).

    ``fold`` of ``n_folds`` (``cvstats.assign_folds`` with ``seed``) is dropped from
    ``wider_train`` and ``wider_val`` and returned alone as ``wider_test``.
    """

    fold: int
    n_folds: int = 5
    seed: int = 0


def wider_folds(
    n_folds: int = 5, seed: int = 0, rows: list[dict[str, str]] | None = None
) -> np.ndarray:
    """Event fold of every wider-gender row (cache order); ``rows``: the manifest, if read."""
    from training.cvstats import assign_folds, event_of

    rows = wider_manifest() if rows is None else rows
    return assign_folds([event_of(r["image_path"]) for r in rows], n_folds, seed)


def load_splits(
    cache: Path = CACHE_DIR, gtrain_framing: str = "whole", holdout: Holdout | None = None
) -> dict[str, Split]:
    """Return ``wider_train``, ``wider_val``, ``gtrain_train``, ``gtrain_val`` (memory-mapped).

    ``gtrain_framing`` picks the gender-train face boxes (``GTRAIN_FRAMINGS``); "detected"
    needs ``build_gtrain_boxes`` to have run. With a ``holdout`` the held-out fold's events
    are in neither wider split but in a third, ``wider_test``. Every wider split carries
    ``rows`` (its manifest row numbers) and ``skin`` (perceived skin group per face), which
    cross-validation and skin-balanced sampling need.
    """
    if gtrain_framing not in GTRAIN_FRAMINGS:
        raise ValueError(f"gtrain_framing must be one of {GTRAIN_FRAMINGS}, not {gtrain_framing!r}")
    ensure_caches(cache)
    out: dict[str, Split] = {}
    wm = json.loads((cache / "wider_meta.json").read_text())
    wimg = np.load(cache / "wider_images.npy", mmap_mode="r")
    wbox = np.load(cache / "wider_boxes.npy")
    wlab = np.asarray(wm["labels"], np.int64)
    wpx = np.asarray(wm["face_px"], np.float32)
    wsplit = np.asarray(wm["split"])
    wvalid = np.asarray(wm["valid"], np.float32).reshape(-1, 4)
    nan = np.full(len(wlab), np.nan, np.float32)
    manifest = wider_manifest()
    # A cache of other rows than the manifest (the tests' tiny caches) has no groups or events.
    matches = len(manifest) == len(wlab)
    if matches:
        skin = np.asarray([r["skin"] or "Not Sure" for r in manifest])
    else:
        skin = np.full(len(wlab), "Not Sure")
    keep = np.ones(len(wlab), bool)
    parts = [("train", wsplit == "train"), ("val", wsplit == "val")]
    if holdout is not None:
        if not matches:
            raise ValueError("event folds need the full wider-gender cache (rows != manifest)")
        held = wider_folds(holdout.n_folds, holdout.seed, manifest) == holdout.fold
        keep = ~held
        parts.append(("test", held))
    for s, mask in parts:
        idx = np.nonzero(mask & keep if s != "test" else mask)[0]
        sp = Split(f"wider_{s}", wimg, wbox, wlab, nan, wpx, wvalid).subset(idx)
        sp.rows = idx  # type: ignore[attr-defined]
        sp.skin = skin[idx]  # type: ignore[attr-defined]
        out[f"wider_{s}"] = sp
    gm = json.loads((cache / "gtrain_meta.json").read_text())
    gimg = np.load(cache / "gtrain_images.npy", mmap_mode="r")
    n = len(gm["labels"])
    if gtrain_framing == "detected":
        if gtrain_boxes_info(cache) is None:
            raise FileNotFoundError(
                f"no detector boxes in {cache}: run `python -m training cache --detect` first"
            )
        gbox = np.load(cache / "gtrain_boxes.npy")
    else:
        gbox = np.tile(
            np.asarray(whole_image_box((GTRAIN_CACHE, GTRAIN_CACHE)), np.float32), (n, 1)
        )
    glab = np.asarray(gm["labels"], np.int64)
    gage = np.asarray(gm["ages"], np.float32)
    gsplit = np.asarray(gm["split"])
    gpx = np.full(n, np.nan, np.float32)
    for s in ("train", "val"):
        idx = np.nonzero(gsplit == s)[0]
        # Index lazily: the memmap stays on disk; only the index array is materialised.
        sp = Split(f"gtrain_{s}", gimg, gbox[idx], glab[idx], gage[idx], gpx[idx])
        sp.index = idx  # type: ignore[attr-defined]
        out[f"gtrain_{s}"] = sp
    return out


def image_of(split: Split, i: int) -> np.ndarray:
    """The cached image behind row ``i`` of a split (gender-train keeps the memmap unsliced)."""
    index = getattr(split, "index", None)
    return np.asarray(split.images[index[i] if index is not None else i])


# --------------------------------------------------------------------------------------------
# Crops and augmentation


def jitter_box(
    box: np.ndarray, rng: np.random.Generator, scale: float, shift: float
) -> list[float]:
    """Scale the box by up to +-``scale`` and shift it by up to +-``shift`` of its size."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    s = float(np.exp(rng.uniform(-scale, scale)))
    cx = (x1 + x2) / 2 + rng.uniform(-shift, shift) * w
    cy = (y1 + y2) / 2 + rng.uniform(-shift, shift) * h
    w, h = w * s, h * s * float(np.exp(rng.uniform(-0.08, 0.08)))
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def two_views(face: np.ndarray, context: np.ndarray | None) -> np.ndarray:
    """A two-view input: the face crop and a wider context crop of the same face stacked as
    six channels (RGB face, RGB context), so batches, flips and tensors stay one array;
    ``context=None`` is the one-view model's plain crop."""
    return face if context is None else np.concatenate([face, context], axis=2)


def box_views(
    img: np.ndarray, box: Sequence[float], size: int, margin: float, context_margin: float = 0.0
) -> np.ndarray:
    """The app-geometry crop of ``box`` at ``margin``, and with ``context_margin`` > 0 the
    two-view model's context crop of the same box beside it (``two_views``)."""
    face = extract_crop(img, box, size, margin, "square")
    ctx = extract_crop(img, box, size, context_margin, "square") if context_margin else None
    return two_views(face, ctx)


def eval_crop(
    split: Split,
    i: int,
    size: int,
    no_detect: bool = False,
    margin: float = DEFAULT_MARGIN,
    context_margin: float = 0.0,
) -> np.ndarray:
    """The deterministic app-geometry crop used for validation (or its ``--no-detect`` form).

    ``margin`` is the crop margin per side the model is trained for (written into the ONNX
    metadata as ``crop_margin``, which the app follows); the ``--no-detect`` framing is the
    user's own image, so it has none. ``context_margin`` > 0 adds the two-view model's second
    view (the same box at that margin; a ``--no-detect`` image has no more context than
    itself, so both views are the same crop there).
    """
    if no_detect:
        valid = None if split.valid is None else split.valid[i]
        crop = no_detect_crop(image_of(split, i), split.boxes[i], valid, size)
        return two_views(crop, crop if context_margin else None)
    return box_views(image_of(split, i), split.boxes[i], size, margin, context_margin)


def _jpeg(img: np.ndarray, q: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Evidence-photo degradations, each cheap in numpy/cv2 (a few hundred µs per crop)."""
    size = img.shape[0]
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.4:  # low resolution: a 16-48 px face, upscaled like the app does
        small = int(rng.integers(16, 49))
        img = cv2.resize(np.ascontiguousarray(img), (small, small), interpolation=cv2.INTER_AREA)
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.2:
        k = int(rng.choice([3, 5]))
        img = cv2.GaussianBlur(np.ascontiguousarray(img), (k, k), 0)
    f = img.astype(np.float32)
    if rng.random() < 0.8:  # brightness / contrast / colour cast
        f = (f - 128.0) * rng.uniform(0.6, 1.4) + 128.0 + rng.uniform(-40, 40)
        f *= rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    if rng.random() < 0.15:
        f[:] = f.mean(axis=2, keepdims=True)
    if rng.random() < 0.25:
        f += rng.normal(0, rng.uniform(2, 12), size=f.shape).astype(np.float32)
    if rng.random() < 0.15:  # small occlusion (hand, microphone, another head)
        oh, ow = (int(v) for v in rng.integers(size // 8, size // 3, size=2))
        oy, ox = (int(v) for v in rng.integers(0, size - max(oh, ow), size=2))
        f[oy : oy + oh, ox : ox + ow] = rng.uniform(0, 255, size=3)
    img = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.35:
        img = _jpeg(img, int(rng.integers(25, 90)))
    return img


def rotate_about_face(
    img: np.ndarray, box: np.ndarray, valid: np.ndarray | None, degrees: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Turn the image about the face centre; the box and the photo region follow the turn.

    Why: wild photos hold tilted and lying heads (the shipped 2026.11.4 made confident errors on
    faces turned 30-90 degrees), and no earlier stage ever saw one. The box keeps its centre; its
    width and height trade places with sin^2 of the angle, as a detector's box around a turned
    face does. Outside the photo stays black, as in the app's crops; the photo region becomes
    the bounding box of the turned one (a ``--no-detect`` crop is cut from that).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    if valid is not None:  # black out what lies outside the photo before turning
        vx0, vy0, vx1, vy1 = (int(round(float(v))) for v in valid)
        if (vx0, vy0, vx1, vy1) != (0, 0, img.shape[1], img.shape[0]):
            img = img.copy()
            img[:vy0], img[vy1:], img[:, :vx0], img[:, vx1:] = 0, 0, 0, 0
    m = cv2.getRotationMatrix2D((cx, cy), degrees, 1.0)
    out = cv2.warpAffine(
        np.ascontiguousarray(img),
        m,
        (img.shape[1], img.shape[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    s2 = float(np.sin(np.radians(degrees)) ** 2)
    nw, nh = w * (1 - s2) + h * s2, h * (1 - s2) + w * s2
    new_box = np.asarray([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], np.float32)
    new_valid = None
    if valid is not None:
        vx0, vy0, vx1, vy1 = (float(v) for v in valid)
        corners = np.asarray([[vx0, vy0, 1], [vx1, vy0, 1], [vx0, vy1, 1], [vx1, vy1, 1]])
        pts = corners @ m.T
        new_valid = np.asarray(
            [
                max(0.0, pts[:, 0].min()),
                max(0.0, pts[:, 1].min()),
                min(float(img.shape[1]), pts[:, 0].max()),
                min(float(img.shape[0]), pts[:, 1].max()),
            ],
            np.float32,
        )
    return out, new_box, new_valid


def no_detect_region(img: np.ndarray, box: Sequence[float], valid: np.ndarray | None) -> np.ndarray:
    """The face image a user would give with ``--no-detect``: box + 25 % per side, in the photo.

    Such images (``dev-eval/gender_crops``, the held-out gender set, the original tool's input)
    are the face box + 25 % of its width and height per side, clipped to the photo — not
    square. This cuts that region from a context crop with the app's own ``stretch_region``,
    clipped to the part of the context crop that is photo (``valid``), not its black border.
    """
    vx0, vy0, vx1, vy1 = (0, 0, img.shape[1], img.shape[0])
    if valid is not None:
        vx0, vy0 = int(np.ceil(float(valid[0]))), int(np.ceil(float(valid[1])))
        vx1, vy1 = int(np.floor(float(valid[2]))), int(np.floor(float(valid[3])))
    photo = img[vy0:vy1, vx0:vx1]
    x1, y1, x2, y2 = (float(v) for v in box)
    r0, r1, r2, r3 = stretch_region([x1 - vx0, y1 - vy0, x2 - vx0, y2 - vy0], photo.shape)
    return np.ascontiguousarray(photo[r1:r3, r0:r2])


def no_detect_crop(
    img: np.ndarray, box: Sequence[float], valid: np.ndarray | None, size: int
) -> np.ndarray:
    """The app's crop of a ``--no-detect`` face image (letterboxed: black bars), see above."""
    return whole_image_crop(no_detect_region(img, box, valid), size, "square")


@dataclass(frozen=True)
class CropAug:
    """Geometric augmentation of a training crop (probabilities per crop)."""

    p_rotate: float = 0.0  # turn by a normal angle (sd ``rotate_sd`` degrees, clipped at 2 sd)
    rotate_sd: float = 15.0
    p_rotate90: float = 0.0  # a lying head: +-90 degrees (+- 10)
    p_no_detect: float = 0.0  # the --no-detect framing (letterboxed box + 25 % per side)


def train_crop(
    split: Split,
    i: int,
    size: int,
    rng: np.random.Generator,
    aug: CropAug | None = None,
    margin: float = DEFAULT_MARGIN,
    context_margin: float = 0.0,
) -> np.ndarray:
    """A jittered app-geometry crop of row ``i``, then augmented (with ``context_margin`` > 0,
    both views of the two-view model from the same turned, jittered box and augmented alike)."""
    aug = aug or CropAug()
    img, box = image_of(split, i), split.boxes[i]
    valid = None if split.valid is None else split.valid[i]
    r = rng.random()
    if r < aug.p_rotate90:
        deg = float(rng.choice([-90.0, 90.0]) + rng.uniform(-10, 10))
        img, box, valid = rotate_about_face(img, box, valid, deg)
    elif r < aug.p_rotate90 + aug.p_rotate:
        deg = float(np.clip(rng.normal(0, aug.rotate_sd), -2 * aug.rotate_sd, 2 * aug.rotate_sd))
        img, box, valid = rotate_about_face(img, box, valid, deg)
    jittered = jitter_box(box, rng, scale=0.15, shift=0.08)
    ctx = None
    if rng.random() < aug.p_no_detect:
        crop = no_detect_crop(img, jittered, valid, size)
        ctx = crop if context_margin else None
    else:
        crop = extract_crop(img, jittered, size, margin, "square")
        if context_margin:
            ctx = extract_crop(img, jittered, size, context_margin, "square")
    if ctx is None:
        return augment(crop, rng)
    # The same draws for both views (flip, scaling, blur, colour, JPEG ...): one photo, seen
    # twice, as the app would see it.
    seed = int(rng.integers(2**63))
    return two_views(
        augment(crop, np.random.default_rng(seed)), augment(ctx, np.random.default_rng(seed))
    )


def to_tensor_batch(crops: list[np.ndarray]) -> np.ndarray:
    """uint8 NHWC RGB -> float32 NCHW in [-1, 1] (the model's preprocessing)."""
    x = np.stack(crops).astype(np.float32)
    x = (x * (1.0 / 255.0) - 0.5) / 0.5
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


#: Preprocessing written into the ONNX metadata: x = (pixel * SCALE - MEAN) / STD.
SCALE, MEAN, STD = 1.0 / 255.0, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
