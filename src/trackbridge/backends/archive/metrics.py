"""Metric series on disk: append-only Parquet *parts*, one row group per series.

Why this shape (see ``docs/archive-format.md``, "Metrics"):

* A writer buffers points per series in compact typed arrays (24 bytes a
  point) and, when the buffer holds ``part_points`` points or the run is
  flushed/finished, writes them as one new part file.  Memory is bounded by
  ``part_points`` whatever the length of the run.
* Inside a part each series (key + system flag) is exactly one row group, and
  the part's Arrow schema metadata carries an index: series -> row group, row
  count, latest point.  Reading one key touches only the footers and that
  key's row groups, streamed in ``page_size`` batches; listing a run's latest
  values reads footers only.
* A part is written to a ``*.tmp`` name and renamed when closed, so a killed
  writer leaves at most an ignored ``*.tmp`` file, and parts are never edited:
  resuming appends the next part.  Order of points within a key = order of
  parts, then of rows: the order they were logged.
"""
from __future__ import annotations

import json
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from trackbridge.backends.archive.files import atomic_write
from trackbridge.errors import BackendError, InvalidKeyError
from trackbridge.model import MetricPoint, MetricSummary

#: schema-metadata key of a part's series index.
INDEX_KEY = b"trackbridge.index"
_PART = re.compile(r"part-(\d+)\.parquet")
_COLUMNS = ["step", "value", "timestamp"]

SCHEMA = pa.schema([
    ("key", pa.dictionary(pa.int32(), pa.string())),
    ("step", pa.int64()),
    ("value", pa.float64()),
    ("timestamp", pa.int64()),
    ("system", pa.bool_()),
])


def _newer(a: MetricPoint, b: MetricPoint | None) -> bool:
    """Whether ``a`` replaces ``b`` as the latest point: higher (step, timestamp); ties go to the later-logged."""
    return b is None or (a.step, a.timestamp) >= (b.step, b.timestamp)


@dataclass
class _Series:
    """Buffered points of one series as typed arrays (no per-point Python objects)."""

    steps: array = field(default_factory=lambda: array("q"))
    values: array = field(default_factory=lambda: array("d"))
    timestamps: array = field(default_factory=lambda: array("q"))
    latest: MetricPoint | None = None

    def add(self, point: MetricPoint) -> None:
        self.steps.append(point.step)
        self.values.append(point.value)
        self.timestamps.append(point.timestamp)
        if _newer(point, self.latest):
            self.latest = point


def _column(typ: pa.DataType, values: array) -> pa.Array:
    return pa.Array.from_buffers(typ, len(values), [None, pa.py_buffer(values)])


def _table(key: str, system: bool, series: _Series) -> pa.Table:
    n = len(series.steps)
    keys = pa.DictionaryArray.from_arrays(pa.repeat(pa.scalar(0, pa.int32()), n), pa.array([key]))
    return pa.Table.from_arrays(
        [keys, _column(pa.int64(), series.steps), _column(pa.float64(), series.values),
         _column(pa.int64(), series.timestamps), pa.repeat(system, n)],
        schema=SCHEMA,
    )


class MetricBuffer:
    """Points of one run waiting to become the next part.  Not thread-safe: the
    writer holds the run's lock around every call."""

    def __init__(self, metrics_dir: Path, part_points: int) -> None:
        self.dir = metrics_dir
        self.part_points = part_points
        self._series: dict[tuple[str, bool], _Series] = {}
        self._size = 0
        committed = list_parts(metrics_dir)
        self._next_seq = _seq(committed[-1]) + 1 if committed else 1
        #: key -> system flag of every key already in the run, to refuse a key in both roles.
        self._kinds = {e["key"]: e["system"] for part in committed for e in read_index(part)}

    def add(self, points: Iterable[tuple[str, MetricPoint]], system: bool) -> None:
        for key, point in points:
            if self._kinds.setdefault(key, system) != system:
                role = "a system" if not system else "a user"
                raise InvalidKeyError(
                    f"metric {key!r} is already {role} metric of this run; one key cannot be both. "
                    "Rename one of the two series."
                )
            series = self._series.get((key, system))
            if series is None:
                series = self._series[(key, system)] = _Series()
            series.add(point)
            self._size += 1
            if self._size >= self.part_points:
                self.flush()

    def flush(self) -> None:
        """Write the buffered points as the next part (nothing if empty)."""
        if not self._size:
            return
        final = self.dir / f"part-{self._next_seq:06d}.parquet"
        atomic_write(final, self._write_part)
        self._next_seq += 1
        self._series.clear()
        self._size = 0

    def _write_part(self, fh: IO[bytes]) -> None:
        ordered = sorted(self._series.items())
        index = [
            {"key": key, "system": system, "row_group": i, "rows": len(s.steps),
             "latest": [s.latest.step, s.latest.value, s.latest.timestamp]}
            for i, ((key, system), s) in enumerate(ordered) if s.latest is not None
        ]
        schema = SCHEMA.with_metadata({INDEX_KEY: json.dumps(index, allow_nan=True).encode("utf-8")})
        with pq.ParquetWriter(fh, schema) as writer:
            for (key, system), series in ordered:
                table = _table(key, system, series)
                writer.write_table(table, row_group_size=max(table.num_rows, 1))


def _seq(part: Path) -> int:
    match = _PART.fullmatch(part.name)
    assert match is not None  # list_parts only returns matching names
    return int(match.group(1))


def list_parts(metrics_dir: Path) -> list[Path]:
    """Committed parts in write order; ``*.tmp`` leftovers of a killed writer are ignored."""
    if not metrics_dir.is_dir():
        return []
    return sorted((p for p in metrics_dir.iterdir() if _PART.fullmatch(p.name)), key=_seq)


def _corrupt(part: Path, exc: Exception) -> BackendError:
    return BackendError(
        f"metrics file {part} is corrupt ({exc}). Parts are only ever renamed into place "
        "complete, so it was damaged afterwards: restore it from a backup, or delete it "
        "(losing those points) and export the run again."
    )


def read_index(part: Path) -> list[dict]:
    """The series index from a part's footer (no data pages are read)."""
    try:
        metadata = pq.read_schema(part).metadata or {}
        return json.loads(metadata[INDEX_KEY])
    except (pa.ArrowException, OSError, KeyError, ValueError) as exc:
        raise _corrupt(part, exc) from None


def summaries(metrics_dir: Path) -> tuple[dict[str, MetricSummary], dict[str, MetricSummary]]:
    """Latest point per user key and per system key, from the part footers only."""
    latest: dict[tuple[str, bool], MetricPoint] = {}
    for part in list_parts(metrics_dir):
        for entry in read_index(part):
            point = MetricPoint(*entry["latest"])
            ident = (entry["key"], entry["system"])
            if _newer(point, latest.get(ident)):
                latest[ident] = point
    user: dict[str, MetricSummary] = {}
    system: dict[str, MetricSummary] = {}
    for (key, is_system), p in sorted(latest.items()):
        (system if is_system else user)[key] = MetricSummary(key, p.value, p.step, p.timestamp)
    return user, system


def iter_history(metrics_dir: Path, key: str, page_size: int) -> Iterator[list[MetricPoint]]:
    """Every point of ``key`` in logged order, in pages of exactly ``page_size`` (the last may be short)."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    page: list[MetricPoint] = []
    for part in list_parts(metrics_dir):
        groups = [e["row_group"] for e in read_index(part) if e["key"] == key]
        if not groups:
            continue
        try:
            batches = pq.ParquetFile(part).iter_batches(
                batch_size=page_size, row_groups=groups, columns=_COLUMNS)
            for batch in batches:
                steps, values, stamps = (batch.column(c).to_pylist() for c in _COLUMNS)
                for point in map(MetricPoint, steps, values, stamps):
                    page.append(point)
                    if len(page) == page_size:
                        yield page
                        page = []
        except (pa.ArrowException, OSError) as exc:
            raise _corrupt(part, exc) from None
    if page:
        yield page
