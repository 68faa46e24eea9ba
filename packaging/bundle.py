"""What goes into the PyInstaller bundle, in one place the spec, the build script and tests share.

Why a module and not constants inside ``forensic_app.spec``: the tests check these lists against
the code (no excluded module is imported by the app; every model named in the manifest is
bundled), and a spec file cannot be imported. The spec only wires these facts into PyInstaller.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the spec and scripts run this from anywhere

from forensic_app import resources as _res  # noqa: E402
from forensic_app.core.modelstore import CENTERFACE_FILE, GENDER_FILE  # noqa: E402

APP_NAME = "forensic-app"  # executable, bundle folder, .deb package and launcher name
APP_DISPLAY_NAME = "Forensic Face Analyzer"
APP_ID = "forensic-app"  # .desktop file id and hicolor icon name
CLI_EXE_NAME = "forensic-app-cli"  # Windows only: a console twin so `analyze` can print
PUBLISHER = "forensic_app developers"
DESCRIPTION = "Find faces in photos and estimate perceived gender, with corrections and reports"

#: Python packages the app never needs at run time. torch/timm are training-only; the rest are
#: dev tools that happen to live in the same venv. PyInstaller would otherwise follow optional
#: imports into them and bloat the bundle by gigabytes.
PYTHON_EXCLUDES: tuple[str, ...] = (
    "torch",
    "torchvision",
    "torchaudio",
    "timm",
    "training",
    "safetensors",
    "huggingface_hub",
    "tkinter",
    "_tkinter",
    "matplotlib",
    "IPython",
    "jupyter",
    "notebook",
    "scipy",
    "pandas",
    "sympy",
    "pytest",
    "_pytest",
    "pytestqt",
    "hypothesis",
    "ruff",
    "PyInstaller",
    "pip",
    "setuptools",
    "pkg_resources",
    "wheel",
    "distutils",
    "lib2to3",
    "pydoc_data",
    "readline",
    "curses",
    "cv2.gapi",
    "onnx.reference",
    "onnxruntime.tools",
    "onnxruntime.transformers",
    "onnxruntime.quantization",
    # pillow-heif bundles the GPL-2.0 x265 encoder; the app decodes HEIC with pi-heif.
    "pillow_heif",
    "_pillow_heif",
)

#: PySide6 modules the app does not use (it is a QtWidgets app). Excluding them keeps their
#: libraries and plugins out of the bundle; tests/packaging checks the app imports none of them.
QT_EXCLUDES: tuple[str, ...] = tuple(
    f"PySide6.{m}"
    for m in (
        "QtWebEngineCore",
        "QtWebEngineWidgets",
        "QtWebEngineQuick",
        "QtWebChannel",
        "QtWebSockets",
        "QtWebView",
        "Qt3DCore",
        "Qt3DRender",
        "Qt3DInput",
        "Qt3DLogic",
        "Qt3DExtras",
        "Qt3DAnimation",
        "QtQuick",
        "QtQuick3D",
        "QtQuickControls2",
        "QtQuickWidgets",
        "QtQuickTest",
        "QtQml",
        "QtQmlFeatures",
        "QtLabsStyleKit",
        "QtMultimedia",
        "QtMultimediaWidgets",
        "QtSpatialAudio",
        "QtCharts",
        "QtDataVisualization",
        "QtGraphs",
        "QtGraphsWidgets",
        "QtPdf",
        "QtPdfWidgets",
        "QtPositioning",
        "QtLocation",
        "QtSensors",
        "QtSerialPort",
        "QtSerialBus",
        "QtBluetooth",
        "QtNfc",
        "QtRemoteObjects",
        "QtScxml",
        "QtStateMachine",
        "QtSql",
        "QtTest",
        "QtTextToSpeech",
        "QtDesigner",
        "QtHelp",
        "QtUiTools",
        "QtOpenGL",
        "QtOpenGLWidgets",
        "QtXml",
        "QtConcurrent",
        "QtHttpServer",
        "QtAxContainer",
        "QtNetwork",
        "QtNetworkAuth",
    )
)

EXCLUDES: tuple[str, ...] = PYTHON_EXCLUDES + QT_EXCLUDES

#: Files PyInstaller's Qt hooks collect that a QtWidgets app never loads, matched against the
#: destination path with "/" separators. Plugins are dropped first; the Qt libraries only they
#: pulled in (Quick, Qml, Pdf, VirtualKeyboard, ...) are then dropped too.
QT_DROP_PATTERNS: tuple[str, ...] = (
    r"/plugins/(qmltooling|designer|sqldrivers|egldeviceintegrations|generic|"
    r"wayland-graphics-integration-server|networkinformation|tls|vectorimageformats)/",
    r"/plugins/platforms/(lib)?q(eglfs|linuxfb|minimal|minimalegl|vnc|vkkhrdisplay)\b",
    # TIFF/WebP/GIF/JPEG stay: evidence photos come in those formats and Qt may read them.
    r"/plugins/imageformats/(lib)?q(pdf|icns|tga|wbmp)\b",
    r"/plugins/platforminputcontexts/(lib)?qtvirtualkeyboard",
    # GTK theme plugin: it would drag the host's GTK/cairo/pango stack into the bundle; Qt
    # falls back to its own Fusion look and the XDG portal for native dialogs.
    r"/plugins/platformthemes/(lib)?qgtk3",
    r"/(lib)?Qt6(Quick|Qml|Pdf|VirtualKeyboard|Designer|Sql|Test|Help|Charts|Multimedia|"
    r"WebEngine|Location|Positioning|3D|ShaderTools|LabsStyleKit|(?i:eglfs)|Network)[^/]*$",
    r"/Qt/(qml|translations/qtwebengine|resources/qtwebengine)",
)
_QT_DROP = [re.compile(p) for p in QT_DROP_PATTERNS]


#: Linux: libraries of the host's desktop stack that are *not* bundled, and the Debian packages
#: that provide them (the .deb's ``Depends``; the .tar.gz needs the same). Why not bundle them:
#: the host's GL/EGL driver, fontconfig and D-Bus load these too, and a bundled older copy of
#: libstdc++, zlib or libxcb shadows the host's newer one and breaks the driver ("GLIBCXX_3.4.x
#: not found", no fonts, no window). Each entry: Debian dependency -> sonames it provides.
#: glib moved to ``libglib2.0-0t64`` in Debian 13 / Ubuntu 24.04, hence the alternative.
HOST_LIBRARIES: dict[str, tuple[str, ...]] = {
    "libc6": (
        "libc.so.6",
        "libm.so.6",
        "libdl.so.2",
        "libpthread.so.0",
        "librt.so.1",
        "libresolv.so.2",
        "libutil.so.1",
        "ld-linux-x86-64.so.2",
    ),
    "libstdc++6": ("libstdc++.so.6",),
    "libgcc-s1": ("libgcc_s.so.1",),
    "zlib1g": ("libz.so.1",),
    "libzstd1": ("libzstd.so.1",),
    "liblzma5": ("liblzma.so.5",),
    "libbz2-1.0": ("libbz2.so.1.0",),
    "libffi8": ("libffi.so.8",),
    "libglib2.0-0t64 | libglib2.0-0": (
        "libglib-2.0.so.0",
        "libgthread-2.0.so.0",
        "libgobject-2.0.so.0",
        "libgio-2.0.so.0",
        "libgmodule-2.0.so.0",
    ),
    "libgl1": ("libGL.so.1",),
    "libegl1": ("libEGL.so.1",),
    "libfontconfig1": ("libfontconfig.so.1",),
    "libfreetype6": ("libfreetype.so.6",),
    "libdbus-1-3": ("libdbus-1.so.3",),
    "libx11-6": ("libX11.so.6",),
    "libx11-xcb1": ("libX11-xcb.so.1",),
    "libxcb1": ("libxcb.so.1",),
    "libxcb-cursor0": ("libxcb-cursor.so.0",),
    "libxcb-glx0": ("libxcb-glx.so.0",),
    "libxcb-icccm4": ("libxcb-icccm.so.4",),
    "libxcb-image0": ("libxcb-image.so.0",),
    "libxcb-keysyms1": ("libxcb-keysyms.so.1",),
    "libxcb-randr0": ("libxcb-randr.so.0",),
    "libxcb-render0": ("libxcb-render.so.0",),
    "libxcb-render-util0": ("libxcb-render-util.so.0",),
    "libxcb-shape0": ("libxcb-shape.so.0",),
    "libxcb-shm0": ("libxcb-shm.so.0",),
    "libxcb-sync1": ("libxcb-sync.so.1",),
    "libxcb-util1": ("libxcb-util.so.1",),
    "libxcb-xfixes0": ("libxcb-xfixes.so.0",),
    "libxcb-xinerama0": ("libxcb-xinerama.so.0",),
    "libxcb-xkb1": ("libxcb-xkb.so.1",),
    "libxkbcommon0": ("libxkbcommon.so.0",),
    "libxkbcommon-x11-0": ("libxkbcommon-x11.so.0",),
    "libwayland-client0": ("libwayland-client.so.0",),
    "libwayland-cursor0": ("libwayland-cursor.so.0",),
    "libwayland-egl1": ("libwayland-egl.so.1",),
}
HOST_SONAMES: frozenset[str] = frozenset(n for names in HOST_LIBRARIES.values() for n in names)
#: Top-level bundle files matching this are host libraries and left out (X11's helpers such as
#: libXau/libXdmcp come with libx11-6 on the host).
_HOST_LIB_RE = re.compile(
    r"^lib(X[a-zA-Z0-9]*(-xcb)?|xcb(-[a-z]+)*|xkbcommon(-x11)?|fontconfig|freetype|dbus-1|"
    r"glib-2\.0|gio-2\.0|gobject-2\.0|gmodule-2\.0|gthread-2\.0|stdc\+\+|gcc_s|z|zstd|lzma|"
    r"bz2|ffi|expat|wayland-[a-z]+|GL|EGL|GLX|OpenGL|GLdispatch|drm|gbm)\.so(\.|$)"
)


def is_dropped(dest: str) -> bool:
    """True for a bundle destination path (TOC ``dest_name``) that is left out of the bundle.

    Drops the unused Qt plugins/libraries, and, on Linux, top-level copies of host desktop
    libraries (see :data:`HOST_LIBRARIES`). Vendored wheel libraries (``*.libs/``, hashed names)
    live in sub-folders and are kept: they were built to travel.
    """
    path = "/" + dest.replace("\\", "/")
    if any(p.search(path) for p in _QT_DROP):
        return True
    if sys.platform.startswith("linux") and "/" not in dest.replace("\\", "/"):
        return bool(_HOST_LIB_RE.match(dest))
    return False


def elf_needed(path: Path) -> list[str] | None:
    """DT_NEEDED sonames of a 64-bit little-endian ELF file; None when it is not one.

    A few lines of ELF instead of ``objdump``/``ldd`` so the build and tests need no binutils
    and never execute what they inspect.
    """
    import struct

    try:
        data = path.read_bytes()
    except OSError:
        return None
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    needed, strtab = [], None
    for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, val = struct.unpack_from("<qQ", data, off)
        if tag == 0:
            break
        if tag == 1:
            needed.append(val)
        elif tag == 5:
            strtab = val
    if strtab is None:
        return []
    base = next((strtab - v + o for v, o, size in loads if v <= strtab < v + size), strtab)

    def cstr(offset: int) -> str:
        end = data.index(b"\0", base + offset)
        return data[base + offset : end].decode("utf-8", "replace")

    return [cstr(n) for n in needed]


def prune_unneeded(entries: list, keep_names: tuple[str, ...] = ("libpython",)) -> list:
    """Drop top-level shared libraries no other bundled binary needs any more (Linux).

    PyInstaller collected them as dependencies of files that :func:`is_dropped` removed (the
    GTK theme plugin, the host's fontconfig, ...). Repeats until nothing changes. ``entries``
    are PyInstaller TOC tuples (dest_name, src_name, typecode).
    """
    if not sys.platform.startswith("linux"):
        return entries
    needed_by: dict[str, list[str]] = {}
    for dest, src, _kind in entries:
        needed_by[dest] = elf_needed(Path(src)) or []
    while True:
        wanted = {n for dest in needed_by for n in needed_by[dest]}
        orphans = [
            dest
            for dest in needed_by
            if _is_plain_library(dest)
            and dest.rpartition("/")[2] not in wanted
            and not dest.startswith(keep_names)
        ]
        if not orphans:
            break
        for dest in orphans:
            del needed_by[dest]
    return [e for e in entries if e[0] in needed_by]


def _is_plain_library(dest: str) -> bool:
    """Top-level and Qt ``lib*.so*`` files are libraries; extension modules are never pruned."""
    folder, _, name = dest.replace("\\", "/").rpartition("/")
    return (
        folder in ("", "PySide6/Qt/lib")
        and name.startswith("lib")
        and ".so" in name
        and "cpython" not in name
        and ".abi3." not in name
    )


def app_version() -> str:
    """The version the package reports (``forensic_app.__version__``, from pyproject metadata)."""
    from forensic_app import __version__

    return __version__


#: The two models the app cannot work without (names owned by core.modelstore).
REQUIRED_MODELS: tuple[str, ...] = (CENTERFACE_FILE, GENDER_FILE)


def model_datas(
    models_dir: Path | None = None, required: tuple[str, ...] = REQUIRED_MODELS
) -> list[tuple[str, str]]:
    """(source, "models") pairs for every shipped model file, its manifest and model card.

    Every file the manifest names, and both models the app needs, must exist: a bundle without
    its models would only fail on an investigator's machine, so the build fails here instead,
    naming the missing file and the fix.
    """
    models_dir = models_dir or REPO / "models"
    manifest_path = models_dir / "manifest.json"
    if not manifest_path.is_file():
        raise SystemExit(f"{manifest_path} is missing: the bundle cannot say which models it holds")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    names = list(manifest) + [name for name in required if name not in manifest]
    missing = [name for name in names if not (models_dir / name).is_file()]
    if missing:
        raise SystemExit(
            f"model files missing from {models_dir}: {', '.join(missing)}. "
            "Run `python -m forensic_app.fetch_models` (CenterFace) and make sure the trained "
            f"gender model ({GENDER_FILE}) is in models/ before building."
        )
    files = [manifest_path, *(models_dir / name for name in names)]
    # Weights an ONNX exporter stored beside the graph ("external data") travel with it.
    files += sorted(p for name in names for p in models_dir.glob(f"{name}.data"))
    files += sorted(p for p in models_dir.glob("*.md") if p.is_file())
    return [(str(p), "models") for p in files]


def resource_datas(resources_dir: Path | None = None) -> list[tuple[str, str]]:
    """(source, destination) pairs for the icon set, mirroring ``resources/`` in the bundle."""
    resources_dir = resources_dir or REPO / "resources"
    pairs = [
        (str(resources_dir / _res.ICON_SVG), "resources"),
        (str(resources_dir / _res.ICON_ICO), "resources"),
    ]
    pairs += [
        (
            str(resources_dir / _res.ICONS_SUBDIR / _res.icon_file_name(s)),
            f"resources/{_res.ICONS_SUBDIR}",
        )
        for s in _res.ICON_SIZES
    ]
    missing = [src for src, _ in pairs if not Path(src).is_file()]
    if missing:
        raise SystemExit(f"icon files missing: {missing}; run python packaging/render_icons.py")
    return pairs
