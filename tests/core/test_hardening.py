"""Hardening: a generated corpus of bad and odd inputs through the batch, the case and report.

Every file gets either a clear per-photo error or a correct result; none stops the batch. The
fast run uses the fake engine (real loader, real case folder, real report); the slow run sends
the same corpus through the real models.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from fake_engine import FakeEngine  # noqa: E402

from forensic_app.cli import main  # noqa: E402
from forensic_app.core.audit import read_audit  # noqa: E402

RED = (210, 20, 20)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but carries almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _rgb(w=64, h=48, color=RED) -> Image.Image:
    return Image.new("RGB", (w, h), color)


def build_corpus(root: Path) -> dict[str, dict]:
    """Write the corpus under ``root``; returns {relative path: expectation}."""
    root.mkdir(parents=True, exist_ok=True)
    exp: dict[str, dict] = {}

    def put(name: str, data: bytes, **expect) -> Path:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        exp[name] = expect
        return p

    jpeg = _save(_rgb(), "JPEG", quality=90)
    png = _save(_rgb(), "PNG")
    put("zero_bytes.jpg", b"", error="empty")
    put("truncated.jpg", jpeg[: len(jpeg) // 2], error="")
    put("truncated.png", png[: len(png) // 2], error="")
    put("text_renamed.jpg", b"these are notes, not a photo\n" * 20, error="not a recognised")
    put("png_named.jpg", png, size=(64, 48), gender="male")
    put("bomb.png", _png_header_only(50_000, 50_000), error="decompression bomb")
    put("one_pixel.png", _save(_rgb(1, 1), "PNG"), size=(1, 1), faces=0)
    gray16 = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    put("gray16.png", _save(Image.fromarray(gray16), "PNG"), size=(64, 48), note="16-bit")
    put(
        "cmyk.jpg",
        _save(Image.new("CMYK", (64, 48), (0, 230, 230, 0)), "JPEG"),
        size=(64, 48),
        note="CMYK",
        gender="male",
    )
    put(
        "palette.png",
        _save(_rgb().convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        size=(64, 48),
        gender="male",
    )
    rgba = Image.new("RGBA", (64, 48), (20, 20, 210, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 8, 8))
    put("alpha.png", _save(rgba, "PNG"), size=(64, 48), note="transparent", gender="female")
    frames = [_rgb(color=c) for c in (RED, (20, 20, 210), (90, 90, 90))]
    put(
        "animated.gif",
        _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
        size=(64, 48),
        note="only the first",
    )
    put(
        "multipage.tif",
        _save(frames[1], "TIFF", save_all=True, append_images=frames[:1]),
        size=(64, 48),
        note="only the first",
        gender="female",
    )
    for n in range(1, 9):
        im = _rgb(60, 40)
        exif = im.getexif()
        exif[0x0112] = n
        size = (40, 60) if n >= 5 else (60, 40)
        put(f"exif/orientation_{n}.jpg", _save(im, "JPEG", exif=exif.tobytes()), size=size)
    put("non-ascii/évidence фото 照片 ñ.jpg", jpeg, size=(64, 48), gender="male")
    long_dir = "/".join(["d" * 120] * 6)
    put(f"{long_dir}/{'f' * 200}.jpg", jpeg, size=(64, 48))
    (root / "links").mkdir()
    outside = root.parent / "outside_corpus.png"
    outside.write_bytes(_save(_rgb(30, 20, (20, 20, 210)), "PNG"))
    os.symlink(outside, root / "links" / "link_to_photo.jpg")  # analysed under the link's path
    exp["links/link_to_photo.jpg"] = {"size": (30, 20), "gender": "female"}
    os.symlink(root / "png_named.jpg", root / "links" / "same_file_again.jpg")  # listed once
    os.symlink(root / "nowhere.jpg", root / "links" / "broken_link.jpg")
    exp["links/broken_link.jpg"] = {"error": "not found"}
    os.symlink(root, root / "links" / "loop")  # a folder link back up: never followed
    return exp


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "corpus"
    return root, build_corpus(root)


def _check(results: dict[str, dict], expectations: dict[str, dict], real: bool = False) -> None:
    assert set(results) == set(expectations), set(results) ^ set(expectations)
    for name, exp in expectations.items():
        r = results[name]
        if "error" in exp:
            assert r["error"], f"{name}: expected an error, got {r}"
            assert exp["error"].lower() in r["error"].lower(), (name, r["error"])
            continue
        assert r["error"] is None, f"{name}: {r['error']}"
        if "size" in exp:
            assert (r["width"], r["height"]) == exp["size"], name
        if "note" in exp:
            assert any(exp["note"] in n for n in r["notes"]), (name, r["notes"])
        if not real:
            if "faces" in exp:
                assert len(r["faces"]) == exp["faces"], name
            if "gender" in exp:
                assert r["faces"][0]["gender"] == exp["gender"], name


def _run(argv, engine=None):
    out, err = io.StringIO(), io.StringIO()
    factory = (lambda a: engine) if engine is not None else None
    rc = main(argv, engine_factory=factory, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def test_corpus_through_analyze_batch_and_report(corpus, tmp_path):
    root, expectations = corpus
    rc, _, err = _run(
        [
            "analyze",
            str(root),
            "-r",
            "--out",
            str(tmp_path / "out"),
            "--json",
            str(tmp_path / "doc.json"),
            "--quiet",
        ],
        FakeEngine(),
    )
    assert rc == 1  # some files fail, each with a reason
    doc = json.loads((tmp_path / "doc.json").read_text(encoding="utf-8"))
    results = {os.path.relpath(i["path"], root): i for i in doc["images"]}
    _check(results, expectations)
    # annotated copies exist for every analysed photo, including the odd paths
    ok = [n for n, e in expectations.items() if "error" not in e]
    written = list((tmp_path / "out").rglob("*.annotated.*"))
    assert len(written) == len(ok)
    # the same corpus into a case and a report
    rc, _, _ = _run(
        ["batch", str(root), "-r", "--case", str(tmp_path / "case"), "--quiet"], FakeEngine()
    )
    assert rc == 1
    rc, _, err = _run(["report", "--case", str(tmp_path / "case")])
    assert rc == 0, err
    html = (tmp_path / "case" / "report.html").read_text(encoding="utf-8")
    assert "decompression bomb" in html and "orientation_8.jpg" in html
    assert read_audit(tmp_path / "case" / "audit.jsonl").ok


@pytest.mark.slow
def test_corpus_through_the_real_engine(corpus, tmp_path, models_dir, tiny_gender_model):
    if not (models_dir / "centerface.onnx").is_file():
        pytest.skip("models/centerface.onnx missing")
    root, expectations = corpus
    rc, out, err = _run(
        [
            "analyze",
            str(root),
            "-r",
            "--json",
            "-",
            "--quiet",
            "--gender-model",
            str(tiny_gender_model),
        ]
    )
    assert rc == 1, err
    results = {os.path.relpath(i["path"], root): i for i in json.loads(out)["images"]}
    _check(results, expectations, real=True)


def test_unreadable_file_gets_a_clear_error(tmp_path):
    p = tmp_path / "locked.jpg"
    p.write_bytes(_save(_rgb(), "JPEG"))
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip(
                "running as root (or with CAP_DAC_OVERRIDE): chmod 000 files stay "
                "readable, so the permission error cannot be produced here"
            )
        rc, out, _ = _run(["analyze", str(p), "--json", "-"], FakeEngine())
        assert rc == 1
        assert "permission" in json.loads(out)["images"][0]["error"]
    finally:
        p.chmod(0o644)


def test_unlistable_folder_is_reported_not_skipped(tmp_path):
    d = tmp_path / "ev" / "sealed"
    d.mkdir(parents=True)
    (tmp_path / "ev" / "a.jpg").write_bytes(_save(_rgb(), "JPEG"))
    d.chmod(0)
    try:
        if os.access(d, os.R_OK):
            pytest.skip("running as root: a chmod 000 folder stays listable")
        rc, out, _ = _run(["analyze", str(tmp_path / "ev"), "-r", "--json", "-"], FakeEngine())
        assert rc == 1
        errors = [i for i in json.loads(out)["images"] if i["error"]]
        assert len(errors) == 1 and "cannot be listed" in errors[0]["error"]
    finally:
        d.chmod(0o755)
