"""What a Comet offline archive holds, and how each part maps to the canonical run.

The table of every message type, upload type and field the SDK writes (mapped or
not carried, with the reason) is :mod:`~trackbridge.backends.comet.coverage`; this
module holds the rules the reader and the writers share.  Nothing here imports comet_ml.

Decisions (also in ``docs/backends/comet.md``):

* ``parameter_msg`` -> ``params``, last value wins (Comet shows the latest).  The
  SDK's step counters ``curr_step``/``curr_epoch`` are bookkeeping, not params.
  Nested dicts are flattened by the SDK as ``a|b``; the reader nests them again
  only when the archive says so (other ``hasNestedParams`` = true) and no flat key
  collides with a nested prefix (then every key stays flat, as logged).
* ``metric_msg`` -> series ``metricName`` with ``step`` (``None`` -> 0) and
  ``local_timestamp`` (ms).  The per-point ``epoch`` becomes one series ``epoch``
  (one point per distinct (step, epoch), at the first time it was seen), unless the
  user logged a metric called ``epoch`` (then that series is the epoch).  The SDK's
  ``sys.*`` metrics are system metrics; its ``process duration`` (the script's run
  time, logged by ``end()``) is bookkeeping, listed as not carried.
* ``log_other`` -> key/value tags (Comet "others" are the user's key/value metadata;
  values that are not strings are kept as JSON text).  Others the SDK writes itself
  (:data:`SDK_OTHERS`) are bookkeeping: ``Name`` is the run name, the rest is dropped.
  trackbridge's own others carry what Comet has no field for: notes
  (``trackbridge.notes``), the run status (``trackbridge.status``) and summary values
  (``trackbridge.summary.<key>``, JSON).
* experiment.json ``tags`` -> labels; ``start_time``/``stop_time`` -> the run's times.
* ``file_upload`` of type ``asset`` -> artifact at its ``fileName``, its ``metadata``
  -> ``artifact_meta``; ``histogram3d``, ``visualization``, ``text-sample``, ``audio``
  and ``video`` -> media series; other user file types (curves, confusion matrices...)
  -> artifact ``<type>/<fileName>``; ``model-element`` -> files of the logged model
  ``groupingName`` (one name per model: the writer numbers repeated names), its
  ``metadata`` -> the model's params and metadata; ``source_code`` (the SDK's automatic
  copy of the launching script) is not carried.
* ``register_model`` -> registry versions (semver, status as stage, tags), pointing at
  the experiment model ``model_name`` (its files), never at the registry name;
  ``remote_model`` -> a logged model without files (its URIs are not copied).
"""
from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from trackbridge.backends.comet import coverage as cov
from trackbridge.model import LoggedModel
#: upload types that are not carried (the rest are artifacts, model files or media).
NOT_CARRIED_UPLOADS = frozenset(k for k, v in cov.UPLOADS.items() if not cov.carried(v))

#: upload types read as media series: upload type -> canonical kind.
MEDIA_UPLOADS: dict[str, str] = {"histogram3d": "histogram", "visualization": "image", "text-sample": "text",
                                 "audio": "audio", "video": "video"}

#: Keys trackbridge adds to a file_upload's ``metadata`` (Comet keeps an asset's metadata
#: as a JSON object; the rest of the object stays the user's):
#: on an asset, the full ``RunRecord.artifact_meta`` entry of its path where it holds more
#: than ``{"metadata": ...}`` (a W&B artifact's type, description, aliases; a folder);
ARTIFACT_META_KEY = "trackbridge.artifact_meta"
#: on a model's files, the logged model's name, metrics, tags, type, status and flavors
#: (its params are the metadata's own keys, as Comet shows them);
MODEL_META_KEY = "trackbridge.model"
#: on a media file, what Comet's upload has no field for: the series key (text, audio),
#: caption, meta, file name, and a histogram's exact bins where Comet's cannot hold them.
MEDIA_META_KEY = "trackbridge.media"

#: params the SDK logs itself (step counters).
SDK_PARAMS = frozenset({"curr_step", "curr_epoch"})

#: others the SDK logs itself.  ``Name`` is the run name; the rest is dropped.
SDK_OTHERS = frozenset({
    "Name", "offline_experiment", "hasNestedParams", "sys.already_imported_modules",
    "Created from", "optimizer_id", "optimizer_pid", "optimizer_trial", "optimizer_count",
    "optimizer_metric", "optimizer_metric_value", "optimizer_process", "optimizer_version",
    "optimizer_parameters", "optimizer_name", "optimizer_objective",
})

#: trackbridge's own others (what Comet has no field for).
NOTES_OTHER = "trackbridge.notes"
STATUS_OTHER = "trackbridge.status"
SUMMARY_PREFIX = "trackbridge.summary."
#: JSON {Comet name: key} of system metrics written as ``sys.<key>``.
SYSTEM_KEYS_OTHER = "trackbridge.system_keys"
#: registry version tags that stand for aliases (Comet has none).
ALIAS_TAG_PREFIX = "alias:"
#: registry version tags that stand for the registered model's own tags.
MODEL_TAG_PREFIX = "model:"


def encode_version_tags(tags: Mapping[str, str], aliases: list[str], model_tags: Mapping[str, str]) -> list[str]:
    """Comet's version tags are labels: ``k`` (empty value), ``k=v``, ``alias:a`` and
    ``model:k=v`` carry the version's tags, its aliases and its model's tags."""
    def kv(k: str, v: str) -> str:
        return f"{k}={v}" if v else k

    return ([kv(k, v) for k, v in tags.items()] + [ALIAS_TAG_PREFIX + a for a in aliases]
            + [MODEL_TAG_PREFIX + kv(k, v) for k, v in model_tags.items()])


def decode_version_tags(labels: list[str]) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """The inverse of :func:`encode_version_tags`: (tags, aliases, model tags)."""
    tags: dict[str, str] = {}
    aliases: list[str] = []
    model_tags: dict[str, str] = {}
    for label in labels:
        if label.startswith(ALIAS_TAG_PREFIX):
            aliases.append(label[len(ALIAS_TAG_PREFIX):])
        elif label.startswith(MODEL_TAG_PREFIX):
            k, _, v = label[len(MODEL_TAG_PREFIX):].partition("=")
            model_tags[k] = v
        else:
            k, _, v = label.partition("=")
            tags[k] = v
    return tags, aliases, model_tags

#: JSON list of the run's dataset inputs (Comet has no such field).
INPUTS_OTHER = "trackbridge.inputs"
#: provenance tags the engine writes: a copy's source and the fields Comet cannot set.
SOURCE_PLATFORM_TAG = "trackbridge.source.platform"
SOURCE_RUN_TAG = "trackbridge.source.run_id"
SOURCE_USER_TAG = "trackbridge.source.user"
SOURCE_PARENT_TAG = "trackbridge.source.parent_run_id"


def asset_metadata(file_name: str, path: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The upload metadata of asset ``file_name`` for the ``artifact_meta`` entry of
    ``path`` (the file itself or a folder above it): Comet's own metadata is the entry's
    ``metadata``; the rest of the entry (and the folder it is about) goes under
    :data:`ARTIFACT_META_KEY`, unless the entry is a file's metadata alone."""
    native = entry.get("metadata")
    if file_name == path and set(entry) == {"metadata"} and isinstance(native, dict) and native:
        return dict(native)
    kept: dict[str, Any] = {k: v for k, v in entry.items() if k != "metadata"}
    if "metadata" in entry:
        kept["metadata"] = {} if isinstance(native, dict) else native  # {}: Comet's own metadata is it
    return {**(native if isinstance(native, dict) else {}), ARTIFACT_META_KEY: {"path": path, "entry": kept}}


#: what Comet's model is when comet_ml logged it: its files, all uploaded (MLflow says READY).
READY = "READY"


def experiment_model_name(name: str, used: set[str]) -> str:
    """The experiment model a new logged model ``name`` goes to: ``name``, numbered
    (``model-2``...) where the run already has one, since Comet merges one name's files
    into one model.  Adds it to ``used``."""
    grouping, n = name, 1
    while grouping in used:
        n += 1
        grouping = f"{name}-{n}"
    used.add(grouping)
    return grouping


def model_metadata(model: LoggedModel) -> dict[str, Any]:
    """The metadata of a logged model's files: its params as the metadata's own keys (as
    Comet shows model metadata), the rest of the model under :data:`MODEL_META_KEY`."""
    kept = {"name": model.name, "metrics": {k: encode_float(v) for k, v in model.metrics.items()},
            "tags": dict(model.tags), "model_type": model.model_type, "status": model.status,
            "flavors": list(model.flavors)}
    return {**{str(k): str(v) for k, v in model.params.items()}, MODEL_META_KEY: kept}


def logged_model(key: str, grouping: str, metadata: Mapping[str, Any]) -> LoggedModel:
    """The inverse of :func:`model_metadata` for experiment ``key``'s model ``grouping``;
    a model comet_ml logged (no trackbridge key) has its metadata as params and is READY."""
    meta = dict(metadata)
    kept = meta.pop(MODEL_META_KEY, None)
    kept = kept if isinstance(kept, dict) else {}
    return LoggedModel(
        name=str(kept.get("name") or grouping), artifact_path=grouping,
        flavors=[str(f) for f in kept.get("flavors") or []], model_id=model_id(key, grouping),
        params={str(k): other_as_tag(v) for k, v in meta.items()},
        metrics={str(k): decode_float(v) for k, v in (kept.get("metrics") or {}).items()},
        tags={str(k): str(v) for k, v in (kept.get("tags") or {}).items()},
        model_type=kept.get("model_type"), status=kept["status"] if "status" in kept else READY,
    )


def artifact_meta(assets: Iterable[tuple[str, Mapping[str, Any]]], loose: Any) -> dict[str, dict[str, Any]]:
    """``RunRecord.artifact_meta`` from (asset file name, its upload metadata) pairs: each
    asset's metadata as ``{"metadata": ...}``, or the entry :func:`asset_metadata` kept
    (for the asset or the folder above it) with Comet's own metadata, which a user may
    edit, as its ``metadata``; then ``loose``, the entries of paths with no file (the
    other :data:`ARTIFACT_META_KEY`)."""
    out: dict[str, dict[str, Any]] = {}
    for name, metadata in assets:
        meta = dict(metadata)
        kept = meta.pop(ARTIFACT_META_KEY, None)
        if not isinstance(kept, dict) or not isinstance(kept.get("entry"), dict):
            out[name] = {"metadata": meta}
            continue
        entry = dict(kept["entry"])
        if isinstance(entry.get("metadata"), dict) or ("metadata" not in entry and meta):
            entry["metadata"] = meta
        out[str(kept.get("path") or name)] = entry
    if isinstance(loose, dict):
        out.update({str(k): dict(v) for k, v in loose.items() if isinstance(v, dict)})
    return out


def model_id(key: str, model_name: str) -> str:
    """The canonical id of an experiment's model: Comet names a model within its
    experiment (offline there is no other id), so the id is the pair, unique everywhere."""
    return f"{key}:{model_name}"


def model_name_of(model_id: str | None, key: str) -> str | None:
    """The inverse of :func:`model_id` for a model of experiment ``key``, else ``None``."""
    prefix = f"{key}:"
    return model_id[len(prefix):] if model_id and model_id.startswith(prefix) else None


def experiment_key(platform: str, run_id: str) -> str:
    """The Comet experiment key of a copy of (platform, run id): 40 hex digits,
    equal to ``comet_ml.get_experiment_key(f"trackbridge:{platform}:{run_id}")``."""
    return hashlib.sha1(f"trackbridge:{platform}:{run_id}".encode()).hexdigest()


def new_experiment_key(tags: Mapping[str, str]) -> str:
    """The key a writer gives a new experiment: for a copy (its provenance tags name the
    source run) the key derived from the source run, so a second copy lands on the same
    experiment instead of making another; otherwise a random one."""
    if tags.get(SOURCE_PLATFORM_TAG) and tags.get(SOURCE_RUN_TAG):
        return experiment_key(tags[SOURCE_PLATFORM_TAG], tags[SOURCE_RUN_TAG])
    return uuid.uuid4().hex


def with_parent(tags: Mapping[str, str], parent_run_id: str | None) -> dict[str, str]:
    """The others a new experiment starts with: Comet has no nesting, so the parent run
    is kept as the tag :data:`SOURCE_PARENT_TAG` (unless the tags already carry one),
    from which the readers give the parent back."""
    others = dict(tags)
    if parent_run_id is not None and SOURCE_PARENT_TAG not in others:
        others[SOURCE_PARENT_TAG] = parent_run_id
    return others


def parent_key(tags: Mapping[str, str]) -> str | None:
    """The Comet key of a run's parent, from the tag :func:`with_parent` keeps it in: a
    copy's names its source parent, whose copy has the key derived from it; a run logged
    live names its parent's key itself."""
    parent = tags.get(SOURCE_PARENT_TAG)
    if not parent:
        return None
    platform = tags.get(SOURCE_PLATFORM_TAG)
    return experiment_key(platform, parent) if platform else parent


#: the series the per-point epoch becomes.
EPOCH_SERIES = "epoch"
NESTED_SEPARATOR = "|"
#: the project an archive without ``project_name`` goes to at upload (Comet's default).
DEFAULT_PROJECT = "general"


def experiment_id(workspace: str | None, project: str) -> str:
    """The canonical experiment id of a Comet project: ``workspace/project``, or the
    project alone where the workspace is not known (Comet then uses the default one).
    The writers return it and the readers report it, so both must make it alike."""
    return f"{workspace}/{project}" if workspace else project


def split_experiment(name: str, workspace: str | None) -> tuple[str | None, str]:
    """The inverse of :func:`experiment_id`: ``"ws/project"`` or ``"project"`` ->
    (workspace, project), ``workspace`` standing in where the name has none."""
    ws, sep, project = name.partition("/")
    return (ws, project) if sep else (workspace, name)


#: metrics the SDK logs about itself: not the run's data (the wall time of the
#: logging process, re-made by every upload or reopening), listed as not carried.
SDK_METRICS = {"process duration": "the SDK's own wall time of the logging process, logged by end()"}


def is_system_metric(name: str) -> bool:
    """Metrics the SDK's system monitor logs (``sys.cpu.percent.avg``...): system metrics."""
    return name.startswith("sys.")


def decode_float(value: Any) -> float:
    """A metric value as the SDK writes it (``fix_special_floats``: NaN and ±inf as strings)."""
    if isinstance(value, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if value in special:
            return special[value]
    return float(value)


def encode_float(value: float) -> Any:
    """The inverse of :func:`decode_float`: what ``comet upload`` and the SDK expect."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def json_safe(value: Any) -> Any:
    """``value`` with NaN and ±inf floats as the SDK writes them (:func:`encode_float`):
    an upload's metadata must be strict JSON for Comet, and a float that is not would
    make the whole copy fail; the value then reads back as that text (``check`` shows it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return encode_float(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def other_as_tag(value: Any) -> str:
    """Others are shown as text by Comet; a non-string value is kept as JSON text."""
    return value if isinstance(value, str) else json.dumps(value)


def nest_params(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a|b": 1}`` -> ``{"a": {"b": 1}}`` when that is unambiguous, else ``flat`` as is.

    Ambiguous: an empty segment (``"a||b"``, ``"|a"``) or a key that is both a value
    and a prefix (``"a"`` and ``"a|b"``).  Then nothing is nested, so no value is lost."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(NESTED_SEPARATOR)
        if any(not p for p in parts):
            return dict(flat)
        node = nested
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict) or _is_leaf(child):
                return dict(flat)
            node = child
        if parts[-1] in node:
            return dict(flat)
        node[parts[-1]] = _Leaf(value) if isinstance(value, dict) else value
    return _unwrap(nested)


class _Leaf(dict):  # a dict *value* (not a nesting level); never produced by the SDK's flattening
    def __init__(self, value: dict) -> None:
        super().__init__(value)


def _is_leaf(node: Any) -> bool:
    return isinstance(node, _Leaf)


def _unwrap(node: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, _Leaf) else _unwrap(v) if isinstance(v, dict) else v) for k, v in node.items()}


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts flattened the way the SDK does (``a|b``), leaves kept as JSON values."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{NESTED_SEPARATOR}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, name))
        else:
            flat[name] = value
    return flat
