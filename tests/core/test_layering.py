"""forensic_app/core stays Qt-free: checked in the source and in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "forensic_app" / "core"
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "forensic_app.gui")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.append(str(node.args[0].value))
    return names


def test_no_core_module_imports_qt_in_source() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) >= 8  # the check is looking at the real package
    offenders = [
        f"{p.relative_to(CORE)}: {name}"
        for p in modules
        for name in _imports(p)
        if name.split(".")[0] in FORBIDDEN or name.startswith("forensic_app.gui")
    ]
    assert offenders == []


def test_importing_all_of_core_loads_no_qt() -> None:
    names = sorted(p.stem for p in CORE.glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}:\n"
        "    importlib.import_module('forensic_app.core.' + n)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}"
        " or m.startswith('forensic_app.gui')]\n"
        "print(len(sys.modules)); print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"
