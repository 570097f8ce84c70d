"""Counters and progress display for copy/sync.

Why here and not in the CLI: the engine produces the events (run finished,
1000 points written) from worker threads, and library users want the same
numbers (``Stats.as_dict()``) without a terminal.  The display is chosen once:
a rich live bar on a terminal, one plain line per run otherwise (logs, CI),
nothing for ``--json``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields
from typing import IO, Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text


@dataclass
class Stats:
    """What one invocation did.  ``add`` is thread-safe."""

    runs_selected: int = 0
    runs_created: int = 0
    runs_resumed: int = 0
    runs_updated: int = 0
    runs_skipped: int = 0
    runs_failed: int = 0
    runs_deleted: int = 0
    points: int = 0
    params: int = 0
    tags: int = 0
    artifacts: int = 0
    bytes: int = 0
    models: int = 0
    #: media points (histograms, images...) sent, natively or as files.
    media: int = 0
    model_versions: int = 0
    aliases: int = 0
    #: transient failures that were retried (and then either succeeded or were reported).
    retries: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        del out["started"]
        out["elapsed_s"] = round(self.elapsed, 3)
        out["points_per_s"] = round(self.points / self.elapsed, 1) if self.elapsed > 0 else 0.0
        return out


class Reporter(Protocol):
    """Receives engine events; implementations must be thread-safe.

    The totals grow while the copy runs (``more``, one run at a time, as the planner
    yields it: the first runs are copied while later ones are still read) until
    ``planned`` says they are final."""

    def start(self, runs: int, points: int | None, bytes_: int | None) -> None: ...
    def more(self, runs: int, points: int, bytes_: int) -> None: ...
    def planned(self) -> None: ...
    def advance(self, points: int = 0, bytes_: int = 0) -> None: ...
    def run_done(self, action: str, label: str, detail: str = "") -> None: ...
    def close(self) -> None: ...


class NullReporter:
    """For ``--json`` and library calls: the numbers are in :class:`Stats`."""

    def start(self, runs: int, points: int | None, bytes_: int | None) -> None:
        pass

    def more(self, runs: int, points: int, bytes_: int) -> None:
        pass

    def planned(self) -> None:
        pass

    def advance(self, points: int = 0, bytes_: int = 0) -> None:
        pass

    def run_done(self, action: str, label: str, detail: str = "") -> None:
        pass

    def close(self) -> None:
        pass


class PlainReporter(NullReporter):
    """One line per finished run, for logs and CI (stderr is not a terminal)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0
        #: the total is final (else a run line shows "[3/5+]": more runs are being planned).
        self._final = True

    def start(self, runs: int, points: int | None, bytes_: int | None) -> None:
        self._total, self._final = runs, False

    def more(self, runs: int, points: int, bytes_: int) -> None:
        with self._lock:
            self._total += runs

    def planned(self) -> None:
        self._final = True

    def _of_total(self) -> str:
        """The runs planned so far, "5+" while more are being planned."""
        return f"{self._total}{'' if self._final else '+'}"

    def run_done(self, action: str, label: str, detail: str = "") -> None:
        with self._lock:
            self._done += 1
            line = f"[{self._done}/{self._of_total()}] {action:<9} {label}"
            self.stream.write(f"{line}  {detail}\n" if detail else line + "\n")
            self.stream.flush()


class RateColumn(ProgressColumn):
    """Items per second (rich's own speed column assumes bytes)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="progress.data.speed")


class RichReporter(NullReporter):
    """Live bars: runs, points and bytes, each with rate and ETA."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
            RateColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self._runs: TaskID | None = None
        self._points: TaskID | None = None
        self._bytes: TaskID | None = None
        #: runs, points and bytes planned so far (the bars' totals).
        self._totals = [0, 0, 0]

    def start(self, runs: int, points: int | None, bytes_: int | None) -> None:
        self._totals = [runs, points or 0, bytes_ or 0]
        self.progress.start()
        self._runs = self.progress.add_task("runs", total=runs)
        self._points = self.progress.add_task("points", total=points)
        self._bytes = self.progress.add_task("bytes", total=bytes_)

    def more(self, runs: int, points: int, bytes_: int) -> None:
        for i, (task, count) in enumerate(((self._runs, runs), (self._points, points), (self._bytes, bytes_))):
            if task is not None and count:
                self._totals[i] += count
                self.progress.update(task, total=self._totals[i])

    def advance(self, points: int = 0, bytes_: int = 0) -> None:
        if points and self._points is not None:
            self.progress.advance(self._points, points)
        if bytes_ and self._bytes is not None:
            self.progress.advance(self._bytes, bytes_)

    def run_done(self, action: str, label: str, detail: str = "") -> None:
        if self._runs is not None:
            self.progress.advance(self._runs)
        if action == "failed":
            self.progress.console.print(f"[red]{action}[/] {label}  {detail}")

    def close(self) -> None:
        self.progress.stop()


def make_reporter(console: Console, quiet: bool) -> Reporter:
    """Rich bars on a terminal, plain lines otherwise, nothing when ``quiet``."""
    if quiet:
        return NullReporter()
    if console.is_terminal:
        return RichReporter(console)
    return PlainReporter(console.file)


def summary_table(stats: Stats, title: str = "summary") -> Table:
    """The final table every copy/sync prints."""
    data = stats.as_dict()
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in ("runs_selected", "runs_created", "runs_resumed", "runs_updated", "runs_skipped",
                "runs_failed", "runs_deleted", "points", "params", "tags", "artifacts", "bytes",
                "models", "media", "model_versions", "aliases", "retries", "elapsed_s", "points_per_s"):
        if data[key] or key in ("runs_selected", "elapsed_s"):
            table.add_row(key.replace("_", " "), f"{data[key]:,}" if isinstance(data[key], int) else str(data[key]))
    return table
