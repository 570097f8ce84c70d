"""The options of an Azure ML remote, resolved once: workspace, endpoint, cloud, credential.

Why one object: the backend, the credential chooser, the workspace lookup and
``doctor`` all need the same answers ("which workspace?", "which credential
would be used?"), and a missing piece must be explained the same way everywhere.

Options (``*_env`` names an environment variable; the remote layer resolves
``token_env`` into ``token`` before the backend sees it, direct callers may
pass either):

* ``subscription_id``, ``resource_group``, ``workspace`` — else the environment
  variables ``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``,
  ``AZUREML_WORKSPACE_NAME`` (trackbridge's own: no Azure SDK reads them);
* ``endpoint`` (else ``AZUREML_ENDPOINT``) — the workspace API host (``https://westeurope.api.azureml.ms``,
  a private endpoint, a sovereign cloud's host, or a local stand-in
  ``http://127.0.0.1:PORT``).  With it the tracking URI is built directly and no
  ARM lookup happens; without it the URI comes from the workspace's ARM record;
* ``cloud`` — ``AzureCloud`` (default), ``AzureChinaCloud``, ``AzureUSGovernment``:
  which login authority and token scope to use (never fetched from the network);
* ``credential`` — ``token``, ``service_principal``, ``cli``, ``managed_identity``,
  ``device_code``, ``interactive``; default: the first available of token,
  service principal, Azure CLI (see :mod:`credentials`);
* ``token`` / ``token_env`` — a bearer token fetched beforehand (CI);
* ``credential_timeout`` — seconds any credential may take (default 30): a CI
  job never hangs on a login;
* ``aliases`` — ``auto`` (default), ``native`` or ``tags`` (see the writer);
* ``arm_transport`` — an azure-core transport for the ARM lookup (tests, proxies;
  only when the backend is built in Python);
* plus the MLflow backend's HTTP and artifact options (``http_retries``,
  ``http_timeout``, ``artifacts_server``, ``artifacts_destination``).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from trackbridge.errors import ConfigError

ENV_SUBSCRIPTION = "AZURE_SUBSCRIPTION_ID"
ENV_RESOURCE_GROUP = "AZURE_RESOURCE_GROUP"
ENV_WORKSPACE = "AZUREML_WORKSPACE_NAME"
ENV_ENDPOINT = "AZUREML_ENDPOINT"
DEFAULT_CLOUD = "AzureCloud"
DEFAULT_CREDENTIAL_TIMEOUT = 30.0
#: the path the azureml-mlflow plugin puts before a workspace's scope (MLflow >= 2).
MLFLOW_API_PREFIX = "/mlflow/v2.0"

_WORKSPACE_OPTIONS = (
    ("subscription_id", ENV_SUBSCRIPTION),
    ("resource_group", ENV_RESOURCE_GROUP),
    ("workspace", ENV_WORKSPACE),
)


def workspace_scope(subscription_id: str, resource_group: str, workspace: str) -> str:
    """The ARM id of a workspace, as Azure ML puts it in every tracking URL."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{workspace}"
    )


@dataclass(frozen=True)
class AzureOptions:
    subscription_id: str | None
    resource_group: str | None
    workspace: str | None
    endpoint: str | None
    cloud: str
    credential: str | None
    token: str | None
    #: the variable ``token_env`` named (for messages: never the value).
    token_source: str | None
    credential_timeout: float

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "AzureOptions":
        values = {}
        for key, env in _WORKSPACE_OPTIONS:
            values[key] = str(options.get(key) or os.environ.get(env) or "").strip() or None
        endpoint = str(options.get("endpoint") or os.environ.get(ENV_ENDPOINT) or "").strip().rstrip("/") or None
        if endpoint:
            parsed = urlparse(endpoint)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ConfigError(
                    f"Azure ML remote: 'endpoint' must be the workspace API host as an http(s) URL "
                    f"(e.g. https://westeurope.api.azureml.ms), not {endpoint!r}."
                )
            endpoint = f"{parsed.scheme}://{parsed.netloc}"
        token, token_source = options.get("token") or None, None
        token_env = options.get("token_env")
        if token is None and token_env:
            token_source = str(token_env)
            token = os.environ.get(token_source) or None
            if token is None:
                raise ConfigError(
                    f"Azure ML remote: option token_env names environment variable {token_source!r}, "
                    "which is not set. Export the token there, or remove token_env to use another credential."
                )
        elif token is not None:
            token_source = "option token"
        timeout = float(options.get("credential_timeout") or DEFAULT_CREDENTIAL_TIMEOUT)
        if timeout <= 0:
            raise ConfigError("Azure ML remote: 'credential_timeout' must be a positive number of seconds.")
        credential = str(options.get("credential") or "").strip().lower().replace("-", "_") or None
        return cls(
            subscription_id=values["subscription_id"],
            resource_group=values["resource_group"],
            workspace=values["workspace"],
            endpoint=endpoint,
            cloud=str(options.get("cloud") or DEFAULT_CLOUD),
            credential=credential,
            token=str(token) if token else None,
            token_source=token_source,
            credential_timeout=timeout,
        )

    def missing(self) -> list[str]:
        """One line per workspace piece that is not set, saying where to set it."""
        lines = []
        for key, env in _WORKSPACE_OPTIONS:
            if not getattr(self, key):
                lines.append(f"Azure ML: no {key.replace('_', ' ')}: set option '{key}' of the remote or {env}.")
        return lines

    def require_workspace(self) -> tuple[str, str, str]:
        missing = self.missing()
        if missing:
            raise ConfigError(" ".join(missing))
        return self.subscription_id, self.resource_group, self.workspace  # type: ignore[return-value]

    @property
    def scope(self) -> str:
        return workspace_scope(*self.require_workspace())

    def tracking_uri_for(self, host: str) -> str:
        """The plugin's ``azureml://`` tracking URI of this workspace at ``host`` (a netloc)."""
        return f"azureml://{host}{MLFLOW_API_PREFIX}{self.scope}"
