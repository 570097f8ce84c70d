"""Which Azure credential a remote uses, chosen without surprises.

Order, unless the option ``credential`` names one:

1. a static bearer token (``token`` / ``token_env``): CI with a token fetched beforehand;
2. a service principal from ``AZURE_CLIENT_ID`` / ``AZURE_TENANT_ID`` /
   ``AZURE_CLIENT_SECRET`` (azure-identity's ``ClientSecretCredential``);
3. the Azure CLI login (``AzureCliCredential``, its ``az`` process bounded by
   ``credential_timeout``).

Never chosen unless named: managed identity (it probes 169.254.169.254),
device code and interactive browser login (they wait for a human).  Every
credential, whatever its kind, is wrapped in :class:`BoundedCredential`, so a
token request that does not answer within ``credential_timeout`` seconds fails
with a message instead of hanging a CI job.  Why not ``DefaultAzureCredential``:
its chain includes exactly the probes and prompts above, and the plugin's own
default adds an interactive and a device-code login on top.
"""
from __future__ import annotations

import concurrent.futures
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

from trackbridge.backends.azureml.options import AzureOptions
from trackbridge.errors import ConfigError, MissingDependencyError, TransientBackendError

SP_VARS = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")
KINDS = ("token", "service_principal", "cli", "managed_identity", "device_code", "interactive")
#: a static token's assumed lifetime: it is not ours to know, the service says when it expired.
_STATIC_TOKEN_SECONDS = 3600


@dataclass(frozen=True)
class CredentialChoice:
    """The credential a remote would use, described without any secret."""

    kind: str
    #: e.g. "static bearer token from $AZUREML_TOKEN", "Azure CLI login (/usr/bin/az)".
    description: str


class StaticTokenCredential:
    """A bearer token given as is (azure-core's ``TokenCredential`` protocol)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + _STATIC_TOKEN_SECONDS)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self._token, int(time.time()) + _STATIC_TOKEN_SECONDS)

    def __repr__(self) -> str:  # never the token
        return "StaticTokenCredential(***)"


class BoundedCredential:
    """Any credential, with every token request cut off after ``timeout`` seconds."""

    _pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="trackbridge-azure-cred")

    def __init__(self, inner: Any, timeout: float, description: str) -> None:
        self.inner = inner
        self.timeout = timeout
        self.description = description

    def _bounded(self, method: str, *args: Any, **kwargs: Any) -> Any:
        future = self._pool.submit(getattr(self.inner, method), *args, **kwargs)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            raise TransientBackendError(
                f"Azure ML: the {self.description} gave no token within {self.timeout:g} s "
                "(option credential_timeout). Check the login, or pass a token with token_env."
            ) from None

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self._bounded("get_token", *scopes, **kwargs)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        if hasattr(self.inner, "get_token_info"):
            return self._bounded("get_token_info", *scopes, options=options)
        from azure.core.credentials import AccessTokenInfo

        token = self.get_token(*scopes)
        return AccessTokenInfo(token.token, token.expires_on)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


def _sp_state() -> tuple[list[str], list[str]]:
    present = [v for v in SP_VARS if os.environ.get(v)]
    return present, [v for v in SP_VARS if v not in present]


def choose(opts: AzureOptions) -> CredentialChoice:
    """The credential ``opts`` select, or a :class:`ConfigError` saying what is missing."""
    kind = opts.credential
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"Azure ML remote: unknown credential {kind!r}; use one of {', '.join(KINDS)}.")
    present, absent = _sp_state()
    if kind in (None, "token") and opts.token:
        return CredentialChoice("token", f"static bearer token from {_where(opts)}")
    if kind == "token":
        raise ConfigError("Azure ML remote: credential 'token' needs option token_env naming a variable that holds the token.")
    if kind in (None, "service_principal") and not absent:
        return CredentialChoice("service_principal", f"service principal {os.environ['AZURE_CLIENT_ID']} "
                                                     f"of tenant {os.environ['AZURE_TENANT_ID']}")
    if kind == "service_principal":
        raise ConfigError(f"Azure ML remote: service principal login needs {', '.join(absent)} (not set).")
    az = shutil.which("az")
    if kind in (None, "cli") and az:
        return CredentialChoice("cli", f"Azure CLI login ({az})")
    if kind == "cli":
        raise ConfigError("Azure ML remote: credential 'cli' needs the Azure CLI ('az' is not on PATH); "
                          "install it and run 'az login'.")
    if kind == "managed_identity":
        client = os.environ.get("AZURE_CLIENT_ID")
        return CredentialChoice(kind, f"managed identity{f' {client}' if client else ''} (asked for by option)")
    if kind in ("device_code", "interactive"):
        return CredentialChoice(kind, f"{kind.replace('_', ' ')} login (asked for by option; waits for a human)")
    partial = f" Service principal variables set: {', '.join(present)}; missing: {', '.join(absent)}." if present else ""
    raise ConfigError(
        "Azure ML: no credential found. Set token_env to a variable holding a bearer token, or set "
        f"{', '.join(SP_VARS)} for a service principal, or install the Azure CLI and run 'az login'.{partial}"
    )


def _where(opts: AzureOptions) -> str:
    if opts.token_source and opts.token_source != "option token":
        return f"${opts.token_source}"
    return "the remote's token option"


def build(opts: AzureOptions, choice: CredentialChoice | None = None) -> BoundedCredential:
    """The azure-core credential for ``choice`` (default :func:`choose`), bounded in time."""
    choice = choice or choose(opts)
    timeout = opts.credential_timeout
    if choice.kind == "token":
        return BoundedCredential(StaticTokenCredential(opts.token or ""), timeout, choice.description)
    try:
        import azure.identity as identity
    except ImportError as exc:
        raise MissingDependencyError(
            "Azure ML logins need 'azure-identity'. Install it with: pip install 'trackbridge[azure]'"
        ) from exc
    authority = authority_of(opts.cloud)
    transport = {"connection_timeout": timeout, "read_timeout": timeout}
    if choice.kind == "service_principal":
        inner = identity.ClientSecretCredential(
            os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"], os.environ["AZURE_CLIENT_SECRET"],
            authority=authority, **transport,
        )
    elif choice.kind == "cli":
        inner = identity.AzureCliCredential(process_timeout=max(1, int(timeout)))
    elif choice.kind == "managed_identity":
        client = os.environ.get("AZURE_CLIENT_ID")
        inner = identity.ManagedIdentityCredential(client_id=client, **transport) if client \
            else identity.ManagedIdentityCredential(**transport)
    elif choice.kind == "device_code":
        inner = identity.DeviceCodeCredential(authority=authority, timeout=int(timeout), **transport)
    else:
        inner = identity.InteractiveBrowserCredential(authority=authority, timeout=int(timeout), **transport)
    return BoundedCredential(inner, timeout, choice.description)


_AUTHORITIES = {
    "AzureCloud": "login.microsoftonline.com",
    "AzureChinaCloud": "login.chinacloudapi.cn",
    "AzureUSGovernment": "login.microsoftonline.us",
}


def authority_of(cloud: str) -> str:
    try:
        return _AUTHORITIES[cloud]
    except KeyError:
        raise ConfigError(f"Azure ML remote: unknown cloud {cloud!r}; use one of {', '.join(_AUTHORITIES)}.") from None
