"""Streaming a run's history back out of its ``.wandb`` file.

Two ways, both one pass over the file whatever the number of keys:

* :func:`iter_rows` gives W&B's own rows (one step, one time, several keys): what
  row destinations and ``Reader.iter_rows`` want;
* :class:`SpillCache` splits the rows once into per-key spill files (24 bytes a
  point) the first time any key of a run is asked for, so reading every series of a
  run one key at a time (what series destinations such as MLflow do) costs one
  pass over the file, not one pass per key, and memory stays bounded.

Records other than history and stats are skipped by their protobuf field number,
without being parsed.  History records are not parsed by protobuf either when they
have the shape every W&B writer gives them (:func:`decode_row` reads ``key`` and
``value_json`` straight from the wire, numbers by ``float``, keys decided once per
run); any other shape goes through protobuf and :func:`.scan.history_row`, so the
values are the same either way.
"""
from __future__ import annotations

import json
import shutil
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from pathlib import Path

from trackbridge.backends.wandb import txlog
from trackbridge.backends.wandb.metrics import StepRules
from trackbridge.backends.wandb.scan import HISTORY_FIELD, custom_steps, history_row, parse_record, record_field
from trackbridge.backends.wandb.values import STEP_KEY, as_number, decode_history
from trackbridge.backends.wandb.wire import MAX_HEADS, parse_head, varint
from trackbridge.history import Row
from trackbridge.model import MetricPoint

STATS_FIELD = 7
POINT = struct.Struct("<qdq")  # step, value, timestamp ms
_FLUSH_BYTES = 4 << 20


def _records(path: Path, offsets: Iterable[int] | None = None) -> Iterator[tuple[int, bytes]]:
    """Intact records of ``path`` (only those at ``offsets`` when given); damage ends the
    stream (the scan already reported it)."""
    try:
        yield from txlog.read_file(path) if offsets is None else txlog.read_at(path, offsets)
    except txlog.TxlogError:
        return


def iter_rows(path: Path, keys: Sequence[str] | None = None, start_time: int | None = None,
              offsets: Iterable[int] | None = None, rules: StepRules | None = None) -> Iterator[Row]:
    """Every history row of ``path`` holding a number for one of ``keys`` (all keys when
    ``None``), values restricted to numbers of those keys.  A row without ``_timestamp``
    takes the previous row's time (the run's start for the first).  Where ``rules`` give
    keys of a row another step (``define_metric`` step metrics), the row is split in one
    row per step.

    ``offsets``: where the history records start (:attr:`.scan.ScannedRun.history_offsets`
    of this very file), so the other two thirds of the log are not read again."""
    shapes = RowShapes(keys, rules)
    last_ts = start_time or 0
    for _offset, data in _records(path, offsets):
        if not data or (offsets is None and record_field(data) != HISTORY_FIELD):
            continue
        step, ts, values = decode_row(data, shapes)
        if ts is None:
            ts = last_ts
        last_ts = ts
        if not values:
            continue
        steps = shapes.steps
        if steps is None:
            yield Row(step, ts, values)
            continue
        split: dict[int, dict[str, float]] = {}
        for key, value in values.items():
            split.setdefault(steps.get(key, step), {})[key] = value
        for at, part in split.items():
            yield Row(at, ts, part)


# -- history records from the wire (the shape :mod:`.wire` describes) ---------------

#: what a history key is to :func:`decode_row` (decided once per key by :class:`RowShapes`).
_SKIP, _METRIC, _WANDB_STEP, _TIME, _USER_STEP, _STEP_METRIC = range(6)
_ROLE_OF = {"_runtime": _SKIP, "_step": _WANDB_STEP, "_timestamp": _TIME, STEP_KEY: _USER_STEP}
#: first bytes of the JSON texts ``float`` reads (numbers, ``NaN``, ``Infinity``).
_NUMBER_START = frozenset(b"-0123456789NI")


class RowShapes:
    """What one read has learnt about its file's history items: for each item head
    (see above) the key's role, the key, and the item's size.  Unwanted keys' values
    are never decoded; each key is decoded from UTF-8 once."""

    def __init__(self, keys: Sequence[str] | None, rules: StepRules | None = None) -> None:
        self.wanted = None if keys is None else set(keys)
        self.heads: dict[bytes, tuple[int, str, int]] = {}
        #: ``define_metric`` step metrics of the run, when it has any (``None``: ``_step``)
        self.rules = rules or None
        #: step metric -> its last value, for rows that lack it
        self.last_steps: dict[str, float] = {}
        #: key -> step of the last row decoded, for its keys whose step is a step metric's
        self.steps: dict[str, int] | None = None

    def learn(self, head: bytes) -> tuple[int, str, int] | None:
        """The head's (role, key, item size), or ``None`` if it is not the usual shape."""
        shape = parse_head(head)
        if shape is None:
            return None
        key, _nested, size = shape
        role = _ROLE_OF.get(key)
        if role is None and self.rules is not None and key in self.rules.step_keys:
            role = _STEP_METRIC
        if role is None:
            role = _METRIC if self.wanted is None or key in self.wanted else _SKIP
        if len(self.heads) >= MAX_HEADS:
            self.heads.clear()
        self.heads[head] = found = (role, key, size)
        return found


def _json_value(raw: bytes) -> object:
    """A ``value_json`` as :func:`.values.decode_history` decodes it."""
    if raw[0] in _NUMBER_START:
        try:
            return float(raw)
        except ValueError:
            pass
    return json.loads(raw.decode())


def decode_row(data: bytes, shapes: RowShapes) -> tuple[int, int | None, dict[str, float]]:
    """``(step, timestamp ms or None, {wanted key: number})`` of a serialized history
    Record, exactly as protobuf + :func:`.scan.history_row` + :func:`.values.as_number`
    give them: from the wire when the record has the usual shape, else through them."""
    try:
        found = _wire_row(data, shapes)
    except (IndexError, ValueError, UnicodeDecodeError):
        found = None  # odd bytes: protobuf decides (and raises what it raised before)
    if found is not None:
        return found
    row = history_row(parse_record(data).history, shapes.rules, shapes.last_steps)
    values: dict[str, float] = {}
    for key, value in row.values.items():
        if shapes.wanted is None or key in shapes.wanted:
            number = value if value.__class__ is float else as_number(value)
            if number is not None:
                values[key] = number
    shapes.steps = row.steps
    return row.step, row.timestamp, values


def _wire_row(data: bytes, shapes: RowShapes) -> tuple[int, int | None, dict[str, float]] | None:
    """:func:`decode_row` for records of the usual shape (``num``, then the history and
    nothing after it); ``None`` for any other, which the caller parses with protobuf."""
    if data[0] != 0x08:
        return None
    _num, i = varint(data, 1)
    if data[i] != 0x12:
        return None
    size, i = varint(data, i + 1)
    end = i + size
    if end != len(data):
        return None
    heads = shapes.heads
    values: dict[str, float] = {}
    stepped: dict[str, float] | None = None
    ts = item_step = user_step = None
    while i < end and data[i] == 0x0A:  # the hot loop: one item a turn
        value_at = i + 7 + data[i + 3]
        head = data[i:value_at]
        shape = heads.get(head) or shapes.learn(head)
        if shape is None:
            return None
        role, key, size = shape
        item_end = i + size
        i = item_end
        if role == _SKIP:
            continue
        raw = data[value_at:item_end]
        if role == _METRIC:
            if raw[0] in _NUMBER_START:
                try:
                    values[key] = float(raw)
                    continue
                except ValueError:
                    pass
            number = as_number(json.loads(raw.decode()))
            if number is None:
                values.pop(key, None)  # a later non-number replaces the key's value
            else:
                values[key] = number
            continue
        value = _json_value(raw)
        if role == _STEP_METRIC:
            if stepped is None:
                stepped = {}
            if isinstance(value, float):
                stepped[key] = value
                if shapes.wanted is None or key in shapes.wanted:
                    values[key] = value
            continue
        if role == _USER_STEP:
            user_step = value
        elif isinstance(value, (int, float)):
            if role == _TIME:
                ts = int(round(value * 1000))
            else:
                item_step = int(value)
    wandb_step = 0
    if i < end and data[i] == 0x12:  # HistoryStep: empty, or its num
        size, i = varint(data, i + 1)
        if size:
            if data[i] != 0x08:
                return None
            wandb_step, at = varint(data, i + 1)
            if at != i + size:
                return None
            i = at
    if i != end:
        return None
    if item_step is not None:
        wandb_step = item_step
    if isinstance(user_step, (int, float)) and user_step == user_step:
        shapes.steps = None
        return int(user_step), ts, values
    shapes.steps = custom_steps(shapes.rules, list(values), stepped or {}, shapes.last_steps) \
        if shapes.rules is not None else None
    return wandb_step, ts, values


def iter_stats(path: Path, offsets: Iterable[int] | None = None) -> Iterator[tuple[str, MetricPoint]]:
    """System metric points of ``path`` (``stats`` records), in file order; ``offsets``:
    where they start (:attr:`.scan.ScannedRun.stats_offsets`), the rest not read."""
    counts: dict[str, int] = {}
    for _offset, data in _records(path, offsets):
        if not data or (offsets is None and record_field(data) != STATS_FIELD):
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

    def __init__(self, points: Iterable[tuple[str, MetricPoint]], root: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="run-", dir=root))
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


def stats_points(path: Path, offsets: Iterable[int] | None,
                 system_key: Callable[[str], str]) -> Iterator[tuple[str, MetricPoint]]:
    """The (key, point) pairs of a ``.wandb`` file's stats records, keys named by ``system_key``."""
    for key, point in iter_stats(path, offsets):
        yield system_key(key), point


def row_points(rows: Iterable[Row]) -> Iterator[tuple[str, MetricPoint]]:
    """Rows as (key, point) pairs."""
    for row in rows:
        for key, value in row.values.items():
            yield key, MetricPoint(row.step, value, row.timestamp)


class SpillCache:
    """Per-key spill files of the runs being read, so reading every key of a run costs
    one pass over its source (a ``.wandb`` file, or the W&B cloud's one unfiltered
    history scan) and memory stays bounded.

    A run's files go when the reader is told the run is done (:meth:`release`: the sync
    engine and ``check`` say so after each run), and, for a caller that never says so,
    once more than ``runs`` runs are held (least recently read first).  The bound was
    once 2 to 4 runs, fewer than ``--transfers`` reads at once: every key of every run
    then split its file again (W&B 4M points with 8 transfers: 30 s -> 186 s).  A run is
    split outside the cache's lock, so one run's split does not hold up another's reads."""

    def __init__(self, runs: int = 64) -> None:
        self._runs = runs
        self._slots: OrderedDict[Hashable, _Slot] = OrderedDict()
        self._lock = threading.Lock()
        self._root: Path | None = None

    def pages(self, ident: Hashable, run_id: str, points: Callable[[], Iterable[tuple[str, MetricPoint]]],
              key: str, page_size: int) -> Iterator[list[MetricPoint]]:
        """``key``'s points from the spill of the run known as ``ident`` (a file's identity,
        so a changed file is split again), made from ``points()`` on first use."""
        evicted: list[_Slot] = []
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="tb-wandb-series-"))
            slot = self._slots.get(ident)
            if slot is None:
                slot = self._slots[ident] = _Slot(run_id, self._root)
                while len(self._slots) > self._runs:
                    evicted.append(self._slots.popitem(last=False)[1])
            else:
                self._slots.move_to_end(ident)
        for old in evicted:
            old.close()
        return slot.pages(points, key, page_size)

    def release(self, run_id: str) -> None:
        """Drop the spill files of ``run_id``."""
        with self._lock:
            gone = [ident for ident, slot in self._slots.items() if slot.run_id == run_id]
            slots = [self._slots.pop(ident) for ident in gone]
        for slot in slots:
            slot.close()

    def close(self) -> None:
        """Drop every spill file, with the folder that holds them (and anything a run
        split after its slot was dropped left there)."""
        with self._lock:
            slots, root = list(self._slots.values()), self._root
            self._slots.clear()
            self._root = None
        for slot in slots:
            slot.close()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


class _Slot:
    """One run's place in a :class:`SpillCache`: split once, by the first reader."""

    def __init__(self, run_id: str, root: Path) -> None:
        self.run_id, self.root = run_id, root
        self._lock = threading.Lock()
        self._spill: _Spill | None = None

    def pages(self, points: Callable[[], Iterable[tuple[str, MetricPoint]]], key: str,
              page_size: int) -> Iterator[list[MetricPoint]]:
        with self._lock:
            if self._spill is None:
                self._spill = _Spill(points(), self.root)
            spill = self._spill
        return spill.pages(key, page_size)

    def close(self) -> None:
        with self._lock:  # waits for a split in progress
            if self._spill is not None:
                self._spill.close()
                self._spill = None
