"""The Faces view at volume: time to first paint and memory for 10,000 faces (offscreen Qt).

    nice python bench/bench_face_grid.py                 # detect on dev-eval, print
    nice python bench/bench_face_grid.py --write         # and write bench/RESULTS-face-grid.md
    nice python bench/bench_face_grid.py --results r.json  # reuse (or save) the detections

The faces are real: the 60 dev-eval photos are analysed once with the real engine (default
settings), then repeated as a synthetic batch until it holds at least ``--faces`` faces. Each
repeat is a separate symlink in a temporary folder, so the thumbnail cache and the loader treat
it as a photo of its own (as in a batch of that many photos; the bytes, hashes and boxes are the
dev-eval ones). Measured in one run, in this order:

* building the face index (``core.face_index``) and its memory per face (tracemalloc);
* sorting/filtering the 10,000 faces (each sort order);
* time to first paint: ``set_index`` + ``show`` until the grid's viewport has painted once, and
  until every thumbnail on screen is decoded and shown;
* RSS of the process: before the grid, after the first screen, after jumping to 12 places in the
  list (waiting for their thumbnails each time) and after a fast fling through the whole list
  (one event-loop turn per page, as a held-down PgDown does); thumbnails made, photos decoded
  and cache size at each point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import DEV_EVAL, REPO, make_engine, rss_now_mb, rss_peak_mb  # noqa: E402

from forensic_app.core.face_index import SORTS, FaceIndex  # noqa: E402
from forensic_app.core.imaging import is_image_path  # noqa: E402
from forensic_app.core.results import ImageResult  # noqa: E402
from forensic_app.core.settings import AnalysisSettings  # noqa: E402

OUT = REPO / "bench" / "RESULTS-face-grid.md"


def detect(results_file: Path | None) -> tuple[list[ImageResult], str]:
    if results_file is not None and results_file.is_file():
        data = json.loads(results_file.read_text(encoding="utf-8"))
        return [ImageResult.from_dict(d) for d in data["images"]], data["model"]
    photos = sorted(str(p) for p in (DEV_EVAL / "images").rglob("*") if is_image_path(p))
    engine, which = make_engine()
    settings = AnalysisSettings()
    results = [engine.analyze_path(p, settings) for p in photos]
    failed = [r.path for r in results if r.error]
    assert not failed, failed
    if results_file is not None:
        results_file.write_text(
            json.dumps({"model": which, "images": [r.to_dict() for r in results]})
        )
    return results, which


def synthetic_batch(results: list[ImageResult], faces: int, folder: Path):
    """``(key, path, result)`` repeating the real photos (one symlink each) to ``faces``."""
    items, total, n = [], 0, 0
    while total < faces:
        for r in results:
            if total >= faces:
                break
            link = folder / f"{n:05d}_{Path(r.path).name}"
            link.symlink_to(os.path.abspath(r.path))
            items.append(
                (
                    ("row", n),
                    str(link),
                    ImageResult(
                        path=str(link),
                        sha256=r.sha256,
                        width=r.width,
                        height=r.height,
                        faces=list(r.faces),
                    ),
                )
            )
            total += len(r.faces)
            n += 1
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=10_000)
    parser.add_argument("--size", default="1280x800", help="grid widget size WxH")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--write", action="store_true")
    opts = parser.parse_args(argv)
    if not (DEV_EVAL / "images").is_dir():
        print(f"dev-eval photos not found: {DEV_EVAL}", file=sys.stderr)
        return 2

    results, which = detect(opts.results)
    real_faces = sum(len(r.faces) for r in results)
    real_photos = len(results)
    folder = Path(tempfile.mkdtemp(prefix="bench_face_grid_"))
    items = synthetic_batch(results, opts.faces, folder)
    del results

    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from forensic_app.gui.face_grid import FaceGridWidget

    rss_start = rss_now_mb()
    load_start = os.getloadavg()[0]
    tracemalloc.start()
    probe = FaceIndex.from_results(items)  # memory on its own (tracemalloc slows the build)
    index_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del probe
    t0 = time.perf_counter()
    index = FaceIndex.from_results(items)
    build_ms = (time.perf_counter() - t0) * 1000
    n = len(index)
    sort_ms = {}
    for key in SORTS:
        t = time.perf_counter()
        index.select(sort=key)
        sort_ms[key] = (time.perf_counter() - t) * 1000

    class PaintProbe(QObject):
        painted = 0

        def eventFilter(self, obj, event):  # noqa: N802 - Qt API
            if event.type() == QEvent.Type.Paint:
                self.painted += 1
            return False

    grid = FaceGridWidget()
    w, h = (int(v) for v in opts.size.lower().split("x"))
    grid.resize(w, h)
    probe = PaintProbe()
    grid.view.viewport().installEventFilter(probe)
    loader = grid.loader
    rss_before = rss_now_mb()

    t0 = time.perf_counter()
    grid.set_index(index, "bench")
    grid.show()
    while not probe.painted:
        app.processEvents()
    app.processEvents()
    first_paint_ms = (time.perf_counter() - t0) * 1000

    def visible() -> int:
        vp = grid.view.viewport().rect()
        first = grid.view.indexAt(vp.topLeft())
        rows = 0
        r = max(0, first.row())
        while r < grid.model.rowCount():
            if not grid.view.visualRect(grid.model.index(r, 0)).intersects(vp):
                break
            rows += 1
            r += 1
        return rows

    def settle(timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            app.processEvents()
            if loader.pending() == 0 and all(
                loader.cache.get(k) is not None for k in on_screen_keys()
            ):
                break
            time.sleep(0.005)
        for _ in range(5):
            app.processEvents()

    def on_screen_keys():
        from forensic_app.gui.thumbnails import thumb_key

        vp = grid.view.viewport().rect()
        first = max(0, grid.view.indexAt(vp.topLeft()).row())
        keys = []
        for r in range(first, min(first + visible(), grid.model.rowCount())):
            e = grid.model.entry(r)
            ref = index.photos[e.photo]
            keys.append(thumb_key(ref.path, ref.sha256, e.box))
        return keys

    settle()
    thumbs_ms = (time.perf_counter() - t0) * 1000
    screen = visible()
    first_screen = dict(thumbs=loader.thumbs_made, photos=loader.photos_decoded, rss=rss_now_mb())

    bar = grid.view.verticalScrollBar()
    t1 = time.perf_counter()
    for i in range(12):
        bar.setValue(int(bar.maximum() * (i + 1) / 12))
        settle()
    jumps_ms = (time.perf_counter() - t1) * 1000 / 12
    after_jumps = dict(
        thumbs=loader.thumbs_made,
        photos=loader.photos_decoded,
        cache=len(loader.cache),
        rss=rss_now_mb(),
    )

    bar.setValue(0)
    app.processEvents()
    pages = 0
    t2 = time.perf_counter()
    while bar.value() < bar.maximum():
        bar.setValue(bar.value() + bar.pageStep())
        app.processEvents()
        pages += 1
    fling_ms = (time.perf_counter() - t2) * 1000
    settle()
    after_fling = dict(
        thumbs=loader.thumbs_made,
        photos=loader.photos_decoded,
        cache=len(loader.cache),
        rss=rss_now_mb(),
    )
    peak = rss_peak_mb()
    loader.stop()
    grid.close()

    photos_n = len(index.photos)
    all_pixels = sum((r.width or 0) * (r.height or 0) * 3 for _, _, r in items)
    fs, aj, af = first_screen, after_jumps, after_fling
    rows = [
        (
            f"build the face index for {n:,} faces",
            f"{build_ms:.0f} ms, {index_bytes / 2**20:.1f} MiB "
            f"({index_bytes / n:.0f} bytes per face, photo refs included)",
        ),
        (
            f"sort {n:,} faces ({' / '.join(SORTS)})",
            " / ".join(f"{sort_ms[k]:.0f}" for k in SORTS) + " ms",
        ),
        (
            "**time to first paint** (set_index + show until the grid has painted)",
            f"**{first_paint_ms:.0f} ms**",
        ),
        (
            f"time until every thumbnail of the first screen ({screen} faces) is shown",
            f"{thumbs_ms:.0f} ms ({fs['photos']} photos decoded, {fs['thumbs']} thumbnails cut)",
        ),
        (
            "jump to another place in the list until its thumbnails show (mean of 12)",
            f"{jumps_ms:.0f} ms",
        ),
        (
            f"fast fling through all {n:,} faces ({pages} pages, one event-loop turn each)",
            f"{fling_ms:.0f} ms",
        ),
        (
            f"RSS before the grid (Qt, the results of {photos_n:,} photos, the index)",
            f"{rss_before:.0f} MB",
        ),
        ("RSS after the first screen", f"{fs['rss']:.0f} MB"),
        (
            f"RSS after 12 jumps ({aj['thumbs']} thumbnails cut from {aj['photos']} photo "
            f"decodes, {aj['cache']} cached)",
            f"{aj['rss']:.0f} MB",
        ),
        (
            f"RSS after the fling ({af['thumbs']} thumbnails in all, {af['photos']} decodes, "
            f"{af['cache']} cached)",
            f"{af['rss']:.0f} MB",
        ),
        ("peak RSS of the whole run", f"{peak:.0f} MB"),
    ]
    table = "\n".join(f"| {what} | {figure} |" for what, figure in rows)
    text = f"""# Faces view benchmark (bench/bench_face_grid.py)

Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} ({os.cpu_count()} CPUs shared
with other work: load average {load_start:.0f} at the start, {os.getloadavg()[0]:.0f} at the end, so
the times are upper bounds), Python {platform.python_version()}, Qt offscreen, grid {w}x{h} px.

**Data.** The {real_photos} dev-eval photos analysed once with the real engine (default
settings, gender model: {which}): {real_faces} detected faces. They are repeated as a
*synthetic* batch of {photos_n:,} photos (each repeat a symlink of its own, so the loader and
the cache treat it as a separate photo) holding **{n:,} faces**. Thumbnails are decoded from
the real photo files.

| what | figure |
| --- | --- |
{table}

Of {n:,} faces only those shown were ever cut ({af["thumbs"]:,}, from {af["photos"]:,} photo
decodes); the thumbnail cache is capped at {loader.cache.capacity} (96x96 RGB, about 27 KB
each) and the worker keeps at most {loader.photo_slots} decoded photos and
{loader.photo_bytes / 2**20:.0f} MiB of pixels, so memory does not follow the number of faces
(the {photos_n:,} photos decoded at once would take {all_pixels / 2**30:.1f} GiB). The fling
shows requests for faces scrolled past being dropped: far fewer thumbnails were cut than faces
passed. RSS was {rss_start:.0f} MB before the index was built.
"""
    print(text)
    if opts.write:
        OUT.write_text(text, encoding="utf-8")
        print(f"written: {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
