"""A source that is not there is an error, not an empty success.

Why: ``trackbridge copy dir:./nope dir:./out`` used to print "runs selected 0" and
exit 0, so a mistyped path in cron or CI "succeeded" forever.  Two checks, both
cheap: a path remote's path must exist before anything is opened; and when a
command selected nothing at all, the source is asked whether it holds any run
(only then, so a normal copy pays nothing).  ``--allow-empty`` is for the rare
case an empty source is intended.
"""
from __future__ import annotations

from pathlib import Path

from trackbridge.backends import infos, read_only_message
from trackbridge.backends.base import Backend
from trackbridge.errors import ConfigError, ReadOnlyBackendError
from trackbridge.remotes import RemoteSpec

ALLOW_EMPTY_HINT = "If an empty source is intended, pass --allow-empty."


def _expected(spec: RemoteSpec) -> str:
    info = infos().get(spec.backend)
    return info.summary if info is not None and info.summary else f"a {spec.backend} store"


def require_path(spec: RemoteSpec) -> None:
    """A path remote (``dir:``, ``wandb-offline:``, ``comet-offline:``) read from must exist."""
    info = infos().get(spec.backend)
    if info is None or not info.path_remote or "path" not in spec.options:
        return
    path = Path(str(spec.options["path"])).expanduser()
    if not path.exists():
        raise ConfigError(
            f"{spec.remote}:{spec.options['path']}: {path.absolute()} does not exist "
            f"(expected there: {_expected(spec)}). Check the path."
        )


def require_writable(spec: RemoteSpec) -> None:
    """A destination must be a backend that writes: a read-only source (``tensorboard:``)
    is refused before anything is opened, in one line."""
    info = infos().get(spec.backend)
    if info is not None and info.read_only:
        raise ReadOnlyBackendError(read_only_message(spec.remote))


def require_runs(spec: RemoteSpec, backend: Backend, experiments: list[str] | None) -> None:
    """Raise unless the source holds at least one run (in ``experiments``, when named)."""
    reader = backend.reader()
    names = experiments or [exp.name for exp in reader.list_experiments()]
    for name in names:
        if reader.get_experiment(name) is not None and next(iter(reader.list_runs(name)), None) is not None:
            return
    label = backend.describe() if "path" in spec.options else f"{spec} ({backend.describe()})"
    where = f" (experiments {', '.join(map(repr, experiments))})" if experiments else ""
    raise ConfigError(
        f"source {label}{where}: no run trackbridge can read there "
        f"(expected: {_expected(spec)}). Check the source. {ALLOW_EMPTY_HINT}"
    )
