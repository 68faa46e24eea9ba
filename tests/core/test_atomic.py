"""Atomic writes keep the previous file on failure; inputs are never overwritten."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forensic_app.core import atomic
from forensic_app.core.atomic import (
    ProtectedFileError,
    refuse_overwrite_of,
    write_bytes_atomic,
    write_text_atomic,
)


def test_write_and_replace(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_text_atomic(target, "first ✓")
    assert target.read_text(encoding="utf-8") == "first ✓"
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failed_write_keeps_previous_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    target.write_text("previous")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "new")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_refuse_overwrite_catches_aliases(tmp_path: Path) -> None:
    src = tmp_path / "a" / "photo.jpg"
    src.parent.mkdir()
    src.write_bytes(b"evidence")
    refuse_overwrite_of(tmp_path / "a" / "photo_annotated.jpg", [src])  # a new name is fine
    with pytest.raises(ProtectedFileError):
        refuse_overwrite_of(tmp_path / "a" / "." / "photo.jpg", [src])
    link = tmp_path / "link.jpg"
    try:
        os.symlink(src, link)
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not available")
    with pytest.raises(ProtectedFileError):
        refuse_overwrite_of(link, [str(src)])
    assert src.read_bytes() == b"evidence"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_permissions_are_those_of_a_normal_write(tmp_path: Path) -> None:
    new = tmp_path / "new.png"
    write_bytes_atomic(new, b"x")
    plain = tmp_path / "plain.png"
    plain.write_bytes(b"x")
    assert new.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    existing = tmp_path / "kept.json"
    existing.write_text("old")
    existing.chmod(0o640)
    write_text_atomic(existing, "new")
    assert existing.stat().st_mode & 0o777 == 0o640
