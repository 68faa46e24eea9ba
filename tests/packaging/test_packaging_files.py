"""Fast checks of the packaging sources, without building: the spec, what it keeps out, the
Linux .deb pieces (control, launcher, .desktop), the Windows Inno Setup script and the
onnxruntime DLL runtime hook."""

from __future__ import annotations

import ast
import configparser
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forensic_app import __version__, resources

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
SPEC = PACKAGING / "forensic_app.spec"
HOOK = PACKAGING / "hooks" / "rthook_onnxruntime_dlls.py"
ISS = PACKAGING / "windows" / "forensic_app.iss"


# --- the spec and what goes into the bundle -------------------------------------------------


def test_spec_is_valid_python_wired_to_the_shared_config() -> None:
    source = SPEC.read_text(encoding="utf-8")
    compile(source, str(SPEC), "exec")
    assert "import bundle" in source
    assert "bundle.EXCLUDES" in source and "bundle.model_datas()" in source
    assert "bundle.resource_datas()" in source and 'copy_metadata("forensic-app")' in source
    assert "rthook_onnxruntime_dlls.py" in source and HOOK.is_file()
    assert "COLLECT(" in source  # onedir, not onefile
    assert re.search(r"_exe\(bundle\.APP_NAME, console=False\)", source)  # windowed
    assert (PACKAGING / "entry.py").is_file()


def test_excludes_cover_training_and_unused_qt(bundle) -> None:
    for name in ("torch", "torchvision", "timm", "training", "tkinter"):
        assert name in bundle.EXCLUDES
    for qt in ("QtWebEngineCore", "Qt3DCore", "QtQuick", "QtQml", "QtMultimedia", "QtNetwork"):
        assert f"PySide6.{qt}" in bundle.EXCLUDES
    # The GPL-2.0 x265 encoder travels with pillow-heif's wheel: the app decodes with pi-heif.
    assert "pillow_heif" in bundle.EXCLUDES and "_pillow_heif" in bundle.EXCLUDES
    spec = (REPO / "packaging" / "forensic_app.spec").read_text(encoding="utf-8")
    assert '"pi_heif", "_pi_heif"' in spec


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_app_imports_nothing_the_bundle_leaves_out(bundle) -> None:
    """An excluded module the app imports would only fail in the installed app."""
    offenders = []
    for path in sorted((REPO / "forensic_app").rglob("*.py")):
        for name in _imported_modules(path):
            for excluded in bundle.EXCLUDES:
                if name == excluded or name.startswith(excluded + "."):
                    offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_model_datas_bundle_every_manifest_model(bundle, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.json").write_text(
        '{"a.onnx": {"sha256": "0"}, "b.onnx": {"sha256": "1"}}', encoding="utf-8"
    )
    (models / "a.onnx").write_bytes(b"a")
    (models / "MODEL_CARD.md").write_text("card", encoding="utf-8")
    with pytest.raises(SystemExit, match="missing from .*: b.onnx, req.onnx"):
        bundle.model_datas(models, required=("a.onnx", "req.onnx"))
    (models / "b.onnx").write_bytes(b"b")
    (models / "b.onnx.data").write_bytes(b"external weights")
    (models / "req.onnx").write_bytes(b"a model the app needs, not (yet) in the manifest")
    (models / "notes.txt").write_text("not shipped", encoding="utf-8")
    got = {
        Path(src).name: dest
        for src, dest in bundle.model_datas(models, required=("a.onnx", "req.onnx"))
    }
    assert got == {
        "manifest.json": "models",
        "a.onnx": "models",
        "b.onnx": "models",
        "b.onnx.data": "models",
        "req.onnx": "models",
        "MODEL_CARD.md": "models",
    }


def test_both_app_models_are_required(bundle) -> None:
    from forensic_app.core.modelstore import CENTERFACE_FILE, GENDER_FILE

    assert set(bundle.REQUIRED_MODELS) == {CENTERFACE_FILE, GENDER_FILE}


def test_resource_datas_mirror_the_icon_set(bundle) -> None:
    pairs = bundle.resource_datas()
    names = {(Path(src).name, dest) for src, dest in pairs}
    assert ("icon.ico", "resources") in names and ("icon.svg", "resources") in names
    for size in resources.ICON_SIZES:
        assert (resources.icon_file_name(size), "resources/icons") in names


@pytest.mark.parametrize(
    "dest",
    [
        "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
        "PySide6/Qt/plugins/platforms/libqeglfs.so",
        "PySide6/Qt/plugins/imageformats/libqpdf.so",
        "PySide6/Qt/lib/libQt6Quick.so.6",
        "PySide6/Qt/lib/libQt6Qml.so.6",
        "PySide6/Qt/lib/libQt6EglFsKmsSupport.so.6",
        "PySide6/Qt/qml/QtQuick/Controls/qmldir",
    ],
)
def test_unused_qt_parts_are_dropped(bundle, dest: str) -> None:
    assert bundle.is_dropped(dest)


@pytest.mark.parametrize(
    "dest",
    [
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqwayland.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "PySide6/Qt/plugins/imageformats/libqjpeg.so",
        "PySide6/Qt/plugins/imageformats/libqtiff.so",
        "PySide6/Qt/plugins/imageformats/libqwebp.so",
        "PySide6/Qt/lib/libQt6Widgets.so.6",
        "PySide6/Qt/lib/libQt6Svg.so.6",
        "libpython3.11.so.1.0",
        "libssl.so.3",
        "pillow.libs/libxcb-9065bb12.so.1.1.0",
        "libXau-154567c4.so.6.0.0",
        "onnxruntime/capi/libonnxruntime.so.1.31.1",
        "_pi_heif.cpython-311-x86_64-linux-gnu.so",  # HEIC/HEIF (iPhone photos), decode-only
        "pi_heif.libs/libheif-7a3e919c.so.1.23.0",
        "pi_heif.libs/libde265-90fb0ce1.so.0.2.0",
    ],
)
def test_needed_parts_are_kept(bundle, dest: str) -> None:
    assert not bundle.is_dropped(dest)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="host libraries are Linux-only")
def test_every_host_library_left_out_is_a_declared_dependency(bundle) -> None:
    """What the bundle leaves to the host must be what the .deb Depends on, and back."""
    for soname in bundle.HOST_SONAMES:
        if soname.startswith(
            (
                "libc.",
                "libm.",
                "libdl.",
                "libpthread.",
                "librt.",
                "libresolv.",
                "libutil.",
                "ld-linux",
                "libGL.",
                "libEGL.",
            )
        ):
            continue  # PyInstaller never bundles glibc or the GL driver
        assert bundle.is_dropped(soname), soname
    for kept in ("libssl.so.3", "libcrypto.so.3", "libpython3.11.so.1.0", "libuuid.so.1"):
        assert kept not in bundle.HOST_SONAMES and not bundle.is_dropped(kept)


def test_elf_reader_lists_needed_libraries(bundle, tmp_path: Path) -> None:
    import numpy.linalg._umath_linalg as umath_linalg

    needed = bundle.elf_needed(Path(umath_linalg.__file__))
    if sys.platform.startswith("linux"):
        assert needed and "libc.so.6" in needed
    (tmp_path / "x.so").write_bytes(b"not an elf file")
    assert bundle.elf_needed(tmp_path / "x.so") is None


def test_prune_drops_libraries_only_dropped_files_needed(bundle, tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("pruning is Linux-only")
    import numpy.linalg._umath_linalg as umath_linalg

    ext = Path(umath_linalg.__file__)
    plain = tmp_path / "libnotelf.so.1"
    plain.write_bytes(b"x")
    toc = [
        ("numpy/linalg/_umath_linalg.so", str(ext), "EXTENSION"),
        ("libnotelf.so.1", str(plain), "BINARY"),
        ("libpython3.11.so.1.0", str(plain), "BINARY"),
    ]
    kept = [dest for dest, _src, _kind in bundle.prune_unneeded(toc)]
    assert kept == ["numpy/linalg/_umath_linalg.so", "libpython3.11.so.1.0"]


def test_version_comes_from_the_package(bundle) -> None:
    assert bundle.app_version() == __version__


# --- Linux: .deb pieces and the build script ------------------------------------------------


def test_build_script_is_valid_bash_and_executable() -> None:
    script = PACKAGING / "build_linux.sh"
    assert os.access(script, os.X_OK)
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = script.read_text(encoding="utf-8")
    assert "packaging/forensic_app.spec" in text and "linux_package.py" in text


def test_launcher_execs_the_bundle_under_opt(linux_package) -> None:
    launcher = linux_package.LAUNCHER_FILE
    assert os.access(launcher, os.X_OK)
    lines = launcher.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#!/bin/sh"
    assert 'exec /opt/forensic-app/forensic-app "$@"' in lines


def _desktop_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_fields(linux_package, bundle) -> None:
    entry = _desktop_entry(linux_package.DESKTOP_FILE)
    assert entry["Type"] == "Application"
    assert entry["Name"] == bundle.APP_DISPLAY_NAME
    assert entry["Exec"].split()[0] == bundle.APP_NAME  # the /usr/bin launcher
    assert entry["Icon"] == bundle.APP_ID  # hicolor name, no path, no extension
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";") and "Graphics" in entry["Categories"]
    assert "image/jpeg" in entry["MimeType"]
    assert "perceived gender" in entry["Comment"]
    # X11 WM_CLASS is Qt's applicationName: docks match the window to this entry through it.
    from forensic_app.gui.app import APPLICATION

    assert entry["StartupWMClass"] == APPLICATION


def test_desktop_entry_validates(linux_package) -> None:
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("desktop-file-validate not installed (Debian: desktop-file-utils)")
    proc = subprocess.run(
        [validator, str(linux_package.DESKTOP_FILE)], capture_output=True, text=True
    )
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "pep440, debian",
    [
        ("0.1.0", "0.1.0"),
        ("1.0rc1", "1.0~rc1"),
        ("2.3.0.dev4", "2.3.0~dev4"),
        ("1.2b3", "1.2~b3"),
    ],
)
def test_deb_version(linux_package, pep440: str, debian: str) -> None:
    assert linux_package.deb_version(pep440) == debian


def test_control_file(linux_package, bundle) -> None:
    text = linux_package.control_text("1.2.0", 123456, "amd64", glibc="2.36")
    fields = dict(line.split(": ", 1) for line in text.splitlines() if not line.startswith(" "))
    assert fields["Package"] == bundle.APP_NAME
    assert fields["Version"] == "1.2.0" and fields["Architecture"] == "amd64"
    assert fields["Installed-Size"] == "123456"
    depends = [d.strip() for d in fields["Depends"].split(",")]
    assert "libc6 (>= 2.36)" in depends
    for lib in (
        "libxcb-cursor0",
        "libxkbcommon-x11-0",
        "libegl1",
        "libgl1",
        "libfontconfig1",
        "libdbus-1-3",
        "libxcb-icccm4",
        "libxcb-keysyms1",
        "libxcb-image0",
        "libxcb-render-util0",
        "libxcb-randr0",
        "libxcb-shape0",
        "libxcb-xkb1",
    ):
        assert lib in depends
    assert text.endswith("\n") and "perceived gender" in fields["Description"]
    continuation = [line for line in text.splitlines() if line.startswith(" ")]
    assert continuation and all(len(line) <= 80 for line in continuation)


# --- Windows: Inno Setup script and the onnxruntime DLL hook --------------------------------


def test_inno_setup_script(bundle) -> None:
    text = ISS.read_text(encoding="utf-8")
    assert re.search(
        r"^AppId=\{\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}$", text, re.M
    ), "AppId must be a fixed GUID"
    assert f'#define AppExeName "{bundle.APP_NAME}.exe"' in text
    assert f'#define AppCliExeName "{bundle.CLI_EXE_NAME}.exe"' in text
    assert '#define BundleDir "..\\..\\dist\\forensic-app"' in text
    assert re.search(
        r'^Name: "\{group\}\\\{#AppName\}"; Filename: "\{app\}\\\{#AppExeName\}"', text, re.M
    ), "Start-menu shortcut"
    assert 'Filename: "{uninstallexe}"' in text
    assert "recursesubdirs" in text
    icon = re.search(r"^SetupIconFile=(.+)$", text, re.M)
    assert icon and (ISS.parent / icon.group(1).replace("\\", "/")).resolve().is_file()


def test_windows_build_doc_runs_the_shared_spec() -> None:
    doc = (PACKAGING / "windows" / "BUILD.md").read_text(encoding="utf-8")
    assert "packaging\\forensic_app.spec" in doc and "ISCC.exe" in doc
    assert "onnxruntime_providers_shared.dll" in doc
    script = (PACKAGING / "windows" / "build_windows.ps1").read_text(encoding="utf-8")
    assert "packaging\\forensic_app.spec" in script and "forensic_app.iss" in script


def test_dll_hook_does_nothing_off_windows(monkeypatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    calls = []
    monkeypatch.setattr(os, "add_dll_directory", calls.append, raising=False)
    runpy.run_path(str(HOOK))
    assert calls == []


def test_dll_hook_registers_and_preloads_bundled_onnxruntime(tmp_path: Path, monkeypatch) -> None:
    import ctypes

    internal = tmp_path / "_internal"
    capi = internal / "onnxruntime" / "capi"
    capi.mkdir(parents=True)
    for dll in ("onnxruntime.dll", "onnxruntime_providers_shared.dll"):
        (capi / dll).write_bytes(b"MZ")
    registered, loaded = [], []
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    monkeypatch.setattr(os, "add_dll_directory", registered.append, raising=False)
    monkeypatch.setattr(ctypes, "WinDLL", loaded.append, raising=False)
    runpy.run_path(str(HOOK))
    assert registered == [str(capi), str(internal)]
    assert loaded == [str(capi / "onnxruntime_providers_shared.dll"), str(capi / "onnxruntime.dll")]
