"""Values inside ``.wandb`` records: JSON strings keyed by ``key`` or ``nested_key``.

Kept apart so the reader, the writer and the history decoder agree on one rule:
a nested key ``["a", "b"]`` is the W&B metric ``a.b`` in history and the nested
dict ``{"a": {"b": ...}}`` in config and summary; ``NaN``/``Infinity`` are JSON
extensions W&B writes and reads (Python's ``json`` does too).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from trackbridge.model import DatasetInput

#: config key wandb writes for its own bookkeeping (never a user param).
WANDB_CONFIG_KEY = "_wandb"
#: config namespace that holds trackbridge's key/value tags (W&B tags are labels only).
TAGS_CONFIG_KEY = "trackbridge.tags"
#: config key keeping the experiment name when W&B's project name had to differ from it.
EXPERIMENT_CONFIG_KEY = "trackbridge.experiment"
#: config key holding dataset inputs (MLflow ``log_input``), which W&B runs have no field for.
INPUTS_CONFIG_KEY = "trackbridge.inputs"
#: config key holding the registry entries of the run's models (:mod:`.registry`).
REGISTRY_CONFIG_KEY = "trackbridge.registry"
#: config key naming the canonical key of stats keys written without the ``system/``
#: prefix readers give them (a source whose system metric keys lack it).
SYSTEM_KEYS_CONFIG_KEY = "trackbridge.system_keys"
#: config key: W&B artifact name -> the run path its files were at (``RunRecord.artifact_meta``
#: of a path that is not ``wandb-artifacts/<name>``).
ARTIFACT_PATHS_CONFIG_KEY = "trackbridge.artifact_paths"
#: config key: metadata of paths no W&B artifact can hold (no files, no model there).
ARTIFACT_META_CONFIG_KEY = "trackbridge.artifact_meta"
#: config keys that are bookkeeping, never the user's params.
BOOKKEEPING_CONFIG_KEYS = frozenset({WANDB_CONFIG_KEY, TAGS_CONFIG_KEY, EXPERIMENT_CONFIG_KEY, INPUTS_CONFIG_KEY,
                                     REGISTRY_CONFIG_KEY, SYSTEM_KEYS_CONFIG_KEY, ARTIFACT_PATHS_CONFIG_KEY,
                                     ARTIFACT_META_CONFIG_KEY})
#: prefix of system metric keys (stats records hold them without it; MLflow names them so).
SYSTEM_PREFIX = "system/"
#: tags the engine keeps run fields in when a destination cannot set them; read back as fields.
SOURCE_START_TIME_TAG = "trackbridge.source.start_time"
SOURCE_END_TIME_TAG = "trackbridge.source.end_time"
SOURCE_USER_TAG = "trackbridge.source.user"
SOURCE_PARENT_TAG = "trackbridge.source.parent_run_id"
SOURCE_PLATFORM_TAG = "trackbridge.source.platform"
#: set (in the tags namespace) on runs the SDK writer had to end without a ``finish_run``:
#: the SDK cannot leave a run running, so the W&B run ends "failed"; read back as RUNNING.
UNFINISHED_TAG = "trackbridge.unfinished"
#: history key that carries the user's step (W&B's own ``_step`` must strictly increase).
STEP_KEY = "trackbridge/step"
#: run-record tags keep these W&B fields in the canonical model's key/value tags.
GROUP_TAG = "wandb.group"
JOB_TYPE_TAG = "wandb.job_type"


_PROJECT_FORBIDDEN = str.maketrans({c: "-" for c in "/\\#?%:"})


def project_name(experiment: str) -> str:
    """The W&B project an experiment name maps to: W&B refuses ``/ \\ # ? % :`` and more
    than 128 characters in project names (each becomes ``-``; the name is cut).  Readers
    match an experiment by its name or this form, so copies are found again."""
    return (experiment.translate(_PROJECT_FORBIDDEN) or "uncategorized")[:128]


#: ``DatasetInput.source_type`` of an artifact a W&B run used (``run.use_artifact``).
USED_ARTIFACT_SOURCE = "wandb-artifact"


def used_artifact_input(name: str, kind: str, artifact_id: str) -> DatasetInput:
    """An artifact a run used, as the run's dataset input (the canonical model's field for
    what a run consumed): its ``name:version``, W&B's id for it, and its type."""
    return DatasetInput(name=name, digest=artifact_id, source_type=USED_ARTIFACT_SOURCE, source=name,
                        tags={"wandb.artifact_type": kind} if kind else {})


def item_path(item: Any) -> list[str]:
    """The key path of a config/summary/history item (``nested_key`` wins over ``key``)."""
    nested = item.nested_key
    return list(nested) if nested else [item.key]


def decode(item: Any) -> Any:
    """The exact JSON value of an item: ``value_json`` or, from newer writers, a typed field."""
    raw = item.value_json
    if raw:
        return json.loads(raw)
    return _typed(item)


_NUMBER_START = frozenset("-0123456789NI")


def decode_history(item: Any) -> Any:
    """Like :func:`decode`, faster for the numbers that fill history rows (a float
    for every JSON number, ``NaN`` and ``±Infinity``; other JSON as it is)."""
    raw = item.value_json
    if raw:
        if raw[0] in _NUMBER_START:
            try:
                return float(raw)
            except ValueError:
                pass
        return json.loads(raw)
    return _typed(item)


def _typed(item: Any) -> Any:
    oneofs = item.DESCRIPTOR.oneofs_by_name
    kind = item.WhichOneof("value") if "value" in oneofs else None
    if kind is None or kind == "none":
        return None
    if kind == "json":
        return json.loads(item.json)
    return getattr(item, kind)


def encode(value: Any) -> str:
    """JSON as W&B writes it (``NaN``/``Infinity`` allowed, compact)."""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity"))
    return json.dumps(value, separators=(",", ":"), allow_nan=True)


def as_number(value: Any) -> float | None:
    """A history value as a metric float, or ``None`` for non-numbers (media, text, bool)."""
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return None


def set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    """``target[path[0]][path[1]]... = value``, creating dicts on the way."""
    node = target
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def del_path(target: dict[str, Any], path: list[str]) -> None:
    node: Any = target
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)


def flat_str(mapping: Mapping[str, Any]) -> dict[str, str]:
    """Tags kept in config come back as strings whatever JSON type they took."""
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in mapping.items()}
