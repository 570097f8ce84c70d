"""What ``trackbridge doctor`` says about an Azure ML remote, one line per fact.

* which credential would be used (never a secret) and, if none, what to set;
* the tracking URI: built from ``endpoint`` at once, or looked up in ARM when
  ``resolve=True`` (one request; off by default so ``doctor`` stays offline);
* the install trap: azureml-mlflow 1.62 declares ``mlflow-skinny<=3.15.0``, so
  ``pip install azureml-mlflow`` into a venv with a newer mlflow downgrades
  mlflow-skinny and leaves mlflow broken (pip only warns).
  :func:`skinny_mismatch` detects it and gives the repair command.

Nothing here imports an Azure SDK unless ``resolve=True``.
"""
from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from trackbridge.errors import TrackbridgeError

#: the first azureml-mlflow that pins mlflow-skinny below current mlflow (<=3.15.0).
_PINNING_PLUGIN = (1, 62)


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _release(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def skinny_mismatch(versions: Mapping[str, str | None] | None = None) -> str | None:
    """A one-line problem + repair when mlflow and mlflow-skinny differ, else ``None``.

    ``versions`` (``{"mlflow": ..., "mlflow-skinny": ..., "azureml-mlflow": ...}``)
    defaults to what is installed (importlib.metadata)."""
    found = dict(versions) if versions is not None else {
        d: _version(d) for d in ("mlflow", "mlflow-skinny", "azureml-mlflow")}
    full, skinny, plugin = found.get("mlflow"), found.get("mlflow-skinny"), found.get("azureml-mlflow")
    if not full or not skinny or full == skinny:
        return None
    if plugin and _release(plugin)[:2] >= _PINNING_PLUGIN:
        repair = f"pip install 'mlflow-skinny=={full}' 'azureml-mlflow<1.62'"
        why = f" (azureml-mlflow {plugin} pins mlflow-skinny<=3.15.0 and pip downgraded it)"
    else:
        repair = f"pip install 'mlflow-skinny=={full}'"
        why = ""
    return (f"mlflow {full} is installed with mlflow-skinny {skinny}{why}: mlflow is broken. "
            f"Repair with: {repair}")


def diagnose(options: Mapping[str, Any] | None = None, resolve: bool = False) -> list[str]:
    """Doctor lines for an Azure ML remote with ``options`` (default: the environment only)."""
    from trackbridge.backends.azureml import credentials
    from trackbridge.backends.azureml.options import AzureOptions

    lines: list[str] = []
    problem = skinny_mismatch()
    if problem:
        lines.append(problem)
    plugin = _version("azureml-mlflow")
    lines.append(f"azureml-mlflow {plugin}" if plugin else
                 "azureml-mlflow is not installed: pip install 'trackbridge[azure]'")
    try:
        opts = AzureOptions.from_options(dict(options or {}))
    except TrackbridgeError as exc:
        return lines + [str(exc)]
    missing = opts.missing()
    if missing:
        lines.extend(missing)
    else:
        lines.append(f"workspace: {opts.subscription_id}/{opts.resource_group}/{opts.workspace} ({opts.cloud})")
    try:
        choice = credentials.choose(opts)
        lines.append(f"credential: {choice.description}")
    except TrackbridgeError as exc:
        lines.append(str(exc))
        choice = None
    if missing:
        return lines
    if opts.endpoint:
        from urllib.parse import urlparse

        lines.append(f"tracking URI: {opts.tracking_uri_for(urlparse(opts.endpoint).netloc)} (from endpoint)")
    elif resolve and choice is not None:
        from trackbridge.backends.azureml import workspace

        try:
            uri = workspace.lookup_tracking_uri(opts, credentials.build(opts, choice), (options or {}).get("arm_transport"))
            lines.append(f"tracking URI: {uri} (from the workspace's ARM record)")
        except TrackbridgeError as exc:
            lines.append(f"tracking URI: not resolved: {exc}")
    else:
        lines.append("tracking URI: looked up in ARM on first use (azure-ai-ml); set 'endpoint' to skip the lookup")
    return lines
