"""From workspace options to the plugin's ``azureml://`` tracking URI and its service context.

Two ways, both real:

* ``endpoint`` given: the URI is ``azureml://<endpoint host>/mlflow/v2.0/<workspace scope>``
  and no ARM call happens (private endpoints, sovereign clouds, local stand-ins);
* otherwise azure-ai-ml looks the workspace up in ARM
  (``MLClient(cred, sub, rg, ws).workspaces.get(ws).mlflow_tracking_uri``), once per
  process and workspace (:data:`_RESOLVED`).

Then the plugin's ``_AzureMLServiceContextLoader`` is seeded with *our*
``ServiceContext`` for that URI (host, workspace, our bounded credential, the
cloud by name), before MLflow builds a store.  Why: left alone, the plugin
builds a context with a credential chain that ends in an interactive browser
and a device-code login, and with no cloud named it fetches the cloud list from
management.azure.com.  The loader is a process-wide cache keyed by URI: two
remotes for the same workspace in one process share it (the last one seeded
wins); the connection also points its own stores at its context.
"""
from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlparse

from trackbridge.backends.azureml.options import AzureOptions
from trackbridge.errors import BackendError, MissingDependencyError

_RESOLVED: dict[tuple[str, str, str, str], str] = {}
_LOCK = threading.Lock()


def _require_plugin() -> None:
    try:
        import azureml.mlflow  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "the Azure ML backend needs 'azureml-mlflow' (and azure-ai-ml, azure-identity). "
            "Install them with: pip install 'trackbridge[azure]'"
        ) from exc


def lookup_tracking_uri(opts: AzureOptions, credential: Any, transport: Any = None) -> str:
    """The workspace's MLflow tracking URI from ARM, through azure-ai-ml (cached)."""
    sub, rg, ws = opts.require_workspace()
    key = (sub, rg, ws, opts.cloud)
    with _LOCK:
        if key in _RESOLVED:
            return _RESOLVED[key]
    try:
        from azure.ai.ml import MLClient
    except ImportError as exc:
        raise MissingDependencyError(
            "finding an Azure ML workspace's tracking URI needs 'azure-ai-ml'. Install it with: "
            "pip install 'trackbridge[azure]' (or give the remote an 'endpoint')."
        ) from exc
    kwargs: dict[str, Any] = {"cloud": opts.cloud}
    if transport is not None:
        kwargs["transport"] = transport
    try:
        client = MLClient(credential, sub, rg, ws, **kwargs)
        uri = client.workspaces.get(ws).mlflow_tracking_uri
    except BackendError:
        raise
    except Exception as exc:  # noqa: BLE001 - azure-core raises many kinds; one message
        from trackbridge.backends.azureml.errors import translate_arm

        raise translate_arm(exc, f"workspace {ws!r} in resource group {rg!r}") from exc
    if not uri:
        raise BackendError(
            f"Azure ML workspace {ws!r} has no MLflow tracking URI in its ARM record; "
            "give the remote an 'endpoint' (the workspace API host) instead."
        )
    with _LOCK:
        _RESOLVED[key] = uri
    return uri


def host_url_of(opts: AzureOptions, tracking_uri: str) -> str:
    """The http(s) base URL the plugin sends requests to."""
    if opts.endpoint:
        return opts.endpoint
    return f"https://{urlparse(tracking_uri).netloc}"


def service_context(opts: AzureOptions, credential: Any, host_url: str) -> Any:
    """The plugin's ``ServiceContext`` for this workspace, with the cloud given by name
    (a known cloud is looked up offline)."""
    _require_plugin()
    from azureml.mlflow._common._cloud.cloud import _get_cloud_or_default
    from azureml.mlflow._internal.utils import ServiceContext

    sub, rg, ws = opts.require_workspace()
    return ServiceContext(
        host_url=host_url,
        subscription_id=sub,
        workspace_name=ws,
        resource_group_name=rg,
        auth=credential,
        cloud=_get_cloud_or_default(opts.cloud),
    )


def seed(tracking_uri: str, context: Any) -> None:
    """Make the plugin use ``context`` for ``tracking_uri`` (replacing any it built)."""
    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader

    _AzureMLServiceContextLoader.add_service_context(tracking_uri, context)


def forget_cached_uris() -> None:
    """Drop the ARM lookups remembered by this process (tests, a moved workspace)."""
    with _LOCK:
        _RESOLVED.clear()
