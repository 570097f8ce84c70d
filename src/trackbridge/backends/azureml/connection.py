"""An Azure ML workspace as an MLflow connection: the MLflow backend's
:class:`~trackbridge.backends.mlflow.connection.MlflowConnection`, with the
tracking URI, credential and artifact repositories Azure needs.

* The tracking URI is resolved lazily (an ARM lookup costs a request): with an
  ``endpoint`` it is known at once; without, on first use (:mod:`workspace`).
* The client is MLflow's own, through the ``azureml-mlflow`` plugin's stores
  (``AzureMLRestStore``, ``AzureMLflowModelRegistry``), whose requests carry
  ``Authorization: Bearer <token>`` from the remote's credential.
* MLflow's fail-fast HTTP settings (:mod:`~trackbridge.backends.mlflow.connection`)
  are applied although the URI is ``azureml://``: 429/5xx are retried a few
  times with jittered backoff by MLflow, then surface as transient errors that
  the engine retries.
* ``azureml://`` artifact URIs are opened with *this* connection's service
  context.  The plugin would look the context up through the process's
  *global* MLflow tracking URI, which trackbridge never sets.
* ``mlflow-artifacts:`` URIs (a plain MLflow server standing in for the
  workspace) go through that server's artifact proxy at
  ``<endpoint>/mlflow/v2.0/<scope>`` unless ``artifacts_server`` says otherwise.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from trackbridge.backends.azureml import credentials, workspace
from trackbridge.backends.azureml.options import MLFLOW_API_PREFIX, AzureOptions
from trackbridge.backends.mlflow.connection import MlflowConnection
from trackbridge.backends.mlflow.errors import translated

#: options passed through to the MLflow connection (never ``token``: ours is the Azure credential).
_MLFLOW_OPTIONS = ("http_retries", "http_timeout", "artifacts_server", "artifacts_destination")
_STUDIO = {"AzureCloud": "https://ml.azure.com", "AzureChinaCloud": "https://studio.ml.azure.cn",
           "AzureUSGovernment": "https://ml.azure.us"}


class AzureMLConnection(MlflowConnection):
    """One Azure ML workspace: resolved URI, bounded credential, the shared MLflow client."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.azure = AzureOptions.from_options(options)
        self._arm_transport = options.get("arm_transport")
        self._credential: Any = None
        self._uri: str | None = None
        self._context: Any = None
        mlflow_options: dict[str, Any] = {k: options[k] for k in _MLFLOW_OPTIONS if options.get(k) is not None}
        if self.azure.endpoint and not (mlflow_options.get("artifacts_server") or mlflow_options.get("artifacts_destination")):
            self.azure.require_workspace()
            mlflow_options["artifacts_server"] = f"{self.azure.endpoint}{MLFLOW_API_PREFIX}{self.azure.scope}"
        mlflow_options["tracking_uri"] = "azureml://unresolved"  # replaced by the property below
        super().__init__(mlflow_options)
        self.registry_uri = None  # never MLFLOW_REGISTRY_URI: the registry is the workspace's

    # MlflowConnection assigns ``tracking_uri`` in its constructor; here it is resolved on use.
    @property  # type: ignore[override]
    def tracking_uri(self) -> str:
        if self._uri is None:
            self._uri = self._resolve()
        return self._uri

    @tracking_uri.setter
    def tracking_uri(self, value: str) -> None:
        self._uri = None  # the MLflow constructor's placeholder; resolved lazily

    @property
    def credential(self) -> Any:
        if self._credential is None:
            self._credential = credentials.build(self.azure)
        return self._credential

    def _resolve(self) -> str:
        if self.azure.endpoint:
            from urllib.parse import urlparse

            uri = self.azure.tracking_uri_for(urlparse(self.azure.endpoint).netloc)
        else:
            uri = workspace.lookup_tracking_uri(self.azure, self.credential, self._arm_transport)
        self._context = workspace.service_context(self.azure, self.credential, workspace.host_url_of(self.azure, uri))
        workspace.seed(uri, self._context)
        return uri

    @property
    def display_uri(self) -> str:
        return self.tracking_uri.split("?")[0]

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The run's page in Azure ML studio."""
        studio = _STUDIO.get(self.azure.cloud, _STUDIO["AzureCloud"])
        return f"{studio}/runs/{run_id}?wsid={self.azure.scope}"

    def _open(self) -> Any:
        workspace._require_plugin()
        uri = self.tracking_uri  # resolves and seeds the plugin's service context
        self.registry_uri = uri
        self._configure_http()  # MLflow only does this for http(s) URIs
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        client = super()._open()
        with translated(f"open the Azure ML workspace at {self.display_uri}"):
            for store in (client._tracking_client.store, client._get_registry_client().store):
                if hasattr(store, "service_context"):
                    store.service_context = self._context  # a store MLflow cached for this URI
        return client

    def artifact_repo(self, artifact_uri: str) -> Any:
        if artifact_uri.startswith("azureml://") and "/registries/" not in artifact_uri:
            return self._workspace_artifact_repo(artifact_uri)
        return super().artifact_repo(artifact_uri)

    def _workspace_artifact_repo(self, artifact_uri: str) -> Any:
        """The plugin's artifact repository for a run or a model upload of this workspace,
        built on this connection's service context (what the plugin does itself when the
        global tracking URI is this workspace)."""
        from azureml.mlflow._client.artifact.local_artifact_client import LocalArtifactClient
        from azureml.mlflow._client.artifact.run_artifact_client import RunArtifactsClient
        from azureml.mlflow._store.artifact import utils as plugin
        from azureml.mlflow._store.artifact.artifact_repo import AzureMLflowArtifactRepository
        from mlflow.store.artifact.artifact_repo import ArtifactRepository

        self.tracking_uri  # noqa: B018 - resolve, so the service context exists
        with translated(f"open artifact store {artifact_uri.split('?')[0]}"):
            info = plugin.artifact_uri_decomp(artifact_uri)
            repo = AzureMLflowArtifactRepository.__new__(AzureMLflowArtifactRepository)
            ArtifactRepository.__init__(repo, artifact_uri)
            if plugin._EXP_NAME in info and plugin._RUN_ID in info:
                repo.artifacts = RunArtifactsClient(
                    self._context, info[plugin._EXP_NAME], info[plugin._RUN_ID], info.get(plugin._ARTIFACT_PATH))
            else:
                repo.artifacts = LocalArtifactClient(
                    self._context, info[plugin._ORIGIN], info[plugin._CONTAINER], info[plugin._ARTIFACT_PATH])
        return repo
