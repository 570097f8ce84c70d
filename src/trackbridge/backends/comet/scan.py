"""One pass over an archive's ``messages.json``: everything of the run except its points.

Why a scan and a second pass: a run can hold millions of points, so the scan keeps
only what a :class:`~trackbridge.model.RunRecord` needs (params, others, the last
point per key, file lists) and :func:`iter_points` streams the points again from
the archive when a series is read.  Memory is the run's metadata, not its history.

Damage (a truncated zip, a line that is not JSON, a missing ``experiment.json``)
stops the scan at the first bad place: ``ScannedRun.damage`` says where, and
everything before it is in the scan.  The reader decides whether that is an error.
"""
from __future__ import annotations

import json
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackbridge.backends.comet import format as fmt
from trackbridge.backends.comet.zipsource import ArchiveFiles
from trackbridge.model import MetricPoint, MetricSummary

EXPERIMENT_FILE = "experiment.json"
MESSAGES_FILE = "messages.json"


@dataclass
class FileEntry:
    """A file carried by the archive: where it lives in the zip and what it is."""

    path: str
    member: str
    size: int


@dataclass
class RegisterEntry:
    """One ``register_model`` message."""

    registry_name: str
    model_name: str
    version: str
    status: str | None
    tags: list[str]
    #: the version's comment (Comet's ``comment``).
    description: str
    #: the registered model's description (Comet's ``description``).
    model_description: str = ""


@dataclass
class MediaEntry:
    """One media point of the archive: a file upload read as media, or an HTML message."""

    kind: str
    step: int
    timestamp: int
    #: the archive member holding its bytes (``None``: the value is ``data``).
    member: str | None
    #: its file name (the point's ``file``), for file-backed kinds.
    file: str | None
    #: the upload's metadata without trackbridge's key (the user's, as Comet shows it).
    metadata: dict[str, Any] = field(default_factory=dict)
    #: what trackbridge stored under :data:`~trackbridge.backends.comet.format.MEDIA_META_KEY`.
    kept: dict[str, Any] = field(default_factory=dict)
    #: an inline value (HTML).
    data: Any = None


@dataclass
class ScannedRun:
    path: Path
    meta: dict[str, Any]
    key: str
    params: dict[str, Any] = field(default_factory=dict)
    nested_params: bool = False
    #: user others (key/value tags) and trackbridge's own others, by key, last wins.
    others: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    system_metrics: dict[str, MetricSummary] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    #: the derived ``epoch`` series exists (points carry epochs, no user metric ``epoch``).
    derived_epoch: bool = False
    artifacts: dict[str, FileEntry] = field(default_factory=dict)
    models: dict[str, list[FileEntry]] = field(default_factory=dict)
    #: experiment model name -> the metadata of its files (Comet gives each the same).
    model_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: asset path -> its upload's metadata (the last upload of the path wins).
    artifact_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: media key -> points in archive order.
    media: dict[str, list[MediaEntry]] = field(default_factory=dict)
    remote_models: list[str] = field(default_factory=list)
    registrations: list[RegisterEntry] = field(default_factory=list)
    #: message types seen and not carried -> count (for plan).
    not_carried: Counter[str] = field(default_factory=Counter)
    #: where reading stopped early, or ``None`` for a whole archive.
    damage: str | None = None
    #: number of complete messages read.
    messages: int = 0
    #: lines of messages.json read before any damage (the second pass stops there too).
    good_lines: int = 0


def _summary(key: str, p: MetricPoint) -> MetricSummary:
    return MetricSummary(key, p.value, p.step, p.timestamp)


def iter_messages(files: ArchiveFiles, on_damage: list[str], skip: Callable[[bytes], bool] | None = None,
                  max_lines: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, message) of ``messages.json`` up to the first damage, which is
    appended to ``on_damage`` as a sentence naming the line.

    ``skip``: lines it is true for are not parsed (a cheap byte test, e.g. "does not
    name this metric"); ``max_lines``: stop after that many lines (where a scan found
    the damage), so a reader that skips lines still stops where the scan stopped."""
    lineno = 0
    if MESSAGES_FILE not in files.names():
        on_damage.append(f"{MESSAGES_FILE} is missing")
        return
    truncated = files.is_truncated(MESSAGES_FILE)
    try:
        pending: bytes | None = None
        for raw in files.lines(MESSAGES_FILE):
            if pending is not None:
                lineno += 1
                if max_lines is not None and lineno > max_lines:
                    return
                if skip is not None and skip(pending):
                    pending = raw
                    continue
                msg = _parse(pending, lineno, on_damage)
                if msg is None:
                    return
                yield lineno, msg
            pending = raw
        if pending is not None:
            lineno += 1
            if max_lines is not None and lineno > max_lines:
                return
            if truncated and not pending.endswith(b"\n"):
                on_damage.append(f"{MESSAGES_FILE} is cut short in line {lineno}")
                return
            msg = _parse(pending, lineno, on_damage)
            if msg is None:
                return
            yield lineno, msg
        if truncated:
            on_damage.append(f"{MESSAGES_FILE} is cut short after line {lineno}")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        on_damage.append(f"{MESSAGES_FILE} cannot be read after line {lineno} ({exc})")


def _parse(raw: bytes, lineno: int, on_damage: list[str]) -> dict[str, Any] | None:
    if not raw.strip():
        return {}
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        on_damage.append(f"{MESSAGES_FILE} line {lineno} is not valid JSON ({exc})")
        return None
    if not isinstance(msg, dict) or not isinstance(msg.get("payload"), dict):
        on_damage.append(f"{MESSAGES_FILE} line {lineno} is not a {{type, payload}} message")
        return None
    return msg


def read_meta(files: ArchiveFiles) -> dict[str, Any]:
    """``experiment.json``; raises ``ValueError`` naming the problem."""
    if EXPERIMENT_FILE not in files.names():
        raise ValueError(f"{EXPERIMENT_FILE} is missing")
    if files.is_truncated(EXPERIMENT_FILE):
        raise ValueError(f"{EXPERIMENT_FILE} is cut short")
    try:
        meta = json.loads(files.read(EXPERIMENT_FILE))
    except (ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{EXPERIMENT_FILE} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{EXPERIMENT_FILE} is not a JSON object")
    return meta


def metric_point(payload: dict[str, Any]) -> tuple[str, MetricPoint, Any] | None:
    """(name, point, epoch) of a ``metric_msg`` payload."""
    metric = payload.get("metric")
    if not isinstance(metric, dict) or "metricName" not in metric:
        return None
    step = metric.get("step")
    ts = payload.get("local_timestamp") or 0
    point = MetricPoint(int(step) if step is not None else 0, fmt.decode_float(metric.get("metricValue")), int(ts))
    return str(metric["metricName"]), point, metric.get("epoch")


def param_of(payload: dict[str, Any]) -> dict[str, Any] | None:
    value = payload.get("param") or payload.get("params")
    return value if isinstance(value, dict) and "paramName" in value else None


def other_of(msg_type: str, payload: dict[str, Any]) -> tuple[str, Any] | None:
    """(key, value) of a ``log_other`` (or a legacy ``ws_msg`` carrying one)."""
    if msg_type == "log_other" and "key" in payload:
        return str(payload["key"]), payload.get("value")
    if msg_type == "ws_msg" and isinstance(payload.get("log_other"), dict):
        other = payload["log_other"]
        return str(other.get("key")), other.get("val")
    return None


def scan(path: Path, files: ArchiveFiles) -> ScannedRun:
    """Everything but the points of the archive at ``path`` (see the module doc)."""
    meta = read_meta(files)
    key = str(meta.get("offline_id") or path.stem.split("-")[0])
    run = ScannedRun(path=path, meta=meta, key=key)
    damage: list[str] = []
    user_epoch = False
    epoch_mark: tuple[Any, Any] | None = None
    epoch_payload: dict[str, Any] | None = None
    epoch_count = 0
    last: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    names = set(files.names())
    for lineno, msg in iter_messages(files, damage):
        run.good_lines = lineno
        if not msg:
            continue
        run.messages += 1
        kind, payload = msg.get("type"), msg["payload"]
        if kind == "metric_msg":  # the hot path: one per point, so no objects per point
            metric = payload.get("metric")
            if not isinstance(metric, dict) or "metricName" not in metric:
                continue
            name = str(metric["metricName"])
            if name in fmt.SDK_METRICS:
                run.not_carried[f"metric:{name}"] += 1
                continue
            last[name] = payload
            counts[name] = counts.get(name, 0) + 1
            epoch = metric.get("epoch")
            if name == fmt.EPOCH_SERIES:
                user_epoch = True
            elif epoch is not None and (metric.get("step") or 0, epoch) != epoch_mark and not fmt.is_system_metric(name):
                epoch_mark = (metric.get("step") or 0, epoch)
                epoch_payload = payload
                epoch_count += 1
        elif kind == "parameter_msg":
            param = param_of(payload)
            if param is not None and param["paramName"] not in fmt.SDK_PARAMS:
                run.params[str(param["paramName"])] = param.get("paramValue")
        elif kind in ("log_other", "ws_msg"):
            other = other_of(kind, payload)
            if other is None:
                if kind == "ws_msg":
                    run.not_carried[kind] += 1
                continue
            okey, value = other
            if okey == "Name":
                run.name = None if value is None else str(value)
            elif okey == "hasNestedParams":
                run.nested_params = bool(value)
            elif okey not in fmt.SDK_OTHERS:
                run.others[okey] = value
        elif kind == "file_upload":
            _add_upload(run, payload, names, files)
        elif kind == "register_model":
            run.registrations.append(RegisterEntry(
                registry_name=str(payload.get("registry_name") or payload.get("model_name")),
                model_name=str(payload.get("model_name")),
                version=str(payload.get("version") or "1.0.0"),
                status=payload.get("status"),
                tags=[str(t) for t in payload.get("tags") or []],
                description=str(payload.get("comment") or ""),
                model_description=str(payload.get("description") or ""),
            ))
            for name in ("stages", "metadata", "status_configuration"):
                if payload.get(name):
                    run.not_carried[f"register_model.{name}"] += 1
        elif kind in ("html", "htmlOverride"):
            series = run.media.setdefault("html", [])
            series.append(MediaEntry("html", len(series), 0, None, None, data=str(payload.get(kind) or ""),
                                     metadata={"override": True} if kind == "htmlOverride" else {}))
        elif kind == "remote_model":
            if payload.get("model_name") and payload["model_name"] not in run.remote_models:
                run.remote_models.append(str(payload["model_name"]))
        else:
            run.not_carried[str(kind)] += 1
    for name, payload in last.items():
        found = metric_point(payload)
        if found is not None:
            target = run.system_metrics if fmt.is_system_metric(name) else run.metrics
            target[name] = _summary(name, found[1])
    run.counts.update(counts)
    run.derived_epoch = epoch_payload is not None and not user_epoch
    if run.derived_epoch and epoch_payload is not None:
        found = metric_point(epoch_payload)
        if found is not None:
            _, point, epoch = found
            run.metrics[fmt.EPOCH_SERIES] = MetricSummary(fmt.EPOCH_SERIES, float(epoch), point.step, point.timestamp)
            run.counts[fmt.EPOCH_SERIES] = epoch_count
    if files.damage:
        damage.insert(0, files.damage)
    run.damage = "; ".join(damage) if damage else None
    return run


def _add_upload(run: ScannedRun, payload: dict[str, Any], names: set[str], files: ArchiveFiles) -> None:
    member = payload.get("file_path")
    upload_type = str(payload.get("upload_type") or "asset")
    extra = payload.get("additional_params") or {}
    metadata = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
    if upload_type in fmt.NOT_CARRIED_UPLOADS:
        run.not_carried[f"file_upload:{upload_type}"] += 1
        return
    if not member or member not in names or files.is_truncated(member):
        run.not_carried["file_upload:missing-file"] += 1
        return
    file_name = str(extra.get("fileName") or member)
    if upload_type in fmt.MEDIA_UPLOADS:
        _add_media(run, payload, upload_type, str(member), dict(metadata))
        return
    if upload_type == "model-element":
        model = str(extra.get("groupingName") or "model")
        entries = run.models.setdefault(model, [])
        entries[:] = [e for e in entries if e.path != file_name]
        entries.append(FileEntry(file_name, member, files.size(member)))
        if metadata and model not in run.model_meta:
            run.model_meta[model] = dict(metadata)
        return
    if upload_type != "asset":
        if file_name == "auto-generated-in-the-backend":
            file_name = str(extra.get("assetId") or member)
        file_name = f"{upload_type}/{file_name}"
    run.artifacts[file_name] = FileEntry(file_name, member, files.size(member))
    if metadata:
        run.artifact_meta[file_name] = dict(metadata)
    else:
        run.artifact_meta.pop(file_name, None)


#: the series a text sample goes to when trackbridge did not name it (Comet's Text tab has one).
TEXT_SERIES = "text"


def _add_media(run: ScannedRun, payload: dict[str, Any], upload_type: str, member: str,
               metadata: dict[str, Any]) -> None:
    """A media upload: its series key is Comet's name for it (the histogram's or audio's
    file name, the image's figure name; text samples have none: ``text``) unless
    trackbridge stored the source's key."""
    extra = payload.get("additional_params") or {}
    kept = metadata.pop(fmt.MEDIA_META_KEY, None)
    kept = kept if isinstance(kept, dict) else {}
    kind = fmt.MEDIA_UPLOADS[upload_type]
    if upload_type == "visualization":
        name = str(extra.get("figName") or extra.get("fileName") or "image")
    elif upload_type == "text-sample":
        name = TEXT_SERIES
    else:
        name = str(extra.get("fileName") or upload_type)
    key = str(kept.get("key") or name)
    file = None
    if kind not in ("histogram", "text"):
        file = str(kept.get("file") or name.rsplit("/", 1)[-1])
    step = extra.get("step")
    run.media.setdefault(key, []).append(MediaEntry(
        kind, int(step) if step is not None else 0, int(payload.get("local_timestamp") or 0), member, file,
        metadata, kept))


def iter_points(files: ArchiveFiles, keys: set[str], derived_epoch: bool,
                max_lines: int | None = None) -> Iterator[tuple[str, MetricPoint]]:
    """(key, point) of the series ``keys``, in archive order, up to any damage.

    The derived ``epoch`` series yields a point whenever the (step, epoch) pair of the
    user's metric messages changes (the SDK logs a step's metrics one after another)."""
    damage: list[str] = []
    want_epoch = derived_epoch and fmt.EPOCH_SERIES in keys
    epoch_mark: tuple[int, Any] | None = None
    skip = None
    if not want_epoch and len(keys) <= 3:  # a line that does not hold a wanted name as a JSON string is not parsed
        needles = tuple({json.dumps(k, ensure_ascii=a).encode() for k in keys for a in (True, False)})

        def skip(raw: bytes) -> bool:
            return not any(n in raw for n in needles)

    for _lineno, msg in iter_messages(files, damage, skip, max_lines):
        if not msg or msg.get("type") != "metric_msg":
            continue
        found = metric_point(msg["payload"])
        if found is None:
            continue
        name, point, epoch = found
        if name in keys:
            yield name, point
        if want_epoch and epoch is not None and not fmt.is_system_metric(name):
            if (point.step, epoch) != epoch_mark:
                epoch_mark = (point.step, epoch)
                yield fmt.EPOCH_SERIES, MetricPoint(point.step, float(epoch), point.timestamp)
