"""Module-level API (``trackbridge.start_run`` ...): the stack of active runs and the exit flush.

The active-run stack is process-wide rather than thread-local on purpose: data
loaders and callbacks log from other threads and expect the run the main thread
started.  Starting a run while one is active nests it (MLflow's behaviour).
"""
from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from trackbridge.config import Config, load_config
from trackbridge.errors import DotenvError, TrackbridgeError
from trackbridge.facade.recovery import recover_orphans
from trackbridge.facade.registry import shutdown
from trackbridge.facade.run import FLUSH_TIMEOUT, Run
from trackbridge.facade import mlflow_autolog
from trackbridge.model import RunStatus

__all__ = [
    "init", "start_run", "active_run", "finish", "log_params", "log_metrics",
    "set_tags", "log_artifact", "log_model", "register_model", "Run",
    "log", "add_labels", "log_summary", "set_notes",
]

#: not ``log``: that name is the module's ``wandb.log`` counterpart below.
logger = logging.getLogger("trackbridge")
_active: list[Run] = []
_lock = threading.Lock()
_exit_hook_installed = False


def start_run(
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    backend: str | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: Run | None = None,
    on_error: str | None = None,
) -> Run:
    """Start a run and make it the active one; use it as ``with start_run(...) as run:``.

    ``config`` is logged as params.  ``backend`` (else ``TRACKBRIDGE_BACKEND``, ``.env``,
    ``trackbridge.toml``, ``pyproject.toml``, ``"mlflow"``) may be a comma list to log to
    several backends at once.  ``parent`` defaults to the active run, so a run
    started inside another is its child (and, unless ``project`` is given, in the
    parent's project).  ``on_error="raise"`` makes a backend failure
    raise at the next call instead of only spooling and warning.
    """
    if parent is None:
        parent = active_run()
    if project is None and parent is not None:
        project = parent.project  # a child lives in its parent's experiment
    settings = _settings(backend, project, on_error)
    run = Run(
        settings,
        project=str(settings.get("project")),
        name=name,
        params=config,
        tags=tags,
        parent=parent,
        on_finish=_forget,
    )
    with _lock:
        _active.append(run)
    _install_exit_hook()
    mlflow_autolog.attach(run)  # autolog's run becomes this one on MLflow; a warning elsewhere
    recover_orphans(settings)  # runs an ended (killed) process left in this home: sent in the background
    return run


#: where runs go when ``.env`` cannot be read (under ``TRACKBRIDGE_HOME``).
UNSENT_FOLDER = "unsent"


def _settings(backend: str | None, project: str | None, on_error: str | None) -> Config:
    """The run's configuration.  A ``.env`` that cannot be read does not stop training
    (unless ``on_error="raise"``), and the run does not go to the default tracker
    either, since the unreadable line may have named another one: it is logged to
    the archive ``dir:TRACKBRIDGE_HOME/unsent``, with a warning saying how to send it
    once ``.env`` is fixed."""
    overrides = {"backend": backend, "project": project, "on_error": on_error}
    try:
        return load_config(overrides)
    except DotenvError as exc:
        fallback = load_config(overrides, dotenv=False)
        if str(fallback.get("on_error")).strip().lower() == "raise":
            raise
        folder = fallback.home / UNSENT_FOLDER
        logger.warning(
            "trackbridge: %s\ntrackbridge: this run is NOT sent to any tracker (.env may name another one); "
            "it is kept in dir:%s. Fix .env, then send it with: trackbridge copy dir:%s <remote>",
            exc, folder, folder,
        )
        return load_config({**overrides, "backend": f"dir:{folder}"}, dotenv=False)


def init(**kwargs: Any) -> Run:
    """:func:`start_run` for scripts that do not use a ``with`` block; end with :func:`finish`
    (or let the process exit: the run is then finished and flushed at exit)."""
    return start_run(**kwargs)


def active_run() -> Run | None:
    """The innermost run started and not yet finished, or ``None``."""
    with _lock:
        return _active[-1] if _active else None


def finish(status: str | RunStatus = RunStatus.FINISHED, timeout: float = FLUSH_TIMEOUT) -> None:
    """Finish the active run (see :meth:`Run.finish`)."""
    _require().finish(status, timeout)


def log_params(params: Mapping[str, Any]) -> None:
    _require().log_params(params)


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    _require().log_metrics(metrics, step)


def set_tags(tags: Mapping[str, Any]) -> None:
    _require().set_tags(tags)


def log(data: Mapping[str, Any], step: int | None = None) -> None:
    """``wandb.log`` for the active run (see :meth:`Run.log`)."""
    _require().log(data, step)


def add_labels(labels: Iterable[str] | str) -> None:
    _require().add_labels(labels)


def log_summary(values: Mapping[str, Any]) -> None:
    _require().log_summary(values)


def set_notes(text: str) -> None:
    _require().set_notes(text)


def log_artifact(path: Any, artifact_dir: str | None = None) -> None:
    _require().log_artifact(path, artifact_dir)


def log_model(path: Any, name: str = "model") -> None:
    _require().log_model(path, name)


def register_model(
    name: str,
    *,
    model: str | None = None,
    aliases: Iterable[str] = (),
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    _require().register_model(name, model=model, aliases=aliases, description=description, tags=tags)


def _require() -> Run:
    run = active_run()
    if run is None:
        raise TrackbridgeError(
            "no active run: call trackbridge.start_run(...) (or init) first, or log through the Run it returns"
        )
    return run


def _forget(run: Run) -> None:
    """A finished run is no longer active (called by :meth:`Run.finish`)."""
    with _lock:
        if run in _active:
            _active.remove(run)


def _install_exit_hook() -> None:
    global _exit_hook_installed
    with _lock:
        if _exit_hook_installed:
            return
        _exit_hook_installed = True
    atexit.register(_flush_at_exit)


def _flush_at_exit(timeout: float = FLUSH_TIMEOUT) -> None:
    """Finish runs left open (FAILED if the interpreter is exiting on an uncaught
    exception) and flush every backend, all within ``timeout`` seconds; leftovers
    stay in the spool, with a warning."""
    crashed = getattr(sys, "last_value", None) is not None or getattr(sys, "last_exc", None) is not None
    status = RunStatus.FAILED if crashed else RunStatus.FINISHED
    deadline = time.monotonic() + timeout
    with _lock:
        runs = list(reversed(_active))
    for run in runs:
        try:
            run.finish(status, max(0.0, deadline - time.monotonic()))
        except TrackbridgeError as exc:
            logger.warning("trackbridge: run %s: %s", run.id, exc)
    shutdown(max(0.0, deadline - time.monotonic()))
