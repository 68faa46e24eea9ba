"""A small stand-in for ``core.analysis.Engine`` for fast casework and CLI tests.

It follows the engine API (analyze_image/analyze_path/document/models/provider) but "detects"
one face in the middle of any image of at least 8x8 pixels and derives the perceived-gender
probability from the image colour: red-dominant -> male (0.9), blue-dominant -> female (0.1),
anything else -> 0.5 (uncertain). Real pixels still come from the real loader.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from forensic_app import __version__
from forensic_app.core.results import AnalysisDocument, Face, ImageResult, ModelInfo
from forensic_app.core.settings import AnalysisSettings

_DEFAULT = AnalysisSettings()


class FakeEngine:
    provider = "FakeExecutionProvider"

    def __init__(self, delay_s: float = 0.0, fail_on: str | None = None) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.models = [
            ModelInfo(
                role="detector", name="fake-detector", path="/fake/det.onnx", sha256="d" * 64
            ),
            ModelInfo(
                role="gender",
                name="fake-gender",
                path="/fake/g.onnx",
                sha256="e" * 64,
                version="test",
            ),
        ]
        self.last_error = None
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def band(self, settings: AnalysisSettings | None = None) -> tuple[float, float]:
        return settings.uncertain_band if settings and settings.uncertain_band else (0.35, 0.65)

    def label_for(self, p_male: float, settings: AnalysisSettings | None = None) -> str:
        lo, hi = self.band(settings)
        return "uncertain" if lo <= p_male <= hi else ("male" if p_male > hi else "female")

    def analyze_image(self, image, settings=_DEFAULT, cancel=None) -> ImageResult:
        with self._lock:
            self.calls.append(image.path)
        if self.fail_on and self.fail_on in image.path:
            raise RuntimeError("fake engine failure")
        if self.delay_s:
            time.sleep(self.delay_s)
        rgb = image.rgb
        h, w = rgb.shape[:2]
        faces = []
        if h >= 8 and w >= 8:
            mean = rgb.reshape(-1, 3).mean(axis=0)
            if mean[0] > mean[2] + 40:
                p = 0.9
            elif mean[2] > mean[0] + 40:
                p = 0.1
            else:
                p = 0.5
            box = [w * 0.25, h * 0.25, w * 0.75, h * 0.75]
            faces.append(
                Face(
                    box=box,
                    score=0.99,
                    landmarks=None,
                    gender=self.label_for(p, settings),
                    p_male=p,
                )
            )
        return ImageResult(
            path=image.path,
            sha256=image.sha256,
            width=w,
            height=h,
            faces=faces,
            notes=list(image.notes),
            settings=settings.to_dict(),
            timings_ms={"total": 1.0},
        )

    def analyze_path(self, path, settings=_DEFAULT, cancel=None) -> ImageResult:
        from forensic_app.core.imaging import ImageLoadError, load_image

        try:
            image = load_image(path)
        except ImageLoadError as exc:
            return ImageResult(path=str(path), error=str(exc))
        return self.analyze_image(image, settings, cancel)

    def classify_boxes(self, rgb, boxes, settings=_DEFAULT):
        return [Face(box=list(b), gender="uncertain", p_male=0.5, manual_box=True) for b in boxes]

    def document(self, settings, images) -> AnalysisDocument:
        return AnalysisDocument(
            tool_version=__version__,
            models=self.models,
            provider=self.provider,
            settings=settings.to_dict(),
            images=list(images),
        )


def make_photo(path: Path, color=(200, 30, 30), size=(64, 48), fmt: str | None = None) -> Path:
    """Write a small solid-colour photo (any Pillow format from the suffix)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:] = color
    Image.fromarray(arr).save(path, format=fmt)
    return path


def run_cli(argv, engine=None) -> tuple[int, str, str]:
    """``forensic-app ARGV`` in this process with ``engine`` (a :class:`FakeEngine` by
    default): exit status, stdout, stderr."""
    import io

    from forensic_app.cli import main

    out, err = io.StringIO(), io.StringIO()
    engine = engine or FakeEngine()
    rc = main(argv, engine_factory=lambda a: engine, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()
