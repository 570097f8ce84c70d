"""Progress off a terminal: a line per finished run, and a heartbeat line while one runs.

Why a heartbeat: the plain reporter (logs, CI, ``nohup``) printed only when a run
finished, so one long run (millions of points, gigabytes of artifacts) showed nothing
for an hour and looked hung.  Every ``interval`` seconds while a copy is going on, a
line says how far it got.  On a terminal rich's live bars do that already.
"""
from __future__ import annotations

import threading
import time
from typing import IO

from rich.console import Console

from trackbridge.sync.progress import PlainReporter, Reporter, make_reporter

#: seconds between two heartbeat lines.
HEARTBEAT_INTERVAL = 30.0


class HeartbeatReporter(PlainReporter):
    """:class:`PlainReporter` plus a line every ``interval`` seconds with the runs,
    points and bytes done so far (of the planned totals when known)."""

    def __init__(self, stream: IO[str], interval: float = HEARTBEAT_INTERVAL) -> None:
        super().__init__(stream)
        self.interval = interval
        self._points = 0
        self._bytes = 0
        self._points_total: int | None = None
        self._bytes_total: int | None = None
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, runs: int, points: int | None, bytes_: int | None) -> None:
        super().start(runs, points, bytes_)
        self._points_total, self._bytes_total = points, bytes_
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._beat, name="trackbridge-progress", daemon=True)
        self._thread.start()

    def more(self, runs: int, points: int, bytes_: int) -> None:
        with self._lock:
            self._total += runs
            self._points_total = (self._points_total or 0) + points
            self._bytes_total = (self._bytes_total or 0) + bytes_

    def advance(self, points: int = 0, bytes_: int = 0) -> None:
        with self._lock:
            self._points += points
            self._bytes += bytes_

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                points = f"{self._points:,}" + (f"/{self._points_total:,}" if self._points_total else "")
                size = f"{self._bytes:,}" + (f"/{self._bytes_total:,}" if self._bytes_total else "")
                line = (f"... {self._done}/{self._of_total()} runs done, {points} points, {size} bytes, "
                        f"{time.monotonic() - self._started:,.0f} s\n")
                self.stream.write(line)
                self.stream.flush()


def reporter_for(console: Console, quiet: bool) -> Reporter:
    """Rich bars on a terminal, plain lines with a heartbeat otherwise, nothing when ``quiet``."""
    if quiet or console.is_terminal:
        return make_reporter(console, quiet)
    return HeartbeatReporter(console.file)
