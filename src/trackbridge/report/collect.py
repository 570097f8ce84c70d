"""What ``check --report`` collects while ``check`` runs: the report's data model.

Why a collector and not a second pass: reading a migration twice (millions of points,
remote APIs) would double the cost of ``check``.  :class:`ReportCollector` is handed to
:class:`~trackbridge.sync.check.Checker`, which calls it with what it already has in
hand: each run's records and fitted view, the params and tags it compares, the files it
lists, and every metric page as it streams past (downsampled here, in bounded memory).
``check`` without ``--report`` passes no collector and pays nothing.

The checker compares runs on several threads: every method is safe to call from any of
them (one lock; each call touches one run's entry).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from trackbridge.model import ArtifactInfo, MediaSeries, MetricPoint, RegisteredModel, RunRecord
from trackbridge.report.data import ModelData, RunData, RunDigest, SeriesData
from trackbridge.report.downsample import Downsampler
from trackbridge.report.views import digest
from trackbridge.sync.check import Finding, SeriesDiff
from trackbridge.sync.fit import FittedRun, Target
from trackbridge.sync.rich import plain_files

Pages = Callable[[], Iterable[list[MetricPoint]]]


class SeriesTap:
    """Wraps the two page factories ``compare_series`` reads, feeding each page it streams
    to a :class:`Downsampler`.  ``compare_series`` may open a side twice (a fast pairwise
    pass that stops at the first mismatch, then a full one): each new pass starts its
    downsampler afresh, so what is kept is the last, complete pass."""

    def __init__(self, data: SeriesData) -> None:
        self.data = data

    def wrap(self, src: Pages, dst: Pages) -> tuple[Pages, Pages]:
        return (lambda: self._feed(src(), "source")), (lambda: self._feed(dst(), "destination"))

    def _feed(self, pages: Iterable[list[MetricPoint]], side: str) -> Iterator[list[MetricPoint]]:
        sampler = Downsampler()
        setattr(self.data, side, sampler)
        for page in pages:
            sampler.add(page)
            yield page

    def done(self, diff: SeriesDiff) -> None:
        self.data.diff = diff


class ReportCollector:
    """Implements the checker's collector hooks (see :class:`trackbridge.sync.check.Checker`).

    What the hooks see of a run is gathered in a :class:`RunData` until the checker is
    done with the run, then reduced to a :class:`RunDigest` at once (on the checker's
    thread), so memory grows by a digest per run, not by its records and series."""

    def __init__(self, target: Target | None = None) -> None:
        """``target``: the destination as the checker sees it, so the registry section
        marks only what ``check`` compares there (no stage where it keeps none, no alias
        it manages itself)."""
        self.stages = target is None or target.can("stages")
        self.reserved_aliases: frozenset[str] = target.features.reserved_aliases if target is not None else frozenset()
        self._lock = threading.Lock()
        self.runs: dict[str, RunDigest] = {}
        self.models: list[ModelData] = []
        self._pending: dict[str, dict[str, Any]] = {}

    def _entry(self, run_id: str) -> dict[str, Any]:
        with self._lock:
            return self._pending.setdefault(run_id, {"fields": {}, "series": {}})

    def fields(self, run_id: str, fitted: FittedRun,
               compared: dict[str, tuple[dict[str, str], dict[str, str]]]) -> None:
        """The fitted view of a run and the params/tags as compared (expected, found)."""
        entry = self._entry(run_id)
        entry["fitted"] = fitted
        entry["fields"].update(compared)

    def series(self, run_id: str, key: str) -> SeriesTap:
        data = SeriesData(key)
        self._entry(run_id)["series"][key] = data
        return SeriesTap(data)

    def files(self, run_id: str, src_listed: list[ArtifactInfo], dst_listed: list[ArtifactInfo]) -> None:
        entry = self._entry(run_id)
        entry["src_files"], entry["dst_files"] = list(plain_files(src_listed)), list(plain_files(dst_listed))

    def media(self, run_id: str, src_media: dict[str, MediaSeries], dst_media: dict[str, MediaSeries]) -> None:
        entry = self._entry(run_id)
        entry["src_media"], entry["dst_media"] = dict(src_media), dict(dst_media)

    def run(self, finding: Finding, src: RunRecord, dst: RunRecord | None) -> None:
        """A run is done (compared, missing or failed): digest what the other hooks saw."""
        with self._lock:
            entry = self._pending.pop(src.run_id, {"fields": {}, "series": {}})
        data = RunData(finding, src, dst, entry.get("fitted"), entry["fields"], entry["series"],
                       entry.get("src_files", []), entry.get("dst_files", []),
                       entry.get("src_media", {}), entry.get("dst_media", {}))
        summary = digest(data)
        with self._lock:
            self.runs[src.run_id] = summary

    def model(self, finding: Finding, src: RegisteredModel, dst: RegisteredModel | None) -> None:
        with self._lock:
            self.models.append(ModelData(finding, src, dst))
