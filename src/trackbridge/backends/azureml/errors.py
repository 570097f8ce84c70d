"""Azure-side failures (ARM lookup, credentials) as trackbridge errors.

Tracking calls go through MLflow's REST client and are translated by the MLflow
backend's :mod:`~trackbridge.backends.mlflow.errors` (429 and 5xx are
:class:`TransientBackendError` there, after MLflow's own jittered HTTP retries).
Here: azure-core's ``HttpResponseError`` and azure-identity's
``ClientAuthenticationError`` from the workspace lookup."""
from __future__ import annotations

from trackbridge.errors import BackendError, ConfigError, TransientBackendError

_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def translate_arm(exc: BaseException, what: str) -> BackendError:
    name = type(exc).__name__
    status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "status_code", None)
    detail = str(getattr(exc, "message", None) or exc).strip().splitlines()[0][:300] if str(exc) else name
    if name == "ClientAuthenticationError" or name == "CredentialUnavailableError":
        return ConfigError(
            f"Azure ML: could not get a token to look up {what}: {detail}. "
            "Check the credential (trackbridge doctor shows which one is used)."
        )
    if status in _TRANSIENT_STATUS or name in ("ServiceRequestError", "ServiceResponseError"):
        return TransientBackendError(f"Azure Resource Manager is unreachable or busy while looking up {what}: "
                                     f"{detail}. The operation can be retried.")
    if status == 404 or name == "ResourceNotFoundError":
        return ConfigError(f"Azure ML: {what} was not found (check subscription_id, resource_group, workspace).")
    if status in (401, 403):
        return ConfigError(f"Azure ML: the credential may not read {what} ({status}). Grant it access "
                           "(e.g. the AzureML Data Scientist role) or use another credential.")
    return BackendError(f"Azure ML: looking up {what} failed: {detail}")
