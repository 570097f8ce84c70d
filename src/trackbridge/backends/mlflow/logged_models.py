"""MLflow 3 logged models <-> :class:`~trackbridge.model.LoggedModel`.

Pure functions over MLflow's entities (no requests), used by the reader and the writer:

* a logged model carries its own params, tags, ``model_type``, status and metrics
  (the latest value per key is what the canonical model keeps);
* names repeat within a run (autolog logs ``model`` on every fit), so each model gets
  an ``artifact_path`` of its own (:func:`model_paths`) for destinations that keep
  models as files of the run;
* MLflow records a model's metric only together with a point of a run
  (``log_batch`` with ``Metric.model_id``).  Over REST a metric the run does not
  have becomes a point of the run; the writer names those points in the model's
  tag :data:`TAG_RUN_METRICS` and the reader leaves them out of the run's metrics
  (:func:`drop_run_points_of_models`), so a copy reads back as it was given.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from trackbridge.backends.mlflow.convert import metric_point, metric_value_from_store
from trackbridge.model import LoggedModel, RunRecord, float_key, now_ms

#: MLflow's list of the registry versions made from a model, set by the server or the
#: fluent ``register_model`` (not by ``MlflowClient``): derived from the registry, so
#: not one of the model's tags (a copy gets its own where its versions are made).
TAG_MODEL_VERSIONS = "mlflow.modelVersions"
#: on a logged model whose source had no status (W&B, Comet): MLflow needs one to use the
#: model, so it is READY, and the reader gives back the source's "none" (value ``unset``).
TAG_NO_STATUS = "trackbridge.model_status"
NO_STATUS = "unset"
#: on a logged model written over REST: ``{metric key: timestamp}`` of the points its
#: metrics added to its run (which the run did not have).
TAG_RUN_METRICS = "trackbridge.model_metrics_in_run"


def logged_model_from_mlflow(entity: Any, flavors: list[str], artifact_path: str | None = None) -> LoggedModel:
    """An MLflow 3 ``LoggedModel`` (kept outside the run's artifacts) with its own params,
    tags (but :data:`TAG_MODEL_VERSIONS`), type, status (none where the writer recorded
    :data:`TAG_NO_STATUS`) and the latest value of each metric logged against it.
    ``artifact_path`` is where a copy keeps its files (:func:`model_paths`)."""
    status = entity.status
    status = str(getattr(status, "value", status)) if status is not None else None
    if status == "READY" and (entity.tags or {}).get(TAG_NO_STATUS) == NO_STATUS:
        status = None
    return LoggedModel(
        name=entity.name,
        artifact_path=artifact_path or entity.name,
        flavors=flavors,
        model_id=entity.model_id,
        params=dict(entity.params or {}),
        metrics=latest_model_metrics(entity.metrics or []),
        tags={k: v for k, v in (entity.tags or {}).items() if k != TAG_MODEL_VERSIONS},
        model_type=entity.model_type or None,
        status=status,
    )


def latest_model_metrics(metrics: Iterable[Any]) -> dict[str, float]:
    """key -> value of the latest point per key, by MLflow's own rule for a run's latest
    metrics (highest step, then timestamp, then value)."""
    latest: dict[str, Any] = {}
    for metric in metrics:
        seen = latest.get(metric.key)
        if seen is None or _metric_order(metric) > _metric_order(seen):
            latest[metric.key] = metric
    return {key: metric_point(m).value for key, m in latest.items()}


def _metric_order(metric: Any) -> tuple[int, int, float]:
    value = float(metric.value)
    return int(metric.step or 0), int(metric.timestamp or 0), -math.inf if math.isnan(value) else value


def model_paths(entities: Iterable[Any], taken: Iterable[str] = ()) -> dict[str, str]:
    """model id -> ``artifact_path`` for one run's logged models, unique within the run
    and apart from the paths ``taken`` (the run's MLflow 2 model folders).

    The first model of a name (by creation time) keeps the name, so a run with one
    model per name reads as before; each later one gets ``<name>-<model id>``, the
    same on every read."""
    taken = set(taken)
    paths: dict[str, str] = {}
    for entity in sorted(entities, key=lambda e: (e.creation_timestamp or 0, e.model_id)):
        path = entity.name if entity.name not in taken else f"{entity.name}-{entity.model_id}"
        taken.add(path)
        paths[entity.model_id] = path
    return paths


def unread_of_models(entities: Iterable[Any], run_id: str) -> dict[str, str]:
    """What a run's logged models hold that :class:`LoggedModel` does not, for ``plan``:
    the dataset and the run a model metric was logged with (a copy logs its value
    from the model's own run, with no dataset)."""
    out: dict[str, str] = {}
    for entity in entities:
        metrics = entity.metrics or []
        with_dataset = {m.key for m in metrics if getattr(m, "dataset_name", None)}
        elsewhere = {m.key for m in metrics if m.run_id and m.run_id != run_id}
        if with_dataset:
            out[f"mlflow:model {entity.model_id} metric datasets"] = (
                f"{len(with_dataset)} metric(s) name the dataset they were computed on; "
                "the copy keeps their values, not the dataset")
        if elsewhere:
            out[f"mlflow:model {entity.model_id} metric runs"] = (
                f"{len(elsewhere)} metric(s) were logged from another run; the copy logs "
                "them from the model's own run")
    return out


def metric_points(run: Any, metrics: Mapping[str, float],
                  find: Callable[[str, float], tuple[int, int] | None] | None = None,
                  ) -> tuple[list[tuple[str, float, int, int]], dict[str, int]]:
    """(key, value, timestamp, step) to log for a model's ``metrics`` in ``run``, and
    ``{key: timestamp}`` of those the run does not hold.

    A metric equal to a point the run has reuses that point's time and step, so logging
    it changes nothing in the run's history: the run's latest point of the key, else
    what ``find(key, value)`` finds in the run's history (``mlflow.<flavor>.log_model``
    links the run's points at the model's step, usually 0, not the latest).  The
    others are new points at step 0, now."""
    latest = {m.key: m for m in run.data._metric_objs}
    points: list[tuple[str, float, int, int]] = []
    added: dict[str, int] = {}
    for key, value in metrics.items():
        mine = latest.get(key)
        if mine is not None and float_key(metric_value_from_store(mine.value)) == float_key(value):
            points.append((key, float(value), int(mine.timestamp), int(mine.step)))
            continue
        found = find(key, value) if find is not None and mine is not None else None
        if found is None:
            added[key] = now_ms()
            found = (added[key], 0)
        points.append((key, float(value), *found))
    return points, added


def drop_run_points_of_models(record: RunRecord, entities: Iterable[Any]) -> None:
    """Leave out of ``record``'s metrics the points the writer had to add to the run for
    its models' metrics (:data:`TAG_RUN_METRICS`), while they are still the latest."""
    for entity in entities:
        try:
            added = json.loads((entity.tags or {}).get(TAG_RUN_METRICS) or "{}")
        except ValueError:
            continue
        for key, timestamp in (added.items() if isinstance(added, dict) else ()):
            for metrics in (record.metrics, record.system_metrics):
                point = metrics.get(key)
                if point is not None and point.step == 0 and point.timestamp == timestamp:
                    del metrics[key]
