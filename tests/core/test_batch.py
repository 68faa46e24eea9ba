"""BatchRunner: statuses, progress/ETA, failures, cancel, bounded memory, store faults."""

from __future__ import annotations

import errno
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from fake_engine import FakeEngine, make_photo  # noqa: E402

from forensic_app.core.batch import (  # noqa: E402
    CANCELLED,
    DONE,
    ERROR,
    QUEUED,
    RUNNING,
    UNCHANGED,
    BatchRunner,
    settings_key,
    summarize,
)
from forensic_app.core.results import ImageResult  # noqa: E402
from forensic_app.core.settings import AnalysisSettings  # noqa: E402


@pytest.fixture
def folder(tmp_path):
    paths = []
    for i in range(6):
        color = [(200, 20, 20), (20, 20, 200), (90, 90, 90)][i % 3]
        paths.append(str(make_photo(tmp_path / f"p{i}.png", color=color)))
    return paths


def test_statuses_progress_and_results_in_order(folder):
    seen: dict[int, list[str]] = {}
    progress = []
    runner = BatchRunner(
        FakeEngine(),
        on_item=lambda it: seen.setdefault(it.index, []).append(it.status),
        on_progress=lambda p: progress.append((p.done, p.total, p.eta_s)),
    )
    outcome = runner.run(folder)
    assert outcome.all_ok and not outcome.cancelled
    assert [r.path for r in outcome.results] == folder
    assert all(seen[i] == [QUEUED, RUNNING, DONE] for i in range(6))
    assert [r.faces[0].gender for r in outcome.results] == ["male", "female", "uncertain"] * 2
    assert progress[0][:2] == (0, 6) and progress[-1][:2] == (6, 6)
    assert progress[-1][2] == 0.0  # ETA known once photos were analysed, and 0 at the end
    assert [it.message for it in outcome.items][:2] == ["1 face (1 male)", "1 face (1 female)"]


def test_one_bad_photo_never_stops_the_batch(folder, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    paths = folder[:2] + [str(tmp_path / "bad.png"), str(tmp_path / "missing.png")] + folder[2:]
    engine = FakeEngine(fail_on="p3")
    outcome = BatchRunner(engine).run(paths)
    status = {Path(it.path).name: it.status for it in outcome.items}
    assert (
        status["bad.png"] == ERROR and status["missing.png"] == ERROR and status["p3.png"] == ERROR
    )
    assert sum(s == DONE for s in status.values()) == 5
    by_name = {Path(r.path).name: r for r in outcome.results}
    assert "not found" in by_name["missing.png"].error
    assert "analysis failed" in by_name["p3.png"].error
    assert by_name["bad.png"].sha256 is not None  # the bad file's hash is still recorded
    s = summarize(outcome.items)
    assert (s.total, s.analysed, s.failed) == (8, 5, 3)


def test_pipelined_and_sequential_agree(folder):
    a = BatchRunner(FakeEngine(), pipelined=True).run(folder)
    b = BatchRunner(FakeEngine(), pipelined=False).run(folder)
    assert [r.to_dict() for r in a.results] == [r.to_dict() for r in b.results]


@pytest.mark.parametrize("pipelined", [True, False])
def test_cancel_stops_soon_and_joins_threads(folder, pipelined):
    before = threading.active_count()
    runner = BatchRunner(FakeEngine(delay_s=0.05), pipelined=pipelined)

    def on_item(item):
        if item.status == DONE and item.index == 1:
            runner.cancel()

    runner._on_item = on_item
    outcome = runner.run(folder * 3)
    assert outcome.cancelled and not outcome.all_ok
    statuses = [it.status for it in outcome.items]
    assert statuses[:2] == [DONE, DONE]
    assert statuses.count(CANCELLED) >= 12  # stopped long before the end
    assert all(s in (DONE, CANCELLED) for s in statuses)
    time.sleep(0.05)
    assert threading.active_count() == before


def _counted_images(side: int) -> tuple[type, dict[str, int]]:
    """A loader of side x side fake photos that counts how many are alive (now and at most)."""
    live = {"now": 0, "max": 0}
    lock = threading.Lock()

    class Img:
        def __init__(self, path):
            self.path, self.sha256, self.notes = path, "0" * 64, []
            self.width = self.height = side
            self.rgb = np.full((side, side, 3), 200, np.uint8)
            with lock:
                live["now"] += 1
                live["max"] = max(live["max"], live["now"])

            def gone():
                with lock:
                    live["now"] -= 1

            weakref.finalize(self, gone)

    return Img, live


def test_decoded_images_are_bounded_in_memory(tmp_path):
    """Only a few decoded photos are alive at once, whatever the batch size."""
    Img, live = _counted_images(32)
    runner = BatchRunner(FakeEngine(delay_s=0.002), loader=Img, prefetch=2)
    outcome = runner.run([f"photo{i}.jpg" for i in range(60)])
    assert outcome.all_ok and len(outcome.results) == 60
    # at most: 2 queued + 1 waiting to be queued + 1 in inference + 1 queued to finish + 1
    # being written
    assert live["max"] <= 6, live


@pytest.mark.parametrize("workers", [1, 2])
def test_big_photos_are_held_within_the_pixel_budget(workers):
    """The decoder waits for room: big photos never pile up in the pipeline (issue 16)."""
    side = 1000  # 1 megapixel each; the budget below holds two
    Img, live = _counted_images(side)

    runner = BatchRunner(
        FakeEngine(delay_s=0.01),
        loader=Img,
        prefetch=4,
        workers=workers,
        max_pixels_in_flight=2 * side * side,
    )
    outcome = runner.run([f"photo{i}.jpg" for i in range(30)])
    assert outcome.all_ok and len(outcome.results) == 30
    # the budget, plus at most the one photo the decoder took on while just under it
    assert runner.peak_pixels_in_flight <= 3 * side * side, runner.peak_pixels_in_flight
    assert live["max"] <= 3, live
    assert runner.pixels_in_flight == 0  # every photo's pixels were given back
    # without the budget the same run holds more: the test can fail
    loose = BatchRunner(FakeEngine(delay_s=0.01), loader=Img, prefetch=4, workers=workers)
    live["max"] = 0
    loose.run([f"photo{i}.jpg" for i in range(30)])
    assert loose.peak_pixels_in_flight > 3 * side * side


class FlakyStore:
    """A store whose disk fills up on the third save."""

    def __init__(self):
        self.saved = []

    def wants_lookup(self):
        return False

    def lookup(self, path, sha):  # pragma: no cover - wants_lookup is False
        return None

    def save(self, item, result, image):
        if len(self.saved) == 2:
            self.saved.append(None)
            raise OSError(errno.ENOSPC, "No space left on device")
        self.saved.append(item.path)


def test_store_failure_fails_that_photo_only(folder):
    store = FlakyStore()
    outcome = BatchRunner(FakeEngine(), store=store).run(folder)
    statuses = [it.status for it in outcome.items]
    assert statuses == [DONE, DONE, ERROR, DONE, DONE, DONE]
    assert "No space left" in outcome.items[2].message
    assert outcome.items[2].result.faces  # the analysis itself is kept in memory


def test_broken_callback_does_not_stop_the_batch(folder):
    def boom(item):
        raise ValueError("listener bug")

    outcome = BatchRunner(FakeEngine(), on_item=boom, on_progress=boom).run(folder)
    assert outcome.all_ok and len(outcome.results) == 6


def test_preset_errors_and_resume_lookup(folder):
    class Store(FlakyStore):
        def wants_lookup(self):
            return True

        def lookup(self, path, sha):
            if path.endswith("p0.png"):
                return ImageResult(path="old", sha256=sha, faces=[])
            return None

        def save(self, item, result, image):
            self.saved.append(item.path)

    engine = FakeEngine()
    store = Store()
    outcome = BatchRunner(engine, store=store).run(
        folder[:3], preset_errors={folder[2]: "folder cannot be listed"}
    )
    assert [it.status for it in outcome.items] == [UNCHANGED, DONE, ERROR]
    assert outcome.items[0].result.path == folder[0]  # path as given, not the stored one
    assert engine.calls == [folder[1]]
    assert outcome.items[2].message == "folder cannot be listed"
    assert store.saved == folder[1:3]  # a skipped photo is not saved again


def test_resuming_reads_and_hashes_each_photo_once(folder, monkeypatch):
    """The resume check and the decode share one read: no second read or hash of the file."""
    import hashlib

    from forensic_app.core import imaging

    reads: list[str] = []
    real_read = imaging._read_bytes
    monkeypatch.setattr(imaging, "_read_bytes", lambda p: reads.append(str(p)) or real_read(p))
    monkeypatch.setattr(imaging, "sha256_path", lambda p: pytest.fail("file hashed twice"))
    looked_up: dict[str, str] = {}

    class Store(FlakyStore):
        def wants_lookup(self):
            return True

        def lookup(self, path, sha):
            looked_up[path] = sha
            return ImageResult(path=path, sha256=sha, faces=[]) if path == folder[0] else None

        def save(self, item, result, image):
            self.saved.append(item.path)

    engine = FakeEngine()
    outcome = BatchRunner(engine, store=Store()).run(folder[:3])
    assert [it.status for it in outcome.items] == [UNCHANGED, DONE, DONE]
    assert sorted(reads) == sorted(folder[:3])  # one read per photo, skipped one included
    for path in folder[:3]:
        assert looked_up[path] == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert [r.sha256 for r in outcome.results[1:]] == [looked_up[p] for p in folder[1:3]]


def test_settings_key_tracks_settings_and_models():
    e = FakeEngine()
    k = settings_key(AnalysisSettings(), e.models)
    assert k == settings_key(AnalysisSettings(), list(reversed(e.models)))
    assert k != settings_key(AnalysisSettings(det_threshold=0.6), e.models)
    e2 = FakeEngine()
    e2.models[1].sha256 = "f" * 64
    assert k != settings_key(AnalysisSettings(), e2.models)


def test_several_workers_give_the_same_results_in_order(folder):
    engine = FakeEngine(delay_s=0.01)
    one = BatchRunner(FakeEngine()).run(folder * 2)
    two = BatchRunner(engine, workers=3).run(folder * 2)
    assert [r.to_dict() for r in two.results] == [r.to_dict() for r in one.results]
    assert sorted(engine.calls) == sorted(folder * 2)


def test_recommended_parallelism():
    from forensic_app.core.batch import recommended_parallelism

    assert recommended_parallelism(1, cores=4) == (None, 1)  # one photo: all cores per call
    assert recommended_parallelism(50, cores=4) == (1, 4)  # a batch: a photo per core
    assert recommended_parallelism(50, cores=1) == (None, 1)
    assert recommended_parallelism(50, cores=4, threads=2) == (2, 1)
    assert recommended_parallelism(50, cores=4, workers=2) == (2, 2)
