"""Streaming a run's history back out of its ``.wandb`` file.

Two ways, both one pass over the file whatever the number of keys:

* :func:`iter_rows` gives W&B's own rows (one step, one time, several keys): what
  row destinations and ``Reader.iter_rows`` want;
* :class:`SeriesCache` splits the rows once into per-key spill files (24 bytes a
  point) the first time any key of a run is asked for, so reading every series of a
  run one key at a time (what series destinations such as MLflow do) costs one
  pass over the file, not one pass per key, and memory stays bounded.

Records other than history and stats are skipped by their protobuf field number,
without being parsed.
"""
from __future__ import annotations

import shutil
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from trackbridge.backends.wandb import txlog
from trackbridge.backends.wandb.scan import HISTORY_FIELD, history_row, parse_record, record_field
from trackbridge.backends.wandb.values import STEP_KEY, as_number, decode_history
from trackbridge.history import Row
from trackbridge.model import MetricPoint

STATS_FIELD = 7
POINT = struct.Struct("<qdq")  # step, value, timestamp ms
_FLUSH_BYTES = 4 << 20


def _records(path: Path) -> Iterator[tuple[int, bytes]]:
    """Intact records of ``path``; damage ends the stream (the scan already reported it)."""
    try:
        yield from txlog.read_file(path)
    except txlog.TxlogError:
        return


def iter_rows(path: Path, keys: Sequence[str] | None = None, start_time: int | None = None) -> Iterator[Row]:
    """Every history row of ``path`` holding a number for one of ``keys`` (all keys when
    ``None``), values restricted to numbers of those keys.  A row without ``_timestamp``
    takes the previous row's time (the run's start for the first)."""
    wanted = None if keys is None else set(keys)
    last_ts = start_time or 0
    for _offset, data in _records(path):
        if not data:
            continue
        if record_field(data) != HISTORY_FIELD:
            continue
        row = history_row(parse_record(data).history)
        ts = row.timestamp if row.timestamp is not None else last_ts
        last_ts = ts
        values: dict[str, float] = {}
        for key, value in row.values.items():
            if wanted is not None and key not in wanted:
                continue
            if value.__class__ is float:
                values[key] = value
            elif (number := as_number(value)) is not None:
                values[key] = number
        if values:
            yield Row(row.step, ts, values)


def iter_stats(path: Path) -> Iterator[tuple[str, MetricPoint]]:
    """System metric points of ``path`` (``stats`` records), in file order."""
    counts: dict[str, int] = {}
    for _offset, data in _records(path):
        if not data or record_field(data) != STATS_FIELD:
            continue
        stats = parse_record(data).stats
        ts = stats.timestamp.seconds * 1000 + stats.timestamp.nanos // 1_000_000
        step: int | None = None
        items = []
        for item in stats.item:
            key = item.key
            value = as_number(decode_history(item))
            if value is None:
                continue
            if key == STEP_KEY:
                step = int(value)
            else:
                items.append((key, value))
        for key, value in items:
            n = counts.get(key, 0)
            counts[key] = n + 1
            yield key, MetricPoint(n if step is None else step, value, ts)


class _Spill:
    """Per-key point files of one run, written in one pass, read one key at a time."""

    def __init__(self, points: Iterable[tuple[str, MetricPoint]]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tb-wandb-series-"))
        self.files: dict[str, Path] = {}
        buffers: dict[str, bytearray] = {}
        pending = 0

        def add(key: str, point: MetricPoint) -> None:
            nonlocal pending
            buf = buffers.get(key)
            if buf is None:
                buf = buffers[key] = bytearray()
                self.files[key] = self.dir / f"{len(self.files)}.bin"
            buf += POINT.pack(point.step, point.value, point.timestamp)
            pending += POINT.size
            if pending >= _FLUSH_BYTES:
                flush()

        def flush() -> None:
            nonlocal pending
            for key, buf in buffers.items():
                if buf:
                    with open(self.files[key], "ab") as out:
                        out.write(buf)
                    buf.clear()
            pending = 0

        for key, point in points:
            add(key, point)
        flush()

    def pages(self, key: str, page_size: int) -> Iterator[list[MetricPoint]]:
        file = self.files.get(key)
        if file is None:
            return
        with open(file, "rb") as stream:
            while chunk := stream.read(POINT.size * page_size):
                yield [MetricPoint(s, v, t) for s, v, t in POINT.iter_unpack(chunk)]

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _file_points(path: Path, start_time: int | None) -> Iterator[tuple[str, MetricPoint]]:
    for row in iter_rows(path, None, start_time):
        for key, value in row.values.items():
            yield key, MetricPoint(row.step, value, row.timestamp)
    for key, point in iter_stats(path):
        yield "\0system\0" + key, point


def _row_points(rows: Iterable[Row]) -> Iterator[tuple[str, MetricPoint]]:
    for row in rows:
        for key, value in row.values.items():
            yield key, MetricPoint(row.step, value, row.timestamp)


class RowSpillCache:
    """Per-key spill files of the last few runs of a row source (the W&B cloud's one
    unfiltered history scan), so reading every key costs one scan."""

    def __init__(self, runs: int = 2) -> None:
        self._runs = runs
        self._spills: OrderedDict[str, _Spill] = OrderedDict()
        self._lock = threading.Lock()

    def pages(self, run_id: str, rows: Callable[[], Iterable[Row]], key: str,
              page_size: int) -> Iterator[list[MetricPoint]]:
        with self._lock:
            spill = self._spills.get(run_id)
            if spill is None:
                spill = self._spills[run_id] = _Spill(_row_points(rows()))
                while len(self._spills) > self._runs:
                    self._spills.popitem(last=False)[1].close()
            else:
                self._spills.move_to_end(run_id)
        return spill.pages(key, page_size)

    def close(self) -> None:
        with self._lock:
            for spill in self._spills.values():
                spill.close()
            self._spills.clear()


class SeriesCache:
    """Spill files of the last few runs read (bounded), keyed by file identity so a
    file that changed is split again."""

    def __init__(self, runs: int = 2) -> None:
        self._runs = runs
        self._spills: OrderedDict[tuple[str, int, int], _Spill] = OrderedDict()
        self._lock = threading.Lock()

    def pages(self, path: Path, key: str, page_size: int, start_time: int | None,
              system: bool = False) -> Iterator[list[MetricPoint]]:
        stat = path.stat()
        ident = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            spill = self._spills.get(ident)
            if spill is None:
                spill = _Spill(_file_points(path, start_time))
                self._spills[ident] = spill
                while len(self._spills) > self._runs:
                    self._spills.popitem(last=False)[1].close()
            else:
                self._spills.move_to_end(ident)
        return spill.pages("\0system\0" + key if system else key, page_size)

    def close(self) -> None:
        with self._lock:
            for spill in self._spills.values():
                spill.close()
            self._spills.clear()
