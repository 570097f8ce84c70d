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

import functools
import json
import re
import threading
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
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


_order = attrgetter("step", "timestamp")


def _newer(a: MetricPoint, b: MetricPoint | None) -> bool:
    """Whether ``a`` replaces ``b`` as the latest point: higher (step, timestamp); ties go to the later-logged."""
    return b is None or _order(a) >= _order(b)


@dataclass
class _Series:
    """Buffered points of one series as typed arrays (no per-point Python objects)."""

    steps: array = field(default_factory=lambda: array("q"))
    values: array = field(default_factory=lambda: array("d"))
    timestamps: array = field(default_factory=lambda: array("q"))
    latest: MetricPoint | None = None

    def extend(self, points: list[MetricPoint]) -> None:
        self.steps.extend([p.step for p in points])
        self.values.extend([p.value for p in points])
        self.timestamps.extend([p.timestamp for p in points])
        last = max(reversed(points), key=_order)  # reversed: ties go to the later-logged
        if _newer(last, self.latest):
            self.latest = last


# Columns are built from raw buffers: pa.array()/pa.scalar() import pandas
# (~20 MB, ~0.5 s) on first use, which a CLI copying runs should not pay.

def _column(typ: pa.DataType, values: array) -> pa.Array:
    """A zero-copy Arrow view of a typed array."""
    return pa.Array.from_buffers(typ, len(values), [None, pa.py_buffer(values)])


def _constant_key(key: str, n: int) -> pa.Array:
    """``n`` times ``key`` as a dictionary column: one dictionary entry, zero indices."""
    data = key.encode("utf-8")
    dictionary = pa.Array.from_buffers(
        pa.string(), 1, [None, pa.py_buffer(array("i", [0, len(data)])), pa.py_buffer(data)])
    return pa.DictionaryArray.from_buffers(SCHEMA.field("key").type, n, [None, pa.py_buffer(bytes(4 * n))], dictionary)


def _constant_flag(flag: bool, n: int) -> pa.Array:
    bitmap = (b"\xff" if flag else b"\x00") * ((n + 7) // 8)
    return pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(bitmap)])


def _table(key: str, system: bool, series: _Series) -> pa.Table:
    n = len(series.steps)
    return pa.Table.from_arrays(
        [_constant_key(key, n), _column(pa.int64(), series.steps), _column(pa.float64(), series.values),
         _column(pa.int64(), series.timestamps), _constant_flag(system, n)],
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

    def add(self, points: Sequence[tuple[str, MetricPoint]], system: bool) -> None:
        """Buffer ``points``, writing a part each time ``part_points`` are buffered."""
        for start in range(0, len(points), self.part_points):
            chunk = points[start:start + self.part_points]
            by_key: dict[str, list[MetricPoint]] = {}
            for key, point in chunk:
                by_key.setdefault(key, []).append(point)
            for key in by_key:
                self._check_kind(key, system)
            for key, series_points in by_key.items():
                series = self._series.get((key, system))
                if series is None:
                    series = self._series[(key, system)] = _Series()
                series.extend(series_points)
            self._size += len(chunk)
            if self._size >= self.part_points:
                self.flush()

    def _check_kind(self, key: str, system: bool) -> None:
        """Refuse (before buffering anything) a key already used in the other role."""
        if self._kinds.setdefault(key, system) != system:
            role = "a system" if not system else "a user"
            raise InvalidKeyError(
                f"metric {key!r} is already {role} metric of this run; one key cannot be both. "
                "Rename one of the two series."
            )

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
        index = []
        for row_group, ((key, system), series) in enumerate(ordered):
            latest = series.latest
            assert latest is not None  # a buffered series holds at least one point
            index.append({"key": key, "system": system, "row_group": row_group, "rows": len(series.steps),
                          "latest": [latest.step, latest.value, latest.timestamp]})
        schema = SCHEMA.with_metadata({INDEX_KEY: json.dumps(index, allow_nan=True).encode("utf-8")})
        # Dictionary-encode the key only: trying it on step/value/timestamp costs
        # ~150 bytes of Arrow memory per point before falling back to plain.
        with pq.ParquetWriter(fh, schema, use_dictionary=["key"]) as writer:
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


@dataclass(frozen=True)
class _Footer:
    """A part opened once, with its series index: reading a run's keys one at a time
    would otherwise open the part (parse a footer of one row group per key) once per
    key, quadratic in the number of keys."""

    file: pq.ParquetFile
    index: list[dict]
    #: key -> its row groups in this part.
    groups: dict[str, list[int]]
    #: one reader of the open file at a time (a copy's reader threads share parts).
    lock: threading.Lock = field(default_factory=threading.Lock)


@functools.lru_cache(maxsize=8)
def _footer_of(path: str, _mtime_ns: int, _size: int, _inode: int) -> _Footer:
    file = pq.ParquetFile(path)
    index = json.loads((file.schema_arrow.metadata or {})[INDEX_KEY])
    groups: dict[str, list[int]] = {}
    for entry in index:
        groups.setdefault(entry["key"], []).append(entry["row_group"])
    return _Footer(file, index, groups)


def _footer(part: Path) -> _Footer:
    """The footer of ``part``, cached by the file's identity (a part is only ever renamed
    into place whole, so a changed file is a new entry, never a stale one)."""
    try:
        st = part.stat()
        return _footer_of(str(part), st.st_mtime_ns, st.st_size, st.st_ino)
    except (pa.ArrowException, OSError, KeyError, ValueError) as exc:
        raise _corrupt(part, exc) from None


def read_index(part: Path) -> list[dict]:
    """The series index from a part's footer (no data pages are read)."""
    return _footer(part).index


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
        footer = _footer(part)
        groups = footer.groups.get(key)
        if not groups:
            continue
        batches = footer.file.iter_batches(batch_size=page_size, row_groups=groups, columns=_COLUMNS,
                                           use_threads=False)
        while True:
            try:
                with footer.lock:  # a batch at a time: a series can be millions of points
                    batch = next(batches, None)
            except (pa.ArrowException, OSError) as exc:
                raise _corrupt(part, exc) from None
            if batch is None:
                break
            steps, values, stamps = (batch.column(c).to_pylist() for c in _COLUMNS)
            points = list(map(MetricPoint, steps, values, stamps))
            while points:
                room = page_size - len(page)
                page.extend(points[:room])
                points = points[room:]
                if len(page) == page_size:
                    yield page
                    page = []
    if page:
        yield page
