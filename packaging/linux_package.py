"""Turn the PyInstaller onedir bundle into the Linux deliverables: a ``.tar.gz`` and a ``.deb``.

Run by ``packaging/build_linux.sh`` after PyInstaller (``python packaging/linux_package.py``).
Why Python and not shell: the control file, launcher and icon layout are small functions the
fast tests check without building anything, and the build record (``dist/build-linux.json``)
lets the slow test reuse a bundle built from the very same sources instead of building twice.

Layout of the .deb (what ``dpkg -i`` puts where)::

    /opt/forensic-app/                      the onedir bundle (forensic-app + _internal/)
    /usr/bin/forensic-app                   launcher script: exec /opt/forensic-app/forensic-app
    /usr/share/applications/forensic-app.desktop
    /usr/share/icons/hicolor/NxN/apps/forensic-app.png   (16 ... 512) + scalable/apps/*.svg
    /usr/share/doc/forensic-app/copyright   licences, including the bundled models'
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bundle  # noqa: E402

from forensic_app import resources  # noqa: E402

REPO = bundle.REPO
LINUX_DIR = REPO / "packaging" / "linux"
DESKTOP_FILE = LINUX_DIR / f"{bundle.APP_ID}.desktop"
LAUNCHER_FILE = LINUX_DIR / f"{bundle.APP_NAME}.sh"
INSTALL_PREFIX = f"/opt/{bundle.APP_NAME}"
BUILD_RECORD = "build-linux.json"
MAINTAINER = "forensic_app developers <dev@forensic-app.local>"


def deb_version(version: str) -> str:
    """PEP 440 -> Debian: pre-releases sort before the release (``1.0rc1`` -> ``1.0~rc1``)."""
    return re.sub(r"[.-]?(a|b|rc|dev)(\d*)", r"~\1\2", version)


def deb_architecture() -> str:
    if shutil.which("dpkg"):
        out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def glibc_version() -> str:
    """The build host's glibc: the bundle's Python and extensions need at least this one."""
    name, version = platform.libc_ver()
    return version if name == "glibc" and version else "2.28"


def depends(glibc: str | None = None) -> str:
    """The ``Depends`` field: every host library the bundle leaves out (bundle.HOST_LIBRARIES)."""
    parts = []
    for package in bundle.HOST_LIBRARIES:
        if package == "libc6":
            parts.append(f"libc6 (>= {glibc or glibc_version()})")
        else:
            parts.append(package)
    return ", ".join(parts)


def control_text(version: str, installed_kib: int, arch: str, glibc: str | None = None) -> str:
    """The DEBIAN/control file."""
    return (
        f"Package: {bundle.APP_NAME}\n"
        f"Version: {deb_version(version)}\n"
        f"Architecture: {arch}\n"
        f"Maintainer: {MAINTAINER}\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {depends(glibc)}\n"
        "Section: graphics\n"
        "Priority: optional\n"
        "Description: find faces in photos and estimate perceived gender\n"
        " A desktop tool for investigators: open a photo, find every face (CenterFace),\n"
        " estimate each face's perceived gender with a confidence and an uncertain band,\n"
        " correct the machine where it is wrong, and save annotated copies and reports.\n"
        " Runs offline on the CPU; the evidence file is never modified. Both models are\n"
        f" bundled under {INSTALL_PREFIX}/_internal/models with their model card.\n"
    )


def copyright_text() -> str:
    manifest = json.loads((REPO / "models" / "manifest.json").read_text(encoding="utf-8"))
    lines = [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
        f"Upstream-Name: {bundle.APP_NAME}",
        "",
        "Files: *",
        "Copyright: forensic_app developers",
        "License: proprietary",
        " Bundled third-party components (Qt/PySide6 under LGPLv3, onnxruntime under MIT,",
        " OpenCV under Apache-2.0, NumPy and Pillow under BSD-style licences, pi-heif under",
        " BSD-3-Clause with libheif/libde265 under LGPLv3; no HEVC encoder) keep their own",
        f" licences; their files are under {INSTALL_PREFIX}/_internal/.",
        "",
    ]
    for name, entry in manifest.items():
        lines += [
            f"Files: {INSTALL_PREFIX}/_internal/models/{name}",
            f"Comment: {entry.get('name', name)} ({entry.get('role', 'model')}); "
            f"source: {entry.get('source', 'see MODEL_CARD.md')}",
            f"License: {entry.get('license', 'see MODEL_CARD.md')}",
            "",
        ]
    return "\n".join(lines)


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link when possible (staging 400 MB twice would cost time and disk), else copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def stage_deb(onedir: Path, root: Path, version: str, arch: str) -> Path:
    """Lay out the .deb's file tree under ``root`` and write DEBIAN/control; returns ``root``."""
    if root.exists():
        shutil.rmtree(root)
    opt = root / INSTALL_PREFIX.lstrip("/")
    opt.parent.mkdir(parents=True)
    shutil.copytree(onedir, opt, symlinks=True, copy_function=_link_or_copy)

    usr = root / "usr"
    (usr / "bin").mkdir(parents=True)
    launcher = usr / "bin" / bundle.APP_NAME
    shutil.copyfile(LAUNCHER_FILE, launcher)
    launcher.chmod(0o755)

    apps = usr / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copyfile(DESKTOP_FILE, apps / f"{bundle.APP_ID}.desktop")

    hicolor = usr / "share" / "icons" / "hicolor"
    for size in resources.ICON_SIZES:
        target = hicolor / f"{size}x{size}" / "apps"
        target.mkdir(parents=True)
        shutil.copyfile(
            REPO / "resources" / resources.ICONS_SUBDIR / resources.icon_file_name(size),
            target / f"{bundle.APP_ID}.png",
        )
    scalable = hicolor / "scalable" / "apps"
    scalable.mkdir(parents=True)
    shutil.copyfile(REPO / "resources" / resources.ICON_SVG, scalable / f"{bundle.APP_ID}.svg")

    doc = usr / "share" / "doc" / bundle.APP_NAME
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(copyright_text(), encoding="utf-8")

    # Permissions dpkg and lintian expect, whatever the umask of the build machine.
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if os.access(path, os.X_OK) else 0o644)

    installed_kib = sum(p.lstat().st_size for p in root.rglob("*")) // 1024 + 1
    debian = root / "DEBIAN"
    debian.mkdir()
    (debian / "control").write_text(control_text(version, installed_kib, arch), encoding="utf-8")
    sums = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root)
        if rel.parts[0] != "DEBIAN":
            sums.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {rel.as_posix()}\n")
    (debian / "md5sums").write_text("".join(sums), encoding="utf-8")
    return root


def build_deb(root: Path, out: Path, level: int = 6) -> Path:
    """``dpkg-deb --build`` with root ownership (no fakeroot needed) and gzip compression."""
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        raise SystemExit("dpkg-deb not found: install dpkg (Debian/Ubuntu: it is always there)")
    out.unlink(missing_ok=True)
    subprocess.run(
        [dpkg_deb, "--root-owner-group", "-Zgzip", f"-z{level}", "--build", str(root), str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


def build_tarball(onedir: Path, out: Path, level: int = 6) -> Path:
    """``<name>.tar.gz`` holding the ``forensic-app/`` folder, owned by root, sorted, no mtimes
    beyond the files' own (so two builds of the same bundle differ only where files differ)."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    tmp = out.with_name(out.name + ".part")
    with tarfile.open(tmp, "w:gz", compresslevel=level) as tar:
        paths = sorted([onedir, *onedir.rglob("*")])
        for path in paths:
            arcname = Path(bundle.APP_NAME) / path.relative_to(onedir)
            tar.add(path, arcname=arcname.as_posix(), recursive=False, filter=clean)
    os.replace(tmp, out)
    return out


def source_fingerprint() -> str:
    """SHA-256 over everything that shapes the bundle: app code, packaging files, models,
    resources and the versions of the bundled libraries. Equal fingerprint = same bundle."""
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    roots = [REPO / "forensic_app", REPO / "packaging", REPO / "resources", REPO / "models"]
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                h.update(path.relative_to(REPO).as_posix().encode())
                h.update(hashlib.sha256(path.read_bytes()).digest())
    for dist in (
        "forensic-app",
        "PySide6-Essentials",
        "onnxruntime",
        "onnx",
        "numpy",
        "opencv-python-headless",
        "pillow",
        "pyinstaller",
    ):
        try:
            h.update(f"{dist}={version(dist)}".encode())
        except PackageNotFoundError:
            h.update(f"{dist}=absent".encode())
    return h.hexdigest()


def folder_size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="PyInstaller distpath")
    parser.add_argument(
        "--work", type=Path, default=REPO / "build" / "deb", help="staging folder for the .deb tree"
    )
    parser.add_argument("--no-deb", action="store_true", help="only the .tar.gz")
    parser.add_argument(
        "--compress-level",
        type=int,
        default=6,
        choices=range(1, 10),
        metavar="1-9",
        help="gzip level of both archives (default 6; the "
        "packaging tests use 1: about 20%% faster, 10%% larger)",
    )
    parser.add_argument(
        "--fingerprint",
        default=None,
        help="source fingerprint taken before PyInstaller ran (build_linux.sh)",
    )
    args = parser.parse_args(argv)

    onedir = args.dist / bundle.APP_NAME
    exe = onedir / bundle.APP_NAME
    if not exe.is_file():
        raise SystemExit(f"{exe} not found: run PyInstaller with packaging/forensic_app.spec")
    version = bundle.app_version()
    arch = deb_architecture()
    started = time.monotonic()
    # The two archives compress in parallel (zlib releases the GIL; dpkg-deb is a process):
    # on a 2-core CI machine that halves the packaging time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        tar_job = pool.submit(
            build_tarball,
            onedir,
            args.dist / f"{bundle.APP_NAME}-{version}-linux-{platform.machine()}.tar.gz",
            args.compress_level,
        )
        deb = None
        if not args.no_deb:
            root = stage_deb(
                onedir,
                args.work / f"{bundle.APP_NAME}_{deb_version(version)}_{arch}",
                version,
                arch,
            )
            deb = build_deb(root, args.dist / f"{root.name}.deb", args.compress_level)
            shutil.rmtree(root)
            print(f"wrote {deb} ({deb.stat().st_size / 1e6:.1f} MB)")
        tarball = tar_job.result()
    print(f"wrote {tarball} ({tarball.stat().st_size / 1e6:.1f} MB)")
    record = {
        "version": version,
        "fingerprint": args.fingerprint or source_fingerprint(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "onedir": str(onedir.relative_to(args.dist)),
        "onedir_bytes": folder_size(onedir),
        "tarball": tarball.name,
        "tarball_bytes": tarball.stat().st_size,
        "deb": deb.name if deb else None,
        "deb_bytes": deb.stat().st_size if deb else None,
        "compress_level": args.compress_level,
        "package_seconds": round(time.monotonic() - started, 1),
    }
    out = args.dist / BUILD_RECORD
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
