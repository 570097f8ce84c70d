"""Read side of the MLflow backend: listing, streamed metric history, artifacts, registry.

Choices recorded here:

* Run filters are pushed into MLflow's ``search_runs`` filter string where it
  can express them (since/until, a single status, tag/param equality, run ids)
  and :meth:`RunFilter.matches` is applied on top, so results are exact either way.
* Metric history is streamed in pages of ``page_size`` points, so memory stays
  bounded whatever the series length.  Over REST the store's paged
  ``get_metric_history`` is used.  An in-process SQL store (sqlite, ...) pages
  with ``OFFSET`` there, which rescans every earlier point for each page
  (quadratic: 1M points took ~57 s); instead each page is one short query on
  MLflow's ``SqlMetric`` model, keyset-paginated on MLflow's own order
  (timestamp, step, value, plus ``is_nan`` to break the tie between NaN and a
  stored 0), which the metrics primary-key index serves.  Short queries, not one
  long streamed one, so no read transaction stays open between pages to block
  writers of the same sqlite file.
* ``list_artifacts`` reports sizes but no digest: MLflow's artifact stores do
  not keep checksums, and hashing here would cost a full read of every file.
  Callers that need a digest compute it after ``download_artifact``.
* MLflow 3 logged models live outside the run's artifacts; they are found by
  ``search_logged_models(source_run_id = ...)`` and their flavors read from
  their ``MLmodel`` file (one small download per model, cached).
"""
from __future__ import annotations

import math
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from trackbridge.backends.base import Reader, RunFilter
from trackbridge.backends.mlflow.connection import MlflowConnection
from trackbridge.backends.mlflow.convert import (
    PLATFORM,
    TAG_MODEL_HISTORY,
    legacy_models,
    metric_point,
    metric_value_from_store,
    registered_model_from_mlflow,
    run_to_record,
)
from trackbridge.backends.mlflow.logged_models import (
    drop_run_points_of_models,
    logged_model_from_mlflow,
    model_paths,
    unread_of_models,
)
from trackbridge.backends.mlflow.errors import is_not_found, is_unsupported, translated
from trackbridge.model_files import MODEL_FILE, flavors_from_text
from trackbridge.errors import BackendError, RunNotFound
from trackbridge.model import (
    ArtifactInfo,
    Experiment,
    LoggedModel,
    MetricPoint,
    RegisteredModel,
    RunRecord,
    RunStatus,
)

_PAGE = 1000
_REGISTRY_PAGE = 100


def _quote(value: str) -> str | None:
    """A filter-string literal for ``value``, or ``None`` when it cannot be quoted safely."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return None


def _ident(key: str) -> str | None:
    return None if "`" in key else f"`{key}`"


def filter_string(run_filter: RunFilter | None) -> str:
    """The part of ``run_filter`` MLflow's search syntax can express (the rest is
    applied client-side by :meth:`RunFilter.matches`)."""
    if run_filter is None:
        return ""
    clauses: list[str] = []
    if run_filter.since is not None:
        clauses.append(f"attributes.start_time >= {int(run_filter.since)}")
    if run_filter.until is not None:
        clauses.append(f"attributes.start_time < {int(run_filter.until)}")
    if run_filter.statuses is not None and len(run_filter.statuses) == 1:
        clauses.append(f"attributes.status = '{RunStatus(run_filter.statuses[0]).value}'")
    if run_filter.run_ids:
        ids = [q for q in (_quote(r) for r in run_filter.run_ids) if q]
        if len(ids) == len(run_filter.run_ids):
            clauses.append(f"attributes.run_id IN ({', '.join(ids)})")
    for prefix, pairs in (("tags", run_filter.tags), ("params", run_filter.params)):
        for key, value in pairs.items():
            ident, literal = _ident(key), _quote(str(value))
            if ident and literal:
                clauses.append(f"{prefix}.{ident} = {literal}")
    return " AND ".join(clauses)


def _keyset_capable(store: Any) -> bool:
    """An in-process SQLAlchemy store whose database compares row values ``(a, b) > (x, y)``
    (SQL Server cannot: it keeps MLflow's paging)."""
    module = sys.modules.get("mlflow.store.tracking.sqlalchemy_store")  # imported if the store is one
    return (
        module is not None
        and isinstance(store, module.SqlAlchemyStore)
        and store.db_type in ("sqlite", "postgresql", "mysql")
    )


def _local(uri: str) -> str:
    """``file:///x/y/`` and ``/x/y`` as the same path, for comparing artifact locations."""
    return (uri[len("file://"):] if uri.startswith("file://") else uri).rstrip("/")


class MlflowReader(Reader):
    """Reads runs, metric history, artifacts and the registry of one MLflow location."""

    def __init__(self, connection: MlflowConnection, platform: str = PLATFORM) -> None:
        self.connection = connection
        self.platform = platform
        self._experiment_names: dict[str, str] = {}
        self._flavors: dict[str, list[str]] = {}
        self._artifact_roots: dict[str, str | None] = {}
        #: runs whose existence a history read has confirmed (``get_run`` loads a whole run:
        #: once per key of a 10,000-key run was quadratic).
        self._runs_seen: set[str] = set()

    @property
    def _client(self) -> Any:
        return self.connection.read_client()

    # -- experiments --------------------------------------------------------

    def _missing_store(self) -> bool:
        """A ``sqlite:`` store that does not exist: read as empty, never created."""
        return self.connection.store_missing

    def list_experiments(self) -> Iterator[Experiment]:
        if self._missing_store():
            return
        token = None
        while True:
            with translated("list experiments"):
                page = self._client.search_experiments(max_results=_PAGE, page_token=token)
            for exp in page:
                self._experiment_names[exp.experiment_id] = exp.name
                yield Experiment(exp.experiment_id, exp.name, dict(exp.tags))
            token = page.token
            if not token:
                return

    def get_experiment(self, name: str) -> Experiment | None:
        if self._missing_store():
            return None
        with translated(f"look up experiment {name!r}"):
            exp = self._client.get_experiment_by_name(name)
        if exp is None or exp.lifecycle_stage == "deleted":
            return None
        self._experiment_names[exp.experiment_id] = exp.name
        return Experiment(exp.experiment_id, exp.name, dict(exp.tags))

    def _experiment_name(self, experiment_id: str) -> str:
        if experiment_id not in self._experiment_names:
            with translated(f"look up experiment id {experiment_id}"):
                self._experiment_names[experiment_id] = self._client.get_experiment(experiment_id).name
        return self._experiment_names[experiment_id]

    # -- runs ---------------------------------------------------------------

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        exp = self.get_experiment(experiment)
        if exp is None:
            return
        models = self._models_by_run(exp.id)
        query = filter_string(run_filter)
        token = None
        while True:
            with translated(f"list runs of experiment {experiment!r}"):
                page = self._client.search_runs(
                    [exp.id], filter_string=query, max_results=_PAGE,
                    order_by=["attributes.start_time ASC"], page_token=token,
                )
            for run in page:
                record = self._record(run, exp.name, models.get(run.info.run_id, []))
                if run_filter is None or run_filter.matches(record):
                    yield record
            token = page.token
            if not token:
                return

    def find_runs(self, experiment: str, tags: Mapping[str, str]) -> list[RunRecord]:
        """One ``search_runs`` request, no logged-model lookup (ids and tags are what is asked)."""
        exp = self.get_experiment(experiment)
        if exp is None:
            return []
        with translated(f"find runs of experiment {experiment!r}"):
            page = self._client.search_runs([exp.id], filter_string=filter_string(RunFilter(tags=dict(tags))),
                                            max_results=_PAGE)
        found = [self._record(run, exp.name, []) for run in page]
        return [r for r in found if all(r.tags.get(k) == v for k, v in tags.items())]

    def get_run(self, run_id: str) -> RunRecord:
        with translated("read the run", run_id):
            run = self._client.get_run(run_id)
        if run.info.lifecycle_stage == "deleted":
            raise RunNotFound(f"MLflow run {run_id} is deleted. Restore it in MLflow to read it.")
        exp_id = run.info.experiment_id
        models = self._models_by_run(exp_id, f"source_run_id = '{run_id}'")
        return self._record(run, self._experiment_name(exp_id), models.get(run_id, []))

    def _record(self, run: Any, experiment_name: str, models: list[Any]) -> RunRecord:
        """``models``: the run's MLflow 3 logged models, as MLflow returns them (read in the
        order they were logged: a destination without model ids pairs by that order)."""
        url = self.connection.run_url(run.info.experiment_id, run.info.run_id)
        run_id = run.info.run_id
        models = sorted(models, key=lambda m: (m.creation_timestamp or 0, m.model_id))
        paths = model_paths(models, (m.artifact_path for m in legacy_models(run.data.tags.get(TAG_MODEL_HISTORY))))
        logged = [logged_model_from_mlflow(m, self._model_flavors(m), paths[m.model_id]) for m in models]
        record = run_to_record(run, experiment_name, url, logged, self.platform, unread_of_models(models, run_id))
        drop_run_points_of_models(record, models)
        return record

    def _models_by_run(self, experiment_id: str, query: str | None = None) -> dict[str, list[Any]]:
        """MLflow 3 logged models of an experiment (each with its params, tags and metrics),
        grouped by their source run."""
        found: dict[str, list[Any]] = defaultdict(list)
        token = None
        while True:
            with translated(f"list logged models of experiment {experiment_id}"):
                try:
                    page = self._client.search_logged_models(
                        [experiment_id], filter_string=query, max_results=_REGISTRY_PAGE, page_token=token
                    )
                except Exception as exc:
                    if is_unsupported(exc):  # an MLflow 2.x server: no logged models
                        return found
                    raise
            for model in page:
                if model.source_run_id:
                    found[model.source_run_id].append(model)
            token = page.token
            if not token:
                return found

    def _model_flavors(self, model: Any) -> list[str]:
        if model.model_id not in self._flavors:
            self._flavors[model.model_id] = self._read_flavors(model)
        return self._flavors[model.model_id]

    def _read_flavors(self, model: Any) -> list[str]:
        repo = self.connection.artifact_repo(model.artifact_location)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = repo.download_artifacts(MODEL_FILE, tmp)
            except Exception:  # noqa: BLE001 - a model without MLmodel has no flavors
                return []
            return flavors_from_text(Path(local).read_text(encoding="utf-8"))

    # -- metric history -----------------------------------------------------

    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        if page_size <= 0:
            raise ValueError("page_size must be positive")
        store = self._client._tracking_client.store
        if _keyset_capable(store):
            yield from self._keyset_history(store, run_id, key, page_size)
            return
        token = None
        while True:
            with translated(f"read history of metric {key!r}", run_id):
                page = store.get_metric_history(run_id, key, max_results=page_size, page_token=token)
            if page:
                yield [metric_point(m) for m in page]
            elif token is None:
                # MLflow answers an unknown run with an empty history: tell them apart.
                with translated(f"read history of metric {key!r}", run_id):
                    self._client.get_run(run_id)
            token = getattr(page, "token", None)
            if not token:
                return

    def _keyset_history(self, store: Any, run_id: str, key: str, page_size: int) -> Iterator[list[MetricPoint]]:
        """Pages of one series from an in-process SQL store, each after the last row seen."""
        from mlflow.store.tracking.dbmodels.models import SqlMetric
        from sqlalchemy import tuple_

        order = (SqlMetric.timestamp, SqlMetric.step, SqlMetric.value, SqlMetric.is_nan)
        if run_id not in self._runs_seen:
            with translated(f"read history of metric {key!r}", run_id):
                self._client.get_run(run_id)  # unknown or inaccessible run: an error, not an empty series
            self._runs_seen.add(run_id)
        last: tuple[Any, ...] | None = None
        while True:
            with translated(f"read history of metric {key!r}", run_id), store.ManagedSessionMaker() as session:
                query = session.query(*order).filter(SqlMetric.run_uuid == run_id, SqlMetric.key == key)
                if last is not None:
                    # (timestamp, step) >= ... is the index range; the full tuple skips the rows seen
                    query = query.filter(
                        tuple_(*order[:2]) >= tuple_(*last[:2]), tuple_(*order) > tuple_(*last)
                    )
                rows = query.order_by(*order).limit(page_size).all()
            if not rows:
                return
            yield [
                MetricPoint(int(step), math.nan if is_nan else metric_value_from_store(value), int(ts))
                for ts, step, value, is_nan in rows
            ]
            if len(rows) < page_size:
                return
            last = tuple(rows[-1])

    # -- artifacts ----------------------------------------------------------

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        repo = self.connection.run_artifact_repo(run_id)
        pending: list[str | None] = [None]
        while pending:
            folder = pending.pop()
            with translated(f"list artifacts under {folder or '/'}", run_id):
                entries = repo.list_artifacts(folder)
            for entry in sorted(entries, key=lambda e: e.path, reverse=True):
                if entry.is_dir:
                    pending.append(entry.path)
                else:
                    yield ArtifactInfo(entry.path, entry.file_size)

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        Path(dst_dir).mkdir(parents=True, exist_ok=True)
        repo = self.connection.run_artifact_repo(run_id)
        with translated(f"download artifact {path}", run_id):
            return Path(repo.download_artifacts(path, str(dst_dir)))  # keeps ``path`` under dst_dir

    def download_model(self, run_id: str, model: LoggedModel, dst_dir: Path) -> Path:
        if not model.model_id:
            return super().download_model(run_id, model, dst_dir)
        target = Path(dst_dir) / model.artifact_path
        target.mkdir(parents=True, exist_ok=True)
        with translated(f"download logged model {model.model_id}", run_id):
            logged = self._client.get_logged_model(model.model_id)
            self.connection.artifact_repo(logged.artifact_location).download_artifacts("", str(target))
        return target

    # -- registry -----------------------------------------------------------

    def list_registered_models(self) -> Iterator[RegisteredModel]:
        if self._missing_store():
            return
        token = None
        while True:
            with translated("list registered models"):
                page = self._client.search_registered_models(max_results=_REGISTRY_PAGE, page_token=token)
            for rm in page:
                yield self._with_run_paths(registered_model_from_mlflow(rm, self._versions(rm.name)))
            token = page.token
            if not token:
                return

    def get_registered_model(self, name: str) -> RegisteredModel | None:
        if self._missing_store():
            return None
        with translated(f"look up registered model {name!r}"):
            try:
                rm = self._client.get_registered_model(name)
            except Exception as exc:
                if is_not_found(exc):
                    return None
                raise
        return self._with_run_paths(registered_model_from_mlflow(rm, self._versions(name)))

    def _with_run_paths(self, model: RegisteredModel) -> RegisteredModel:
        """Versions whose source is a path inside their run's artifacts (what MLflow
        stores for ``runs:/`` sources in a local store: ``/.../mlruns/1/<run>/artifacts/out``)
        get that path as ``artifact_path``, so a copy registers ``runs:/<copy>/out`` at
        the destination instead of a file path of this store, which a server refuses."""
        for version in model.versions:
            if version.artifact_path or version.model_id or not version.run_id or not version.source:
                continue
            root, source = _local(self._run_artifact_root(version.run_id) or ""), _local(version.source)
            if root and source.startswith(root + "/"):
                version.artifact_path = source[len(root) + 1:]
        return model

    def _run_artifact_root(self, run_id: str) -> str | None:
        if run_id not in self._artifact_roots:
            try:
                with translated("look up the run's artifact location", run_id):
                    self._artifact_roots[run_id] = self._client.get_run(run_id).info.artifact_uri
            except RunNotFound:
                self._artifact_roots[run_id] = None
        return self._artifact_roots[run_id]

    def _versions(self, name: str) -> list[Any]:
        literal = _quote(name)
        if literal is None:
            raise BackendError(
                f"registered model {name!r} has both quote characters in its name, which "
                "MLflow's search filter cannot express; rename it to read its versions."
            )
        versions: list[Any] = []
        token = None
        while True:
            with translated(f"list versions of model {name!r}"):
                page = self._client.search_model_versions(
                    f"name = {literal}", max_results=_REGISTRY_PAGE, page_token=token
                )
            versions.extend(page)
            token = page.token
            if not token:
                return versions
