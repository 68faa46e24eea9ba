"""Batch progress: counts, throughput and an ETA, plus a plain-text bar for the command line.

Why its own module: the CLI prints it on stderr and the GUI shows it in a status bar; both read
the same numbers so the two front ends never disagree about how far a batch is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    """How far a batch is. ``done`` counts every finished photo (analysed, skipped or failed)."""

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.monotonic)
    #: Time spent on photos actually analysed (skipped ones are nearly free and would skew the ETA).
    _work_done: int = 0
    _work_started: float | None = None

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def photos_per_s(self) -> float | None:
        if self._work_done == 0 or self._work_started is None:
            return None
        span = time.monotonic() - self._work_started
        return self._work_done / span if span > 0 else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left, from the analysed-photo rate; None until one photo was analysed."""
        rate = self.photos_per_s
        if rate is None or rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / rate)

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else min(1.0, self.done / self.total)

    def mark_started_work(self) -> None:
        if self._work_started is None:
            self._work_started = time.monotonic()

    def record(self, *, failed: bool = False, skipped: bool = False) -> None:
        self.done += 1
        if failed:
            self.failed += 1
        if skipped:
            self.skipped += 1
        else:
            self._work_done += 1


def format_duration(seconds: float | None) -> str:
    """``h:mm:ss`` or ``m:ss``; ``--:--`` when unknown."""
    if seconds is None:
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def format_bar(progress: Progress, width: int = 30) -> str:
    """``[#########.........] 12/40  2 failed  ETA 0:31`` for a terminal line."""
    filled = int(round(progress.fraction * width))
    bar = "#" * filled + "." * (width - filled)
    parts = [f"[{bar}] {progress.done}/{progress.total}"]
    if progress.failed:
        parts.append(f"{progress.failed} failed")
    if progress.skipped:
        parts.append(f"{progress.skipped} unchanged")
    rate = progress.photos_per_s
    if rate:
        parts.append(f"{rate:.2f} photos/s")
    parts.append(f"ETA {format_duration(progress.eta_s)}")
    return "  ".join(parts)
