"""Reading a folder tree of TensorBoard runs, streaming the event files.

TensorBoard's ``EventAccumulator`` keeps a sample (10,000 scalars, one histogram and four
images per tag) and drops "orphaned" events after a restart; this reader streams every
record instead (:mod:`.records`), so every point is copied with its step and wall time.

* A run is a folder holding ``*tfevents*`` files, the folder ``PATH`` itself included; its
  id is its path relative to ``PATH`` (``.`` for ``PATH``), its name the folder's name, its
  parent the nearest folder above it that is a run (``add_hparams`` writes its session into
  a sub-folder of the run, so that session is the run's child).
* One experiment, named after ``PATH``'s folder: TensorBoard shows one logdir as one
  experiment whose runs are its sub-folders.
* Event files are read in name order (their names start with the writer's creation time),
  as TensorBoard does.  A run is scanned once for its listing (keys, last points, media,
  hparams) and the scan is kept until a file of the run changes.
* A series is read by scanning for its tag: records whose bytes do not hold the tag are
  not decoded, so reading one key of many costs little more than reading the files.
* Other files in a run's folder (checkpoints, a projector config) are its artifacts.
"""
from __future__ import annotations

import os
import shutil
from array import array
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from trackbridge.backends.base import Reader, RunFilter
from trackbridge.backends.tensorboard import events
from trackbridge.backends.tensorboard.protos import protos
from trackbridge.backends.tensorboard.records import mapped, record_at, walk
from trackbridge.errors import RunNotFound
from trackbridge.history import pages
from trackbridge.model import (
    ArtifactInfo,
    Experiment,
    MediaPoint,
    MediaSeries,
    MetricPoint,
    MetricSummary,
    RunRecord,
    RunStatus,
)

#: the hparams plugin's session end status -> run status (0, unknown: a finished run).
_STATUS = {1: RunStatus.FINISHED, 2: RunStatus.FAILED, 3: RunStatus.RUNNING}
ROOT_RUN = "."


def is_event_file(name: str) -> bool:
    return "tfevents" in name


@dataclass
class _Series:
    kind: str  # "scalar" or a media kind
    count: int = 0
    #: (step, value, ms) of the latest scalar point (a summary is made only when listed)
    last: tuple[int, float, int] | None = None
    #: (file number, byte offsets of the records holding the series' values), in order:
    #: 8 bytes a point, so reading a series touches only its own records.
    spans: list[tuple[int, array]] = field(default_factory=list)

    def at(self, file_number: int, offset: int) -> None:
        """Remember that the record at ``offset`` of file ``file_number`` holds a value."""
        if not self.spans or self.spans[-1][0] != file_number:
            self.spans.append((file_number, array("q")))
        offsets = self.spans[-1][1]
        if not offsets or offsets[-1] != offset:
            offsets.append(offset)


@dataclass
class RunScan:
    """What one pass over a run's event files finds: everything a run listing says."""

    files: list[Path]
    start: int | None = None
    end: int | None = None
    series: dict[str, _Series] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    status: RunStatus = RunStatus.FINISHED
    plugins: events.Plugins = field(default_factory=events.Plugins)
    unread: dict[str, str] = field(default_factory=dict)


def _signature(files: list[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for path in files:
        stat = path.stat()
        out.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


class TensorboardReader(Reader):
    """Runs under ``root``; ``platform`` names the backend that opened it."""

    def __init__(self, root: Path, platform: str) -> None:
        self.root = root
        self.platform = platform
        self.experiment = root.resolve().name or "tensorboard"
        self._lock = threading.Lock()
        self._scans: dict[str, tuple[tuple[tuple[str, int, int], ...], RunScan]] = {}
        #: (run, key) -> where each media point's bytes are: (file, record offset, index in the record)
        self._media_at: dict[tuple[str, str], list[tuple[Path, int, int]]] = {}

    # -- layout --------------------------------------------------------------------

    def _run_dirs(self) -> dict[str, Path]:
        """run id -> folder, parents before children."""
        found: dict[str, Path] = {}
        for folder, dirs, files in os.walk(self.root):
            dirs.sort()
            if any(is_event_file(name) for name in files):
                rel = Path(folder).relative_to(self.root).as_posix()
                found[rel] = Path(folder)
        return found

    def _folder(self, run_id: str) -> Path:
        folder = self.root / run_id
        if not folder.is_dir() or not self._event_files(folder):
            raise RunNotFound(f"tensorboard:{self.root}: no run {run_id!r} (a folder holding event files)")
        return folder

    @staticmethod
    def _event_files(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.is_file() and is_event_file(p.name))

    # -- scanning ------------------------------------------------------------------

    def scan(self, run_id: str) -> RunScan:
        """The run's scan, from the cache while none of its event files changed."""
        files = self._event_files(self._folder(run_id))
        signature = _signature(files)
        with self._lock:
            cached = self._scans.get(run_id)
        if cached is not None and cached[0] == signature:
            return cached[1]
        scan = self._scan(files)
        with self._lock:
            self._scans[run_id] = (signature, scan)
        return scan

    def _scan(self, files: list[Path]) -> RunScan:
        event_class, hparams_class = protos()
        scan = RunScan(files)
        first = last = None
        for number, path in enumerate(files):
            with mapped(path) as view:
                for offset, data in walk(view, path):
                    event = event_class.FromString(data)
                    at = round(event.wall_time * 1000)
                    first = at if first is None or at < first else first
                    last = at if last is None or at > last else last
                    values = event.summary.value
                    if not values and (event.HasField("graph_def") or event.HasField("meta_graph_def")):
                        scan.unread["graph"] = "TensorBoard graphs are not part of the canonical run"
                    for value in values:
                        if value.WhichOneof("value") == "simple_value":  # most values: the short way
                            series = scan.series.get(value.tag)
                            if series is None:
                                series = scan.series[value.tag] = _Series("scalar")
                            series.count += 1
                            series.last = (event.step, float(value.simple_value), at)
                            series.at(number, offset)
                        else:
                            self._scan_value(scan, value, event.step, at, hparams_class, (number, offset))
        scan.start, scan.end = first, last
        return scan

    def _scan_value(self, scan: RunScan, value: Any, step: int, at: int, hparams_class: Any,
                    where: tuple[int, int]) -> None:
        plugin = scan.plugins.of(value)
        if plugin == events.HPARAMS_PLUGIN:
            params, status = events.hparams(value, hparams_class)
            scan.params.update(params)
            if status is not None:
                scan.status = _STATUS.get(status, RunStatus.FINISHED)
            return
        number = events.scalar(value, plugin)
        if number is not None:
            series = scan.series.setdefault(value.tag, _Series("scalar"))
            series.count += 1
            series.last = (step, number, at)
            series.at(*where)
            return
        found = events.media(value, plugin)
        if found:
            series = scan.series.setdefault(value.tag, _Series(found[0].kind))
            series.count += len(found)
            series.at(*where)
            return
        scan.unread[f"tag:{value.tag}"] = (f"{plugin or value.WhichOneof('value')} values are not part of the "
                                           "canonical run")

    def _matching(self, scan: RunScan, key: str) -> Iterator[tuple[Path, int, Any, Any]]:
        """``(file, offset, event, value)`` of every value of tag ``key``, in order, read at
        the offsets the scan found them (no other record is read)."""
        series = scan.series.get(key)
        if series is None:
            return
        from_string = protos().event.FromString
        for number, offsets in series.spans:
            path = scan.files[number]
            with mapped(path) as view:
                for offset in offsets:
                    event = from_string(record_at(view, offset))
                    for value in event.summary.value:
                        if value.tag == key:
                            yield path, offset, event, value

    # -- Reader --------------------------------------------------------------------

    def list_experiments(self) -> Iterator[Experiment]:
        if self._run_dirs():
            yield Experiment(self.experiment, self.experiment)

    def get_experiment(self, name: str) -> Experiment | None:
        return next((e for e in self.list_experiments() if e.name == name), None)

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        if experiment != self.experiment:
            return
        folders = self._run_dirs()
        for run_id in folders:
            record = self._record(run_id, folders)
            if run_filter is None or run_filter.matches(record):
                yield record

    def get_run(self, run_id: str) -> RunRecord:
        self._folder(run_id)
        return self._record(run_id, self._run_dirs())

    def _record(self, run_id: str, folders: dict[str, Path]) -> RunRecord:
        scan = self.scan(run_id)
        parent = None
        if run_id != ROOT_RUN:
            for above in PurePosixPath(run_id).parents:
                candidate = above.as_posix()
                if candidate in folders:
                    parent = candidate
                    break
        name = self.experiment if run_id == ROOT_RUN else PurePosixPath(run_id).name
        return RunRecord(
            platform=self.platform, run_id=run_id, experiment=self.experiment, experiment_id=self.experiment,
            name=name, status=scan.status, start_time=scan.start, end_time=scan.end, parent_run_id=parent,
            url=(self.root / run_id).resolve().as_uri(), params=dict(scan.params),
            metrics={k: MetricSummary(k, s.last[1], s.last[0], s.last[2])
                     for k, s in scan.series.items() if s.kind == "scalar" and s.last is not None},
            media={k: MediaSeries(s.kind, s.count) for k, s in scan.series.items() if s.kind != "scalar"},
            unread=dict(scan.unread))

    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        """Read at the offsets the scan found, in one tight loop: this is where a million
        points go (``benchmarks/tensorboard_read.py``)."""
        scan = self.scan(run_id)
        series = scan.series.get(key)
        if series is None or series.kind != "scalar":
            return iter(())
        return pages(self._points(scan, series, key), page_size)

    @staticmethod
    def _points(scan: RunScan, series: _Series, key: str) -> Iterator[MetricPoint]:
        plugin = scan.plugins.get(key, "")
        from_string = protos().event.FromString
        for number, offsets in series.spans:
            with mapped(scan.files[number]) as view:
                for offset in offsets:
                    event = from_string(record_at(view, offset))
                    for value in event.summary.value:
                        if value.tag != key:
                            continue
                        if value.WhichOneof("value") == "simple_value":
                            got: float | None = float(value.simple_value)
                        else:
                            got = events.scalar(value, plugin)
                            if got is None:
                                continue
                        yield MetricPoint(event.step, got, round(event.wall_time * 1000))

    def iter_media(self, run_id: str, key: str) -> Iterator[MediaPoint]:
        scan = self.scan(run_id)
        where: list[tuple[Path, int, int]] = []
        for path, offset, event, value in self._matching(scan, key):
            for index, item in enumerate(events.media(value, scan.plugins.of(value)) or ()):
                ordinal = len(where)
                where.append((path, offset, index))
                yield MediaPoint(event.step, round(event.wall_time * 1000), item.kind, data=item.data,
                                 file=f"{ordinal}.{item.extension}" if item.payload is not None else None,
                                 meta=item.meta or {})
        with self._lock:
            self._media_at[(run_id, key)] = where

    def download_media(self, run_id: str, key: str, point: MediaPoint, dst_dir: Path) -> Path:
        """The point's bytes, read at the record :meth:`iter_media` found it in."""
        assert point.file is not None
        ordinal = int(point.file.split(".", 1)[0])
        with self._lock:
            where = self._media_at.get((run_id, key))
        if where is None:
            for _ in self.iter_media(run_id, key):
                pass
            with self._lock:
                where = self._media_at[(run_id, key)]
        path, offset, index = where[ordinal]
        with mapped(path) as view:
            event = protos().event.FromString(record_at(view, offset))
        scan = self.scan(run_id)
        value = next(v for v in event.summary.value if v.tag == key)
        item = (events.media(value, scan.plugins.of(value)) or [])[index]
        dst_dir.mkdir(parents=True, exist_ok=True)
        local = dst_dir / point.file
        local.write_bytes(item.payload or b"")
        return local

    def _artifact_files(self, run_id: str) -> Iterator[tuple[str, Path]]:
        folder = self._folder(run_id)
        for here, dirs, files in os.walk(folder):
            # a sub-folder holding event files is another run, with its own files
            dirs[:] = sorted(d for d in dirs if not any(is_event_file(n) for n in os.listdir(Path(here) / d)))
            for name in sorted(files):
                if not is_event_file(name):
                    local = Path(here) / name
                    yield local.relative_to(folder).as_posix(), local

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        for rel, local in self._artifact_files(run_id):
            yield ArtifactInfo(rel, local.stat().st_size)

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        for rel, local in self._artifact_files(run_id):
            if rel == path:
                target = dst_dir.joinpath(*PurePosixPath(path).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local, target)
                return target
        raise FileNotFoundError(f"tensorboard:{self.root}: run {run_id!r} has no file {path!r}")
