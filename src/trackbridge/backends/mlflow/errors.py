"""Translate MLflow's exceptions into trackbridge's error classes.

Why here: callers (facade, sync engine) decide *whether to retry* from the
class alone — :class:`TransientBackendError` means "try again later",
:class:`RunNotFound` means "the run is gone", anything else is a real refusal.
MLflow raises one ``MlflowException`` type for all of these, distinguished by
an error code (REST) or by the wrapped ``requests``/SQLAlchemy exception.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from trackbridge.errors import BackendError, RunNotFound, TransientBackendError
from trackbridge.redact import mask

#: MLflow error codes (protobuf names) that mean "the service is busy or down".
_TRANSIENT_CODES = frozenset({
    "TEMPORARILY_UNAVAILABLE",
    "REQUEST_LIMIT_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "DEADLINE_EXCEEDED",
})
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
#: Exception class names (anywhere in the cause chain) that mean the request never
#: reached a healthy server: refused/reset connections, timeouts, a locked sqlite file.
_TRANSIENT_CAUSES = frozenset({
    "ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "MaxRetryError",
    "NewConnectionError", "ProtocolError", "ConnectionRefusedError", "ConnectionResetError",
    "TimeoutError", "RetryError", "ChunkedEncodingError",
})
_SQLITE_BUSY = ("database is locked", "database table is locked")
#: ``http_request`` wraps requests failures as "API request to <url> failed with exception ...".
_REQUEST_FAILED = re.compile(r"API request to .* failed with (timeout )?exception")
#: a non-JSON error page (proxy/gateway) is reported as "failed with error code <status>".
_GATEWAY_STATUS = re.compile(r"failed with error code (429|5\d\d)\b")
_UNSUPPORTED_CODES = frozenset({"ENDPOINT_NOT_FOUND", "NOT_IMPLEMENTED"})


def mask_secrets(text: str) -> str:
    """Hide the credentials of every URL in ``text`` (MLflow puts URLs in messages):
    trackbridge's one rule, :func:`trackbridge.redact.mask`."""
    return mask(text)


def _cause_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _error_code(exc: BaseException) -> str:
    code = getattr(exc, "error_code", None)
    return code if isinstance(code, str) else ""


def is_transient(exc: BaseException) -> bool:
    """True when retrying later may succeed (network, overload, 429, 5xx, locked db)."""
    for item in _cause_chain(exc):
        if type(item).__name__ in _TRANSIENT_CAUSES:
            return True
        message = str(item)
        if any(s in message for s in _SQLITE_BUSY):
            return True
        if _REQUEST_FAILED.search(message) or _GATEWAY_STATUS.search(message):
            return True
    code = _error_code(exc)
    # INTERNAL_ERROR is also MlflowException's *default* code for local failures:
    # only a server answering with it (a RestException) makes it a 5xx.
    return code in _TRANSIENT_CODES or (code == "INTERNAL_ERROR" and type(exc).__name__ == "RestException")


def is_unsupported(exc: BaseException) -> bool:
    """The server does not offer this API (e.g. an MLflow 2.x server and logged models)."""
    return _error_code(exc) in _UNSUPPORTED_CODES


def is_not_found(exc: BaseException) -> bool:
    return _error_code(exc) in _NOT_FOUND_CODES


#: what a store says when a row another writer just inserted is inserted again
#: (SQLAlchemy's IntegrityError; sqlite, PostgreSQL and MySQL wording, also in a server's answer).
_DUPLICATE = ("IntegrityError", "UNIQUE constraint failed", "duplicate key value", "Duplicate entry")


def is_duplicate(exc: BaseException) -> bool:
    """Another writer created the same row between the store's lookup and its insert."""
    return any(type(item).__name__ == "IntegrityError" or any(s in str(item) for s in _DUPLICATE)
               for item in _cause_chain(exc))


def translate(exc: BaseException, action: str, run_id: str | None = None) -> BackendError:
    """The trackbridge error for an MLflow failure during ``action``.

    ``run_id`` marks actions on one run: a not-found there is :class:`RunNotFound`.
    """
    detail = mask_secrets(str(getattr(exc, "message", None) or exc)).strip()
    if len(detail) > 500:
        detail = detail[:500] + "..."
    if is_transient(exc):
        return TransientBackendError(
            f"MLflow is unreachable or overloaded while trying to {action}: {detail}. "
            "Check that the tracking server is running and reachable; the operation can be retried."
        )
    if run_id is not None and is_not_found(exc):
        return RunNotFound(
            f"MLflow run {run_id} was not found while trying to {action} "
            "(deleted, or on another tracking server?). Check the run id and the tracking URI."
        )
    return BackendError(f"MLflow refused to {action}: {detail}")


_VENDOR_MODULES = ("mlflow", "requests", "urllib3", "sqlalchemy", "sqlite3")


def _is_vendor_failure(exc: BaseException) -> bool:
    """MLflow and the libraries under it, plus I/O errors; not our own bugs."""
    module = type(exc).__module__ or ""
    return isinstance(exc, OSError) or module.split(".")[0] in _VENDOR_MODULES


@contextmanager
def translated(action: str, run_id: str | None = None) -> Iterator[None]:
    """Run a block of MLflow calls, re-raising its failures as trackbridge errors.

    Our own ``BackendError``s and programming errors (``TypeError``...) pass
    through unchanged so bugs are not disguised as platform refusals.
    """
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:
        if not _is_vendor_failure(exc):
            raise
        raise translate(exc, action, run_id) from exc
