"""Registry of backends by name, with lazy import (fsspec-style).

Built-in backends are listed as ``"module:Class"`` strings so that importing
trackbridge imports no vendor SDK; third-party backends register through the
``trackbridge.backends`` entry-point group with the same form, e.g. in their
``pyproject.toml``::

    [project.entry-points."trackbridge.backends"]
    neptune = "trackbridge_neptune:NeptuneBackend"
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from trackbridge.backends.base import Backend
from trackbridge.errors import MissingDependencyError, UnknownBackendError

ENTRY_POINT_GROUP = "trackbridge.backends"

BUILTIN: dict[str, str] = {
    "mlflow": "trackbridge.backends.mlflow:MlflowBackend",
    "dir": "trackbridge.backends.archive:ArchiveBackend",
}

#: extra to install for each built-in whose SDK is optional.
EXTRAS: dict[str, str] = {"mlflow": "mlflow", "wandb": "wandb", "comet": "comet", "azureml": "azure"}


def available() -> dict[str, str]:
    """Every backend name → its ``module:Class`` target (built-ins, then plugins)."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def backend_class(name: str) -> type[Backend]:
    """Import and return the class for ``name``; clear errors if unknown or not installed."""
    targets = available()
    if name not in targets:
        known = ", ".join(sorted(targets))
        raise UnknownBackendError(
            f"unknown backend {name!r}. Known backends: {known}. "
            "Check TRACKBRIDGE_BACKEND / your config, or install the plugin that provides it."
        )
    module_name, _, attr = targets[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if (exc.name or "").startswith("trackbridge"):
            raise  # a bug in trackbridge, not a missing SDK
        extra = EXTRAS.get(name, name)
        raise MissingDependencyError(
            f"backend {name!r} needs a package that is not installed ({exc.name or exc}). "
            f"Install it with: pip install 'trackbridge[{extra}]'"
        ) from exc
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise UnknownBackendError(f"{targets[name]} is not a trackbridge Backend subclass")
    return cls


def get_backend(name: str, options: Mapping[str, Any] | None = None) -> Backend:
    """An instance of backend ``name`` configured with ``options``."""
    return backend_class(name)(options)
