"""Write side of the MLflow backend: experiments, runs, batches, artifacts, models, registry.

Everything goes through one shared ``MlflowClient`` (thread-safe; a sqlite URI
means an in-process SQLAlchemy store, no REST hop), except metric points to a
server: those are POSTed to ``runs/log-batch`` directly (:mod:`rest_batch`).  Batches are cut to the
installed MLflow's limits *and* to its ~1 MB request size, so callers can hand
over any amount.
"""
from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from trackbridge.backends.base import Limits, Writer
from trackbridge.backends.mlflow import rest_batch
from trackbridge.backends.mlflow.bulk import BulkMetrics
from trackbridge.backends.mlflow.connection import MlflowConnection, is_http
from trackbridge.backends.mlflow.convert import (
    TAG_SUMMARY,
    summary_from_tag,
    summary_to_tag,
    PLATFORM,
    TAG_NOTE,
    TAG_PARENT,
    TAG_RUN_NAME,
    TAG_USER,
    dataset_input_to_mlflow,
    model_version_from_mlflow,
)
from trackbridge.backends.mlflow.model_writer import LoggedModelWriter
from trackbridge.backends.mlflow.errors import is_duplicate, is_not_found, translated
from trackbridge.errors import BackendError, InvalidValueError
from trackbridge.model import (
    DatasetInput,
    MetricPoint,
    ModelVersion,
    RegisteredModel,
    RunStatus,
)

#: estimated JSON bytes around one entity in a ``log_batch`` body (field names, step, timestamp).
_BATCH_OVERHEAD = 64
_UNKNOWN = object()
_TERMINAL = {RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED}
_WARNINGS = threading.Lock()
#: tries of a dataset input request that lost a race to create its dataset row.
_DATASET_ATTEMPTS = 3


#: points per ``log_metrics`` call into an in-process SQL store: one transaction each on
#: the bulk path (:mod:`.bulk`), where a commit (an fsync on sqlite) per 1,000 points was
#: a fifth of a copy's time; ``log_batch`` still gets MLflow's 1,000 per call.  Bigger
#: batches (20,000 was tried) held ~80 MB more in the engine's queues for no measurable gain.
SQL_STORE_BATCH = 5_000


def is_sql_store(tracking_uri: str) -> bool:
    """A database URI (``sqlite:``, ``postgresql:``, ``mysql:``, ``mssql:``) that MLflow opens in-process."""
    from mlflow.store.db.db_types import DATABASE_ENGINES

    return tracking_uri.partition(":")[0].partition("+")[0] in DATABASE_ENGINES


def mlflow_limits(tracking_uri: str = "") -> Limits:
    """The limits of the installed MLflow, read from ``mlflow.utils.validation``; a bigger
    metric batch for a store this process writes itself (``tracking_uri`` a database URI)."""
    from mlflow.utils import validation as v
    from mlflow.utils.os import is_windows

    return Limits(
        max_metrics_per_batch=SQL_STORE_BATCH if is_sql_store(tracking_uri) else v.MAX_METRICS_PER_BATCH,
        max_params_per_batch=v.MAX_PARAMS_TAGS_PER_BATCH,
        max_tags_per_batch=v.MAX_PARAMS_TAGS_PER_BATCH,
        max_key_length=v.MAX_ENTITY_KEY_LENGTH,
        max_param_value_length=v.MAX_PARAM_VAL_LENGTH,
        max_tag_value_length=v.MAX_TAG_VAL_LENGTH,
        # same character class as validation.validate_param_and_metric_name
        key_pattern=r"[/\w.\- ]*" if is_windows() else r"[/\w.\- :]*",
        flat_params=True,
        nested_separator=".",
        allows_nan=True,
    )


def _request_budget() -> int:
    """Bytes one ``log_batch`` may carry: 90% of MLflow's MAX_BATCH_LOG_REQUEST_SIZE (1 MB).

    The open-source server's own check of that limit measures the parsed dict, not
    the body, so it never fires; hosted MLflow enforces it.  Sizes are estimated as
    sent: ``requests`` escapes non-ASCII characters (6 bytes each)."""
    from mlflow.utils.validation import MAX_BATCH_LOG_REQUEST_SIZE

    return int(MAX_BATCH_LOG_REQUEST_SIZE * 0.9)


def sized_batches(
    items: Iterable[Any], max_count: int, budget: int, size_of: Callable[[Any], int]
) -> Iterator[list[Any]]:
    """Lists of at most ``max_count`` items whose estimated sizes stay under ``budget``."""
    batch: list[Any] = []
    used = 0
    for item in items:
        size = size_of(item)
        if batch and (len(batch) >= max_count or used + size > budget):
            yield batch
            batch, used = [], 0
        batch.append(item)
        used += size
    if batch:
        yield batch


def _kv_size(item: tuple[str, str]) -> int:
    return len(json.dumps(item[0])) + len(json.dumps(item[1])) + _BATCH_OVERHEAD


def _metric_sizer() -> Callable[[tuple[str, MetricPoint]], int]:
    """Estimated bytes of one metric point; the JSON size of each key is computed once."""
    sizes: dict[str, int] = {}

    def size_of(item: tuple[str, MetricPoint]) -> int:
        size = sizes.get(item[0])
        if size is None:
            size = sizes[item[0]] = len(json.dumps(item[0])) + 2 * _BATCH_OVERHEAD
        return size

    return size_of


class MlflowWriter(LoggedModelWriter, Writer):
    """Writes runs into one MLflow tracking location (logged models: :class:`LoggedModelWriter`)."""

    def __init__(self, connection: MlflowConnection, platform: str = PLATFORM) -> None:
        self.connection = connection
        self.platform = platform
        self.limits = mlflow_limits(connection.tracking_uri)
        self._rest: Any = _UNKNOWN
        self._bulk_metrics: Any = _UNKNOWN
        #: the transfers' threads look the store's paths up at once: one lookup, one bulk
        #: path (each opened its own, with a writer process each, racing for the file's lock).
        self._lookup = threading.Lock()

    @property
    def _client(self) -> Any:
        return self.connection.client

    # -- experiments and runs ----------------------------------------------

    def ensure_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        if is_sql_store(self.connection.tracking_uri):
            # the bulk path is looked up here, by a copy's own thread before its transfers
            # start (and by the facade's worker, not the training thread): the lookup reads
            # MLflow's migration scripts, which a transfer thread competing with the
            # source's readers for the GIL took 8 s to finish (16 ms alone)
            self._bulk()
        with translated(f"find or create experiment {name!r}"):
            existing = self._client.get_experiment_by_name(name)
            if existing is not None:
                if existing.lifecycle_stage == "deleted":
                    raise BackendError(
                        f"MLflow experiment {name!r} exists but is deleted. Restore it "
                        f"(mlflow experiments restore --experiment-id {existing.experiment_id}) "
                        "or choose another name."
                    )
                for key, value in (tags or {}).items():
                    if existing.tags.get(key) != value:
                        self._client.set_experiment_tag(existing.experiment_id, key, value)
                return existing.experiment_id
            try:
                return self._client.create_experiment(name, tags=dict(tags or {}))
            except Exception:
                # another writer may have created it between our lookup and create
                again = self._client.get_experiment_by_name(name)
                if again is None:
                    raise
                return again.experiment_id

    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        start_time: int | None = None,
        user: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        all_tags = dict(tags or {})
        if name:
            all_tags[TAG_RUN_NAME] = name
        if user:
            all_tags[TAG_USER] = user
        if parent_run_id:
            all_tags[TAG_PARENT] = parent_run_id
        # create_run sends all tags in one request: keep the extra ones for set_tags,
        # which chunks to the batch limits.
        limit = self.limits.max_tags_per_batch
        first = dict(list(all_tags.items())[:limit])
        rest = dict(list(all_tags.items())[limit:])
        with translated(f"create a run in experiment {experiment_id}"):
            run = self._client.create_run(experiment_id, start_time=start_time, tags=first, run_name=name)
        run_id = run.info.run_id
        if rest:
            self.set_tags(run_id, rest)
        return run_id

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [(k, str(v)) for k, v in params.items()]
        for batch in sized_batches(items, self.limits.max_params_per_batch, _request_budget(), _kv_size):
            with translated(f"log {len(batch)} params", run_id):
                self._client.log_batch(run_id, params=[Param(k, v) for k, v in batch], synchronous=True)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [(k, str(v)) for k, v in tags.items()]
        for batch in sized_batches(items, self.limits.max_tags_per_batch, _request_budget(), _kv_size):
            with translated(f"set {len(batch)} tags", run_id):
                self._client.log_batch(run_id, tags=[RunTag(k, v) for k, v in batch], synchronous=True)

    def delete_tags(self, run_id: str, keys: Sequence[str]) -> None:
        for key in keys:  # MLflow has no batch tag deletion
            with translated(f"delete tag {key!r}", run_id):
                self._client.delete_tag(run_id, key)

    def set_run_name(self, run_id: str, name: str) -> None:
        """``update_run`` sets both the run's name and its ``mlflow.runName`` tag."""
        with translated(f"rename the run to {name!r}", run_id):
            self._client.update_run(run_id, name=name)

    def log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        """Against a server, batches are POSTed as plain JSON (:mod:`rest_batch`, a fraction
        of ``MlflowClient.log_batch``'s client CPU); an in-process SQL store takes the whole
        call as one multi-row insert (:mod:`.bulk`) where its schema is known, else ``log_batch``."""
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        per_call = min(self.limits.max_metrics_per_batch, MAX_METRICS_PER_BATCH)
        batches = sized_batches(points, per_call, _request_budget(), _metric_sizer())
        rest_store = self._rest_store()
        if rest_store is not None:
            with translated("look up the active MLflow model", run_id):
                model_id = rest_batch.active_model_id()
            for batch in batches:
                metrics = rest_batch.metric_dicts(batch, model_id)
                with translated(f"log {len(metrics)} metric points", run_id):
                    rest_batch.post_log_batch(rest_store, run_id, metrics)
            return
        from mlflow.entities import Metric

        bulk = self._bulk()
        if bulk is not None:
            with translated(f"log {len(points)} metric points", run_id):
                bulk.log(run_id, points)
            return
        for batch in batches:
            entities = [Metric(key, float(p.value), int(p.timestamp), int(p.step)) for key, p in batch]
            with translated(f"log {len(entities)} metric points", run_id):
                self._client.log_batch(run_id, metrics=entities, synchronous=True)

    def close(self) -> None:
        if isinstance(self._bulk_metrics, BulkMetrics):
            self._bulk_metrics.close()
        super().close()

    def _bulk(self) -> BulkMetrics | None:
        """The multi-row insert path of an in-process SQL store (:mod:`.bulk`), looked up once."""
        with self._lookup:
            if self._bulk_metrics is _UNKNOWN:
                self._bulk_metrics = BulkMetrics.open(self._client._tracking_client.store)
        return self._bulk_metrics  # type: ignore[return-value]

    def _rest_store(self) -> Any:
        """MLflow's ``RestStore`` behind an http(s) tracking URI, else ``None`` (looked up once)."""
        if self._rest is _UNKNOWN:
            client = self._client
            self._rest = rest_batch.rest_store_of(client) if is_http(self.connection.tracking_uri) else None
        return self._rest

    def set_notes(self, run_id: str, notes: str) -> None:
        self.set_tags(run_id, {TAG_NOTE: notes})

    def log_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        """Merged into the run's ``trackbridge.summary`` JSON tag (MLflow has no summary)."""
        if not summary:
            return
        with translated(f"read summary of run {run_id}"):
            current = summary_from_tag(self._client.get_run(run_id).data.tags.get(TAG_SUMMARY))
        value = summary_to_tag(current, summary)
        if len(value) > self.limits.max_tag_value_length:
            raise InvalidValueError(
                f"the run's summary values take {len(value)} characters as JSON; MLflow tags keep at most "
                f"{self.limits.max_tag_value_length}. Log large values as metrics or artifacts instead.")
        self.set_tags(run_id, {TAG_SUMMARY: value})

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        """MLflow keeps one dataset row per experiment, name and digest, looked up then
        inserted: copies of runs sharing a dataset, logging it at the same time, can
        both insert it, and the second fails on the row's UNIQUE constraint.  That
        request is sent again: it then finds the row (the inputs it already linked are
        not linked twice)."""
        from mlflow.utils.validation import MAX_DATASETS_PER_BATCH

        entities = [dataset_input_to_mlflow(item) for item in inputs]
        for start in range(0, len(entities), MAX_DATASETS_PER_BATCH):
            chunk = entities[start:start + MAX_DATASETS_PER_BATCH]
            with translated(f"log {len(chunk)} dataset inputs", run_id):
                for attempt in range(_DATASET_ATTEMPTS):
                    try:
                        self._client.log_inputs(run_id, datasets=chunk)
                        break
                    except Exception as exc:
                        if attempt == _DATASET_ATTEMPTS - 1 or not is_duplicate(exc):
                            raise

    def finish_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        status = RunStatus(status)
        with translated(f"set run status {status.value}", run_id):
            if status in _TERMINAL:
                self._client.set_terminated(run_id, status=status.value, end_time=end_time)
            else:
                self._client.update_run(run_id, status=status.value)

    def delete_run(self, run_id: str) -> None:
        with translated("delete the run", run_id):
            self._client.delete_run(run_id)

    # -- files and models ---------------------------------------------------

    def log_artifact(self, run_id: str, local_path: Path, artifact_dir: str | None = None) -> None:
        """A file goes to ``artifact_dir/<name>``; a directory's *contents* go under
        ``artifact_dir`` (or under the directory's own name when none is given)."""
        local_path = Path(local_path)
        if not local_path.exists():
            raise BackendError(f"cannot log artifact {local_path}: no such file or directory")
        repo = self.connection.run_artifact_repo(run_id)
        with translated(f"upload artifact {local_path.name}", run_id):
            if local_path.is_dir():
                repo.log_artifacts(str(local_path), artifact_dir or local_path.name)
            else:
                repo.log_artifact(str(local_path), artifact_dir)

    # -- registry -----------------------------------------------------------

    def register_model(self, model: RegisteredModel) -> None:
        with translated(f"register model {model.name!r}"):
            try:
                current = self._client.get_registered_model(model.name)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
                try:
                    self._client.create_registered_model(
                        model.name, tags=dict(model.tags), description=model.description or None
                    )
                    return
                except Exception:
                    # another writer (a second copy at the same time) created it between
                    # our lookup and create: update that one instead
                    current = self._client.get_registered_model(model.name)
            if model.description and (current.description or "") != model.description:
                self._client.update_registered_model(model.name, description=model.description)
            for key, value in model.tags.items():
                if (current.tags or {}).get(key) != value:
                    self._client.set_registered_model_tag(model.name, key, value)

    def create_model_version(self, version: ModelVersion, run_id: str | None) -> ModelVersion:
        """New version of ``version.name`` from the logged model ``version.model_id``,
        else from ``runs:/<run_id>/<artifact_path>``, else from ``version.source``.

        ``register_model("runs:/...")`` is not used (MLflow 3 refuses plain folders).
        For a logged model the source is the model's artifact location, not
        ``models:/<id>``: MLflow's SQL registry store resolves ``models:/`` through
        the *global* tracking URI, which this backend never sets."""
        with translated(f"create a version of model {version.name!r}", run_id):
            if version.model_id:
                logged = self._client.get_logged_model(version.model_id)
                source, run_id = logged.artifact_location, run_id or logged.source_run_id
            elif run_id and version.artifact_path:
                source = f"runs:/{run_id}/{version.artifact_path}"
            elif version.source:
                source = version.source
            else:
                raise BackendError(
                    f"model version {version.name} v{version.version}: nothing to register "
                    "(no model_id, no run artifact_path, no source)"
                )
            created = self._client.create_model_version(
                version.name,
                source=source,
                run_id=run_id,
                model_id=version.model_id,
                description=version.description or None,
                tags=dict(version.tags) or None,
            )
            for alias in version.aliases:
                self._client.set_registered_model_alias(version.name, alias, created.version)
        return model_version_from_mlflow(created, {alias: created.version for alias in version.aliases})

    def set_version_stage(self, name: str, version: str, stage: str | None) -> None:
        """MLflow's legacy stage (``None`` is MLflow's "None").  MLflow warns that stages
        are deprecated on every call: silenced for this call only, since carrying them is
        the point (the lock: ``catch_warnings`` swaps process-wide state, and copies run
        in threads)."""
        with translated(f"move {name!r} v{version} to stage {stage or 'None'}"), _WARNINGS, \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*transition_model_version_stage", category=FutureWarning)
            self._client.transition_model_version_stage(name, str(version), stage or "None")

    def set_model_alias(self, name: str, alias: str, version: str) -> None:
        with translated(f"set alias {alias!r} of model {name!r} to version {version}"):
            self._client.set_registered_model_alias(name, alias, str(version))

    def delete_model_alias(self, name: str, alias: str) -> None:
        with translated(f"remove alias {alias!r} of model {name!r}"):
            self._client.delete_registered_model_alias(name, alias)

    def delete_model_version(self, name: str, version: str) -> None:
        with translated(f"delete version {version} of model {name!r}"):
            self._client.delete_model_version(name, str(version))
