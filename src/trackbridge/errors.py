"""Errors users see.  Each message says what was wrong and what to do about it."""
from __future__ import annotations


class TrackbridgeError(Exception):
    """Base of every error trackbridge raises on purpose."""


class ConfigError(TrackbridgeError):
    """Configuration is missing, malformed or contradictory."""


class DotenvError(ConfigError):
    """A ``.env`` file (or one of its lines) that cannot be read.  Apart from other
    configuration errors because the facade does not raise it: the run is kept locally
    instead of going to a tracker the unreadable line may have meant to change."""

    def __init__(self, path: object, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line


class UnknownBackendError(ConfigError):
    """A backend name that no built-in or plugin provides."""


class MissingDependencyError(ConfigError):
    """The vendor SDK for a backend is not installed."""


class ReadOnlyBackendError(ConfigError):
    """A read-only source (``BackendInfo.read_only``: TensorBoard event files, exports of a
    closed service) named where something would be written: refused before any work."""


class InvalidKeyError(TrackbridgeError, ValueError):
    """A metric/param/tag key the destination cannot take, or two keys that collide."""


class InvalidValueError(TrackbridgeError, ValueError):
    """A value that cannot be logged (unserialisable, too long under policy ``raise``)."""


class ValueTooLongError(InvalidValueError):
    """A value past the destination's limit under ``long_params="raise"``: the user asked
    for this one to raise, so the facade raises it whatever ``on_error`` says."""


class BackendError(TrackbridgeError):
    """The platform refused or failed a request."""


class RunNotFound(BackendError):
    """The run id does not exist (or was deleted) at the platform."""


class TransientBackendError(BackendError):
    """A failure worth retrying: connection refused, timeout, 429, 5xx.

    ``retry_after`` (seconds) is the server's own hint (HTTP ``Retry-After``)
    when it gave one; the sync engine's backoff waits at least that long."""

    def __init__(self, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
