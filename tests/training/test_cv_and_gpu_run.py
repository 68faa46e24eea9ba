"""Event-fold cross-validation and the prepared GPU run, on real shared data with tiny budgets.

The statistics (folds, band from a target, risk-coverage, event-level intervals) are checked on
constructed data where the right answer is known; the pipeline is run end to end through the
command line on a tiny tree made from real ``wider-gender`` and ``gender-train`` faces:
``cache --detect``, ``gpu pack``, ``gpu go`` (two event folds, two steps each, then the final
model and its export), exactly as a device call would run it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from training import cvstats as S

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


# -- statistics --------------------------------------------------------------------------------
def test_folds_keep_every_event_whole_and_balance_faces() -> None:
    rng = np.random.default_rng(1)
    sizes = rng.integers(20, 400, size=40)
    events = np.repeat([f"{i}--Event" for i in range(40)], sizes)
    folds = S.assign_folds(events, 5, seed=0)
    for e in np.unique(events):
        assert len(set(folds[events == e])) == 1, f"event {e} split across folds"
    counts = np.bincount(folds, minlength=5)
    assert counts.min() > 0.8 * counts.max(), counts
    assert (S.assign_folds(events, 5, seed=0) == folds).all()  # deterministic
    with pytest.raises(ValueError):
        S.assign_folds(["a", "a", "b"], 5)


def test_band_for_target_finds_the_narrowest_band_that_meets_it() -> None:
    # Confidence c_i; faces above 0.8 are always right, faces below are right half the time.
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.integers(0, 2, n)
    conf = rng.uniform(0.5, 1.0, n)
    right = np.where(conf > 0.8, True, rng.random(n) < 0.5)
    pred = np.where(right, y, 1 - y)
    p = np.where(pred == 1, conf, 1 - conf)
    fit = S.band_for_target(p, y, target=0.99)
    assert fit["met"]
    assert 0.78 <= fit["band"][1] <= 0.82, fit
    assert fit["fit"]["accuracy_female"] >= 0.99 and fit["fit"]["accuracy_male"] >= 0.99
    # a target no band can meet is reported as not met, never claimed
    noisy = np.where(rng.random(n) < 0.5, conf, 1 - conf)
    miss = S.band_for_target(noisy, y, target=0.96)
    assert not miss["met"] and miss["band"][1] == S.C_MAX


def test_band_target_is_per_class() -> None:
    # Men always right, women right 90 %: overall accuracy can pass 96 % while women fail it.
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(2000, int), np.ones(18000, int)]
    conf = rng.uniform(0.9, 1.0, len(y))
    right = np.where(y == 1, True, rng.random(len(y)) < 0.9)
    p = np.where(np.where(right, y, 1 - y) == 1, conf, 1 - conf)
    assert S.decided_accuracy(p, y, 0.5)["accuracy"] > 0.96
    assert not S.band_for_target(p, y, target=0.96)["met"]


def test_risk_coverage_decides_the_most_confident_first() -> None:
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0, 1, 0])
    p = np.array([0.99, 0.95, 0.05, 0.1, 0.4, 0.6, 0.55, 0.45, 0.52, 0.51])
    rows = S.risk_coverage(p, y, (0.4, 1.0))
    assert rows[0]["n_decided"] == 4 and rows[0]["accuracy"] == 1.0
    assert rows[1]["n_decided"] == 10 and rows[1]["accuracy"] == pytest.approx(0.7)


def test_event_bootstrap_is_wider_than_face_bootstrap_when_events_differ() -> None:
    # 10 events, each all right or all wrong: faces within an event are not independent.
    events = np.repeat([f"e{i}" for i in range(10)], 100)
    right = np.repeat(np.arange(10) % 2 == 0, 100).astype(float)
    ci = S.cluster_bootstrap(lambda idx: float(right[idx].mean()), events, n_boot=400)
    faces = [str(i) for i in range(len(events))]
    ci_faces = S.cluster_bootstrap(lambda idx: float(right[idx].mean()), faces, n_boot=400)
    assert ci[0] < 0.5 < ci[1]
    assert (ci[1] - ci[0]) > 3 * (ci_faces[1] - ci_faces[0])


# -- the pipeline on a tiny tree of real faces ----------------------------------------------
def _need_shared() -> None:
    for p in (
        SHARED / "data" / "wider-gender" / "manifest.csv",
        SHARED / "data" / "gender-train" / "manifest.csv",
        SHARED / "weights",
    ):
        if not p.exists():
            pytest.skip(f"../shared not present ({p} missing)")
    if not (REPO / "models" / "centerface.onnx").is_file():
        pytest.skip("models/centerface.onnx missing: run `python -m forensic_app.fetch_models`")
    pytest.importorskip("torch", reason="torch is not installed (pip install -e .[train])")


def _subset(src: Path, dst: Path, rows: list[dict[str, str]]) -> None:
    """A manifest of ``rows`` beside links to the shared shards (read in place, not copied)."""
    dst.mkdir(parents=True, exist_ok=True)
    for shard in sorted({r["shard"] for r in rows}):
        (dst / shard).symlink_to(src / shard)
    with open(dst / "manifest.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _tiny_tree(root: Path) -> dict[str, str]:
    wider = SHARED / "data" / "wider-gender"
    gtrain = SHARED / "data" / "gender-train"
    with open(wider / "manifest.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_event: dict[str, list] = defaultdict(list)
    for r in rows:
        by_event[S.event_of(r["image_path"])].append(r)
    picked = []
    for e in sorted(by_event)[:4]:  # four events, train and val photos of each
        picked += [r for r in by_event[e] if r["split"] == "train"][:14]
        picked += [r for r in by_event[e] if r["split"] == "val"][:6]
    with open(gtrain / "manifest.csv", encoding="utf-8") as fh:
        grows = list(csv.DictReader(fh))
    gpick = []
    for split in ("train", "val"):
        for label in ("0", "1"):
            gpick += [r for r in grows if r["split"] == split and r["label"] == label][:8]
    shared = root / "shared"
    _subset(wider, shared / "data" / "wider-gender", picked)
    _subset(gtrain, shared / "data" / "gender-train", gpick)
    (shared / "weights").symlink_to(SHARED / "weights")
    return dict(
        os.environ,
        TRAINING_SHARED=str(shared),
        TRAINING_CACHE=str(root / "cache"),
        TRAIN_THREADS="1",
        PYTHONPATH=str(REPO),
    )


def _training(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_gpu_run_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    _need_shared()
    env = _tiny_tree(tmp_path)
    r = _training(env, "cache", "--detect")
    assert r.returncode == 0, r.stderr[-2000:]
    pack = tmp_path / "pack"
    r = _training(env, "gpu", "pack", "--out", str(pack), "--chunk-mib", "0.25")
    assert r.returncode == 0, r.stderr[-2000:]
    desc = json.loads((pack / "pack.json").read_text())
    chunks = desc["wider"]["chunks"] + desc["gtrain"]["chunks"]
    assert len(chunks) > 2 and all(c["bytes"] <= 0.25 * 2**20 for c in chunks)
    assert desc["wider"]["n"] == 80 and desc["gtrain"]["n"] == 32

    # The device has no ../shared: the run must need nothing but the pack.
    dev_env = {k: v for k, v in env.items() if k not in ("TRAINING_SHARED", "TRAINING_CACHE")}
    dev_env["TRAINING_SHARED"] = str(tmp_path / "nowhere")
    out, work = tmp_path / "OUT", tmp_path / "work"
    args = ["gpu", "go", "--pack", str(pack), "--work", str(work), "--out", str(out)]
    args += ["--folds", "2", "--budget-steps", "2", "--input-size", "64", "--batch", "8"]
    args += ["--crop-margin", "0.5", "--version", "2026.12.test"]
    r = _training(dev_env, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["cv.json", "cv.md", "export.json", "final_metrics.json", "gender_effnet_b0.onnx"]
    )
    assert all(p.stat().st_size < 16 * 2**20 for p in out.iterdir())  # what a device returns

    cv = json.loads((out / "cv.json").read_text())
    assert len(cv["folds"]) == 2
    # every wild face predicted exactly once, by the fold model that never saw its event
    assert sum(f["faces"] for f in cv["folds"]) == 80
    assert cv["variants"]["flip"]["n"] == 80 and cv["variants"]["flip"]["events"] == 4
    for k in range(2):
        fold = np.load(work / "cv" / f"fold-{k}" / "oof.npz")
        meta = json.loads((work / "cv" / f"fold-{k}" / "metrics.json").read_text())
        assert meta["meta"]["hparams"]["cv_fold"] == k
        assert len(set(fold["rows"].tolist())) == len(fold["rows"])
    rows = np.concatenate([np.load(work / "cv" / f"fold-{k}" / "oof.npz")["rows"] for k in (0, 1)])
    assert sorted(rows.tolist()) == list(range(80))

    # the app reads the exported crop geometry and band from the file's metadata
    from forensic_app.core.classification import GenderClassifier

    clf = GenderClassifier(out / "gender_effnet_b0.onnx")
    assert clf.spec.crop_margin == 0.5
    assert clf.spec.input_size == 64
    export = json.loads((out / "export.json").read_text())
    assert list(clf.spec.uncertain_band) == pytest.approx(export["uncertain_band"])

    # a chunk altered in transit is refused, not trained on
    victim = pack / chunks[0]["file"]
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0xFF
    victim.write_bytes(bytes(data))
    r = _training(dev_env, "gpu", "go", "--pack", str(pack), "--work", str(tmp_path / "w2"),
                  "--out", str(tmp_path / "OUT2"), "--folds", "0", "--no-final")  # fmt: skip
    assert r.returncode != 0 and "does not match pack.json" in r.stderr


def test_held_out_events_are_in_no_training_split(tmp_path: Path, monkeypatch) -> None:
    _need_shared()
    env = _tiny_tree(tmp_path)
    r = _training(env, "cache")
    assert r.returncode == 0, r.stderr[-2000:]
    from training import data as D

    monkeypatch.setattr(D, "WIDER_DIR", tmp_path / "shared" / "data" / "wider-gender")
    manifest = D.wider_manifest()
    for k in range(2):
        sp = D.load_splits(tmp_path / "cache", "whole", D.Holdout(k, 2))
        ev = {
            name: {S.event_of(manifest[i]["image_path"]) for i in sp[name].rows}
            for name in ("wider_train", "wider_val", "wider_test")
        }
        assert ev["wider_test"] and ev["wider_train"] and ev["wider_val"]
        assert not ev["wider_test"] & (ev["wider_train"] | ev["wider_val"])
        assert len(sp["wider_train"]) + len(sp["wider_val"]) + len(sp["wider_test"]) == 80


def test_reband_changes_only_the_band_and_the_app_reads_it(tmp_path: Path) -> None:
    """The shipped file's band set by the per-class target rule: weights untouched."""
    if not (SHARED / "data" / "wider-gender" / "manifest.csv").is_file():
        pytest.skip("../shared not present: wider-gender missing")
    onnx = pytest.importorskip("onnx")
    from forensic_app.core.classification import GenderClassifier
    from training import reband as RB

    src = REPO / "models" / "gender_effnet_b0.onnx"
    out = tmp_path / "rebanded.onnx"
    fit = RB.reband(src, out, "2026.12.test", target=0.9)
    assert (
        fit["met"] and fit["fit"]["accuracy_female"] >= 0.9 and fit["fit"]["accuracy_male"] >= 0.9
    )
    a, b = onnx.load(str(src)), onnx.load(str(out))
    assert a.graph.SerializeToString() == b.graph.SerializeToString()
    clf = GenderClassifier(out)
    assert list(clf.spec.uncertain_band) == fit["band"]
    assert clf.spec.version == "2026.12.test"
    prov = json.loads({p.key: p.value for p in b.metadata_props}["provenance"])
    assert prov["uncertain_band_rule"]["target_per_class"] == 0.9
    assert prov["uncertain_band_rule"]["previous_sha256"] != fit["sha256"]


def test_skin_ratio_counts_named_groups_of_30_faces_and_has_an_event_interval() -> None:
    """One owner for the fairness ratio (targets and cv --compare): "Not Sure" and groups with
    fewer than 30 faces do not count, and the target row gets an event-level interval, so a
    ratio just under 1.5 is not claimed when its interval reaches past it."""
    from training.cv import skin_error_ratio, summarize, targets

    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    skin = np.asarray(["I"] * 200 + ["VI"] * 150 + ["V"] * 20 + ["Not Sure"] * 30)
    wrong = np.zeros(n, bool)
    wrong[:20] = True  # group I: 10 % wrong
    wrong[200:230] = True  # group VI: 20 % wrong
    wrong[350:370] = True  # V (20 faces) and Not Sure: all wrong, and neither counts
    p = np.where(wrong, 1 - y, y).astype(float) * 0.8 + 0.1
    assert skin_error_ratio(y, p, skin, np.arange(n)) == pytest.approx(2.0)
    events = [f"e{i % 8}" for i in range(n)]
    s = summarize(y, p, events, np.full(n, 80.0), list(skin), ["Adult"] * n, 0.9)
    lo, hi = s["skin_ratio_ci95"]
    assert lo <= s["skin_ratio"] <= hi
    res = {"variants": {"flip": s}, "clean_faces": {"accuracy": 0.99}}
    row = next(t for t in targets(res) if "skin" in t["target"])
    assert row["value"] == pytest.approx(2.0) and row["ci95"] == [lo, hi] and row["met"] is False
