"""Unit checks of the three owners issue 17 added: core/names.py (showing and storing names),
core/ownership.py (marker + ledger) and the safe open in core/imaging.py."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from forensic_app.core import imaging, ownership
from forensic_app.core.case import Case
from forensic_app.core.names import decode_name, display, encode_name


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain name.jpg", "plain name.jpg"),
        ("évidence фото 照片.jpg", "évidence фото 照片.jpg"),  # printable text is kept
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("x\u202egpj.exe", "x\\u202egpj.exe"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("tab\tnew\nline", "tab\\x09new\\x0aline"),
        (os.fsdecode(b"caf\xe9"), "caf\\xe9"),
    ],
)
def test_display_escapes_only_unsafe_characters(raw, shown):
    assert display(raw) == shown
    assert display(shown) == shown  # escaping the escaped form changes nothing


def test_names_round_trip_through_json():
    for name in ("ok.jpg", "é.jpg", os.fsdecode(b"\xff\xfe.jpg"), "a\u202eb.jpg"):
        stored = json.loads(json.dumps(encode_name("path", name), ensure_ascii=False))
        assert decode_name(stored, "path") == name
    assert "path_b64" not in encode_name("path", "é.jpg")


@pytest.mark.skipif(os.name != "posix", reason="FIFOs and /dev are POSIX")
def test_open_regular_refuses_fifos_and_devices_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    signal.alarm(20)  # hang guard: an open that blocks fails the test instead of hanging it
    try:
        with pytest.raises(imaging.NotRegularFileError, match="FIFO"):
            imaging.open_regular(fifo)
        with pytest.raises(OSError, match="FIFO"):
            imaging.sha256_path(fifo)
        with pytest.raises(imaging.ImageLoadError, match="FIFO"):
            imaging.load_image(fifo)
        link = tmp_path / "zero.jpg"
        os.symlink("/dev/zero", link)
        with pytest.raises(imaging.ImageLoadError, match="device"):
            imaging.load_image(link)
    finally:
        signal.alarm(0)


def test_large_non_image_is_refused_from_its_header(tmp_path, monkeypatch):
    junk = tmp_path / "big.jpg"
    junk.write_bytes(b"\0" * (4 << 20))
    reads = []
    real = imaging.open_regular

    class Spy:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def read(self, n=-1):
            data = self.fh.read(n)
            reads.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self.fh, name)

    monkeypatch.setattr(imaging, "open_regular", lambda p, m=True: Spy(real(p, m)))
    with pytest.raises(imaging.ImageLoadError, match="not a recognised image format"):
        imaging.load_image(junk)
    assert sum(reads) < 1 << 16  # the header only, never the 4 MiB


def test_ledger_vouches_by_bytes_not_by_name(tmp_path):
    ownership.mark(tmp_path, ownership.KIND_OUTPUT)
    ours = tmp_path / "x.annotated.jpg"
    ours.write_bytes(b"written by the tool")
    ownership.record_file(tmp_path, ours)
    assert ownership.OwnedFolders().own_output_reason(str(ours))
    ours.write_bytes(b"evidence planted under the same name")
    assert ownership.OwnedFolders().own_output_reason(str(ours)) is None
    lookalike = tmp_path / "y.annotated.jpg"
    lookalike.write_bytes(b"never written by the tool")
    assert ownership.OwnedFolders().own_output_reason(str(lookalike)) is None


def test_case_folder_carries_the_marker_with_its_owned_folders(tmp_path):
    case = Case.create(tmp_path / "case", "Op")
    marker = ownership.read_marker(case.root)
    assert marker is not None and marker["kind"] == ownership.KIND_CASE
    assert {"annotated", "results", ".forensic_app"} <= set(marker["owned"])
    owned = ownership.OwnedFolders()
    assert owned.owned_folder_reason(str(case.root / "annotated"))
    assert owned.owned_folder_reason(str(case.root / "results" / "history"))
    assert owned.owned_folder_reason(str(case.root)) is None


def test_a_marker_of_another_shape_is_ignored(tmp_path):
    path = ownership.marker_path(tmp_path)
    path.parent.mkdir()
    path.write_text(json.dumps({"tool": "something-else", "owned": ["photos"]}))
    assert ownership.read_marker(tmp_path) is None
    assert Path(tmp_path).is_dir()
