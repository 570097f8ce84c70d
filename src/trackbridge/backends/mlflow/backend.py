"""``MlflowBackend``: one MLflow tracking location (embedded sqlite or a server).

Options (from a remote, ``*_env`` secrets already resolved):

* ``tracking_uri`` — default ``MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``
  (embedded, no server: the same default as MLflow itself);
* ``registry_uri`` — default ``MLFLOW_REGISTRY_URI``, else the tracking URI;
* ``token`` or ``username`` + ``password`` — default MLflow's own
  ``MLFLOW_TRACKING_TOKEN`` / ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``;
* ``http_retries`` (default 2), ``http_timeout`` seconds (default 30): fail fast,
  the callers retry (see :mod:`trackbridge.backends.mlflow.connection`).
* ``artifacts_destination`` (the server's ``--artifacts-destination`` folder or URI)
  or ``artifacts_server`` (the server's URL): where ``mlflow-artifacts:/`` URIs
  point when a server's database is opened directly (e.g. ``sqlite:``), since
  MLflow resolves them only through an http(s) tracking URI.

Artifacts of experiments this backend creates in a ``sqlite:`` store go where
MLflow itself puts them: ``./mlruns/<experiment id>`` under the process's working
directory *when the store is opened*, not next to the database file.  Kept on
purpose: it is what ``mlflow.set_tracking_uri("sqlite:///...")`` users get, the
location is stored absolute in the experiment (``mlflow ui`` finds it from
anywhere), and choosing another default needs MLflow's private store plumbing.
To keep artifacts with the database, run the copy from the database's folder, or
create the experiment first with ``mlflow experiments create
--artifact-location ...`` (an existing experiment is reused as it is).

Importing this module does not import mlflow; the client is created on first use.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from trackbridge.backends.base import Backend, BackendInfo, Features, Limits, RegistryScheme, Timestamps
from trackbridge.backends.mlflow.info import INFO
from trackbridge.backends.mlflow.connection import MlflowConnection
from trackbridge.backends.mlflow.reader import MlflowReader
from trackbridge.backends.mlflow.writer import MlflowWriter, mlflow_limits


class MlflowBackend(Backend):
    """MLflow at one tracking URI; reader and writer share one client."""

    info: ClassVar[BackendInfo] = INFO
    features: ClassVar[Features] = Features(
        nested_runs=True,
        settable_start_time=True,
        settable_end_time=True,
        settable_user=True,
        key_value_tags=True,
        # labels are tags with an empty value; summary values and notes are kept as
        # trackbridge tags (the writer's defaults), so both round-trip.
        labels=True,
        summary=True,
        notes=True,
        inputs=True,
        system_metrics=True,
        strictly_increasing_steps=False,
        timestamps=Timestamps.POINT,
        registry=RegistryScheme.INTEGER,
        tag_deletion=True,
        run_rename=True,
        alias_removal=True,
        run_deletion=True,
        version_deletion=True,
        system_tag_prefixes=("mlflow.",),
        # MLflow 3 logged models keep their own params, metrics, tags, type and status;
        # registry versions keep MLflow's legacy stage.
        model_metadata=True,
        stages=True,
        #: no per-file metadata and no media series: the engine keeps both as files
        artifact_meta=False,
        media_kinds=frozenset(),
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.connection = MlflowConnection(self.options)

    @property
    def tracking_uri(self) -> str:
        return self.connection.tracking_uri

    def limits(self) -> Limits:
        return mlflow_limits(self.connection.tracking_uri)

    def reader(self) -> MlflowReader:
        return MlflowReader(self.connection, self.name)

    def writer(self) -> MlflowWriter:
        return MlflowWriter(self.connection, self.name)

    def describe(self) -> str:
        return f"mlflow at {self.connection.display_uri}"
