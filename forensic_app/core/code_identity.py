"""Which code is running: a fingerprint of the installed ``forensic_app`` sources.

Why: the version string comes from the package metadata and stays the same across every commit
of a release (and is a fixed fallback in a source tree that was never installed), so two lab
machines with different checkouts would both say "0.1.0". A cluster case must not mix results
of different code, so workers compare this fingerprint with the client's as well as the version
(docs/adr/0010-lab-scale-on-dask.md).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import forensic_app

#: Files whose bytes are the behaviour: the Python sources. Compiled caches and resources are
#: not hashed (caches differ between interpreters; models are checked by their own SHA-256).
SOURCE_GLOB = "*.py"


def sources_fingerprint(root: Path) -> str | None:
    """SHA-256 over every source file under ``root`` (relative name and bytes, in name order).

    None when there are no source files to hash (a frozen bundle keeps them in an archive):
    then only the version can be compared, and the cluster check says so on the terminal.
    """
    files = sorted(
        (p.relative_to(root).as_posix(), p) for p in root.rglob(SOURCE_GLOB) if p.is_file()
    )
    if not files:
        return None
    digest = hashlib.sha256()
    for rel, path in files:  # ordered by the posix name: the same order on every system
        name = rel.encode("utf-8", "surrogateescape")
        # Line endings normalised: Git for Windows checks sources out with CRLF, and a Windows
        # client with Linux workers from the same commit runs the same code.
        data = path.read_bytes().replace(b"\r\n", b"\n")
        # Length-prefixed, so no two different trees can produce the same byte stream.
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def code_sha256() -> str | None:
    """The running package's fingerprint, computed once per process (about 1 MB of sources)."""
    return sources_fingerprint(Path(forensic_app.__file__).resolve().parent)
