"""Shared test fixtures: repository paths, the shared data folder, a tiny gender ONNX model.

The tiny models come from ``tests/tiny_models.py`` (``build_gender_onnx``: a real, computable
classifier following the metadata contract, outputs known exactly). Fixtures:

* ``repo_root``, ``models_dir``: paths in the checkout.
* ``shared_dir``, ``dev_eval_dir``: ``<repo>/../shared`` (skips when absent).
* ``make_gender_model``: factory ``(path=None, **options) -> Path`` for custom tiny models.
* ``tiny_gender_model``: a contract-following tiny model (logit output, age output).
* ``engine``: a session-wide Engine with CenterFace and the real gender model when it exists,
  else the tiny model (skips when CenterFace is missing).
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from tiny_models import build_gender_onnx

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
DEV_EVAL_DIR = SHARED_DIR / "data" / "dev-eval"

# A suite started as a background job of a non-interactive shell (`cmd &`, nohup, some CI
# runners) inherits SIGINT *ignored*, and so would every process it starts: the Ctrl-C tests
# would then test nothing. Give the test process Python's own Ctrl-C handler back; a handled
# signal is reset to the default at exec, so child processes get a working Ctrl-C too.
if (
    threading.current_thread() is threading.main_thread()
    and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
):
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _private_config_dir(tmp_path_factory: pytest.TempPathFactory):
    """Keep the per-user ownership key (core/ownership.py) and preferences out of the real
    home: every test session gets its own config folder (subprocesses inherit it)."""
    import os

    old = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    yield
    if old is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = old


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return REPO_ROOT / "models"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"../shared not present: {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture(scope="session")
def dev_eval_dir() -> Path:
    if not (DEV_EVAL_DIR / "annotations.json").is_file():
        pytest.skip(f"../shared not present: {DEV_EVAL_DIR}")
    return DEV_EVAL_DIR


@pytest.fixture(scope="session")
def dev_eval_annotations(dev_eval_dir: Path) -> dict[str, list[dict]]:
    return json.loads((dev_eval_dir / "annotations.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def make_gender_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    counter = iter(range(10**6))

    def make(path: Path | None = None, **options: object) -> Path:
        if path is None:
            path = tmp_path_factory.mktemp("gender") / f"tiny_{next(counter)}.onnx"
        return build_gender_onnx(path, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def tiny_gender_model(make_gender_model: Callable[..., Path]) -> Path:
    return make_gender_model()


@pytest.fixture(scope="session")
def engine(models_dir: Path, tiny_gender_model: Path):
    """An Engine on the real CenterFace; the real gender model when present, else the tiny one."""
    from forensic_app.core.analysis import Engine
    from forensic_app.core.modelstore import CENTERFACE_FILE, GENDER_FILE

    if not (models_dir / CENTERFACE_FILE).is_file():
        pytest.skip("models/centerface.onnx missing: run python -m forensic_app.fetch_models")
    real = models_dir / GENDER_FILE
    return Engine.create(models_dir, gender_model=None if real.is_file() else tiny_gender_model)
