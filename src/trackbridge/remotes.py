"""Turn a ``REMOTE[:EXPERIMENT]`` argument into a configured backend.

A remote is found, in order, as:

* ``<backend>:PATH`` for backends whose remotes are paths (``dir:PATH``, the
  vendor-neutral archive; the offline folders of other platforms), as each
  backend declares in its :class:`~trackbridge.backends.base.BackendInfo`;
* a named remote from the config file (``[remotes.NAME]`` with ``backend = ...``);
* a named remote from the environment, rclone-style:
  ``TRACKBRIDGE_REMOTE_<NAME>_BACKEND=mlflow`` plus ``TRACKBRIDGE_REMOTE_<NAME>_<OPTION>=...``;
* a bare backend name (``mlflow``, ``wandb``...), configured by that backend's
  own environment variables (``.env``).

Options ending in ``_env`` name an environment variable holding a secret; the
secret is read from the environment at connection time and never stored.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from trackbridge.backends import available, get_backend, infos, path_remotes
from trackbridge.backends.base import Backend
from trackbridge.config import Config
from trackbridge.errors import ConfigError, UnknownBackendError

ENV_PREFIX = "TRACKBRIDGE_REMOTE_"


@dataclass
class RemoteSpec:
    """A parsed ``REMOTE[:EXPERIMENT]`` argument."""

    remote: str
    backend: str
    options: dict[str, Any]
    experiment: str | None = None

    def open(self) -> Backend:
        return get_backend(self.backend, self.options)

    def __str__(self) -> str:
        return f"{self.remote}:{self.experiment}" if self.experiment else self.remote


def _env_remote(name: str) -> dict[str, Any] | None:
    prefix = f"{ENV_PREFIX}{name.upper()}_"
    options = {k[len(prefix):].lower(): v for k, v in os.environ.items() if k.startswith(prefix)}
    return options or None


def _resolve_secrets(remote: str, options: dict[str, Any]) -> dict[str, Any]:
    """Replace ``foo_env = "VAR"`` by ``foo = <value of VAR>``; clear error if unset."""
    out = {}
    for key, value in options.items():
        if key.endswith("_env") and key != "backend":
            if value not in os.environ:
                raise ConfigError(
                    f"remote {remote!r}: option {key} names environment variable {value!r}, "
                    "which is not set. Put it in .env or export it."
                )
            out[key[: -len("_env")]] = os.environ[value]
        else:
            out[key] = value
    return out


def parse_remote(arg: str, config: Config) -> RemoteSpec:
    """Parse ``REMOTE[:EXPERIMENT]`` (or ``<backend>:PATH``) into a :class:`RemoteSpec`."""
    name, sep, rest = arg.partition(":")
    if name in path_remotes() and name not in config.remotes:
        if not rest:
            if infos()[name].default_path:  # the vendor's default place (trackio: $TRACKIO_DIR)
                return RemoteSpec(name, name, {})
            raise ConfigError(f"{name}: needs a path, e.g. {name}:./backup")
        return RemoteSpec(name, name, {"path": rest})
    experiment = rest if sep and rest else None
    if name in config.remotes:
        options = dict(config.remotes[name])
    elif (env_options := _env_remote(name)) is not None:
        options = env_options
        if "backend" not in options:
            raise ConfigError(f"remote {name!r} from the environment needs {ENV_PREFIX}{name.upper()}_BACKEND")
    elif name in available():
        options = {"backend": name}
    else:
        known = sorted(set(config.remotes) | set(available()))
        where = f"the config file {config.remotes_origin}" if config.remotes_origin else "a config file (none found)"
        raise UnknownBackendError(
            f"unknown remote {name!r}: not a [remotes.{name}] entry in {where}, "
            f"not set by {ENV_PREFIX}{name.upper()}_BACKEND, and not a backend name. Add a [remotes.{name}] "
            f"table with backend = \"...\" to trackbridge.toml, or use a known one. Known: {', '.join(known)}"
        )
    backend = options.pop("backend")
    return RemoteSpec(name, backend, _resolve_secrets(name, options), experiment)
