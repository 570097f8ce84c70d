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

from trackbridge.backends.wandb import media as wmedia
from trackbridge.backends.wandb import txlog, wire
from trackbridge.backends.wandb.metrics import StepRules, definition
from trackbridge.backends.wandb.values import (
    BOOKKEEPING_CONFIG_KEYS,
    EXPERIMENT_CONFIG_KEY,
    STEP_KEY,
    SYSTEM_KEYS_CONFIG_KEY,
    SYSTEM_PREFIX,
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
METRIC_FIELD = 12

#: Record fields the scan reads (history, summary, config, files, stats, artifact, metric,
#: run, exit, use_artifact); the others are skipped unparsed.
_WANTED = frozenset({2, 3, 5, 6, 7, 8, 12, 17, 18, 25})

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
    description: str = ""
    tags: list[str] = field(default_factory=list)
    #: the artifact is complete (``finalize``): W&B commits it
    committed: bool = False


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
    #: byte offset of every stats (system metrics) record, in file order.
    stats_offsets: array = field(default_factory=lambda: array("q"))
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    system_metrics: dict[str, MetricSummary] = field(default_factory=dict)
    last_timestamp: int | None = None
    last_step: int = -1
    files: list[tuple[str, int]] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    #: ``define_metric`` definitions of the user's (:mod:`.metrics`), in file order
    definitions: list[dict[str, Any]] = field(default_factory=list)
    #: media key -> [canonical kind, number of points]
    media: dict[str, list[Any]] = field(default_factory=dict)
    #: media key -> byte offsets of the history records holding it
    media_offsets: dict[str, array] = field(default_factory=dict)
    #: run files the media name (kept out of the run's plain files)
    media_files: set[str] = field(default_factory=set)
    #: history keys whose values are not numbers nor media (text, lists): not carried
    other_values: dict[str, str] = field(default_factory=dict)
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
        """Summary values set by the user, not W&B's copies of history values (a series'
        last value, or the ``{"min": ...}`` its ``define_metric`` asks for; a media key's
        last value)."""
        copies = self.history_keys | self.media.keys()
        tops = {k.split(".", 1)[0] for k in copies}
        return {k: v for k, (v, nested) in self.summary.items()
                if not k.startswith("_") and k != STEP_KEY and not (nested and (k in copies or k in tops))}

    def rules(self) -> StepRules:
        """The run's x-axis definitions (trackbridge's own ``trackbridge/step`` apart)."""
        return StepRules(self.definitions, ignore=STEP_KEY)

    def system_key(self, key: str) -> str:
        """The canonical name of a stats key: ``system/<key>`` (MLflow's form too), or the
        name a trackbridge writer kept for it."""
        if key.startswith(SYSTEM_PREFIX):
            return key
        kept = self.config.get(SYSTEM_KEYS_CONFIG_KEY)
        if isinstance(kept, dict) and isinstance(kept.get(key), str):
            return kept[key]
        return SYSTEM_PREFIX + key


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
    #: scalar values (numbers, text...): media are apart
    values: dict[str, Any]
    wandb_step: int
    #: key -> its step where a ``define_metric`` step metric gives it another than ``step``
    steps: dict[str, int] | None = None
    #: media key -> its W&B dict (:mod:`.media`)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)

    def step_of(self, key: str) -> int:
        return self.step if self.steps is None else self.steps.get(key, self.step)


def history_row(history: Any, rules: StepRules | None = None,
                last_steps: dict[str, float] | None = None) -> RowValues:
    """Decode one ``HistoryRecord``: the user's step (``trackbridge/step`` when a
    trackbridge writer put it there, else W&B's ``_step``, else for a key with a
    ``define_metric`` step metric that metric's value: :mod:`.metrics`), its time, its
    values, its media (:func:`.media.group`).  ``last_steps`` (step metric -> last value)
    is updated by a caller reading rows in order, for rows that lack the step metric."""
    wandb_step = history.step.num
    ts: int | None = None
    user_step: Any = None
    items: list[tuple[list[str], Any]] = []
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
        if len(nested) > 1:
            value: Any = decode(item)  # exact JSON (a media field's ints stay ints)
        elif raw and raw[0] in _NUMBER_START:
            try:
                value = float(raw)
            except ValueError:
                value = decode_history(item)
        else:
            value = decode_history(item)
        if key == STEP_KEY:
            user_step = value
            continue
        items.append((list(nested) if len(nested) > 1 else [key], value))
    values, media = wmedia.group(items)
    if isinstance(user_step, (int, float)) and user_step == user_step:
        return RowValues(int(user_step), ts, values, wandb_step, None, media)
    steps = custom_steps(rules, [*values, *media], values, last_steps) if rules else None
    return RowValues(wandb_step, ts, values, wandb_step, steps, media)


def custom_steps(rules: StepRules, keys: list[str], values: dict[str, Any],
                 last_steps: dict[str, float] | None) -> dict[str, int] | None:
    """key -> step for the ``keys`` of a row whose x-axis is a step metric: its value in
    the row, else its last value (``last_steps``); ``None`` when no key has one."""
    seen = last_steps if last_steps is not None else {}
    for name in rules.step_keys:
        value = values.get(name)
        if isinstance(value, float) and value == value:
            seen[name] = value
    steps: dict[str, int] = {}
    for key in keys:
        name = rules.step_metric(key)
        if name is not None and name in seen:
            steps[key] = int(seen[name])
    return steps or None


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
                if keys is None:  # nested keys (media...) or dict values: decoded
                    row = history_row(parse(data).history)
                    keys = list(row.values)
                    if row.media:
                        _add_media(run, offset, row.media)
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
                run.stats_offsets.append(offset)
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
            elif which == "metric":
                found = definition(record.metric)
                if found is not None and found.get("name") != STEP_KEY and found.get("step_metric") != STEP_KEY:
                    run.definitions.append(found)
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
    rules = run.rules()
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
            row = history_row(parse_record(data).history, rules)
            ts = row.timestamp if row.timestamp is not None else (run.start_time or 0)
            for key in wanted.get(offset, ()):
                value = row.values.get(key)
                number = as_number(value)
                if number is not None:
                    run.metrics[key] = MetricSummary(key, number, row.step_of(key), ts)
                elif value is not None:
                    run.other_values[key] = f"{type(value).__name__} values, neither numbers nor W&B media"
            if row.media and not run.media.keys() >= row.media.keys():
                _media_pass(run)  # media as one dict value (older writers), met only now
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
        name = run.system_key(key)
        run.system_metrics[name] = MetricSummary(name, value, n if step is None else step, ts)


def _artifact(rec: Any) -> Artifact:
    import json

    entries = [(c.path, c.digest, int(c.size), c.local_path or c.ref) for c in rec.manifest.contents]
    try:
        metadata = json.loads(rec.metadata) if rec.metadata else {}
    except ValueError:
        metadata = {}
    return Artifact(rec.name, rec.type, rec.digest, list(rec.aliases), metadata, entries, client_id=rec.client_id,
                    description=rec.description, tags=list(rec.tags), committed=rec.finalize)


def _media_pass(run: ScannedRun) -> None:
    """Find the media of every history row again, decoding each (the usual pass reads
    only the keys of rows of one-part keys, where an older writer put a media dict)."""
    run.media.clear()
    run.media_offsets.clear()
    run.media_files.clear()
    with open(run.path, "rb") as stream:
        for offset in run.history_offsets:
            stream.seek(offset)
            try:
                _at, data = next(txlog.iter_records(stream, str(run.path), start=offset))
            except (StopIteration, txlog.TxlogError):
                continue
            row = history_row(parse_record(data).history)
            if row.media:
                _add_media(run, offset, row.media)
    for key in run.media:
        run.other_values.pop(key, None)


def _add_media(run: ScannedRun, offset: int, media: dict[str, dict[str, Any]]) -> None:
    """Count a row's media values and note where they are and which files they name."""
    for key, value in media.items():
        kind = wmedia.kind_of(value)
        if kind is None:  # a W&B type no canonical kind holds (coverage.py says why)
            run.other_values[key] = f"W&B {value.get('_type')!s} values, no canonical media kind"
            continue
        run.media_files.update(wmedia.list_files(value))
        found = run.media.setdefault(key, [kind, 0])
        found[1] += len(wmedia.points(value, 0, 0))
        run.media_offsets.setdefault(key, array("q")).append(offset)

