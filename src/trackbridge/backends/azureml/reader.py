"""Read side of Azure ML: the MLflow reader, asking only what Azure answers.

* Metric history pages are at most 999 points (Azure: ``MaxResults must be less
  than 1000``, mlflow/mlflow#10694), whatever page size the caller asks for.
* Run filters: Azure ML cannot filter runs by attributes (start time, status,
  run id; Microsoft's support matrix in ``how-to-track-experiments-mlflow.md``),
  so only tag/param equality is sent to the server and the rest is applied
  client-side (:meth:`RunFilter.matches`).  The result is exact either way.
* Registry: aliases kept as version tags ``trackbridge.alias.<alias>`` (where
  the workspace refused the alias API, see :mod:`writer`) are read back as
  aliases, and the tags removed.
* Notes and summary values kept in the run's files ``trackbridge/fields/`` (too
  long for a tag, see :mod:`~trackbridge.backends.azureml.fields`) are read back
  into ``RunRecord.notes``/``summary``; the folder is not listed as artifacts.
* Azure's own ``azureml.*`` tags stay in ``RunRecord.tags``; the backend's
  Features name ``azureml.`` a system prefix, so the engine treats them as the
  platform's bookkeeping, never as the user's.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from trackbridge.backends.azureml import fields as long_fields
from trackbridge.backends.base import RunFilter
from trackbridge.backends.mlflow.connection import MlflowConnection
from trackbridge.backends.mlflow.convert import TAG_NOTE, TAG_SUMMARY, summary_from_tag
from trackbridge.backends.mlflow.reader import MlflowReader
from trackbridge.backends.azureml.service import HISTORY_PAGE, PLATFORM, alias_tags
from trackbridge.model import ArtifactInfo, MetricPoint, RegisteredModel, RunRecord


class AzureMLReader(MlflowReader):
    """Reads runs, history, artifacts and the registry of one Azure ML workspace."""

    def __init__(self, connection: MlflowConnection, platform: str = PLATFORM) -> None:
        super().__init__(connection, platform)

    def iter_metric_history(self, run_id: str, key: str, page_size: int = HISTORY_PAGE) -> Iterator[list[MetricPoint]]:
        return super().iter_metric_history(run_id, key, max(1, min(int(page_size), HISTORY_PAGE)))

    def _record(self, run: Any, experiment_name: str, models: list[Any]) -> RunRecord:
        record = super()._record(run, experiment_name, models)
        tags = run.data.tags
        notes_at, summary_at = long_fields.target(tags.get(TAG_NOTE)), long_fields.target(tags.get(TAG_SUMMARY))
        if notes_at:
            record.notes = long_fields.read_text(self, record.run_id, notes_at)
        if summary_at:
            record.summary = summary_from_tag(long_fields.read_text(self, record.run_id, summary_at))
        return record

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        return (a for a in super().list_artifacts(run_id) if not long_fields.hidden(a.path))

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        pushed = None
        if run_filter is not None and (run_filter.tags or run_filter.params):
            pushed = RunFilter(tags=dict(run_filter.tags), params=dict(run_filter.params))
        for record in super().list_runs(experiment, pushed):
            if run_filter is None or run_filter.matches(record):
                yield record

    def list_registered_models(self) -> Iterator[RegisteredModel]:
        for model in super().list_registered_models():
            yield fold_alias_tags(model)

    def get_registered_model(self, name: str) -> RegisteredModel | None:
        model = super().get_registered_model(name)  # type: ignore[misc]
        return None if model is None else fold_alias_tags(model)


def fold_alias_tags(model: RegisteredModel) -> RegisteredModel:
    """``model`` with the aliases recorded as version tags turned back into aliases."""
    versions = []
    for version in model.versions:
        recorded, rest = alias_tags(version.tags)
        if recorded:
            version = replace(version, tags=rest, aliases=sorted(set(version.aliases) | set(recorded)))
        versions.append(version)
    return replace(model, versions=versions)
