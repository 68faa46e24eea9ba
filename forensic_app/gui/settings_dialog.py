"""Analysis settings: detection threshold, minimum face size, detection size and mode, band,
and the models' precision (int8 / fp32; a preference, not an analysis setting: the model hashes
in every result already say which files ran).

The dialog edits an ``AnalysisSettings`` (core/settings.py owns the defaults and the validation);
it only offers the values and shows the defaults. "Save and re-analyze" tells the window to apply
them to the open photo at once.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from forensic_app.core import settings as core_settings
from forensic_app.core.modelstore import DEFAULT_PRECISION, PRECISIONS
from forensic_app.core.settings import DETECTION_MODES, AnalysisSettings

MODE_HELP = {
    "fast": "fast — one pass at reduced size",
    "standard": "standard — one pass at the detection size",
    "thorough": "thorough — extra passes/tiles for small faces (slower)",
}


class SettingsDialog(QDialog):
    def __init__(
        self,
        current: AnalysisSettings,
        analyze_on_open: bool,
        model_band: tuple[float, float] | None = None,
        parent: QWidget | None = None,
        *,
        precision: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Analysis settings")
        self.reanalyze_requested = False
        self._base = current
        default_band = model_band or (0.35, 0.65)

        self.threshold = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=0.95, singleStep=0.05)
        self.threshold.setValue(current.det_threshold)
        self.threshold.setToolTip(
            f"Detector score a face needs (default {core_settings.DEFAULT_DET_THRESHOLD}). "
            "Lower finds more faces and more false ones."
        )
        self.min_face = QSpinBox(minimum=1, maximum=2000, suffix=" px")
        self.min_face.setValue(current.min_face)
        self.min_face.setToolTip(
            f"Faces smaller than this are ignored (default {core_settings.DEFAULT_MIN_FACE} px)."
        )
        self.detect_size = QSpinBox(minimum=64, maximum=8192, singleStep=64, suffix=" px")
        self.detect_size.setValue(current.detect_size)
        self.detect_size.setToolTip(
            "Longest side the detector sees; larger finds smaller faces but is slower "
            f"(default {core_settings.DEFAULT_DETECT_SIZE} px)."
        )
        self.mode = QComboBox()
        for m in DETECTION_MODES:
            self.mode.addItem(MODE_HELP.get(m, m), m)
        self.mode.setCurrentIndex(DETECTION_MODES.index(current.detection_mode))

        self.custom_band = QCheckBox("Custom uncertain band (p male)")
        band = current.uncertain_band or default_band
        self.band_low = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=1.0, singleStep=0.05)
        self.band_high = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=1.0, singleStep=0.05)
        self.band_low.setValue(band[0])
        self.band_high.setValue(band[1])
        self.custom_band.setChecked(current.uncertain_band is not None)
        self.custom_band.toggled.connect(self._sync_band)
        band_row = QHBoxLayout()
        band_row.addWidget(QLabel("from"))
        band_row.addWidget(self.band_low)
        band_row.addWidget(QLabel("to"))
        band_row.addWidget(self.band_high)
        band_box = QWidget()
        band_box.setLayout(band_row)
        band_row.setContentsMargins(0, 0, 0, 0)
        self._sync_band(self.custom_band.isChecked())

        self.precision_box = QComboBox()
        defaults = ", ".join(f"{role} {p}" for role, p in DEFAULT_PRECISION.items())
        self.precision_box.addItem(f"default ({defaults})", None)
        for p in PRECISIONS:
            self.precision_box.addItem(f"{p} (both models)", p)
        self.precision_box.addItem("int8 detector, fp32 gender model", "detector=int8,gender=fp32")
        self.precision_box.setCurrentIndex(max(0, self.precision_box.findData(precision)))
        self.precision_box.setToolTip(
            "int8 files are quantized from the fp32 ones and faster on CPUs with VNNI. The int8 "
            "detector is about 2x faster and found one face fewer of 190 in thorough mode; the "
            "int8 gender model fails the accuracy rule (models/MODEL_CARD.md). The default "
            "uses int8 only where it held. Applies when the models next load."
        )

        self.analyze_on_open = QCheckBox("Analyze photos as soon as they are opened")
        self.analyze_on_open.setChecked(analyze_on_open)

        form = QFormLayout()
        form.addRow("Detection threshold", self.threshold)
        form.addRow("Minimum face size", self.min_face)
        form.addRow("Detection size", self.detect_size)
        form.addRow("Detection mode", self.mode)
        form.addRow(self.custom_band)
        form.addRow("Uncertain band", band_box)
        form.addRow("Model precision", self.precision_box)
        note = QLabel(
            f"Without a custom band the model's own band is used ({default_band[0]:.2f}–"
            f"{default_band[1]:.2f}). Faces whose p male falls inside it are shown as "
            "<b>uncertain</b>, not as a guess."
        )
        note.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #c62828;")
        self.error_label.setWordWrap(True)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.reanalyze_button = buttons.addButton(
            "Save and re-analyze", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.reanalyze_button.clicked.connect(self._want_reanalyze)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            self.restore_defaults
        )

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.analyze_on_open)
        layout.addWidget(note)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def _sync_band(self, on: bool) -> None:
        self.band_low.setEnabled(on)
        self.band_high.setEnabled(on)

    def _want_reanalyze(self) -> None:
        self.reanalyze_requested = True

    def restore_defaults(self) -> None:
        d = AnalysisSettings()
        self.threshold.setValue(d.det_threshold)
        self.min_face.setValue(d.min_face)
        self.detect_size.setValue(d.detect_size)
        self.mode.setCurrentIndex(DETECTION_MODES.index(d.detection_mode))
        self.custom_band.setChecked(False)
        self.precision_box.setCurrentIndex(0)

    def precision(self) -> str | None:
        """The chosen model precision (None = each model's default)."""
        return self.precision_box.currentData()

    def settings(self) -> AnalysisSettings:
        """The edited settings; raises ValueError (from core validation) when inconsistent."""
        band = (
            (self.band_low.value(), self.band_high.value())
            if self.custom_band.isChecked()
            else None
        )
        data = self._base.to_dict()
        data.update(
            det_threshold=self.threshold.value(),
            min_face=self.min_face.value(),
            detect_size=self.detect_size.value(),
            detection_mode=self.mode.currentData(),
            uncertain_band=list(band) if band else None,
        )
        return AnalysisSettings.from_dict(data)

    def accept(self) -> None:
        try:
            self.settings()
        except ValueError as exc:
            self.error_label.setText(str(exc))
            self.reanalyze_requested = False
            return
        super().accept()
