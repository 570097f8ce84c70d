"""Reading neptune-exporter's parquet parts (``model.py``'s ``SCHEMA``: one row per value:
``project_id``, ``run_id``, ``attribute_path``, ``attribute_type``, ``step``
decimal(18, 6), ``timestamp`` ms UTC, one typed value column per kind).

* Runs are the complete ones (:func:`.layout.complete_runs`); ids come from the columns.
* ``sys/`` attributes are run fields: ``sys/name`` the name, ``sys/creation_time`` the
  start, ``sys/modification_time`` the end, ``sys/owner`` the user, ``sys/tags`` the
  labels, ``sys/description`` the notes, ``sys/failed`` the status, ``sys/forking/parent``
  the parent run (a fork; ``sys/forking/step``, the fork point, is the tag
  ``neptune.forking.step``); other ``sys/`` values are tags under their path.
* Other single values (int, float, string, bool, datetime as ISO text, string sets as
  sorted lists) are params under their attribute path.
* ``float_series`` are metric series; ``string_series`` media ``text``;
  ``histogram_series`` media ``histogram`` (``{"bins": edges, "values": counts}``, the
  Neptune histogram ``type`` in ``meta``); ``file_series`` of images media ``image``;
  ``file``, ``file_set`` and ``artifact`` values are the run's files, under their path.
* Steps are decimals.  Where every step of a run is integral they are the steps; else
  every step is multiplied by ``10**d`` (``d`` the decimals the run uses, at most 6), and
  the run's ``carried`` says so (``plan`` lists it): the mapping is exact and stated.
"""
from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

from trackbridge.backends.base import Reader, RunFilter
from trackbridge.backends.neptune_export.layout import RunFiles, complete_runs, roots, sanitize_path_part
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

PARAM_TYPES = {"int": "int_value", "float": "float_value", "string": "string_value", "bool": "bool_value",
               "datetime": "datetime_value", "string_set": "string_set_value"}
FILE_TYPES = ("file", "file_set", "artifact")
MEDIA_TYPES = {"string_series": "text", "histogram_series": "histogram", "file_series": "image"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
COLUMNS = ["project_id", "run_id", "attribute_path", "attribute_type", "step", "timestamp", "int_value",
           "float_value", "string_value", "bool_value", "datetime_value", "string_set_value", "file_value",
           "histogram_value"]


def _ms(moment: Any) -> int | None:
    return None if moment is None else round(moment.timestamp() * 1000)


def _value(row: dict[str, Any]) -> Any:
    value = row[PARAM_TYPES[row["attribute_type"]]]
    if row["attribute_type"] == "datetime" and value is not None:
        return value.isoformat()
    if row["attribute_type"] == "string_set":
        return sorted(value or [])
    return value


def _step_decimals(steps: Any) -> int:
    """The fewest decimals (0-6) that make every step of ``steps`` (decimal(18, 6)) whole:
    the smallest ``d`` for which ``step * 10**d`` casts to an integer without loss."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for decimals in range(6):
        scaled = pc.multiply(steps, pa.scalar(Decimal(10 ** decimals), type=pa.decimal128(7, 0)))
        try:
            pc.cast(scaled, pa.int64())
        except pa.ArrowInvalid:
            continue
        return decimals
    return 6


@dataclass
class _Series:
    kind: str  # "metric" or a media kind
    count: int = 0
    last: tuple[Decimal, float, int] | None = None


@dataclass
class RunScan:
    files: RunFiles
    project: str = ""
    run_id: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    series: dict[str, _Series] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # run file path -> path under the files folder
    decimals: int = 0
    unread: dict[str, str] = field(default_factory=dict)

    @property
    def scale(self) -> int:
        return 10 ** self.decimals

    def step(self, step: Decimal | None) -> int:
        return 0 if step is None else int(step * self.scale)


def _rows(files: RunFiles, attribute: str | None = None) -> Iterator[dict[str, Any]]:
    """Every row of the run's parts, in order (only ``attribute``'s when given, pushed down
    to the parquet reader)."""
    import pyarrow.parquet as pq

    for part in files.parts:
        table = pq.read_table(part, columns=COLUMNS,
                              filters=[("attribute_path", "=", attribute)] if attribute is not None else None)
        for batch in table.to_batches():
            data = batch.to_pydict()
            yield from (dict(zip(data, values)) for values in zip(*data.values()))


class NeptuneExportReader(Reader):
    """Runs under ``path`` (an ``exports`` folder or its ``data`` folder)."""

    def __init__(self, path: Path, platform: str) -> None:
        self.data, self.files = roots(path)
        self.platform = platform
        self._lock = threading.Lock()
        self._scans: dict[RunFiles, RunScan] = {}

    def _scan(self, files: RunFiles) -> RunScan:
        """One pass over the run's parts.  The metric rows (nearly all of a run) are
        summarised by pyarrow (count and last row per series, the decimals the steps use);
        the few other rows are read one by one."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        with self._lock:
            if files in self._scans:
                return self._scans[files]
        scan = RunScan(files)
        for part in files.parts:
            table = pq.read_table(part, columns=COLUMNS)
            if table.num_rows:
                scan.project, scan.run_id = table["project_id"][0].as_py(), table["run_id"][0].as_py()
            scan.decimals = max(scan.decimals, _step_decimals(table["step"]))
            is_metric = pc.fill_null(pc.equal(table["attribute_type"], "float_series"), False)
            metrics = table.filter(is_metric)
            metrics = metrics.append_column("row", pa.array(range(metrics.num_rows), pa.int64()))
            grouped = metrics.group_by("attribute_path", use_threads=False).aggregate(
                [("row", "max"), ("row", "count")])
            lasts = metrics.take(grouped["row_max"]).to_pylist()
            for last, count in zip(lasts, grouped["row_count"].to_pylist()):
                series = scan.series.setdefault(last["attribute_path"], _Series("metric"))
                series.count += count
                series.last = (last["step"], last["float_value"], _ms(last["timestamp"]) or 0)
            for row in table.filter(pc.invert(is_metric)).to_pylist():
                self._scan_row(scan, row)
        with self._lock:
            self._scans[files] = scan
        return scan

    def _scan_row(self, scan: RunScan, row: dict[str, Any]) -> None:
        path, kind = row["attribute_path"], row["attribute_type"]
        if path.startswith("sys/") and kind in PARAM_TYPES:
            scan.fields[path] = _value(row)
        elif kind in PARAM_TYPES:
            scan.params[path] = _value(row)
        elif kind in MEDIA_TYPES and self._media(row) is not None:
            series = scan.series.setdefault(path, _Series(MEDIA_TYPES[kind]))
            series.count += 1
        elif kind in FILE_TYPES and row["file_value"]:
            self._add_files(scan, path, row["file_value"]["path"])
        else:
            scan.unread[f"{kind}:{path}"] = f"neptune {kind} values are not carried"

    def _project_files(self, scan: RunScan) -> Path:
        return self.files / sanitize_path_part(scan.project)

    def _add_files(self, scan: RunScan, attribute: str, relative: str) -> None:
        local = self._project_files(scan) / relative
        if local.is_dir():
            for file in sorted(p for p in local.rglob("*") if p.is_file()):
                scan.artifacts[f"{attribute}/{file.relative_to(local).as_posix()}"] = \
                    (PurePosixPath(relative) / file.relative_to(local).as_posix()).as_posix()
        elif local.is_file():
            scan.artifacts[f"{attribute}/{local.name}"] = relative
        else:
            scan.unread[f"file:{attribute}"] = f"{local} is not in the export's files folder"

    def _media(self, row: dict[str, Any]) -> MediaPoint | None:
        """A media point of a series row, or ``None`` for a file series that is not an image."""
        kind = MEDIA_TYPES[row["attribute_type"]]
        at = _ms(row["timestamp"]) or 0
        if kind == "text":
            return MediaPoint(0, at, "text", data=row["string_value"])
        if kind == "histogram":
            hist = row["histogram_value"] or {}
            return MediaPoint(0, at, "histogram", data={"bins": list(hist.get("edges") or []),
                                                         "values": list(hist.get("values") or [])},
                              meta={"type": hist.get("type")})
        relative = (row["file_value"] or {}).get("path")
        if not relative or not relative.lower().endswith(IMAGE_SUFFIXES):
            return None
        return MediaPoint(0, at, "image", file=relative, meta={"format": PurePosixPath(relative).suffix[1:].lower()})

    # -- runs ----------------------------------------------------------------------

    def _runs(self) -> list[RunScan]:
        return [self._scan(files) for files in complete_runs(self.data)]

    def list_experiments(self) -> Iterator[Experiment]:
        for name in sorted({scan.project for scan in self._runs()}):
            yield Experiment(name, name)

    def get_experiment(self, name: str) -> Experiment | None:
        return next((e for e in self.list_experiments() if e.name == name), None)

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        for scan in self._runs():
            if scan.project == experiment:
                record = self._record(scan)
                if run_filter is None or run_filter.matches(record):
                    yield record

    def _find(self, run_id: str) -> RunScan:
        found = next((scan for scan in self._runs() if scan.run_id == run_id), None)
        if found is None:
            raise RunNotFound(f"neptune-export:{self.data}: no complete run {run_id!r}")
        return found

    def get_run(self, run_id: str) -> RunRecord:
        return self._record(self._find(run_id))

    def _record(self, scan: RunScan) -> RunRecord:
        f = dict(scan.fields)
        creation = f.pop("sys/creation_time", None)
        modification = f.pop("sys/modification_time", None)
        record = RunRecord(
            platform=self.platform, run_id=scan.run_id, experiment=scan.project, experiment_id=scan.project,
            name=f.pop("sys/name", None) or scan.run_id,
            status=RunStatus.FAILED if f.pop("sys/failed", False) else RunStatus.FINISHED,
            start_time=_ms_iso(creation), end_time=_ms_iso(modification), user=f.pop("sys/owner", None),
            parent_run_id=f.pop("sys/forking/parent", None), labels=list(f.pop("sys/tags", None) or []),
            notes=f.pop("sys/description", None) or None, params=dict(scan.params), unread=dict(scan.unread))
        fork_step = f.pop("sys/forking/step", None)
        if fork_step is not None:
            record.tags["neptune.forking.step"] = str(fork_step)
        record.tags.update({k: v if isinstance(v, str) else str(v) for k, v in f.items() if v is not None})
        for key, series in scan.series.items():
            if series.kind == "metric" and series.last is not None:
                step, value, at = series.last
                record.metrics[key] = MetricSummary(key, value, scan.step(step), at)
            elif series.kind != "metric":
                record.media[key] = MediaSeries(series.kind, series.count)
        if scan.decimals:
            record.carried["steps"] = (f"Neptune's decimal steps multiplied by {scan.scale} (the run's steps have "
                                       f"{scan.decimals} decimal(s)): step s is s*{scan.scale}")
        return record

    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        """Column at a time (pyarrow casts the decimal steps and the times), so a long series
        reads near the rate of a plain parquet scan (``benchmarks/neptune_export_read.py``)."""
        return pages(self._points(self._find(run_id), key), page_size)

    @staticmethod
    def _points(scan: RunScan, key: str) -> Iterator[MetricPoint]:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        factor = pa.scalar(Decimal(scan.scale), type=pa.decimal128(7, 0))
        for part in scan.files.parts:
            table = pq.read_table(part, columns=["step", "timestamp", "float_value"],
                                  filters=[("attribute_path", "=", key), ("attribute_type", "=", "float_series")])
            steps = pc.multiply(table["step"], factor) if scan.decimals else table["step"]
            for step, value, stamp in zip(pc.cast(steps, pa.int64()).to_pylist(), table["float_value"].to_pylist(),
                                          pc.cast(table["timestamp"], pa.int64()).to_pylist()):
                yield MetricPoint(step, value, stamp or 0)

    def iter_media(self, run_id: str, key: str) -> Iterator[MediaPoint]:
        scan = self._find(run_id)
        for row in _rows(scan.files, key):
            if row["attribute_type"] in MEDIA_TYPES:
                point = self._media(row)
                if point is not None:
                    yield MediaPoint(scan.step(row["step"]), point.timestamp, point.kind, point.data, point.file,
                                     point.caption, point.meta)

    def download_media(self, run_id: str, key: str, point: MediaPoint, dst_dir: Path) -> Path:
        assert point.file is not None
        local = self._project_files(self._find(run_id)) / point.file
        dst_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(local, dst_dir / PurePosixPath(point.file).name))

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        scan = self._find(run_id)
        for path, relative in sorted(scan.artifacts.items()):
            yield ArtifactInfo(path, (self._project_files(scan) / relative).stat().st_size)

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        scan = self._find(run_id)
        if path not in scan.artifacts:
            raise FileNotFoundError(f"neptune-export:{self.data}: run {run_id!r} has no file {path!r}")
        target = dst_dir.joinpath(*PurePosixPath(path).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(self._project_files(scan) / scan.artifacts[path], target))


def _ms_iso(value: Any) -> int | None:
    """``sys/`` datetimes are read as ISO text (:func:`_value`): back to ms."""
    if value is None:
        return None
    from datetime import datetime

    return round(datetime.fromisoformat(value).timestamp() * 1000)
