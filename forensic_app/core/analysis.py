"""The analysis pipeline both front ends call: image -> faces -> perceived gender -> result.

Why an engine object: the two ONNX sessions are built once (models verified against their
SHA-256 first) and reused for every image; runtime facts (provider in use, model hashes, the last
error) are kept for About panels and result documents. ``analyze_path`` never raises for a bad
image: the result's ``error`` says why, so one bad file never stops a batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from forensic_app import __version__
from forensic_app.core import modelstore
from forensic_app.core.classification import GenderClassifier
from forensic_app.core.detection import CenterFaceDetector, Detections
from forensic_app.core.imaging import ImageLoadError, LoadedImage, load_image
from forensic_app.core.modelstore import GenderModelSpec, ModelError
from forensic_app.core.results import (
    AnalysisDocument,
    Face,
    ImageResult,
    ModelInfo,
    number_faces,
)
from forensic_app.core.settings import AnalysisSettings

log = logging.getLogger(__name__)

Cancel = Callable[[], bool] | None


class AnalysisCancelled(Exception):
    """The caller's ``cancel()`` returned True; nothing partial is returned."""


def _check(cancel: Cancel) -> None:
    if cancel is not None and cancel():
        raise AnalysisCancelled("analysis cancelled")


class Engine:
    """Detector + gender classifier sessions, reused for every image."""

    def __init__(
        self,
        detector: CenterFaceDetector,
        classifier: GenderClassifier,
        models: list[ModelInfo],
    ) -> None:
        self.detector = detector
        self.classifier = classifier
        self.models = models
        self.gender_spec: GenderModelSpec = classifier.spec
        self.provider: str = detector.provider
        self.last_error: str | None = None
        #: Facts about how the models were loaded that a user should see (e.g. an int8 default
        #: that fell back to fp32 because the int8 file is absent).
        self.notes: list[str] = []

    @property
    def precision(self) -> dict[str, str]:
        """The precision each role actually runs, e.g. {"detector": "fp32", "gender": "int8"}."""
        return {m.role: m.precision for m in self.models}

    @classmethod
    def create(
        cls,
        models_dir: Path | None = None,
        gender_model: Path | None = None,
        providers: list[str] | None = None,
        threads: int | None = None,
        precision: str | None = None,
        detector_threads: int | None = None,
    ) -> Engine:
        """Verify and load both models. Raises ModelError naming the file when one is unusable.

        ``gender_model`` may be any ONNX file following the metadata contract (or the legacy
        contract); without it ``<models_dir>/gender_effnet_b0.onnx`` (or its int8 derivative)
        is used. Either way the file is checked against ``manifest.json`` in its folder when that
        lists it. ``precision`` ("int8" | "fp32", or per role "detector=int8,gender=fp32",
        ``modelstore.parse_precision``) picks the shipped files; None (or an unnamed role) means
        the role's default (``modelstore.DEFAULT_PRECISION``, ADR 0011). An explicit
        ``gender_model`` is used as given, whatever ``precision`` says. ``threads`` are each
        model call's intra-op threads; ``detector_threads`` (default: ``threads``) overrides
        them for the detector, whose runs take turns (``batch.detector_threads``).
        """
        directory = Path(models_dir) if models_dir else modelstore.models_dir()
        wanted = modelstore.parse_precision(precision)  # ValueError when malformed
        det_note = g_note = None
        notes: list[str] = []
        if gender_model is None:
            det_path, det_sha, note = modelstore.resolve_model(
                modelstore.CENTERFACE_FILE, "detector", wanted.get("detector"), directory
            )
            notes += [note] if note else []
            try:
                gpath, g_sha, note = modelstore.resolve_model(
                    modelstore.GENDER_FILE, "gender", wanted.get("gender"), directory
                )
                notes += [note] if note else []
            except ModelError as exc:
                raise ModelError(
                    f"perceived-gender {exc} To use another model that follows the metadata "
                    "contract (docs/adr/0001), pass it explicitly."
                ) from exc
        else:
            # A model named explicitly is used even when no manifest vouches for it; every
            # output then says which model is unverified. A manifest that lists it still
            # catches an altered file.
            manifest = modelstore.load_manifest(directory, required=False)
            det_name = modelstore.model_file(
                modelstore.CENTERFACE_FILE,
                wanted.get("detector") or modelstore.DEFAULT_PRECISION["detector"],
            )
            if "detector" not in wanted and not (directory / det_name).is_file():
                det_name = modelstore.CENTERFACE_FILE  # the default's fp32 fallback
            det_path = directory / det_name
            det_sha, det_note = modelstore.check_model_file(det_path, manifest)
            gpath = Path(gender_model)
            if not gpath.is_file():
                raise ModelError(f"gender model file missing: {gpath}")
            own = modelstore.load_manifest(gpath.parent, required=False)
            g_sha, g_note = modelstore.check_model_file(gpath, own, must_be_listed=False)
            g_note = modelstore.vouched_by_installation(gpath, g_sha, g_note, directory, manifest)
        detector = CenterFaceDetector(det_path, providers, detector_threads or threads)
        classifier = GenderClassifier(gpath, providers, threads)
        manifest = modelstore.load_manifest(directory, required=False) or {}
        det_entry = manifest.get(det_path.name, manifest.get(modelstore.CENTERFACE_FILE, {}))
        for path in (det_path, gpath):  # a derivative measured to lose accuracy says so at load
            verdict = manifest.get(path.name, {}).get("accuracy", "")
            if path.parent == directory and verdict.startswith("fails"):
                notes.append(f"{path.name}: {verdict}")
        spec = classifier.spec
        models = [
            ModelInfo(
                role="detector",
                name=det_entry.get("name", "CenterFace"),
                path=str(det_path),
                sha256=det_sha,
                version=det_entry.get("source"),
                unverified=det_note,
                precision=detector.precision,
            ),
            ModelInfo(
                role="gender",
                name=spec.name,
                path=str(gpath),
                sha256=g_sha,
                version=spec.version,
                metadata=dict(spec.raw),
                unverified=g_note,
                precision=modelstore.precision_of(spec.raw),
            ),
        ]
        engine = cls(detector, classifier, models)
        engine.notes = notes
        for n in notes:
            log.warning("%s", n)
        if classifier.provider != detector.provider:
            log.warning(
                "detector runs on %s, gender model on %s", detector.provider, classifier.provider
            )
        return engine

    # -- labels --------------------------------------------------------------------------
    def band(self, settings: AnalysisSettings = AnalysisSettings()) -> tuple[float, float]:  # noqa: B008
        """The uncertain band in use: the settings' override, else the model's own."""
        if settings.uncertain_band is not None:
            return settings.uncertain_band
        return self.gender_spec.uncertain_band

    def label_for(self, p_male: float, settings: AnalysisSettings = AnalysisSettings()) -> str:  # noqa: B008
        """ "female" below the band, "male" above it, "uncertain" inside it (edges included)."""
        lo, hi = self.band(settings)
        if p_male < lo:
            return "female"
        if p_male > hi:
            return "male"
        return "uncertain"

    # -- analysis ------------------------------------------------------------------------
    def analyze_path(
        self,
        path: str | Path,
        settings: AnalysisSettings = AnalysisSettings(),  # noqa: B008
        cancel: Cancel = None,
    ) -> ImageResult:
        """Load and analyse one file. Bad images give ``ImageResult.error``, never an exception
        (except AnalysisCancelled)."""
        t0 = time.perf_counter()
        _check(cancel)
        try:
            image = load_image(path)
        except ImageLoadError as exc:
            self.last_error = str(exc)
            return ImageResult(path=str(path), error=str(exc), settings=settings.to_dict())
        load_ms = (time.perf_counter() - t0) * 1000.0
        result = self.analyze_image(image, settings, cancel)
        result.timings_ms = {"load": load_ms, **result.timings_ms}
        result.timings_ms["total"] = (time.perf_counter() - t0) * 1000.0
        return result

    def analyze_image(
        self,
        image: LoadedImage,
        settings: AnalysisSettings = AnalysisSettings(),  # noqa: B008
        cancel: Cancel = None,
    ) -> ImageResult:
        """Analyse an already loaded image (the GUI keeps the pixels it shows)."""
        result = ImageResult(
            path=image.path,
            sha256=image.sha256,
            width=image.width,
            height=image.height,
            notes=list(image.notes),
            settings=settings.to_dict(),
        )
        try:
            _check(cancel)
            t0 = time.perf_counter()
            if settings.no_detect:
                box = [0.0, 0.0, float(image.width), float(image.height)]  # the whole image
                det = Detections(np.asarray([box]), np.asarray([np.nan]), np.zeros((1, 5, 2)))
                result.notes.append("no detection: the whole image was classified as one face")
            else:
                det = self.detector.detect(image.rgb, settings, cancel)
            t1 = time.perf_counter()
            _check(cancel)
            if settings.no_detect:
                pred = self.classifier.predict(self.classifier.whole_image_crop(image.rgb))
            else:  # cropped chunk by chunk: memory does not grow with the number of faces
                pred = self.classifier.predict_boxes(image.rgb, det.boxes.tolist())
            t2 = time.perf_counter()
        except AnalysisCancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - report, never crash a batch
            log.exception("analysis of %s failed", image.path)
            self.last_error = f"analysis failed: {exc}"
            result.error = self.last_error
            return result
        result.timings_ms = {"detect": (t1 - t0) * 1000.0, "classify": (t2 - t1) * 1000.0}
        result.faces = number_faces(
            self._faces(det, pred.p_male, pred.age, settings, settings.no_detect)
        )
        return result

    def classify_boxes(
        self,
        rgb: np.ndarray,
        boxes: Sequence[Sequence[float]],
        settings: AnalysisSettings = AnalysisSettings(),  # noqa: B008
    ) -> list[Face]:
        """Classify hand-drawn boxes (in chunks); faces come back with manual_box=True."""
        clean = [[float(v) for v in b] for b in boxes]
        pred = self.classifier.predict_boxes(rgb, clean)
        faces = []
        for i, box in enumerate(clean):
            p = float(pred.p_male[i])
            faces.append(
                Face(
                    box=box,
                    gender=self.label_for(p, settings),
                    p_male=p,
                    age=float(pred.age[i]) if pred.age is not None else None,
                    manual_box=True,
                )
            )
        return faces

    def _faces(
        self,
        det: Detections,
        p_male: np.ndarray,
        age: np.ndarray | None,
        settings: AnalysisSettings,
        no_detect: bool,
    ) -> list[Face]:
        faces = []
        for i in range(len(det)):
            p = float(p_male[i])
            faces.append(
                Face(
                    box=[round(float(v), 2) for v in det.boxes[i]],
                    score=None if no_detect else round(float(det.scores[i]), 4),
                    landmarks=None
                    if no_detect
                    else [[round(float(x), 2), round(float(y), 2)] for x, y in det.landmarks[i]],
                    gender=self.label_for(p, settings),
                    p_male=round(p, 4),
                    age=round(float(age[i]), 1) if age is not None else None,
                )
            )
        return faces

    def document(self, settings: AnalysisSettings, images: list[ImageResult]) -> AnalysisDocument:
        """The full result document for these images (what ``--json`` prints)."""
        doc_settings = settings.to_dict()
        doc_settings["uncertain_band_in_use"] = list(self.band(settings))
        return AnalysisDocument(
            tool_version=__version__,
            models=list(self.models),
            provider=self.provider,
            settings=doc_settings,
            images=list(images),
        )
