"""Helpers for the packaging tests: the packaging scripts are loaded from ``packaging/``.

``packaging/`` is a folder of build scripts, not an installed package, so its modules are
imported by path (the same way PyInstaller's spec and ``build_linux.sh`` use them).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"


def load_script(path: Path, name: str) -> ModuleType:
    """Import a script file as a module (cached in sys.modules under ``name``)."""
    if name in sys.modules:
        return sys.modules[name]
    if str(PACKAGING) not in sys.path:
        sys.path.insert(0, str(PACKAGING))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bundle() -> ModuleType:
    return load_script(PACKAGING / "bundle.py", "bundle")


@pytest.fixture(scope="session")
def linux_package(bundle: ModuleType) -> ModuleType:
    return load_script(PACKAGING / "linux_package.py", "linux_package")
