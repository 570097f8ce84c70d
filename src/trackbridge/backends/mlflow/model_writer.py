"""Logged models into MLflow 3: the part of :class:`~.writer.MlflowWriter` that makes
them (a mixin on the writer's client, connection and limits).

Each copy is a new logged model of the run with its source's params, tags, type, status
and metrics (:mod:`~trackbridge.backends.mlflow.logged_models` says how metrics are
recorded without changing the run's history), except where the run already holds the
copy of the same source model.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trackbridge.backends.base import Limits
from trackbridge.backends.mlflow.connection import MlflowConnection
from trackbridge.backends.mlflow.convert import TAG_MODEL_HISTORY, legacy_models, metric_value_from_store
from trackbridge.backends.mlflow.errors import translated
from trackbridge.backends.mlflow.logged_models import (
    NO_STATUS,
    TAG_NO_STATUS,
    TAG_RUN_METRICS,
    logged_model_from_mlflow,
    metric_points,
    model_paths,
)
from trackbridge.model import SOURCE_MODEL_ID, LoggedModel, float_key
from trackbridge.model_files import model_flavors


class LoggedModelWriter:
    """``log_model`` for a writer with an MLflow ``_client``, a ``connection`` and ``limits``."""

    _client: Any
    connection: MlflowConnection
    limits: Limits
    #: points per request when looking through a run's history for a model's metric.
    history_page = 1000

    def log_model(self, run_id: str, local_dir: Path, source: LoggedModel) -> LoggedModel:
        """A NEW MLflow 3 logged model on every call (names repeat in a run), unless the
        run already holds the copy of the same source model (its tag
        :data:`~trackbridge.model.SOURCE_MODEL_ID`): made by another invocation copying
        the run at the same time, or by a request whose answer was lost.  Returned as
        stored (see :meth:`_create_model`)."""
        local_dir = Path(local_dir)
        with translated(f"log model {source.name!r}", run_id):
            run = self._client.get_run(run_id)
            made = self._run_models(run)
            wanted = source.source_id()
            found = next((m for m in made if wanted and (m.tags or {}).get(SOURCE_MODEL_ID) == wanted), None)
            if found is None:
                found = self._create_model(run, local_dir, source)
                made = self._run_models(run)
            paths = model_paths(made, (m.artifact_path for m in legacy_models(run.data.tags.get(TAG_MODEL_HISTORY))))
        return logged_model_from_mlflow(found, model_flavors(local_dir), paths.get(found.model_id))

    def _run_models(self, run: Any) -> list[Any]:
        return list(self._client.search_logged_models(
            [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"))

    def _create_model(self, run: Any, local_dir: Path, source: LoggedModel) -> Any:
        """Created with ``source_run_id``, ``source``'s tags, params and type, files uploaded
        to the model's own location, its metrics logged against it
        (:func:`~trackbridge.backends.mlflow.logged_models.metric_points`), finalised with
        ``source``'s status (READY where it has none, recorded so that it reads back as
        none), and linked as the run's output (what ``mlflow.<flavor>.log_model`` does).
        A model whose files or metrics fail is deleted, so a retry leaves one copy."""
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus

        run_id, batch = run.info.run_id, self.limits.max_params_per_batch
        params = [(k, str(v)) for k, v in source.params.items()]
        sql_store = self._sql_store()
        # a SQL store takes model metrics alone: no need to find the run's points
        find = None if sql_store is not None else lambda key, value: self._find_point(run_id, key, value)
        points, added = metric_points(run, source.metrics, find)
        tags = dict(source.tags)
        if source.status is None:
            tags[TAG_NO_STATUS] = NO_STATUS
        if added and sql_store is None:
            tags[TAG_RUN_METRICS] = json.dumps(added, sort_keys=True)
        model = self._client.create_logged_model(
            run.info.experiment_id, name=source.name, source_run_id=run_id,
            tags=tags or None, params=dict(params[:batch]) or None, model_type=source.model_type or None,
        )
        try:
            for start in range(batch, len(params), batch):
                self._client.log_model_params(model.model_id, dict(params[start:start + batch]))
            repo = self.connection.artifact_repo(model.artifact_location)
            if local_dir.is_dir():
                repo.log_artifacts(str(local_dir))
            else:
                repo.log_artifact(str(local_dir))
            self._log_model_metrics(run, model.model_id, points, sql_store)
        except Exception:
            self._client.delete_logged_model(model.model_id)
            raise
        if (source.status or "READY") in ("READY", "FAILED"):  # PENDING stays pending
            self._client.finalize_logged_model(model.model_id, LoggedModelStatus(source.status or "READY"))
        self._client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
        return self._client.get_logged_model(model.model_id)

    def _sql_store(self) -> Any:
        """The in-process SQL store (sqlite...), which can take a model's metrics alone,
        else ``None`` (a server: only with a point of the run)."""
        store = self._client._tracking_client.store
        return store if hasattr(store, "_log_model_metrics") else None

    def _find_point(self, run_id: str, key: str, value: float) -> tuple[int, int] | None:
        """(timestamp, step) of the run's first point of ``key`` equal to ``value``, or ``None``."""
        store = self._client._tracking_client.store
        wanted, token = float_key(value), None
        while True:
            page = store.get_metric_history(run_id, key, max_results=self.history_page, page_token=token)
            for point in page:
                if float_key(metric_value_from_store(point.value)) == wanted:
                    return int(point.timestamp), int(point.step)
            token = getattr(page, "token", None)
            if not token:
                return None

    def _log_model_metrics(self, run: Any, model_id: str, points: Sequence[tuple[str, float, int, int]],
                           sql_store: Any) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(key, value, ts, step, model_id=model_id) for key, value, ts, step in points]
        if sql_store is not None:
            sql_store._log_model_metrics(run.info.run_id, metrics, experiment_id=run.info.experiment_id)
            return
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        size = min(self.limits.max_metrics_per_batch, MAX_METRICS_PER_BATCH)
        for start in range(0, len(metrics), size):
            self._client.log_batch(run.info.run_id, metrics=metrics[start:start + size], synchronous=True)
