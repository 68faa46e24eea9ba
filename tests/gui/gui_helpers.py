"""Test helpers for the GUI tests: a fake engine with known answers and synthetic photos."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from forensic_app.core.analysis import AnalysisCancelled
from forensic_app.core.modelstore import GenderModelSpec
from forensic_app.core.results import (
    AnalysisDocument,
    Face,
    ImageResult,
    ModelInfo,
)
from forensic_app.core.settings import AnalysisSettings

#: Fake faces as fractions of the image size: (x1, y1, x2, y2), detector score, p_male.
FAKE_FACES = [
    ((0.10, 0.15, 0.30, 0.45), 0.95, 0.08),  # female 0.92
    ((0.60, 0.50, 0.85, 0.90), 0.90, 0.91),  # male 0.91
    ((0.42, 0.10, 0.52, 0.25), 0.60, 0.50),  # uncertain; dropped at threshold > 0.6
]


class FakeEngine:
    """Stands in for ``core.analysis.Engine`` with known, settings-dependent answers."""

    provider = "FakeExecutionProvider"

    def __init__(self, block_until_cancelled: bool = False, delay_s: float = 0.0) -> None:
        self.block_until_cancelled = block_until_cancelled
        self.delay_s = delay_s
        self.started = threading.Event()
        self.calls = 0
        self.gender_spec = GenderModelSpec()
        self.models = [
            ModelInfo(
                role="detector", name="FakeDetector", path="/fake/centerface.onnx", sha256="d" * 64
            ),
            ModelInfo(
                role="gender",
                name="FakeGender",
                path="/fake/gender.onnx",
                sha256="e" * 64,
                version="test",
            ),
        ]
        self.last_error = None

    def band(self, settings: AnalysisSettings = AnalysisSettings()) -> tuple[float, float]:  # noqa: B008
        return settings.uncertain_band or self.gender_spec.uncertain_band

    def label_for(self, p: float, settings: AnalysisSettings = AnalysisSettings()) -> str:  # noqa: B008
        lo, hi = self.band(settings)
        return "female" if p < lo else "male" if p > hi else "uncertain"

    def analyze_image(self, image, settings=AnalysisSettings(), cancel=None) -> ImageResult:  # noqa: B008
        self.calls += 1
        self.started.set()
        if self.block_until_cancelled:
            deadline = time.monotonic() + 20
            while not (cancel and cancel()):
                if time.monotonic() > deadline:
                    raise RuntimeError("fake engine was never cancelled")
                time.sleep(0.01)
            raise AnalysisCancelled("analysis cancelled")
        if self.delay_s:
            time.sleep(self.delay_s)
        w, h = image.width, image.height
        faces = []
        for (x1, y1, x2, y2), score, p in FAKE_FACES:
            if score < settings.det_threshold:
                continue
            faces.append(
                Face(
                    box=[x1 * w, y1 * h, x2 * w, y2 * h],
                    score=score,
                    p_male=p,
                    gender=self.label_for(p, settings),
                )
            )
        return ImageResult(
            path=image.path,
            sha256=image.sha256,
            width=w,
            height=h,
            faces=faces,
            timings_ms={"detect": 5.0, "classify": 1.0},
            settings=settings.to_dict(),
        )

    def classify_boxes(self, rgb, boxes, settings=AnalysisSettings()) -> list[Face]:  # noqa: B008
        return [
            Face(
                box=[float(v) for v in b],
                p_male=0.8,
                gender=self.label_for(0.8, settings),
                manual_box=True,
            )
            for b in boxes
        ]

    def document(self, settings: AnalysisSettings, images: list[ImageResult]) -> AnalysisDocument:
        return AnalysisDocument(
            tool_version="test",
            models=list(self.models),
            provider=self.provider,
            settings=settings.to_dict(),
            images=list(images),
        )


def write_photo(path: Path, size: tuple[int, int] = (640, 480), seed: int = 0) -> Path:
    """A small synthetic photo with shapes (so annotated copies differ from it)."""
    rng = np.random.default_rng(seed)
    arr = (rng.random((size[1], size[0], 3)) * 60 + 90).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(im)
    w, h = size
    for (x1, y1, x2, y2), _, _ in FAKE_FACES:
        draw.ellipse([x1 * w, y1 * h, x2 * w, y2 * h], fill=(220, 180, 150))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def open_and_wait(qtbot, window, path: Path, timeout: int = 15_000) -> None:
    """Open a photo and wait until its analysis has finished."""
    with qtbot.waitSignal(window.analysisFinished, timeout=timeout):
        assert window.open_path(path)
