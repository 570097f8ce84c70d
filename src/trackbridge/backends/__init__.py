"""Registry of backends by name, with lazy import (fsspec-style).

Each built-in backend declares itself in its folder's ``info.py`` (a
:class:`~trackbridge.backends.base.BackendInfo`: class, extra, SDK distribution,
env vars and which are secrets, whether remotes are ``name:PATH``), so the
registry, ``doctor`` and ``.env.example`` read one table and importing
trackbridge imports no vendor SDK.  Third-party backends register through the
``trackbridge.backends`` entry-point group as ``"module:Class"``; their class
carries its ``info`` like the built-ins do::

    [project.entry-points."trackbridge.backends"]
    neptune = "trackbridge_neptune:NeptuneBackend"
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from trackbridge.backends.base import Backend, BackendInfo
from trackbridge.errors import MissingDependencyError, UnknownBackendError

ENTRY_POINT_GROUP = "trackbridge.backends"

#: ``module:ATTRIBUTE`` of each built-in backend's :class:`BackendInfo`.
BUILTIN_INFO = (
    "trackbridge.backends.mlflow.info:INFO",
    "trackbridge.backends.archive.info:INFO",
    "trackbridge.backends.wandb.info:INFO",
    "trackbridge.backends.wandb.info:OFFLINE_INFO",
    "trackbridge.backends.comet.info:INFO",
    "trackbridge.backends.comet.info:OFFLINE_INFO",
    "trackbridge.backends.azureml.info:INFO",
    "trackbridge.backends.tensorboard.info:INFO",
    "trackbridge.backends.trackio.info:INFO",
    "trackbridge.backends.neptune_export.info:INFO",
)


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@lru_cache(maxsize=1)
def builtin_infos() -> dict[str, BackendInfo]:
    """Built-in backend name -> its info, without importing any SDK."""
    infos = (_load(target) for target in BUILTIN_INFO)
    return {info.name: info for info in infos}


@lru_cache(maxsize=1)
def _plugins() -> tuple[tuple[str, str], ...]:
    """(name, ``module:Class``) of the installed plugins, read once per process: the scan
    reads every installed distribution's metadata (40 ms in a venv with torch and
    transformers) and each ``start_run`` asks three times, so an Optuna study paid it
    per trial."""
    return tuple((ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP))


def infos() -> dict[str, BackendInfo]:
    """Every backend name -> its info (built-ins, then plugins: a plugin without
    ``info`` gets a minimal one naming its class)."""
    found = dict(builtin_infos())
    for name, target in _plugins():
        found.setdefault(name, BackendInfo(name=name, target=target))
    return found


def available() -> dict[str, str]:
    """Every backend name → its ``module:Class`` target (built-ins, then plugins)."""
    return {name: info.target for name, info in infos().items()}


def path_remotes() -> frozenset[str]:
    """Backend names whose remotes are ``name:PATH`` (``dir:./backup``)."""
    return frozenset(name for name, info in infos().items() if info.path_remote)


def path_remote_forms() -> list[str]:
    """``name:PATH`` of every path remote, in registry order (the CLI's help lists these)."""
    return [f"{name}:PATH" for name, info in infos().items() if info.path_remote]


def read_only_message(name: str) -> str:
    """The one line the CLI gives when a read-only backend ``name`` is named as a destination,
    with the backends that can be written instead."""
    writable = sorted(f"{n}:PATH" if i.path_remote else n for n, i in infos().items() if not i.read_only)
    return (f"{name}: is a read-only source; copy from it into a backend that can be written "
            f"({', '.join(writable)})")


def backend_class(name: str) -> type[Backend]:
    """Import and return the class for ``name``; clear errors if unknown or not installed."""
    table = infos()
    if name not in table:
        known = ", ".join(sorted(table))
        raise UnknownBackendError(
            f"unknown backend {name!r}. Known backends: {known}. "
            "Check TRACKBRIDGE_BACKEND / your config, or install the plugin that provides it."
        )
    info = table[name]
    try:
        cls = _load(info.target)
    except ImportError as exc:
        if (exc.name or "").startswith("trackbridge"):
            raise  # a bug in trackbridge, not a missing SDK
        raise MissingDependencyError(
            f"backend {name!r} needs a package that is not installed ({exc.name or exc}). "
            f"Install it with: pip install 'trackbridge[{info.extra or name}]'"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise UnknownBackendError(f"{info.target} is not a trackbridge Backend subclass")
    return cls


def get_backend(name: str, options: Mapping[str, Any] | None = None) -> Backend:
    """An instance of backend ``name`` configured with ``options``."""
    return backend_class(name)(options)
