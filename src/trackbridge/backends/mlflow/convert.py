"""MLflow entities <-> the canonical model.

Pure functions, no I/O (except building MLflow entity objects, imported lazily),
so the mapping rules can be read in one place:

* ``mlflow.runName`` / ``mlflow.user`` / ``mlflow.parentRunId`` /
  ``mlflow.note.content`` become :class:`RunRecord` fields and leave the tags;
  ``mlflow.log-model.history`` becomes :attr:`RunRecord.models`.  Every other
  tag, ``mlflow.*`` included, is kept as is.
* Metric keys under ``system/`` are system metrics (MLflow's system-metrics
  monitor logs them there).
* MLflow's SQL stores cannot hold infinities: they store ±inf as ±DBL_MAX
  (``SqlAlchemyStore.sanitize_metric_value``).  On read, ±DBL_MAX is turned back
  into ±inf — a real metric at exactly DBL_MAX is not a thing in practice, and
  NaN/±inf must round-trip (DESIGN: "NaN/±inf kept").
"""
from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from trackbridge.model import (
    DatasetInput,
    LoggedModel,
    MetricPoint,
    MetricSummary,
    ModelVersion,
    RegisteredModel,
    RunRecord,
    RunStatus,
)

PLATFORM = "mlflow"
TAG_RUN_NAME = "mlflow.runName"
TAG_USER = "mlflow.user"
TAG_PARENT = "mlflow.parentRunId"
TAG_NOTE = "mlflow.note.content"
TAG_MODEL_HISTORY = "mlflow.log-model.history"
#: summary values (W&B summary, Comet others), which MLflow has no field for: one JSON tag.
TAG_SUMMARY = "trackbridge.summary"
#: tags that become RunRecord fields and are removed from ``RunRecord.tags``.
LIFTED_TAGS = frozenset({TAG_RUN_NAME, TAG_USER, TAG_PARENT, TAG_NOTE, TAG_MODEL_HISTORY, TAG_SUMMARY})
SYSTEM_METRIC_PREFIX = "system/"
_DBL_MAX = sys.float_info.max
#: MLflow 3 stores a logged model's files at ``<experiment root>/models/<model_id>/artifacts``.
_MODEL_LOCATION = re.compile(r"/models/(m-[0-9a-f]+)/artifacts/?$")
#: the user MLflow records when none is given; not a real user.
_UNKNOWN_USER = "unknown"


def metric_value_from_store(value: float) -> float:
    """Undo the SQL stores' ±inf -> ±DBL_MAX substitution."""
    value = float(value)
    if value == _DBL_MAX:
        return math.inf
    if value == -_DBL_MAX:
        return -math.inf
    return value


def metric_point(metric: Any) -> MetricPoint:
    """An ``mlflow.entities.Metric`` as a :class:`MetricPoint`."""
    return MetricPoint(int(metric.step or 0), metric_value_from_store(metric.value), int(metric.timestamp or 0))


def _summary(metric: Any) -> MetricSummary:
    point = metric_point(metric)
    return MetricSummary(metric.key, point.value, point.step, point.timestamp)


def split_metrics(metrics: Iterable[Any]) -> tuple[dict[str, MetricSummary], dict[str, MetricSummary]]:
    """Latest metrics -> (user metrics, system metrics) by the ``system/`` prefix."""
    user: dict[str, MetricSummary] = {}
    system: dict[str, MetricSummary] = {}
    for metric in metrics:
        target = system if metric.key.startswith(SYSTEM_METRIC_PREFIX) else user
        target[metric.key] = _summary(metric)
    return user, system


def dataset_input_from_mlflow(entity: Any) -> DatasetInput:
    ds = entity.dataset
    return DatasetInput(
        name=ds.name,
        digest=ds.digest,
        source_type=ds.source_type or "",
        source=ds.source or "",
        schema=ds.schema or None,
        profile=ds.profile or None,
        tags={t.key: t.value for t in (entity.tags or [])},
    )


def dataset_input_to_mlflow(item: DatasetInput) -> Any:
    from mlflow.entities import Dataset, DatasetInput as MlflowDatasetInput, InputTag

    dataset = Dataset(
        name=item.name,
        digest=item.digest,
        source_type=item.source_type,
        source=item.source,
        schema=item.schema,
        profile=item.profile,
    )
    return MlflowDatasetInput(dataset, [InputTag(k, v) for k, v in item.tags.items()])


def legacy_models(history_tag: str | None) -> list[LoggedModel]:
    """Models recorded by MLflow 2.x ``log_model`` in the ``mlflow.log-model.history`` tag
    (their files live in the run's artifacts under ``artifact_path``)."""
    if not history_tag:
        return []
    try:
        entries = json.loads(history_tag)
    except ValueError:
        return []
    models = []
    for entry in entries if isinstance(entries, list) else []:
        path = entry.get("artifact_path") if isinstance(entry, dict) else None
        if path:
            flavors = entry.get("flavors") or {}
            models.append(LoggedModel(name=path, artifact_path=path, flavors=sorted(flavors)))
    return models


def user_of(info: Any, tags: Mapping[str, str]) -> str | None:
    """The ``mlflow.user`` tag, else the run's ``user_id`` unless it is MLflow's placeholder."""
    if tags.get(TAG_USER):
        return tags[TAG_USER]
    user = getattr(info, "user_id", None)
    return user if user and user != _UNKNOWN_USER else None


def run_to_record(
    run: Any,
    experiment_name: str,
    url: str | None,
    models: list[LoggedModel],
    platform: str = PLATFORM,
    unread: Mapping[str, str] | None = None,
) -> RunRecord:
    """An ``mlflow.entities.Run`` as a :class:`RunRecord` (``models`` fetched by the caller,
    ``unread``: what they hold that the record cannot, see
    :func:`~trackbridge.backends.mlflow.logged_models.unread_of_models`)."""
    info, data = run.info, run.data
    all_tags = dict(data.tags)
    metrics, system_metrics = split_metrics(data._metric_objs)
    inputs = [dataset_input_from_mlflow(d) for d in (run.inputs.dataset_inputs if run.inputs else [])]
    return RunRecord(
        platform=platform,
        run_id=info.run_id,
        experiment=experiment_name,
        experiment_id=info.experiment_id,
        name=all_tags.get(TAG_RUN_NAME) or info.run_name or None,
        status=RunStatus.parse(info.status),
        start_time=info.start_time,
        end_time=info.end_time,
        user=user_of(info, all_tags),
        parent_run_id=all_tags.get(TAG_PARENT) or None,
        url=url,
        params=dict(data.params),
        tags={k: v for k, v in all_tags.items() if k not in LIFTED_TAGS},
        notes=all_tags.get(TAG_NOTE),
        summary=summary_from_tag(all_tags.get(TAG_SUMMARY)),
        metrics=metrics,
        system_metrics=system_metrics,
        inputs=inputs,
        models=legacy_models(all_tags.get(TAG_MODEL_HISTORY)) + models,
        unread={**unread_of_links(run), **(unread or {})},
    )


def unread_of_links(run: Any) -> dict[str, str]:
    """The run's links to logged models that a copy does not make: models it used as
    inputs, and the step at which it logged a model (a copy logs each at step 0)."""
    out: dict[str, str] = {}
    used = list(run.inputs.model_inputs or []) if run.inputs else []
    if used:
        out["mlflow:model inputs"] = (f"{len(used)} logged model(s) the run used as input; "
                                      "the copy does not link them")
    stepped = [o for o in (run.outputs.model_outputs or [] if run.outputs else []) if o.step]
    if stepped:
        out["mlflow:model output steps"] = (f"{len(stepped)} model(s) logged at a step other than 0; "
                                            "the copies are logged at step 0")
    return out


def summary_from_tag(raw: str | None) -> dict[str, Any]:
    """The summary values kept in tag ``trackbridge.summary`` (``{}`` if none or unreadable)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def summary_to_tag(current: Mapping[str, Any], update: Mapping[str, Any]) -> str:
    """The tag value after merging ``update`` into ``current`` (last value wins)."""
    merged = {**current, **update}
    return json.dumps(merged, sort_keys=True, ensure_ascii=False, allow_nan=True, default=str)


def run_id_from_source(source: str) -> tuple[str | None, str | None]:
    """``runs:/<run_id>/<path>`` -> (run_id, path); anything else -> (None, None)."""
    if not source.startswith("runs:/"):
        return None, None
    run_id, _, path = source[len("runs:/"):].partition("/")
    return run_id or None, path or None


def model_id_from_source(source: str) -> str | None:
    """The logged model a version was made from, from its source: ``models:/<model_id>``
    (not ``models:/<name>/<version>``), or a logged model's own artifact location
    ``.../models/<model_id>/artifacts`` (what the writer registers, see
    ``MlflowWriter.create_model_version``).  MLflow's SQL registry keeps no
    separate model id column, so the source is the only link."""
    if source.startswith("models:/"):
        rest = source[len("models:/"):]
        return rest if rest and "/" not in rest and "@" not in rest else None
    match = _MODEL_LOCATION.search(source)
    return match.group(1) if match else None


def model_version_from_mlflow(mv: Any, aliases: Mapping[str, str]) -> ModelVersion:
    """A registry version; ``aliases`` is the registered model's alias -> version map."""
    source = mv.source or ""
    source_run, artifact_path = run_id_from_source(source)
    return ModelVersion(
        name=mv.name,
        version=str(mv.version),
        source=source,
        run_id=mv.run_id or source_run,
        artifact_path=artifact_path,
        model_id=getattr(mv, "model_id", None) or model_id_from_source(source),
        description=mv.description or "",
        tags=dict(mv.tags or {}),
        aliases=sorted(alias for alias, version in aliases.items() if str(version) == str(mv.version)),
        stage=mv.current_stage if mv.current_stage and mv.current_stage != "None" else None,
        creation_time=mv.creation_timestamp,
    )


def registered_model_from_mlflow(rm: Any, versions: Iterable[Any]) -> RegisteredModel:
    aliases = dict(rm.aliases or {})
    ordered = sorted(versions, key=lambda v: int(v.version))
    return RegisteredModel(
        name=rm.name,
        description=rm.description or "",
        tags=dict(rm.tags or {}),
        versions=[model_version_from_mlflow(v, aliases) for v in ordered],
    )
