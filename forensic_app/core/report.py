"""The HTML report of a case: one self-contained file that opens in a browser without network.

Why self-contained: a report travels (mail, evidence disc, court bundle) and must show the same
thing years later on an offline machine. Thumbnails and face crops are embedded as ``data:``
URIs, the style sheet is inline, and nothing refers to any other file or address.

Before anything is written the whole case is verified (core/casecheck.py: the audit chain, the
manifest, every record and annotated copy) and every input photo is read again and its SHA-256
compared with the one taken when it was opened; any finding is shown at the top of the report in
a red banner and returned to the caller (the CLI exits 4). The report says exactly what was
verified and prints the chain's head hash as a seal. Pixels of a changed photo are never used:
its thumbnail then comes from the case's annotated copy.

The report only reads the case: it can be written to another folder from write-blocked media.
The check and the export are logged in the case's audit log only when this process may write
the case (``Case.try_log``); otherwise the outcome says why they were not.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from forensic_app import __version__
from forensic_app.core import atomic, audit
from forensic_app.core.annotate import face_label
from forensic_app.core.audit import utc_now
from forensic_app.core.case import Case, CaseError, IntegrityIssue, PhotoRecord
from forensic_app.core.casecheck import CaseVerification, verify_case
from forensic_app.core.names import display
from forensic_app.core.results import Face, face_number
from forensic_app.core.settings import describe_settings

THUMB_SIZE = 360
CROP_SIZE = 112
FACES_PER_ROW = 4
REPORT_NAME = "report.html"

LIMITATIONS = (
    "“Perceived gender” is a statistical estimate of how a face’s gender is likely to be "
    "perceived from its appearance in this photo. It says nothing certain about a person’s body, "
    "gender identity or identity, and it must never be reported as such.",
    "The estimate depends on pose, resolution, blur, lighting, occlusion (masks, hair, hands), "
    "make-up, age and ethnicity. Children and faces smaller than about 40 pixels are estimated "
    "much less reliably. The model’s training data has known imbalances (see the model card); "
    "error rates differ between groups of people.",
    "Each label comes with the model’s probability. Probabilities inside the uncertain band are "
    "shown as “uncertain” on purpose: treat them as unknown, not as a weak answer.",
    "The face detector can miss faces (very small, profile, occluded, blurred) and can mark "
    "things that are not faces. No detection does not mean that no person is present.",
    "Results are leads for an investigator to verify by looking at the photo, not findings. "
    "Labels marked “manual” were set or drawn by the examiner named in the audit log.",
)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:24px;color:#111;
background:#fff;line-height:1.4}
h1{margin-bottom:0}h2{border-bottom:2px solid #444;padding-bottom:2px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #bbb;padding:4px 8px;
vertical-align:top;text-align:left}th{background:#eee}
.hash{font-family:ui-monospace,Consolas,monospace;font-size:11px;word-break:break-all}
.alert{background:#b00020;color:#fff;padding:12px 16px;font-size:18px;font-weight:bold;
border:4px solid #600}
.alert ul{font-size:14px;font-weight:normal}
.ok{background:#e6f4ea;border:1px solid #1e7e34;padding:8px 12px}
.warn{background:#fff4e5;border:1px solid #b26a00;padding:8px 12px}
.err{color:#b00020;font-weight:bold}
.photo{border:1px solid #999;margin:16px 0;padding:8px;page-break-inside:avoid}
table.faces{border-collapse:separate;border-spacing:6px}
td.face{border:1px solid #ccc;padding:4px;width:160px;line-height:100%}
.female{color:#8a1c7c}.male{color:#0b5394}.uncertain{color:#7f6000}
.manual{background:#ffe08a;font-weight:bold;padding:0 3px}
img{image-rendering:auto}
.pic{line-height:100%}
"""


@dataclass
class ReportOutcome:
    """What was written and what the integrity check found."""

    path: Path
    sha256: str
    photos: int
    faces: int
    issues: list[IntegrityIssue] = field(default_factory=list)
    audit_problems: list[str] = field(default_factory=list)
    verification: CaseVerification | None = None
    not_logged: str | None = None  # why the export is not in the case's audit log

    @property
    def ok(self) -> bool:
        return not self.issues and (self.verification is None or self.verification.ok)


def _e(value: Any) -> str:
    """HTML-escaped, and control/bidi characters and undecodable bytes shown as escapes
    (core/names.py): a file name cannot reorder or hide text in the report."""
    return html.escape(display(value), quote=True)


def _data_uri(rgb: np.ndarray, quality: int = 82) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _thumbnail(rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    from forensic_app.core.annotate import render_annotated

    h, w = rgb.shape[:2]
    scale = min(1.0, THUMB_SIZE / max(h, w))
    if scale < 1.0:
        small = np.asarray(
            Image.fromarray(rgb).resize(
                (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR
            )
        )
    else:
        small = rgb
    scaled = [replace(f, box=[v * scale for v in f.box], landmarks=None) for f in faces]
    return render_annotated(small, scaled)


def _crop(rgb: np.ndarray, face: Face) -> np.ndarray:
    from forensic_app.core.crops import extract_crop

    return extract_crop(rgb, face.box, CROP_SIZE, margin=0.25, shape="square")


def _load_checked(rec: PhotoRecord) -> tuple[np.ndarray | None, list[IntegrityIssue]]:
    """Re-read a photo once: its pixels when the SHA-256 matches, and any integrity issues."""
    from forensic_app.core.imaging import ImageLoadError, load_image, sha256_path

    issues: list[IntegrityIssue] = []
    rgb = None
    if rec.sha256 is None:
        return None, issues
    try:
        image = load_image(rec.abs_path)
        if image.sha256 == rec.sha256:
            rgb = image.rgb
        else:
            issues.append(IntegrityIssue(rec.path, rec.sha256, image.sha256, "changed"))
    except ImageLoadError:
        # Failed photos (or ones that became unreadable): compare the raw bytes.
        try:
            actual = sha256_path(rec.abs_path)
            if actual != rec.sha256:
                issues.append(IntegrityIssue(rec.path, rec.sha256, actual, "changed"))
        except FileNotFoundError:
            issues.append(IntegrityIssue(rec.path, rec.sha256, None, "missing"))
        except OSError:
            issues.append(IntegrityIssue(rec.path, rec.sha256, None, "unreadable"))
    for other in rec.other_paths:
        try:
            actual = sha256_path(other)
        except FileNotFoundError:
            issues.append(IntegrityIssue(other, rec.sha256, None, "missing"))
            continue
        except OSError:
            issues.append(IntegrityIssue(other, rec.sha256, None, "unreadable"))
            continue
        if actual != rec.sha256:
            issues.append(IntegrityIssue(other, rec.sha256, actual, "changed"))
    return rgb, issues


def _annotated_pixels(case: Case, rec: PhotoRecord) -> np.ndarray | None:
    if not rec.annotated:
        return None
    try:
        with Image.open(case.inside(rec.annotated)) as im:
            im.thumbnail((THUMB_SIZE, THUMB_SIZE))
            return np.asarray(im.convert("RGB"))
    except (OSError, CaseError, ValueError):
        return None


def _face_html(rgb: np.ndarray | None, n: int, f: Face) -> str:
    crop = (
        f'<img alt="face {n}" width="{CROP_SIZE}" src="{_data_uri(_crop(rgb, f))}"><br>'
        if (rgb is not None)
        else ""
    )
    marks = []
    if f.manual_box:
        marks.append('<span class="manual">box drawn by hand</span>')
    if f.manual_label:
        marks.append('<span class="manual">label set by hand</span>')
    lines = [
        f'<b>#{n}</b> <span class="{_e(f.gender)}">{_e(face_label(f))}</span>',
        "drawn by hand" if f.score is None else f"detector score {f.score:.2f}",
    ]
    if f.age is not None:
        lines.append(f"apparent age {f.age:.0f}")
    lines.append("box [" + ", ".join(f"{v:.0f}" for v in f.box) + "]")
    if marks:
        lines.append(" ".join(marks))
    return f'<td class="face">{crop}{"<br>".join(lines)}</td>'


def _kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _render(
    case: Case, spool: BinaryIO, generated_by: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Check and render every photo into ``spool`` (one photo in memory at a time).

    Returns the head of the document (everything before the photo details, which needs the
    totals) and the facts (integrity issues, counts). The document is head + spool + ``_TAIL``.
    """
    check = verify_case(case, inputs=False)  # inputs are re-hashed below, once, while rendered
    records = check.records
    all_issues: list[IntegrityIssue] = []
    table_rows: list[str] = []
    n_faces = 0
    counts = {"female": 0, "male": 0, "uncertain": 0}
    manual_photos = 0
    failed = 0
    for idx, rec in enumerate(records, start=1):
        rgb, issues = _load_checked(rec)
        all_issues += issues
        res = rec.result
        anchor = f"p{idx}"
        if rec.result.error:
            failed += 1
        faces = res.faces if res.error is None else []
        n_faces += len(faces)
        for f in faces:
            counts[f.gender] = counts.get(f.gender, 0) + 1
        has_manual = any(f.manual for f in faces)
        manual_photos += int(has_manual)
        status = (
            f'<span class="err">{_e(issues[0].problem.upper())}</span>'
            if issues
            else ("verified" if rec.sha256 else "no hash")
        )
        outcome = (
            f'<span class="err">error: {_e(res.error)}</span>'
            if res.error
            else f"{len(faces)} face{'s' if len(faces) != 1 else ''}"
        )
        table_rows.append(
            f'<tr><td><a href="#{anchor}">{idx}</a></td><td>{_e(rec.path)}</td>'
            f'<td class="hash">{_e(rec.sha256 or "—")}</td><td>{status}</td>'
            f"<td>{outcome}</td><td>{'yes' if has_manual else 'no'}</td></tr>"
        )
        if rgb is not None:
            thumb = _thumbnail(rgb, faces)
            source = "original photo (hash verified)"
        else:
            thumb = _annotated_pixels(case, rec)
            source = "annotated copy stored in the case (original not usable)"
        img = (
            f'<p class="pic"><img alt="photo {idx}" width="{thumb.shape[1]}" '
            f'height="{thumb.shape[0]}" src="{_data_uri(thumb)}"><br>'
            f"<small>{_e(source)}</small></p>"
            if thumb is not None
            else "<p>(no image available)</p>"
        )
        warn = "".join(f'<p class="err">{_e(i.describe())}</p>' for i in issues)
        notes = "".join(f"<li>{_e(n)}</li>" for n in res.notes)
        size = f"{res.width}×{res.height}" if res.width else "—"
        cards = [_face_html(rgb, face_number(f, i), f) for i, f in enumerate(faces)]
        # A table, not CSS flex: browsers and Qt's PDF printer lay it out alike.
        face_html = "".join(
            "<tr>" + "".join(cards[k : k + FACES_PER_ROW]) + "</tr>"
            for k in range(0, len(cards), FACES_PER_ROW)
        )
        facts_table = _kv_table(
            [
                ("SHA-256 at opening", rec.sha256 or "—"),
                ("size", size),
                ("analysed", rec.analysed_at),
                ("manual edits", rec.manual_edits),
                ("also found at", ", ".join(rec.other_paths) or "—"),
            ]
        )
        section = (
            f'<div class="photo" id="{anchor}"><h3>{idx}. {_e(rec.path)}</h3>{warn}'
            f"{img}{facts_table}"
            f"{'<ul>' + notes + '</ul>' if notes else ''}"
            f"{'<p class=err>' + _e(res.error) + '</p>' if res.error else ''}"
            f"{'<table class=faces>' + face_html + '</table>' if face_html else ''}</div>"
        )
        spool.write(section.encode("utf-8"))
        del rgb, thumb, section

    check.input_issues = all_issues
    check.inputs_rehashed = True
    check.inputs_checked = sum(1 + len(r.other_paths) for r in records if r.sha256)
    m = case.manifest
    band = m.get("settings", {}).get("uncertain_band")
    if not band:
        for model in m.get("models", []):
            if model.get("role") == "gender":
                band = (model.get("metadata") or {}).get("uncertain_band")
    parts: list[str] = []
    parts.append(
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Case report: {_e(case.name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Case report: {_e(case.name)}</h1>"
        f"<p>Generated {_e(utc_now())} by forensic_app {_e(__version__)}"
        f"{' for ' + _e(generated_by) if generated_by else ''}.</p>"
    )
    if all_issues:
        items = "".join(f"<li>{_e(i.describe())}</li>" for i in all_issues)
        parts.append(
            f'<div class="alert">INTEGRITY WARNING: {len(all_issues)} input file(s) no longer '
            f"match the SHA-256 taken when they were opened. Results for them may not describe "
            f"the files as they are now.<ul>{items}</ul></div>"
        )
    if check.findings:
        items = "".join(f"<li>{_e(f.describe())}</li>" for f in check.findings)
        parts.append(
            f'<div class="alert">CASE NOT VERIFIED: {len(check.findings)} problem(s) with the '
            f"case's own files (audit log, manifest, records, annotated copies). What this "
            f"report shows may not be what the tool recorded.<ul>{items}</ul></div>"
        )
    parts.append(_verification_html(check))
    parts.append("<h2>Summary</h2>")
    parts.append(
        _kv_table(
            [
                ("case", case.name),
                ("examiner", m.get("examiner") or "—"),
                ("case created", m.get("created")),
                ("case folder", str(case.root.resolve())),
                ("photos", len(records)),
                ("photos that could not be analysed", failed),
                ("faces", n_faces),
                (
                    "perceived female / male / uncertain",
                    " / ".join(str(counts.get(g, 0)) for g in ("female", "male", "uncertain")),
                ),
                ("photos with manual corrections", manual_photos),
                ("audit log lines", check.audit_lines),
                ("audit chain head (seal)", check.head),
            ]
        )
    )
    parts.append("<h2>Settings and models</h2>")
    settings = m.get("settings", {})
    parts.append(
        _kv_table(
            describe_settings(settings, band)
            + [
                ("execution provider", m.get("provider") or "—"),
                ("tool version", m.get("tool_version")),
            ]
        )
    )
    model_rows = "".join(
        f"<tr><td>{_e(x.get('role'))}</td><td>{_e(x.get('name'))}</td>"
        f"<td>{_e(x.get('version') or '—')}</td><td>{_e(x.get('precision', 'fp32'))}</td>"
        f'<td class="hash">{_e(x.get("sha256"))}</td></tr>'
        for x in m.get("models", [])
    )
    parts.append(
        "<table><tr><th>role</th><th>model</th><th>version</th><th>precision</th>"
        "<th>SHA-256</th></tr>"
        f"{model_rows}</table>"
    )
    parts.append(
        "<h2>Limitations of perceived-gender estimation</h2><ul>"
        + "".join(f"<li>{_e(t)}</li>" for t in LIMITATIONS)
        + "</ul>"
    )
    parts.append(
        "<h2>Photos</h2><table><tr><th>#</th><th>path</th><th>SHA-256 at opening</th>"
        "<th>integrity</th><th>result</th><th>manual</th></tr>" + "".join(table_rows) + "</table>"
    )
    parts.append("<h2>Photo details</h2>")
    facts = {
        "issues": all_issues,
        "photos": len(records),
        "faces": n_faces,
        "audit_problems": [f.describe() for f in check.findings],
        "inputs": [r.abs_path for r in records],
        "verification": check,
    }
    return "".join(parts), facts


_TAIL = b"</body></html>"


def _verification_html(check: CaseVerification) -> str:
    """The "What was verified" section: each check in words, findings, notes and the seal."""
    cls = "ok" if check.ok else "alert"
    verdict = (
        "Verified: the case is exactly as the tool recorded it, and every input photo still "
        "has the SHA-256 taken when it was opened."
        if check.ok
        else "NOT verified: see the problems listed above."
    )
    items = "".join(f"<li>{_e(line)}</li>" for line in check.verified())
    notes = "".join(f"<li>{_e(n)}</li>" for n in check.notes)
    return (
        f'<h2>What was verified</h2><p class="{cls}">{_e(verdict)}</p><ul>{items}</ul>'
        + (f"<p>Notes:</p><ul>{notes}</ul>" if notes else "")
        + f"<p>Seal: the SHA-256 of the last audit log line (line {check.audit_lines}) when "
        f'this report was made is <span class="hash">{_e(check.head)}</span>. Note it down '
        "outside the case (your notes, a mail, the court bundle). Anyone who can write the case "
        "folder and has this tool's code could cut entries off the end of the log or rewrite "
        "it consistently, and only a seal kept outside the case exposes that: "
        "<code>forensic-app case verify --case FOLDER --seal SEAL</code> fails (exit 4) when "
        "that line is gone and lists everything logged after it.</p>"
    )


def build_report_html(case: Case, generated_by: str | None = None) -> tuple[str, dict[str, Any]]:
    """The whole report as a string (for a GUI preview or Qt printing to PDF) and its facts."""
    with tempfile.TemporaryFile() as spool:
        head, facts = _render(case, spool, generated_by)
        spool.seek(0)
        return head + spool.read().decode("utf-8") + _TAIL.decode(), facts


def refuse_case_file(case: Case, out: Path) -> None:
    """A report may go into the case folder itself, never over or among the case's own files
    (manifest, audit log, lock, records, annotated copies), which verification vouches for."""
    root = os.path.realpath(case.root)
    target = os.path.realpath(out)
    if os.path.commonpath([root, target]) != root:
        return
    rel = os.path.relpath(target, root)
    own = {"case.json", "audit.jsonl", ".case.lock", ".case.lock.json"}
    if os.sep in rel or rel in own or rel == ".":
        raise atomic.ProtectedFileError(
            f"refusing to write the report to {out}: it is inside the case's own files; "
            "write it to the case folder itself or elsewhere"
        )


def write_report(
    case: Case,
    out_path: str | Path | None = None,
    generated_by: str | None = None,
    log: bool = True,
) -> ReportOutcome:
    """Verify the case and every input's SHA-256, write the report atomically, log the export
    (when ``log`` and the case may be written now; see ``ReportOutcome.not_logged``).

    Photo sections are rendered one at a time into a scratch file and streamed into the report,
    so memory does not grow with the number of photos.
    """
    out = Path(out_path) if out_path else case.root / REPORT_NAME
    refuse_case_file(case, out)
    atomic.refuse_overwrite_of(out, [r.abs_path for r in case.records()])  # fail fast
    not_logged: str | None = "not asked to log" if not log else None
    with tempfile.TemporaryFile() as spool:
        head, facts = _render(case, spool, generated_by)
        issues: list[IntegrityIssue] = facts["issues"]
        check: CaseVerification = facts["verification"]
        if log:
            _, not_logged = case.try_log(
                audit.INTEGRITY_CHECK,
                None,
                photos=facts["photos"],
                problems=check.problems(),
                verified_head=check.head,
            )
        atomic.refuse_overwrite_of(out, facts["inputs"])
        digest = hashlib.sha256()
        write = atomic.named_output_stream if out_path else atomic.atomic_stream
        with write(out) as fh:

            def put(data: bytes) -> None:
                digest.update(data)
                fh.write(data)

            put(head.encode("utf-8"))
            spool.seek(0)
            while chunk := spool.read(1 << 20):
                put(chunk)
            put(_TAIL)
    if log and not_logged is None:
        _, not_logged = case.try_log(
            audit.EXPORTED,
            None,
            kind="html-report",
            file=os.path.abspath(out),
            report_sha256=digest.hexdigest(),
            integrity_problems=len(check.problems()),
            verified_head=check.head,
        )
    return ReportOutcome(
        out,
        digest.hexdigest(),
        facts["photos"],
        facts["faces"],
        issues,
        facts["audit_problems"],
        check,
        not_logged,
    )
