"""One pass over a ``.wandb`` file: everything about the run except its history rows.

Why one pass: a run's metadata (run records, config, summary, stats, artifacts, exit)
is spread through the whole log between the history rows, so any listing reads the
file once.  The pass keeps each history row's byte offset and the latest point per
key, not the rows: history is streamed again by :mod:`trackbridge.backends.wandb.rows`
when asked, in bounded memory.

Damage: the pass keeps every record before it and stores the :class:`TxlogError`
in :attr:`ScannedRun.damage`; the reader decides whether that is fatal (``strict``).
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackbridge.backends.wandb import txlog, wire
from trackbridge.backends.wandb.values import (
    BOOKKEEPING_CONFIG_KEYS,
    EXPERIMENT_CONFIG_KEY,
    STEP_KEY,
    as_number,
    decode,
    decode_history,
    del_path,
    item_path,
    set_path,
)
from trackbridge.model import MetricSummary

#: protobuf field numbers of ``Record``'s oneof (read from the wire to skip records).
HISTORY_FIELD = 2
SUMMARY_FIELD = 3

#: Record fields the scan reads (history, summary, config, files, stats, artifact, run,
#: exit, use_artifact); the others are skipped unparsed.
_WANTED = frozenset({2, 3, 5, 6, 7, 8, 17, 18, 25})

#: history keys W&B writes itself.
INTERNAL_KEYS = frozenset({"_step", "_timestamp", "_runtime"})


#: Record fields that are not its kind: num, control, uuid, _info.
_NOT_KIND = frozenset({1, 16, 19, 200})


def record_field(data: bytes) -> int:
    """The field number of a serialized Record's kind (its ``record_type`` oneof), read
    from the wire without parsing: fields that are not the kind (``num``, ``control``,
    ``uuid``, ``_info``, which writers put before or after it) are skipped.  0 if none."""
    i, end = 0, len(data)
    if end > 2 and data[0] == 0x08:  # the usual shape: num first, then the kind's tag
        i = 1
        while i < end and data[i] & 0x80:
            i += 1
        i += 1
        if i < end and data[i] < 0x80 and (data[i] >> 3) not in _NOT_KIND:
            return data[i] >> 3
    while i < end:
        key, i = wire.varint(data, i)
        field, kind = key >> 3, key & 7
        if field not in _NOT_KIND:
            return field
        if kind == 0:
            _value, i = wire.varint(data, i)
        elif kind == 2:
            length, i = wire.varint(data, i)
            i += length
        elif kind == 1:
            i += 8
        elif kind == 5:
            i += 4
        else:
            return 0
    return 0


@dataclass(slots=True)
class Artifact:
    """A logged (or used) W&B artifact as the run's log holds it."""

    name: str
    type: str
    digest: str
    aliases: list[str]
    metadata: dict[str, Any]
    #: (path in the artifact, digest as W&B writes it (base64 md5), size, local staged path or ref)
    entries: list[tuple[str, str, int, str]]
    used: bool = False
    #: the id a registry link names the artifact by (set by trackbridge's writer)
    client_id: str = ""
    #: the server's id of a used artifact
    server_id: str = ""


@dataclass(slots=True)
class ScannedRun:
    path: Path
    run_id: str = ""
    entity: str = ""
    project: str = ""
    display_name: str = ""
    group: str = ""
    job_type: str = ""
    notes: str = ""
    labels: list[str] = field(default_factory=list)
    start_time: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    #: top key -> (value, last set through ``nested_key``, as wandb copies history rows)
    summary: dict[str, tuple[Any, bool]] = field(default_factory=dict)
    history_keys: set[str] = field(default_factory=set)
    exit_code: int | None = None
    runtime: int | None = None
    #: byte offset of every history record, in file order.
    history_offsets: array = field(default_factory=lambda: array("q"))
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    system_metrics: dict[str, MetricSummary] = field(default_factory=dict)
    last_timestamp: int | None = None
    last_step: int = -1
    files: list[tuple[str, int]] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    damage: txlog.TxlogError | None = None
    records: int = 0
    #: where the exit record starts, and where the last intact record ends.
    exit_offset: int | None = None
    end_offset: int = txlog.HEADER_SIZE

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in self.config.items()
                if k not in BOOKKEEPING_CONFIG_KEYS}

    @property
    def experiment(self) -> str:
        """The experiment name a trackbridge writer kept, else the W&B project."""
        kept = self.config.get(EXPERIMENT_CONFIG_KEY)
        return kept if isinstance(kept, str) and kept else (self.project or "uncategorized")

    def user_summary(self) -> dict[str, Any]:
        """Summary values set by the user, not the last values of history series."""
        return {k: v for k, (v, nested) in self.summary.items()
                if not k.startswith("_") and k != STEP_KEY and not (nested and k in self.history_keys)}


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def parse_record(data: bytes) -> Any:
    from wandb.proto import wandb_internal_pb2 as pb

    record = pb.Record()
    record.ParseFromString(data)
    return record


@dataclass(slots=True)
class RowValues:
    step: int
    timestamp: int | None
    values: dict[str, Any]
    wandb_step: int


def history_row(history: Any) -> RowValues:
    """Decode one ``HistoryRecord``: the user's step (``trackbridge/step`` when a
    trackbridge writer put it there, else W&B's ``_step``), its time, its values.
    The hot loop of every read: values are parsed inline (numbers by ``float``)."""
    values: dict[str, Any] = {}
    wandb_step = history.step.num
    ts: int | None = None
    user_step: Any = None
    for item in history.item:
        nested = item.nested_key
        key = (nested[0] if len(nested) == 1 else ".".join(nested)) if nested else item.key
        if key and key[0] == "_" and key in INTERNAL_KEYS:
            if key == "_runtime":
                continue
            value = decode_history(item)
            if key == "_step" and isinstance(value, (int, float)):
                wandb_step = int(value)
            elif key == "_timestamp" and isinstance(value, (int, float)):
                ts = int(round(value * 1000))
            continue
        raw = item.value_json
        if raw and raw[0] in _NUMBER_START:
            try:
                value: Any = float(raw)
            except ValueError:
                value = decode_history(item)
        else:
            value = decode_history(item)
        if key == STEP_KEY:
            user_step = value
            continue
        values[key] = value
    step = int(user_step) if isinstance(user_step, (int, float)) and user_step == user_step else wandb_step
    return RowValues(step, ts, values, wandb_step)


_NUMBER_START = frozenset("-0123456789NI")


def scan(path: Path) -> ScannedRun:
    """Read the run in ``path`` (a ``.wandb`` file) in one pass; see the module doc."""
    run = ScannedRun(path=path)
    history_offsets = run.history_offsets
    summary = run.summary
    last_at: dict[str, int] = {}  # history key -> offset of the last row holding it
    stats_count: dict[str, int] = {}
    heads = wire.Heads()
    from wandb.proto import wandb_internal_pb2 as pb

    parse = pb.Record.FromString
    count = 0
    last = (txlog.HEADER_SIZE, -txlog.CHUNK_HEADER_SIZE)
    try:
        for offset, data in txlog.read_file(path):
            count += 1
            last = (offset, len(data))
            kind = record_field(data)
            if kind not in _WANTED:
                continue  # telemetry, console output, metric definitions...: not parsed
            if kind == HISTORY_FIELD:
                # only the keys here: values are decoded once, for the last row of each key
                history_offsets.append(offset)
                keys = _wire_history_keys(data, heads)
                if keys is None:
                    keys = [((nested[0] if len(nested) == 1 else ".".join(nested)) if (nested := item.nested_key)
                             else item.key) for item in parse(data).history.item]
                for key in keys:
                    last_at[key] = offset
                continue
            if kind == SUMMARY_FIELD and (updates := _wire_summary(data, heads)) is not None:
                # wandb writes a summary per history row: keep the raw JSON, decode the last
                for key, nested, raw in updates:
                    if key and key[0] != "_":  # wandb's own (_wandb, _runtime, _step...) apart
                        summary[key] = (_Raw(raw), nested)
                continue
            record = parse(data)
            which = record.WhichOneof("record_type")
            if which == "summary":
                # wandb writes a summary per history row: keep the raw JSON, decode the last
                for item in record.summary.update:
                    nested = item.nested_key
                    top_key = nested[0] if nested else item.key
                    if not top_key or top_key[0] == "_":
                        continue  # wandb's own (_wandb, _runtime, _step...): never user summary
                    if len(nested) > 1:
                        top = _decoded(summary.get(nested[0], ({}, True))[0])
                        top = top if isinstance(top, dict) else {}
                        set_path(top, list(nested[1:]), decode(item))
                        summary[nested[0]] = (top, True)
                    else:
                        summary[top_key] = (_Raw(item.value_json), bool(nested))
                for item in record.summary.remove:
                    path_ = item_path(item)
                    if len(path_) == 1:
                        summary.pop(path_[0], None)
                    elif path_[0] in summary:
                        top = _decoded(summary[path_[0]][0])
                        if isinstance(top, dict):
                            del_path(top, path_[1:])
                            summary[path_[0]] = (top, summary[path_[0]][1])
            elif which == "run":
                _apply_run(run, record.run)
            elif which == "config":
                _apply_config(run.config, record.config)
            elif which == "stats":
                _apply_stats(run, record.stats, stats_count)
            elif which == "exit":
                run.exit_offset = offset
                run.exit_code = record.exit.exit_code
                run.runtime = record.exit.runtime
            elif which == "files":
                for item in record.files.files:
                    run.files.append((item.path, int(item.type)))
            elif which == "artifact":
                run.artifacts.append(_artifact(record.artifact))
            elif which == "use_artifact":
                use = record.use_artifact
                run.artifacts.append(Artifact(use.name, use.type, "", [], {}, [], used=True, server_id=use.id))
    except txlog.TxlogError as exc:
        run.damage = exc
    run.records = count
    run.end_offset = txlog.end_of(*last) if count else txlog.HEADER_SIZE
    for key, (value, nested) in list(summary.items()):
        summary[key] = (_decoded(value), nested)
    _last_points(run, last_at)
    return run


def _wire_history_keys(data: bytes, heads: wire.Heads) -> list[str] | None:
    """The keys of a history record of the usual shape (:mod:`.wire`): its items, then
    at most its ``step``; ``None`` for any other shape."""
    try:
        where = wire.body(data, wire.HISTORY_TAG)
        if where is None:
            return None
        found = wire.items(data, where[0], where[1], heads)
        if found is None:
            return None
        items, i = found
        if i < where[1] and data[i] == 0x12:  # HistoryStep
            size, i = wire.varint(data, i + 1)
            i += size
        return [key for key, _nested, _v, _e in items] if i == where[1] else None
    except (IndexError, UnicodeDecodeError):
        return None


def _wire_summary(data: bytes, heads: wire.Heads) -> list[tuple[str, bool, str]] | None:
    """(key, nested, value JSON) of a summary record of the usual shape (:mod:`.wire`:
    updates only, one-part keys; none for one of W&B's own only); ``None`` for any
    other shape."""
    try:
        where = wire.body(data, wire.SUMMARY_TAG)
        if where is None:
            return None
        if wire.internal_only(data, *where):
            return []
        found = wire.items(data, where[0], where[1], heads)
        if found is None or found[1] != where[1]:
            return None
        return [(key, nested, data[value_at:end].decode()) for key, nested, value_at, end in found[0]]
    except (IndexError, UnicodeDecodeError):
        return None


class _Raw(str):
    """A summary value still as its JSON text (most are overwritten before the end)."""


def _decoded(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, _Raw) else value


def _last_points(run: ScannedRun, last_at: dict[str, int]) -> None:
    """Metric summaries (the last point of each key), the last step and time, from the
    few rows that hold a key's last value, re-read by offset."""
    internal = INTERNAL_KEYS | {STEP_KEY}
    run.history_keys.update(k for k in last_at if k not in internal)
    offsets = sorted(set(last_at.values()) | ({run.history_offsets[-1]} if run.history_offsets else set()))
    if not offsets:
        return
    wanted: dict[int, list[str]] = {}
    for key, offset in last_at.items():
        if key not in internal:
            wanted.setdefault(offset, []).append(key)
    with open(run.path, "rb") as stream:
        for offset in offsets:
            stream.seek(offset)
            try:
                _at, data = next(txlog.iter_records(stream, str(run.path), start=offset))
            except (StopIteration, txlog.TxlogError):
                continue
            row = history_row(parse_record(data).history)
            ts = row.timestamp if row.timestamp is not None else (run.start_time or 0)
            for key in wanted.get(offset, ()):
                number = as_number(row.values.get(key))
                if number is not None:
                    run.metrics[key] = MetricSummary(key, number, row.step, ts)
            if offset == run.history_offsets[-1]:
                run.last_timestamp = ts
                run.last_step = row.wandb_step


def _apply_run(run: ScannedRun, rec: Any) -> None:
    first = not run.run_id
    run.run_id = rec.run_id or run.run_id
    run.entity = rec.entity or run.entity
    run.project = rec.project or run.project
    run.display_name = rec.display_name or run.display_name
    run.group = rec.run_group or run.group
    run.job_type = rec.job_type or run.job_type
    run.notes = rec.notes
    run.labels = list(rec.tags)
    if rec.HasField("start_time") and (first or run.start_time is None):
        run.start_time = rec.start_time.seconds * 1000 + rec.start_time.nanos // 1_000_000
    if rec.HasField("config"):
        _apply_config(run.config, rec.config)


def _apply_config(config: dict[str, Any], rec: Any) -> None:
    for item in rec.update:
        path_ = item_path(item)
        set_path(config, path_, decode(item))
    for item in rec.remove:
        del_path(config, item_path(item))


def _apply_stats(run: ScannedRun, rec: Any, counts: dict[str, int]) -> None:
    ts = rec.timestamp.seconds * 1000 + rec.timestamp.nanos // 1_000_000
    step: int | None = None
    items = []
    for item in rec.item:
        key = item.key
        value = as_number(decode_history(item))
        if key == STEP_KEY and value is not None:
            step = int(value)
        elif value is not None:
            items.append((key, value))
    for key, value in items:
        n = counts.get(key, 0)
        counts[key] = n + 1
        run.system_metrics[key] = MetricSummary(key, value, n if step is None else step, ts)


def _artifact(rec: Any) -> Artifact:
    import json

    entries = [(c.path, c.digest, int(c.size), c.local_path or c.ref) for c in rec.manifest.contents]
    try:
        metadata = json.loads(rec.metadata) if rec.metadata else {}
    except ValueError:
        metadata = {}
    return Artifact(rec.name, rec.type, rec.digest, list(rec.aliases), metadata, entries, client_id=rec.client_id)

