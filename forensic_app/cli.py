"""Command line: argument parsing and printing only; every decision lives in ``forensic_app.core``.

Commands::

    forensic-app analyze PATH... [--out DIR] [--json FILE|-] [--csv FILE] [options]
    forensic-app batch FOLDER... --case DIR [--name NAME] [--examiner NAME] [--recursive] [--wait]
    forensic-app report --case DIR [--format html|pdf] [--out FILE] [--no-log]
    forensic-app case verify --case DIR [--no-log]
    forensic-app info
    forensic-app --version

Exit status: 0 every photo analysed, 1 some photos failed (each listed with its reason),
2 bad usage (including a case in use by another writer), 3 a model file is missing, altered or
unusable, 4 integrity: an evidence photo changed since it was opened, or a case file does not
verify (report, case verify), 130 interrupted. With ``--json -`` stdout carries nothing but the JSON
document; logs, progress and summaries go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from forensic_app import __version__
from forensic_app.core import atomic, audit
from forensic_app.core.batch import (
    DONE,
    ERROR,
    QUEUED,
    RUNNING,
    UNCHANGED,
    BatchItem,
    BatchOutcome,
    BatchRunner,
    detector_threads,
    recommended_parallelism,
    settings_key,
    summarize,
)
from forensic_app.core.caselock import CaseBusyError
from forensic_app.core.docstream import InOrder, JsonDocumentWriter
from forensic_app.core.modelstore import parse_precision
from forensic_app.core.names import display, encode_name, text_safe
from forensic_app.core.progress import Progress, format_bar
from forensic_app.core.results import ImageResult, face_number
from forensic_app.core.settings import (
    DEFAULT_DET_THRESHOLD,
    DEFAULT_DETECT_SIZE,
    DEFAULT_DETECTION_MODE,
    DEFAULT_MIN_FACE,
    DETECTION_MODES,
    AnalysisSettings,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_INTEGRITY = 4
EXIT_INTERRUPTED = 130

log = logging.getLogger("forensic_app.cli")

#: Builds the engine from parsed arguments; tests replace it with a fake.
EngineFactory = Callable[[argparse.Namespace], Any]

REUSED_NOTE = "result reused: SHA-256 and settings unchanged since an earlier run"


class UsageError(Exception):
    """Bad arguments found after parsing (argparse handles the rest); exit status 2."""


# -- parsing ---------------------------------------------------------------------------------
def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def _sha256_arg(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a SHA-256 (64 hex digits)")
    return value


def _positive_int(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _add_analysis_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("analysis settings")
    g.add_argument(
        "--det-threshold",
        type=_threshold,
        default=DEFAULT_DET_THRESHOLD,
        metavar="T",
        help=f"face detector score threshold (default {DEFAULT_DET_THRESHOLD})",
    )
    g.add_argument(
        "--min-face",
        type=_positive_int(1),
        default=DEFAULT_MIN_FACE,
        metavar="PX",
        help=f"drop faces whose shorter side is below PX pixels (default {DEFAULT_MIN_FACE})",
    )
    g.add_argument(
        "--mode",
        choices=DETECTION_MODES,
        default=DEFAULT_DETECTION_MODE,
        help=f"detection mode (default {DEFAULT_DETECTION_MODE}); thorough finds more "
        "small faces in big photos, slower",
    )
    g.add_argument(
        "--detect-size",
        type=_positive_int(64),
        default=DEFAULT_DETECT_SIZE,
        metavar="PX",
        help=f"longest side for the main detection pass (default {DEFAULT_DETECT_SIZE})",
    )
    g.add_argument(
        "--no-detect",
        action="store_true",
        help="treat each whole image as one face crop (no detection)",
    )
    g.add_argument("--recursive", "-r", action="store_true", help="descend into subfolders")
    m = p.add_argument_group("models")
    m.add_argument("--models", metavar="DIR", help="folder holding the model files")
    m.add_argument("--gender-model", metavar="FILE", help="gender model ONNX file to use")
    m.add_argument(
        "--precision",
        type=_precision,
        metavar="P",
        help="model precision: int8 or fp32 for both models, or per model, e.g. "
        "detector=int8 (about 2x faster; the int8 gender model fails the accuracy rule). "
        "Default: each model's measured default, see `info` and docs/adr/0011",
    )
    m.add_argument(
        "--threads",
        type=_positive_int(1),
        metavar="N",
        help="intra-op threads per model call (default: all cores for one photo, 1 per "
        "worker for a batch)",
    )
    m.add_argument(
        "--workers",
        type=_positive_int(1),
        metavar="N",
        help="photos analysed at the same time (default: one per core for a batch)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.add_argument("--verbose", "-v", action="store_true", help="more log messages on stderr")


def _precision(text: str) -> str:
    """argparse type: a precision choice ``modelstore.parse_precision`` accepts (exit 2 if not)."""
    try:
        parse_precision(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forensic-app",
        description="Find faces in photos and estimate each face's perceived gender "
        "(with a confidence and an 'uncertain' band). Without a command the window opens.",
    )
    parser.add_argument("--version", "-V", action="version", version=f"forensic-app {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    a = sub.add_parser(
        "analyze",
        help="analyse photos or folders of photos",
        description="Analyse photos; folders expand to their images.",
    )
    a.add_argument("paths", nargs="+", metavar="PATH", help="photo files or folders")
    a.add_argument(
        "--out",
        metavar="DIR",
        help="write an annotated copy of each photo here (reruns skip unchanged photos)",
    )
    a.add_argument("--json", metavar="FILE", help="write the JSON result document ('-' = stdout)")
    a.add_argument("--csv", metavar="FILE", help="write one CSV row per face ('-' = stdout)")
    a.add_argument(
        "--no-resume",
        action="store_true",
        help="analyse every photo again even if --out holds an unchanged result",
    )
    _add_analysis_options(a)

    b = sub.add_parser("batch", help="analyse folders into a case folder (resumable, audited)")
    b.add_argument("paths", nargs="+", metavar="PATH", help="photo files or folders")
    b.add_argument("--case", required=True, metavar="DIR", help="case folder (created if new)")
    b.add_argument("--name", help="case name (new case; default: the folder name)")
    b.add_argument("--examiner", help="examiner's name (recorded in the manifest and audit log)")
    b.add_argument(
        "--reanalyse", action="store_true", help="analyse every photo again even when unchanged"
    )
    b.add_argument(
        "--wait",
        action="store_true",
        help="when another writer has the case, wait for it instead of exiting with status 2",
    )
    _add_analysis_options(b)
    cl = b.add_argument_group('lab cluster (Dask; needs pip install -e ".[cluster]")')
    cl.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="analyse on the workers of a Dask scheduler (tcp://host:8786), or local:N for N "
        "worker processes on this machine; this machine stays the only writer of the case",
    )
    cl.add_argument(
        "--path-map",
        action="append",
        metavar="CLIENT=WORKER",
        help="workers see the folder CLIENT (here) as WORKER (repeatable)",
    )

    r = sub.add_parser("report", help="write the HTML or PDF report of a case folder")
    r.add_argument("--case", required=True, metavar="DIR", help="case folder")
    r.add_argument(
        "--format", choices=("html", "pdf"), default="html", help="html (default) or pdf (A4)"
    )
    r.add_argument("--out", metavar="FILE", help="report file (default: CASE/report.html|pdf)")
    r.add_argument("--examiner", help="who exports the report (audit log)")
    r.add_argument(
        "--no-log",
        action="store_true",
        help="write nothing into the case (e.g. write-blocked media); without it the export "
        "is logged when the case can be written",
    )
    r.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    r.add_argument("--verbose", "-v", action="store_true", help="more log messages on stderr")

    c = sub.add_parser("case", help="inspect a case folder")
    csub = c.add_subparsers(dest="case_command", metavar="ACTION")
    csub.required = True
    v = csub.add_parser(
        "verify",
        help="prove the case: audit chain, manifest, records, annotated copies, input photos",
    )
    v.add_argument("--case", required=True, metavar="DIR", help="case folder")
    v.add_argument(
        "--seal",
        metavar="SHA256",
        type=_sha256_arg,
        help="a chain head noted earlier (from a report or a check): prove the log still holds "
        "that line and list what was logged after it; exit 4 when it is gone",
    )
    v.add_argument(
        "--no-log",
        action="store_true",
        help="write nothing into the case; without it the check is logged when the case can "
        "be written (never on read-only media or while another process writes)",
    )
    v.add_argument("--verbose", "-v", action="store_true", help="more log messages on stderr")
    v.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")

    i = sub.add_parser("info", help="show the models, their SHA-256 and the execution provider")
    i.add_argument("--models", metavar="DIR", help="folder holding the model files")
    i.add_argument("--gender-model", metavar="FILE", help="gender model ONNX file to use")
    i.add_argument("--precision", type=_precision, metavar="P", help="model precision to load")
    i.add_argument("--threads", type=_positive_int(1), metavar="N", help=argparse.SUPPRESS)
    i.add_argument("--workers", type=_positive_int(1), metavar="N", help=argparse.SUPPRESS)
    i.add_argument("--verbose", "-v", action="store_true", help="more log messages on stderr")
    i.add_argument("--quiet", "-q", action="store_true", help=argparse.SUPPRESS)
    return parser


def settings_from_args(args: argparse.Namespace) -> AnalysisSettings:
    try:
        return AnalysisSettings(
            det_threshold=args.det_threshold,
            min_face=args.min_face,
            detect_size=args.detect_size,
            detection_mode=args.mode,
            no_detect=args.no_detect,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def default_engine_factory(args: argparse.Namespace) -> Any:
    """The real engine; raises modelstore.ModelError when a model is missing or altered."""
    from forensic_app.core.analysis import Engine

    return Engine.create(
        models_dir=Path(args.models) if getattr(args, "models", None) else None,
        gender_model=Path(args.gender_model) if getattr(args, "gender_model", None) else None,
        threads=getattr(args, "threads", None),
        precision=getattr(args, "precision", None),
        detector_threads=getattr(args, "detector_threads", None),
    )


# -- progress on stderr ------------------------------------------------------------------------
class StderrProgress:
    """Per-photo lines and a progress bar on stderr (a redrawn bar only on a terminal)."""

    def __init__(self, stream: TextIO, total: int, quiet: bool = False) -> None:
        self.stream = stream
        self.total = total
        self.quiet = quiet
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.show_bar = total > 1 and not quiet
        self._bar_drawn = False

    def _clear_bar(self) -> None:
        if self._bar_drawn:
            self.stream.write("\r\x1b[2K")
            self._bar_drawn = False

    def on_item(self, item: BatchItem) -> None:
        if item.status in (QUEUED, RUNNING):
            return
        if self.quiet and item.status != ERROR:
            return
        if item.status == DONE and self.total <= 1:
            return
        self._clear_bar()
        width = len(str(self.total))
        self.stream.write(
            f"[{item.index + 1:>{width}}/{self.total}] {item.status:<9} "
            f"{display(item.path)}: {display(item.message)}\n"
        )
        self.stream.flush()

    def on_progress(self, progress: Progress) -> None:
        if not self.show_bar or progress.done == 0:
            return
        if self.tty:
            self._clear_bar()
            self.stream.write(format_bar(progress))
            self._bar_drawn = True
        elif progress.done == progress.total or progress.done % 10 == 0:
            self.stream.write(format_bar(progress) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar_drawn:
            self.stream.write("\n")
            self._bar_drawn = False
        self.stream.flush()


# -- output documents ----------------------------------------------------------------------------
CSV_FIELDS = [
    "path",
    "sha256",
    "width",
    "height",
    "face",
    "x1",
    "y1",
    "x2",
    "y2",
    "score",
    "gender",
    "confidence",
    "p_male",
    "age",
    "manual",
    "error",
    "notes",
    "path_b64",  # the exact bytes of a name that is not valid UTF-8 (then "path" is escaped)
]


def results_csv(results: Sequence[ImageResult]) -> str:
    """One row per face; a photo with no face or an error gets one row without a face index."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for res in results:
        w.writerows(_csv_rows(res))
    return buf.getvalue()


class _CsvStream:
    """The CSV of :func:`results_csv`, written one photo at a time (``--csv`` in a big run)."""

    def __init__(self, fh: TextIO) -> None:
        self.w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, lineterminator="\n")
        self.w.writeheader()

    def write(self, res: ImageResult) -> None:
        self.w.writerows(_csv_rows(res))

    def close(self) -> None:
        pass


def _csv_rows(res: ImageResult) -> list[dict[str, Any]]:
    def r4(v: float | None) -> str:
        return "" if v is None else f"{v:.4f}"

    rows = []
    base = {
        **encode_name("path", res.path),
        "sha256": res.sha256 or "",
        "width": res.width or "",
        "height": res.height or "",
        "error": text_safe(res.error or ""),
        "notes": text_safe("; ".join(res.notes)),
    }
    if not res.faces:
        rows.append(base)
    for i, f in enumerate(res.faces):
        n = face_number(f, i)
        x1, y1, x2, y2 = f.box
        rows.append(
            {
                **base,
                "face": n,
                "x1": round(x1, 1),
                "y1": round(y1, 1),
                "x2": round(x2, 1),
                "y2": round(y2, 1),
                "score": r4(f.score),
                "gender": f.gender,
                "confidence": r4(f.confidence),
                "p_male": r4(f.p_male),
                "age": "" if f.age is None else round(f.age, 1),
                "manual": "yes" if f.manual else "",
            }
        )
    return rows


def _engine_models(engine: Any) -> list[Any]:
    return list(getattr(engine, "models", []) or [])


def _warn_unverified(engine: Any, stderr: TextIO) -> None:
    """Say loudly which model files no manifest vouches for (they are used as named)."""
    for m in _engine_models(engine):
        if getattr(m, "unverified", None):
            stderr.write(
                f"warning: {m.role} model {display(m.path)} is UNVERIFIED "
                f"({display(m.unverified)}); "
                f"SHA-256 {m.sha256}\n"
            )


# -- commands ------------------------------------------------------------------------------------
def _collect(
    args: argparse.Namespace, exclude_dirs: Sequence[str] = ()
) -> tuple[list[Any], dict[str, str], list[Any]]:
    """Expand the PATH arguments: (photos, preset per-photo errors, skipped files).

    The tool's own outputs are recognised by where it wrote them (core/ownership.py), never by
    their name; ``exclude_dirs`` are folders of this run never read as evidence.
    """
    from forensic_app.core.inputs import scan_inputs

    scan = scan_inputs(args.paths, recursive=args.recursive, exclude_dirs=exclude_dirs)
    errors = {ph.path: ph.error for ph in scan.photos if ph.error}
    return scan.photos, errors, scan.skipped


def _print_skipped(skipped: Sequence[Any], stream: TextIO) -> None:
    """Every file a folder walk passed over, with its reason (nothing is skipped silently)."""
    if not skipped:
        return
    stream.write(f"skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''} (not analysed):\n")
    for s in skipped:
        stream.write(f"  {display(s.path)}: {display(s.reason)}\n")
    stream.flush()


def _run_batch(
    engine: Any,
    settings: AnalysisSettings,
    store: Any,
    paths: Sequence[str],
    preset: dict[str, str],
    workers: int,
    stderr: TextIO,
    quiet: bool,
    on_result: Callable[[BatchItem, ImageResult], None] | None = None,
) -> BatchOutcome:
    """Run a batch with progress on stderr (``analyze`` into an output folder, ``batch`` into a
    case); the progress line is always closed, even when the batch is interrupted.

    Items keep compact summaries only (``keep_results=False``): results go to ``on_result`` or
    the store as they finish, so memory does not grow with photos per run."""
    reporter = StderrProgress(stderr, len(paths), quiet=quiet)
    runner = BatchRunner(
        engine,
        settings,
        store=store,
        on_item=reporter.on_item,
        on_progress=reporter.on_progress,
        workers=workers,
        on_result=on_result,
        keep_results=False,
    )
    try:
        return runner.run(paths, preset_errors=preset)
    finally:
        reporter.close()


def cmd_analyze(
    args: argparse.Namespace, engine_factory: EngineFactory, stdout: TextIO, stderr: TextIO
) -> int:
    settings = settings_from_args(args)
    if args.json == "-" and args.csv == "-":
        raise UsageError("--json - and --csv - cannot both write to stdout")
    if "-" in (args.json, args.csv) and getattr(stdout, "closed_by_shell", False):
        raise UsageError("standard output is closed: the results of '-' would be lost")
    if args.json and args.csv and "-" not in (args.json, args.csv):
        same = os.path.realpath(args.json) == os.path.realpath(args.csv)
        if same or atomic.same_existing_file(args.json, args.csv):
            raise UsageError("--json and --csv name the same file: one would replace the other")
    photos, preset, skipped = _collect(args)
    if not photos:
        _print_skipped(skipped, stderr)
        raise UsageError("no photos found in the given paths")
    input_paths = [p.path for p in photos]
    # Files of the evidence folders that were not analysed (a .txt, a FIFO) are evidence too.
    evidence = input_paths + [s.path for s in skipped if not s.path.endswith(os.sep)]
    for target in (args.json, args.csv):
        if target and target != "-":
            atomic.refuse_overwrite_of(target, evidence)

    args.threads, workers = recommended_parallelism(
        len(photos), workers=args.workers, threads=args.threads
    )
    args.detector_threads = detector_threads(args.threads, workers)
    engine = engine_factory(args)
    _warn_unverified(engine, stderr)
    store = None
    if args.out:
        from forensic_app.core.outdir import OutputFolder, plan_annotated_names

        store = OutputFolder(
            args.out,
            plan_annotated_names(photos, args.out),
            settings_key(settings, _engine_models(engine)),
            protected=input_paths,
            resume=not args.no_resume,
        )
        try:
            store.prepare()
        except OSError as exc:
            stderr.write(f"error: cannot use output folder {display(args.out)}: {display(exc)}\n")
            return EXIT_FAILED

    with contextlib.ExitStack() as stack:
        doc = engine.document(settings, [])
        doc.skipped = [sk.to_dict() for sk in skipped]
        writers = _open_documents(args, doc, stack)
        order = InOrder(lambda res: [w.write(res) for w in writers])
        stack.callback(order.close)  # its spill file, on every way out
        errors: list[BaseException] = []

        def on_result(item: BatchItem, result: ImageResult) -> None:
            if item.status == UNCHANGED:
                result.notes.append(REUSED_NOTE)
            if not errors:
                try:
                    order.add(item.index, result)
                except Exception as exc:  # e.g. a full disk: the document fails, loudly
                    errors.append(exc)

        outcome = _run_batch(
            engine,
            settings,
            store,
            input_paths,
            preset,
            workers,
            stderr,
            quiet=args.quiet,
            on_result=on_result if writers else None,
        )
        if errors:
            raise errors[0]
        order.finish(len(outcome.items), lambda i: _result_of(outcome.items[i]))
        for w in writers:
            w.close()
            if w.target != "-":  # checked again as the file goes into place
                atomic.refuse_overwrite_of(w.target, evidence)
        _flush_documents(writers, stdout)
    human = stderr if (args.json == "-" or args.csv == "-") else stdout
    _print_summary(
        outcome,
        human,
        per_photo=not (args.json == "-" or args.csv == "-"),
        out_dir=args.out,
        skipped=skipped,
    )
    return EXIT_OK if outcome.all_ok else EXIT_FAILED


def _open_documents(args: argparse.Namespace, doc: Any, stack: contextlib.ExitStack) -> list[Any]:
    """Streaming writers for ``--json``/``--csv``: an atomic temp file beside a file target (put
    in place only when the run completes), a spill file for ``-`` (copied to stdout at the end,
    so stdout never carries half a document)."""
    writers = []
    for target, make in (
        (args.json, lambda fh: JsonDocumentWriter(fh, doc)),
        (args.csv, _CsvStream),
    ):
        if not target:
            continue
        if target == "-":
            fh = stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8", newline=""))
        else:
            raw = stack.enter_context(atomic.named_output_stream(target))
            fh = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            stack.callback(fh.detach)  # runs before atomic_stream's exit: flushes, keeps raw open
        writer = make(fh)
        writer.target, writer.fh = target, fh
        writers.append(writer)
    return writers


def _flush_documents(writers: list[Any], stdout: TextIO) -> None:
    for w in writers:
        if w.target != "-":
            continue
        w.fh.seek(0)
        last = ""
        while block := w.fh.read(1 << 20):
            stdout.write(block)
            last = block[-1]
        if last != "\n":
            stdout.write("\n")
        stdout.flush()


def _result_of(item: BatchItem) -> ImageResult:
    if item.result is not None:
        return item.result
    return ImageResult(path=item.path, error=item.message or "not analysed")


def _print_summary(
    outcome: BatchOutcome,
    stream: TextIO,
    per_photo: bool,
    out_dir: str | None = None,
    skipped: Sequence[Any] = (),
) -> None:
    if per_photo:
        for item in outcome.items:
            tag = "ERROR " if item.status == ERROR else ""
            stream.write(f"{display(item.path)}: {tag}{display(item.message)}\n")
    _print_skipped(skipped, stream)
    s = summarize(outcome.items)
    genders = ", ".join(
        f"{s.by_gender[g]} {g}" for g in ("female", "male", "uncertain") if g in s.by_gender
    )
    parts = [f"{s.total} photo{'s' if s.total != 1 else ''}", f"{s.analysed} analysed"]
    if s.unchanged:
        parts.append(f"{s.unchanged} unchanged (skipped)")
    if s.failed:
        parts.append(f"{s.failed} failed")
    if s.cancelled:
        parts.append(f"{s.cancelled} cancelled")
    if skipped:
        parts.append(f"{len(skipped)} skipped (listed above)")
    parts.append(
        f"{s.faces} face{'s' if s.faces != 1 else ''}" + (f" ({genders})" if genders else "")
    )
    stream.write("summary: " + ", ".join(parts) + "\n")
    if out_dir:
        stream.write(f"annotated copies in {display(out_dir)}\n")
    stream.flush()


def cmd_info(
    args: argparse.Namespace, engine_factory: EngineFactory, stdout: TextIO, stderr: TextIO
) -> int:
    engine = engine_factory(args)
    _warn_unverified(engine, stderr)
    stdout.write(f"forensic-app {__version__}\n")
    stdout.write(f"execution provider: {getattr(engine, 'provider', '?')}\n")
    for m in _engine_models(engine):
        stdout.write(
            f"{display(m.role)}: {display(m.name)} {display(m.version or '')}\n"
            f"  {display(m.path)}\n  SHA-256 {m.sha256}\n"
            f"  precision {getattr(m, 'precision', 'fp32')}\n"
        )
    for note in getattr(engine, "notes", []) or []:
        stdout.write(f"note: {display(note)}\n")
    return EXIT_OK


def cmd_batch(
    args: argparse.Namespace, engine_factory: EngineFactory, stdout: TextIO, stderr: TextIO
) -> int:
    """Analyse into a case folder: resumable (unchanged photos skipped) and audited."""
    from forensic_app.core.case import ANNOTATED_DIR, RESULTS_DIR

    settings = settings_from_args(args)
    # The case's own folders are never read as evidence, even in a case made before markers.
    case_dirs = [os.path.join(args.case, d) for d in (ANNOTATED_DIR, RESULTS_DIR)]
    photos, preset, skipped = _collect(args, case_dirs)
    if not photos:
        _print_skipped(skipped, stderr)
        raise UsageError("no photos found in the given paths")
    if args.cluster:
        return _cmd_batch_cluster(
            args, engine_factory, settings, photos, preset, skipped, stdout, stderr
        )
    args.threads, workers = recommended_parallelism(
        len(photos), workers=args.workers, threads=args.threads
    )
    args.detector_threads = detector_threads(args.threads, workers)
    engine = engine_factory(args)
    _warn_unverified(engine, stderr)
    case = _open_batch_case(args, engine, settings, stderr)
    if case is None:
        return EXIT_FAILED
    with case:  # the writer lock is held for the whole run
        case.begin_batch(engine, settings, reanalyse=args.reanalyse, photos=len(photos))
        if skipped:
            case.log(audit.INPUTS_SKIPPED, files=[s.to_dict() for s in skipped])
        paths = [p.path for p in photos]
        try:
            outcome = _run_batch(
                engine, settings, case, paths, preset, workers, stderr, quiet=args.quiet
            )
        except KeyboardInterrupt:
            case.log(audit.INTERRUPTED, note="Ctrl-C: the batch stopped; results saved are kept")
            raise
        case.end_batch(outcome)
    _print_summary(outcome, stdout, per_photo=False, skipped=skipped)
    stdout.write(f"case folder: {display(case.root)}\n")
    return EXIT_OK if outcome.all_ok else EXIT_FAILED


def _case_unusable(root: str, exc: Exception, stderr: TextIO) -> int:
    """A folder that is no case is bad usage (2); a case whose manifest is missing or damaged
    (its audit log is there) is an integrity failure (4), named like any other case file."""
    from forensic_app.core.case import AUDIT_FILE, CASE_FILE

    stderr.write(f"forensic-app: error: {exc}\n")
    if (Path(root) / AUDIT_FILE).is_file():
        stderr.write(f"  INTEGRITY: {CASE_FILE}: missing or unusable in a case with an audit log\n")
        return EXIT_INTEGRITY
    return EXIT_USAGE


def _open_batch_case(args: argparse.Namespace, engine: Any, settings: Any, stderr: TextIO) -> Any:
    """The batch's case, opened or created as its writer (waiting with ``--wait``); None after
    saying why it cannot be (the local and the cluster batch open it the same way)."""
    from forensic_app.core.case import Case, CaseError

    try:
        if args.wait and not args.quiet:
            _say_if_busy(args.case, stderr)
        return Case.open_or_create(
            args.case, args.name, args.examiner, engine, settings, wait=args.wait
        )
    except CaseError as exc:
        stderr.write(f"forensic-app: error: {exc}\n")
        return None


def _say_if_busy(root: str, stderr: TextIO) -> None:
    from forensic_app.core.caselock import describe_holder, read_holder

    holder = read_holder(root)
    if holder:
        stderr.write(f"waiting for the case's writer to finish ({describe_holder(holder)})\n")
        stderr.flush()


def _print_verification(check: Any, stream: TextIO) -> None:
    for line in check.verified():
        stream.write(f"  {display(line)}\n")
    for note in check.notes:
        stream.write(f"  note: {display(note)}\n")
    for finding in check.findings:
        stream.write(f"  INTEGRITY: {display(finding.describe())}\n")
    for issue in check.input_issues:
        stream.write(f"  INTEGRITY: {display(issue.describe())}\n")


def _cmd_batch_cluster(
    args: argparse.Namespace,
    engine_factory: EngineFactory,
    settings: AnalysisSettings,
    photos: Sequence[Any],
    preset: dict[str, str],
    skipped: Sequence[Any],
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """``batch --cluster``: the workers analyse, this process writes the case (core/cluster.py).

    Exit 2 when the cluster cannot be used (address, version), 3 when a worker has other models,
    1 when the scheduler went away mid-batch (a rerun completes the case)."""
    from types import SimpleNamespace

    from forensic_app.core import cluster as cl

    if args.workers:
        raise UsageError("--workers is for a local batch; with --cluster, `dask worker` sets it")
    try:
        where = cl.ClusterAddress.parse(args.cluster)
        path_map = cl.PathMap.parse(args.path_map)
    except cl.ClusterError as exc:
        raise UsageError(str(exc)) from None
    args.threads = args.threads or 1  # the client's engine only vouches for the model hashes
    engine = engine_factory(args)
    _warn_unverified(engine, stderr)
    paths = [p.path for p in photos]
    spec = cl.WorkerSpec.for_engine(
        engine,
        settings,
        models_dir=args.models,
        gender_model=args.gender_model,
        threads=args.threads,
        precision=getattr(args, "precision", None),
        path_map=path_map,
    )
    try:
        with cl.connect(where, quiet=not args.verbose) as client:
            sample = next((p for p in paths if p not in preset and os.path.isfile(p)), None)
            infos = cl.check_workers(client, spec, path_map.to_worker(sample) if sample else None)
            providers = sorted({str(i.get("provider")) for i in infos.values()})
            if blind := cl.unfingerprinted(spec, infos):
                stderr.write(
                    f"note: {', '.join(blind)}: no Python sources to fingerprint (a frozen "
                    "bundle); only the tool version was compared, not the code\n"
                )
            if not args.quiet:
                stderr.write(
                    f"{where.describe()}: {len(infos)} worker(s) checked, same tool version "
                    f"and models ({', '.join(providers)})\n"
                )
            used = SimpleNamespace(models=engine.models, provider=", ".join(providers))
            case = _open_batch_case(args, used, settings, stderr)
            if case is None:
                return EXIT_FAILED
            with case:  # the writer lock is held for the whole run, as in a local batch
                case.begin_batch(used, settings, reanalyse=args.reanalyse, photos=len(paths))
                if skipped:
                    case.log(audit.INPUTS_SKIPPED, files=[s.to_dict() for s in skipped])
                reporter = StderrProgress(stderr, len(paths), quiet=args.quiet)
                runner = cl.ClusterBatchRunner(
                    engine,
                    settings,
                    client=client,
                    spec=spec,
                    path_map=path_map,
                    store=case,
                    on_item=reporter.on_item,
                    on_progress=reporter.on_progress,
                    keep_results=False,  # the case holds them: client memory stays flat
                )
                try:
                    outcome = runner.run(paths, preset_errors=preset)
                except KeyboardInterrupt:
                    note = "Ctrl-C: the batch stopped; results saved are kept"
                    case.log(audit.INTERRUPTED, note=note)
                    raise
                finally:
                    reporter.close()
                case.end_batch(outcome)
    except cl.WorkerModelError:
        raise  # a ModelError: exit 3
    except cl.ClusterError as exc:
        stderr.write(f"forensic-app: error: {exc}\n")
        return EXIT_USAGE
    _print_summary(outcome, stdout, per_photo=False, skipped=skipped)
    stdout.write(f"case folder: {display(case.root)}\n")
    if runner.stopped_by is not None:
        stderr.write(f"forensic-app: error: {runner.stopped_by}\n")
        return EXIT_MODEL if isinstance(runner.stopped_by, cl.WorkerModelError) else EXIT_FAILED
    return EXIT_OK if outcome.all_ok else EXIT_FAILED


def cmd_report(
    args: argparse.Namespace, engine_factory: EngineFactory, stdout: TextIO, stderr: TextIO
) -> int:
    """Write the HTML report; exit 4 (loudly) when an input changed since it was opened."""
    from forensic_app.core.case import Case, CaseError
    from forensic_app.core.report import write_report

    try:
        case = Case.open(args.case, args.examiner, writer=False)  # a reader writes nothing
    except CaseError as exc:
        return _case_unusable(args.case, exc, stderr)
    if args.format == "pdf":
        outcome = _write_pdf(case, args, stdout, stderr)
        if outcome is None:
            return EXIT_USAGE
    else:
        outcome = write_report(case, args.out, generated_by=args.examiner, log=not args.no_log)
        stdout.write(
            f"report written: {display(outcome.path)} ({outcome.photos} photos, {outcome.faces} "
            f"faces, SHA-256 {outcome.sha256})\n"
        )
    check = outcome.verification
    if check is not None:
        stdout.write("verified when the report was made:\n")
        _print_verification(check, stdout)
    if outcome.not_logged and not args.no_log:
        stderr.write(f"note: the export was not logged in the case: {outcome.not_logged}\n")
    if outcome.issues:
        stderr.write(
            f"INTEGRITY WARNING: {len(outcome.issues)} input file(s) changed or "
            "missing since they were opened:\n"
        )
        for issue in outcome.issues:
            stderr.write(f"  {display(issue.describe())}\n")
    if check is not None and check.findings:
        stderr.write(
            f"INTEGRITY WARNING: {len(check.findings)} problem(s) with the case's own files:\n"
        )
        for finding in check.findings:
            stderr.write(f"  {display(finding.describe())}\n")
    return EXIT_OK if outcome.ok else EXIT_INTEGRITY


def _write_pdf(case: Any, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> Any:
    """The PDF report through Qt (offscreen; imported only for this command)."""
    try:
        from forensic_app.gui.pdf_report import ensure_gui_application, write_pdf_report
    except ImportError as exc:
        stderr.write(f"forensic-app: error: the PDF report needs PySide6 ({exc})\n")
        return None
    ensure_gui_application()
    out = args.out or str(Path(args.case) / "report.pdf")
    outcome = write_pdf_report(case, out, generated_by=args.examiner, log=not args.no_log)
    stdout.write(
        f"report written: {outcome.path} ({outcome.pages} pages, SHA-256 {outcome.sha256})\n"
    )
    return outcome


def cmd_case(
    args: argparse.Namespace, engine_factory: EngineFactory, stdout: TextIO, stderr: TextIO
) -> int:
    """``case verify``: the audit chain, every case file and every input photo; exit 4 naming
    each file that does not verify. Reads only; the check is logged when the case may be
    written now (not with ``--no-log``, on read-only media or beside a live writer)."""
    from forensic_app.core import audit
    from forensic_app.core.case import Case, CaseError
    from forensic_app.core.casecheck import verify_case

    try:
        case = Case.open(args.case, writer=False)
    except CaseError as exc:
        return _case_unusable(args.case, exc, stderr)
    check = verify_case(case, seal=args.seal)
    records = check.records
    stdout.write(f"case: {display(case.name)}\n")
    stdout.write(f"photos: {len(records)} ({sum(1 for r in records if not r.ok)} failed)\n")
    _print_verification(check, stdout)
    if not args.no_log:
        entry, why = case.try_log(
            audit.INTEGRITY_CHECK,
            None,
            files=check.inputs_checked,
            problems=check.problems(),
            verified_head=check.head,
        )
        if entry is None:
            stderr.write(f"note: this check was not logged in the case: {why}\n")
        else:
            stdout.write(f"  this check was logged; new chain head: {entry['line_sha256']}\n")
    if not check.ok:
        stdout.write(f"integrity: NOT verified ({len(check.problems())} problem(s))\n")
        return EXIT_INTEGRITY
    stdout.write(
        "integrity: verified: every case file matches the audit log and all input photos "
        "match their SHA-256\n"
    )
    return EXIT_OK


COMMANDS: dict[str, Callable[..., int]] = {
    "analyze": cmd_analyze,
    "batch": cmd_batch,
    "report": cmd_report,
    "case": cmd_case,
    "info": cmd_info,
}


class _EscapingFormatter(logging.Formatter):
    """Log lines quote file names: escape them (core/names.py) so no name can drive the
    terminal; line breaks of tracebacks are kept."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(display(line) for line in super().format(record).split("\n"))


def _setup_logging(stderr: TextIO, verbose: bool) -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(stderr)
    handler.setFormatter(_EscapingFormatter("%(levelname)s %(name)s: %(message)s"))
    for h in list(root.handlers):
        if getattr(h, "_forensic_cli", False):
            root.removeHandler(h)
    handler._forensic_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)


class _ClosedStream(io.StringIO):
    """Stands in for a standard stream the shell closed; what is written to it is dropped."""

    closed_by_shell = True

    def write(self, text: str) -> int:
        return len(text)


def main(
    argv: Sequence[str] | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command line; returns the exit status (never calls sys.exit itself)."""
    # A closed stdout/stderr (``>&-``) leaves sys.stdout None: messages then go nowhere, but
    # the run still writes its files; ``--json -``/``--csv -`` are refused before any work.
    stdout = stdout or sys.stdout or _ClosedStream()
    stderr = stderr or sys.stderr or _ClosedStream()
    parser = build_parser()
    try:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = stdout, stderr  # argparse prints help/version/usage there
        try:
            args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        finally:
            sys.stdout, sys.stderr = old_out, old_err
    except SystemExit as exc:  # --help/--version (0) or bad usage (2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    _setup_logging(stderr, getattr(args, "verbose", False))
    command = COMMANDS[args.command]
    from forensic_app.core.modelstore import ModelError

    try:
        return command(args, engine_factory or default_engine_factory, stdout, stderr)
    except UsageError as exc:
        parser.print_usage(stderr)
        stderr.write(f"forensic-app: error: {exc}\n")
        return EXIT_USAGE
    except ModelError as exc:
        stderr.write(f"forensic-app: model error: {display(exc)}\n")
        return EXIT_MODEL
    except atomic.ProtectedFileError as exc:
        stderr.write(f"forensic-app: error: {display(exc)}\n")
        return EXIT_USAGE
    except CaseBusyError as exc:
        stderr.write(f"forensic-app: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        stderr.write("\nforensic-app: interrupted; results already written are kept\n")
        return EXIT_INTERRUPTED
    except OSError as exc:
        stderr.write(f"forensic-app: error: {display(exc)}\n")
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
