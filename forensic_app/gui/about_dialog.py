"""About: version, the models in use with their SHA-256, the execution provider, licences.

Everything shown comes from the engine's runtime info (``Engine.models``, ``Engine.provider``) and
the model manifest, never from constants here, so the dialog cannot drift from what actually runs.
"""

from __future__ import annotations

import html
import platform
from typing import Any

import PySide6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from forensic_app import __version__
from forensic_app.core.modelstore import load_manifest

THIRD_PARTY = [
    ("Qt 6 / PySide6", "LGPL-3.0"),
    ("ONNX Runtime", "MIT"),
    ("OpenCV", "Apache-2.0"),
    ("NumPy", "BSD-3-Clause"),
    ("Pillow", "MIT-CMU (HPND)"),
    ("pi-heif (HEIC/HEIF decoding)", "BSD-3-Clause; its libheif and libde265 LGPL-3.0"),
]


def about_html(engine: Any | None, engine_error: str | None = None) -> str:
    """The dialog's text as HTML (also used by tests)."""
    esc = html.escape
    rows = []
    manifest = {}
    try:
        manifest = load_manifest()
    except Exception:  # noqa: BLE001 - About must open even if the manifest is broken
        manifest = {}
    models = list(getattr(engine, "models", []) or [])
    for m in models:
        file_name = m.path.replace("\\", "/").rsplit("/", 1)[-1] if m.path else ""
        licence = (m.metadata or {}).get("license") or manifest.get(file_name, {}).get("license")
        rows.append(
            f"<tr><td><b>{esc(m.role)}</b></td><td>{esc(m.name)}"
            f"{' ' + esc(m.version) if m.version else ''}<br><small>{esc(m.path)}</small></td>"
            f"<td>{esc(getattr(m, 'precision', 'fp32'))}</td>"
            f"<td><code>{esc(m.sha256)}</code></td>"
            f"<td>{esc(licence or 'see model card')}</td></tr>"
        )
    if not rows:
        why = esc(engine_error) if engine_error else "not loaded yet (they load on first analysis)"
        rows.append(f"<tr><td colspan=5>Models {why}.</td></tr>")
    provider = esc(getattr(engine, "provider", None) or "— (models not loaded)")
    third = "".join(f"<li>{esc(n)} — {esc(lic)}</li>" for n, lic in THIRD_PARTY)
    return (
        f"<h2>forensic_app {esc(__version__)}</h2>"
        "<p>Finds faces in photos and estimates each face's <b>perceived gender</b> — how the "
        "face is likely to be read by an observer, not a person's gender identity. Every label "
        "comes with a confidence; faces inside the uncertain band are shown as "
        "<b>uncertain</b>. Results are leads to be checked by a person, not findings.</p>"
        "<h3>Models</h3><table border=1 cellspacing=0 cellpadding=4>"
        "<tr><th>role</th><th>model</th><th>precision</th><th>SHA-256</th><th>licence</th></tr>"
        + "".join(rows)
        + "</table>"
        f"<p><b>Execution provider:</b> {provider}</p>"
        f"<p><b>Runtime:</b> Python {esc(platform.python_version())}, "
        f"PySide6 {esc(PySide6.__version__)}, {esc(platform.platform())}</p>"
        f"<h3>Licences</h3><ul>{third}</ul>"
        "<p>Face data used to train the gender model is for non-commercial research only "
        "(UTKFace, CelebA, WIDER FACE; WIDER demographic labels CC BY-NC 4.0); see the model "
        "card.</p>"
    )


class AboutDialog(QDialog):
    def __init__(
        self, engine: Any | None, engine_error: str | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("About forensic_app")
        self.resize(760, 560)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)
        self.browser.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.browser.setHtml(about_html(engine, engine_error))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
