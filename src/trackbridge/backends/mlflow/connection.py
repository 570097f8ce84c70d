"""One MLflow tracking location: its URIs, credentials and a shared ``MlflowClient``.

Why a separate object: the reader and the writer of a backend share one client
(one SQLAlchemy engine for a sqlite store, one HTTP session pool for a server),
and both need the same URL rules and the same fail-fast HTTP settings.

Decisions recorded here:

* **No global MLflow state.** URIs go to ``MlflowClient(tracking_uri=, registry_uri=)``;
  ``mlflow.set_tracking_uri`` is never called.
* **Credentials per remote.** When the remote's options carry ``token`` or
  ``username``/``password``, they are injected through the REST store's
  ``get_host_creds`` hook instead of ``os.environ``, so they never reach other
  remotes of the process.  MLflow caches one store per URI, so two remotes with
  the *same* server URI share credentials.  Artifact transfers through a
  server's proxy (``mlflow-artifacts:``) build their credentials from the
  ``MLFLOW_TRACKING_*`` environment variables only: put them there when the
  server requires auth for artifacts.
* **Fail fast over HTTP.** MLflow retries a failed request for minutes by
  default (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``=7, backoff factor 2, timeout
  120 s).  The facade and the sync engine retry on their own, so a connection
  to an http(s) URI sets ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (option
  ``http_retries``, default 2), ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` (1) and
  ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (option ``http_timeout``, default 30 s).
  MLflow reads these only from the process environment, so they are
  process-wide: a value already in the environment wins unless the option is
  given explicitly.
* **No "View run" lines on stdout.** For http(s) URIs MLflow prints a run's UI
  link when the run ends, which would corrupt ``--json`` output;
  ``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT`` is set (``setdefault``: a user's
  explicit value wins).
* **Proxied artifacts without the server.** Runs created through an
  ``mlflow server`` store artifact URIs ``mlflow-artifacts:/<path>``, which MLflow
  resolves only against an http(s) tracking URI.  To read the server's database
  in-process (``sqlite:``), option ``artifacts_destination`` (the server's
  ``--artifacts-destination``: a folder or a storage URI) maps ``<path>`` under
  it, or option ``artifacts_server`` (the server's URL) fetches through its proxy.
  Every artifact transfer, read or write, goes through :meth:`MlflowConnection.artifact_repo`.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from trackbridge.backends.mlflow.errors import mask_secrets, translated
from trackbridge.errors import RunNotFound, ConfigError, MissingDependencyError

DEFAULT_HTTP_RETRIES = 2
DEFAULT_HTTP_TIMEOUT = 30
_HTTP_BACKOFF_FACTOR = "1"
_PROXY_SCHEME = "mlflow-artifacts:"
_MAX_REMEMBERED_RUNS = 1024


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else the embedded store ``sqlite:///<cwd>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _quiet_mlflow() -> None:
    """MLflow's own "Downloading artifacts" bars and first-use INFO lines ("Creating
    initial MLflow database tables...") are noise on every trackbridge command and in
    a training log: off by default, before mlflow is imported.  A user who sets
    either variable keeps their choice."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


class MlflowConnection:
    """URIs, credentials and the lazily created, shared ``MlflowClient``."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        _quiet_mlflow()
        self.tracking_uri: str = str(options.get("tracking_uri") or default_tracking_uri())
        self.registry_uri: str | None = (
            options.get("registry_uri") or os.environ.get("MLFLOW_REGISTRY_URI") or None
        )
        self._token = options.get("token")
        self._username = options.get("username")
        self._password = options.get("password")
        if bool(self._username) != bool(self._password):
            raise ConfigError(
                "MLflow remote: 'username' and 'password' must be given together "
                "(or use 'token', or MLflow's MLFLOW_TRACKING_USERNAME/PASSWORD)."
            )
        self._http_retries = options.get("http_retries")
        self._http_timeout = options.get("http_timeout")
        self._artifacts_destination = _storage_uri(options.get("artifacts_destination"))
        self._artifacts_server: str | None = options.get("artifacts_server") or None
        if self._artifacts_destination and self._artifacts_server:
            raise ConfigError("MLflow remote: give 'artifacts_destination' or 'artifacts_server', not both.")
        if self._artifacts_server and not is_http(self._artifacts_server):
            raise ConfigError(
                f"MLflow remote: 'artifacts_server' must be the http(s) URL of an MLflow server, "
                f"not {mask_secrets(self._artifacts_server)!r}."
            )
        self._client: Any = None
        self._lock = threading.Lock()
        self._run_artifact_uris: dict[str, str] = {}

    # -- presentation -------------------------------------------------------

    @property
    def display_uri(self) -> str:
        """The tracking URI with any ``user:password@`` masked."""
        return mask_secrets(self.tracking_uri)

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """A stable address of a run: the UI link for servers, store + ids otherwise."""
        if is_http(self.tracking_uri):
            return f"{self.display_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return f"{self.display_uri}#/experiments/{quote(experiment_id)}/runs/{quote(run_id)}"

    # -- the client ---------------------------------------------------------

    def sqlite_path(self) -> Path | None:
        """The database file of a ``sqlite:`` tracking URI (``None`` for other stores)."""
        uri = self.tracking_uri
        if not uri.startswith("sqlite:///"):
            return None
        return Path(uri[len("sqlite:///"):].split("?", 1)[0])

    @property
    def store_missing(self) -> bool:
        """A ``sqlite:`` store whose file does not exist (and no client made it yet)."""
        path = self.sqlite_path()
        return self._client is None and path is not None and not path.exists()

    def read_client(self) -> Any:
        """The client, for reading: a ``sqlite:`` store that does not exist is an error,
        never created (MLflow would create an empty database on first use)."""
        path = self.sqlite_path()
        if self.store_missing:
            raise RunNotFound(
                f"no MLflow store at {path}: nothing to read. Check the path (or MLFLOW_TRACKING_URI); "
                "a store is created only by writing to it.")
        return self.client

    @property
    def client(self) -> Any:
        """The shared ``mlflow.MlflowClient`` (created on first use, thread-safe)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._open()
        return self._client

    def _open(self) -> Any:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise MissingDependencyError(
                "the MLflow backend needs the 'mlflow' package. Install it with: "
                "pip install 'trackbridge[mlflow]'"
            ) from exc
        if is_http(self.tracking_uri):
            self._configure_http()
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        with translated(f"connect to {self.display_uri}"):
            client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
            if self._token or self._username:
                self._inject_credentials(client._tracking_client.store)
                self._inject_credentials(client._get_registry_client().store)
        return client

    # -- artifacts ----------------------------------------------------------

    def artifact_repo(self, artifact_uri: str) -> Any:
        """MLflow's artifact repository for ``artifact_uri`` (a run's or a logged model's),
        with ``mlflow-artifacts:`` URIs mapped by the ``artifacts_*`` options."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        tracking_uri = self.tracking_uri
        if artifact_uri.startswith(_PROXY_SCHEME):
            if self._artifacts_destination:
                path = urlparse(artifact_uri).path.strip("/")
                artifact_uri = f"{self._artifacts_destination}/{path}" if path else self._artifacts_destination
            elif self._artifacts_server:
                tracking_uri = self._artifacts_server
            elif not is_http(tracking_uri):
                raise ConfigError(
                    f"artifacts at {artifact_uri} are served by an MLflow server's artifact proxy, "
                    f"which {self.display_uri} cannot reach. Set the remote's option "
                    "'artifacts_destination' to the server's --artifacts-destination folder "
                    "(TRACKBRIDGE_REMOTE_<NAME>_ARTIFACTS_DESTINATION=...), or 'artifacts_server' "
                    "to the server's URL."
                )
        with translated(f"open artifact store {mask_secrets(artifact_uri)}"):
            return get_artifact_repository(artifact_uri, tracking_uri=tracking_uri)

    def run_artifact_repo(self, run_id: str) -> Any:
        """The artifact repository of one run (see :meth:`artifact_repo`).

        A run's artifact URI never changes: it is remembered (as MLflow's client
        does) so logging many files to one run costs one ``get_run``, not one each."""
        artifact_uri = self._run_artifact_uris.get(run_id)
        if artifact_uri is None:
            with translated("look up the run's artifact location", run_id):
                artifact_uri = self.client.get_run(run_id).info.artifact_uri
            if len(self._run_artifact_uris) >= _MAX_REMEMBERED_RUNS:
                self._run_artifact_uris.clear()
            self._run_artifact_uris[run_id] = artifact_uri
        return self.artifact_repo(artifact_uri)

    def _configure_http(self) -> None:
        settings = {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": (self._http_retries, DEFAULT_HTTP_RETRIES),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": (self._http_timeout, DEFAULT_HTTP_TIMEOUT),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": (None, _HTTP_BACKOFF_FACTOR),
        }
        for var, (explicit, default) in settings.items():
            if explicit is not None:
                os.environ[var] = str(int(explicit))
            else:
                os.environ.setdefault(var, str(default))

    def _inject_credentials(self, store: Any) -> None:
        if not hasattr(store, "get_host_creds"):
            return
        original = store.get_host_creds
        if getattr(original, "_trackbridge_wrapped", False):
            original = original._trackbridge_original
        token, username, password = self._token, self._username, self._password

        def host_creds() -> Any:
            creds = original()
            if token:
                creds.token = token
            if username:
                creds.username, creds.password = username, password
            return creds

        host_creds._trackbridge_wrapped = True  # type: ignore[attr-defined]
        host_creds._trackbridge_original = original  # type: ignore[attr-defined]
        store.get_host_creds = host_creds


def _storage_uri(location: str | None) -> str | None:
    """``location`` as a URI without trailing slash: local folders become ``file:`` URIs."""
    if not location:
        return None
    location = str(location)
    if len(urlparse(location).scheme) <= 1:  # a path (a one-letter scheme is a Windows drive)
        location = Path(location).expanduser().resolve().as_uri()
    return location.rstrip("/")
