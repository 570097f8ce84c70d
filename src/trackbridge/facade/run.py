"""``Run``: what user code logs to.  One run, fanned out to one or more backends.

Every ``log_*`` call checks its input synchronously, then queues it per backend and
returns; worker threads do the network (:mod:`trackbridge.facade.worker`).  A bad
key or value (``None`` as a metric, an unserialisable param, a missing file) is the
caller's bug, but the README promises that nothing is raised into a training loop:
under the default ``on_error="spool"`` it is refused alone (the rest of the call is
logged), warned about once per key, counted in :attr:`Run.rejected` and recorded in
the run's ``trackbridge.mapping`` tag; ``on_error="raise"`` raises it at the call.
The remote run is created asynchronously too, so ``start_run`` does not hang when a
server is down.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from trackbridge.config import Config
from trackbridge.errors import (
    BackendError,
    ConfigError,
    InvalidKeyError,
    InvalidValueError,
    TrackbridgeError,
    ValueTooLongError,
)
from trackbridge.facade.channel import Channel
from trackbridge.facade.registry import remote_meta, worker_for
from trackbridge.facade.sanitise import Sanitiser
from trackbridge.facade.spool import Spool
from trackbridge.facade.worker import Worker
from trackbridge.mapping import RAISE, TRUNCATE, flatten
from trackbridge.model import RunStatus, now_ms
from trackbridge.remotes import parse_remote

log = logging.getLogger("trackbridge")

#: seconds ``finish()`` waits for the backends before leaving the rest in the spool.
FLUSH_TIMEOUT = 30.0
ON_ERROR = ("spool", "raise")
#: what a ``log_*`` call raises for bad input (refused instead under ``on_error="spool"``).
_INPUT_ERRORS = (InvalidValueError, InvalidKeyError, TypeError)


class Run:
    """A run being logged.  Use as a context manager, or call :meth:`finish`."""

    def __init__(
        self,
        config: Config,
        *,
        project: str,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        parent: "Run | None" = None,
        on_finish: Callable[["Run"], None] | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.project = project
        self.name = name
        self.parent = parent
        self.start_time = now_ms()
        self.status: RunStatus = RunStatus.RUNNING
        self.on_error = _choice(config, "on_error", ON_ERROR)
        long_params = _choice(config, "long_params", (TRUNCATE, RAISE))
        flush_interval = _positive(config, "flush_interval", float, "number of seconds")
        max_queued = _positive(config, "max_queued", int, "whole number of items")
        journal_interval = _positive(config, "journal_interval", float, "number of seconds")
        #: a backend failure to raise at the next call (``on_error="raise"``).
        self._failure: BaseException | None = None
        #: one flag for the hot path: a failure is pending or the run is finished.
        self._blocked = False
        self._auto_step = 0
        #: bad input refused without raising (``on_error="spool"``): ``"kind:key"`` -> count.
        self.rejected: dict[str, int] = {}
        self._last_model: str | None = None
        self._on_finish = on_finish
        #: called with the run as :meth:`finish` begins, before the finish op is queued (the
        #: MLflow autolog binding ends MLflow's fluent run there: ``facade.mlflow_autolog``).
        self.before_finish: list[Callable[["Run"], None]] = []
        self._channels: list[Channel] = []
        self._workers: list[Worker] = []
        for remote in config.backends:
            spec = parse_remote(remote, config)
            worker, backend = worker_for(spec, config.home, flush_interval, max_queued, journal_interval)
            sanitiser = Sanitiser(worker.writer.limits, long_params)
            meta = dict(
                remote_meta(spec, backend), local_run_id=self.id, pid=os.getpid(),
                experiment=project, name=name, start_time=self.start_time,
            )
            spool = Spool(worker.spool_folder, self.id)
            features = getattr(backend, "features", None)
            lacks = features.lacks() if features is not None else frozenset()
            self._channels.append(
                Channel(self.id, spec.remote, sanitiser, spool, worker.wake, self._report, meta, lacks)
            )
            self._workers.append(worker)
        for channel in self._channels:
            channel.open_journal()
            channel.create(project, name, self.start_time, parent.id if parent is not None else None, tags or {})
            if params:
                channel.add_params(params)
        for channel, worker in zip(self._channels, self._workers):
            worker.attach(channel)

    # -- logging ------------------------------------------------------------

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Queue one value per key at ``step`` (default: the number of earlier calls
        without a step), stamped with the current time.  Never waits for the network."""
        if self._blocked:
            self._check()
        if step is None:
            step = self._auto_step
            self._auto_step += 1
        elif type(step) is not int:
            try:
                step = _step(step)
            except InvalidValueError as exc:
                return self._refuse("step", exc)
        timestamp = now_ms()
        done = 0  # inline, not through _each: this is the hot path
        try:
            for channel in self._channels:
                channel.add_metrics(metrics, step, timestamp)
                done += 1
        except _INPUT_ERRORS as exc:
            self._recover(Channel.add_metrics, metrics, "metric", done, exc, step, timestamp)

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """W&B's ``run.log``: a dict of numbers logged as metrics at ``step``.

        Without ``step``, the run's step counter is used and then advanced (``wandb.log``
        does the same), so each call is one step.  With ``step``, the points go to that
        step and the counter moves past it (when it is not already further), so later
        calls without a step continue after it.  Nested dicts become ``a.b`` keys.
        Values must be numbers (NaN/±inf allowed): log text with :meth:`log_summary` or
        :meth:`set_tags`, files with :meth:`log_artifact`.  The counter is the one
        :meth:`log_metrics` uses when it is called without a step."""
        if self._blocked:
            self._check()
        if not isinstance(data, Mapping):
            return self._refuse("log", TypeError(f"run.log takes a dict of metrics, not {type(data).__name__}"))
        if any(isinstance(value, Mapping) for value in data.values()):
            data = flatten(data, ".")
        if step is None:
            step = self._auto_step
        elif type(step) is not int:
            try:
                step = _step(step)
            except InvalidValueError as exc:
                return self._refuse("step", exc)
        if step >= self._auto_step:
            self._auto_step = step + 1
        self._each(Channel.add_metrics, data, "metric", step, now_ms())

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params (nested dicts flatten with '.' where the backend is flat)."""
        self._check()
        self._each(Channel.add_params, params, "param")

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._check()
        self._each(Channel.add_tags, tags, "tag")

    def add_labels(self, labels: Iterable[str] | str) -> None:
        """Value-less tags (W&B and Comet tags), e.g. ``run.add_labels(["baseline", "v2"])``;
        a single str is one label.  Where the platform has only key/value tags (MLflow)
        a label is a tag with an empty value."""
        self._check()
        self._each(Channel.add_labels, labels, "label")

    def log_summary(self, values: Mapping[str, Any]) -> None:
        """Final values of the run that are not a series (W&B ``run.summary``, Comet
        "others"): numbers, strings, bools, None, lists and dicts of them.  Merged with
        earlier calls, last value per key wins.  NaN/±inf are allowed (kept as JSON's
        ``NaN``/``Infinity``, as metrics keep them); anything else is refused (raised
        here under ``on_error="raise"``)."""
        self._check()
        self._each(Channel.add_summary, values, "summary")

    def set_notes(self, text: str) -> None:
        """The run's free-text description (Markdown on MLflow and W&B); replaces earlier notes."""
        self._check()
        self._each(Channel.set_notes, text, "notes")

    def log_artifact(self, path: str | os.PathLike[str], artifact_dir: str | None = None) -> None:
        """Log a file (or a folder's contents) under ``artifact_dir``.  A copy is taken
        now, so the file may be deleted as soon as this returns."""
        self._check()
        staged = self._stage(path)
        if staged is None:
            return
        for channel, (relative, _) in zip(self._channels, staged):
            channel.put({"op": "artifact", "file": relative, "artifact_dir": artifact_dir})

    def log_model(self, path: str | os.PathLike[str], name: str = "model") -> None:
        """Log a saved model (a folder such as ``mlflow.sklearn.save_model`` writes, or
        one file) as this run's model ``name``."""
        self._check()
        staged = self._stage(path)
        if staged is None:
            return
        for channel, (relative, _) in zip(self._channels, staged):
            channel.put({"op": "model", "file": relative, "name": name})
        self._last_model = name

    def register_model(
        self,
        name: str,
        *,
        model: str | None = None,
        aliases: Iterable[str] = (),
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Register this run's logged model ``model`` (default: the last one logged) as a
        new version of ``name``, with ``aliases`` pointing at it.  Allowed after
        :meth:`finish` (pick the best run of a sweep, then register it)."""
        if self._failure is not None:
            self._check()
        model = model or self._last_model
        if model is None:
            return self._refuse("register_model", InvalidValueError(
                f"run {self.name or self.id} has no model to register: call run.log_model(path, name=...) first"
            ))
        op = {
            "op": "register",
            "id": uuid.uuid4().hex,
            "name": name,
            "model": model,
            "aliases": list(aliases),
            "description": description or "",
            "tags": {str(k): str(v) for k, v in (tags or {}).items()},
        }
        for channel, worker in zip(self._channels, self._workers):
            channel.put(dict(op))
            worker.attach(channel)
            worker.wake.set()

    # -- lifecycle ----------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status is not RunStatus.RUNNING

    @property
    def remote_ids(self) -> dict[str, str | None]:
        """Remote run id per backend (``None`` until the backend has created the run)."""
        return {channel.remote: channel.state.remote_run_id for channel in self._channels}

    def mlflow_tracking_uris(self) -> dict[str, str]:
        """Remote -> tracking URI of this run's MLflow backends (what MLflow autolog must point at)."""
        uris = {}
        for channel, worker in zip(self._channels, self._workers):
            uri = getattr(getattr(worker.writer, "connection", None), "tracking_uri", None)
            if channel.meta.get("backend") == "mlflow" and isinstance(uri, str):
                uris[channel.remote] = uri
        return uris

    def flush(self, timeout: float | None = FLUSH_TIMEOUT) -> bool:
        """Wait until everything logged so far is sent (or spooled); ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        events = [w.request_flush([c]) for c, w in zip(self._channels, self._workers)]
        done = True
        for event in events:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            done = event.wait(remaining) and done
        return done

    def finish(self, status: str | RunStatus = RunStatus.FINISHED, timeout: float = FLUSH_TIMEOUT,
               wait: bool = True) -> None:
        """End the run and flush every backend, waiting at most ``timeout`` seconds;
        what is not through by then stays in the spool (``trackbridge replay``).

        ``wait=False`` queues the end and returns at once: the worker sends it in the
        background like any op (journaled within ``journal_interval``, flushed at exit,
        completed by ``replay`` after a kill).  For code that ends many runs in a loop,
        such as an Optuna study ending a run per trial, which would otherwise wait for
        each run's round trips; :meth:`flush` later waits for them."""
        if self.finished:
            return
        self.status = RunStatus(str(getattr(status, "value", status)).upper())
        self._blocked = True
        for hook in self.before_finish:
            try:
                hook(self)
            except Exception:  # a hook never keeps the run from finishing
                log.exception("trackbridge: while finishing run %s", self.id)
        for channel in self._channels:
            channel.finish(self.status.value)
        if not wait:
            if self._on_finish is not None:
                self._on_finish(self)
            return
        if not self.flush(timeout):
            for channel, worker in zip(self._channels, self._workers):
                if not channel.idle():
                    count = worker.abandon(channel)
                    log.warning(
                        "trackbridge: %s did not take run %s within %.0f s; %d operations kept in %s. "
                        "Send them later with: trackbridge replay", channel.remote, self.id, timeout, count,
                        channel.spool.folder,
                    )
        for channel in self._channels:
            if channel.spooling:
                log.warning(
                    "trackbridge: run %s is not fully at %s yet; it is kept in %s and retried in the "
                    "background. If this process exits first, send it with: trackbridge replay",
                    self.id, channel.remote, channel.spool.log_path,
                )
        if self._on_finish is not None:
            self._on_finish(self)
        if self._failure is not None:
            self._check()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.finish(RunStatus.FINISHED)
            return
        status = RunStatus.KILLED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED
        try:
            self.finish(status)
        except TrackbridgeError:  # never hide the user's exception behind ours
            log.exception("trackbridge: error while finishing run %s", self.id)

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, project={self.project!r}, name={self.name!r}, status={self.status.value})"

    # -- internals ----------------------------------------------------------

    def _each(self, add: Callable[..., None], payload: Any, kind: str, *args: Any) -> None:
        """``add(channel, payload, *args)`` for every channel.  On bad input, under
        ``on_error="raise"`` the error propagates (each ``add`` checks everything before
        it queues anything, so the call logged nothing); otherwise the call is retried
        key by key (label by label) on the channels it had not reached, so only the bad
        part is refused.  The happy path pays one ``try``."""
        done = 0
        try:
            for channel in self._channels:
                add(channel, payload, *args)
                done += 1
        except _INPUT_ERRORS as exc:
            self._recover(add, payload, kind, done, exc, *args)

    def _recover(self, add: Callable[..., None], payload: Any, kind: str, done: int, exc: BaseException,
                 *args: Any) -> None:
        """After ``add`` refused ``payload`` on channel ``done`` (see :meth:`_each`)."""
        if self.on_error == "raise" or isinstance(exc, ValueTooLongError):
            raise exc
        if isinstance(payload, Mapping):
            parts: list[Any] = [{key: value} for key, value in payload.items()]
        elif isinstance(payload, (list, tuple)):
            parts = [[label] for label in payload]
        else:
            parts = []
        if not parts:
            self._refuse(kind, exc)
            return
        for channel in self._channels[done:]:
            for part in parts:
                try:
                    add(channel, part, *args)
                except _INPUT_ERRORS as error:
                    self._refuse(kind, error, channel, next(iter(part)))

    def _refuse(self, kind: str, error: BaseException, channel: Channel | None = None, key: Any = None) -> None:
        """Refuse bad input without raising (``on_error="spool"``): warn once per kind and
        key, count it in :attr:`rejected`, and record it in the run's mapping tag at the
        backend, so the run itself says something was not logged."""
        if self.on_error == "raise" or isinstance(error, ValueTooLongError):
            raise error
        label = f"{kind}:{key}" if key is not None else kind
        first = label not in self.rejected
        self.rejected[label] = self.rejected.get(label, 0) + 1
        if first:
            log.warning("trackbridge: run %s: %s (not logged; training goes on. Repeats of %s are only counted "
                        "in run.rejected; on_error='raise' raises instead)", self.name or self.id, error, label)
        for target in [channel] if channel is not None else self._channels:
            dropped = target.sanitiser.record.dropped
            if label not in dropped:
                dropped[label] = f"refused by the facade: {error}"
                target.note_record_changed()

    def _check(self) -> None:
        """Raise a pending backend failure (``on_error="raise"``), or refuse a finished run."""
        failure, self._failure = self._failure, None
        self._blocked = self.finished
        if failure is not None:
            raise failure
        if self.finished:
            raise TrackbridgeError(f"run {self.name or self.id} is finished; start a new run to log more")

    def _report(self, channel: Channel, error: BaseException, spooled: bool) -> None:
        """Called by a worker thread when a backend failed for this run."""
        if spooled:
            log.warning(
                "trackbridge: %s failed (%s); run %s keeps logging to the spool %s and retries in the "
                "background. Unsent data survives exit: send it with `trackbridge replay`.",
                channel.remote, error, self.id, channel.spool.log_path,
            )
        else:
            log.warning("trackbridge: %s: %s", channel.remote, error)
        if self.on_error == "raise":
            if not isinstance(error, BackendError):
                error = BackendError(f"{channel.remote}: {error}")
            self._failure = error
            self._blocked = True

    def _stage(self, path: str | os.PathLike[str]) -> list[tuple[str, Path]] | None:
        """Copies of ``path`` for each backend; ``None`` when it is missing (refused)."""
        src = Path(path)
        if not src.exists():
            self._refuse("file", FileNotFoundError(f"cannot log {src.absolute()}: no such file or directory"),
                         key=str(src))
            return None
        staged: list[tuple[str, Path]] = []
        for channel in self._channels:
            staged.append(channel.stage(src, link_from=staged[0][1] if staged else None))
        return staged


def _choice(config: Config, name: str, allowed: tuple[str, ...]) -> str:
    value = str(config.get(name)).strip().lower()
    if value not in allowed:
        raise ConfigError(
            f"{name} = {config.get(name)!r} ({config.origin(name)}) is not valid; use one of: {', '.join(allowed)}"
        )
    return value


def _positive(config: Config, name: str, kind: Callable[[Any], Any], what: str) -> Any:
    """A numeric setting that must be > 0, or a ConfigError naming where it came from."""
    try:
        value = kind(config.get(name))
    except (TypeError, ValueError):
        value = 0
    if value <= 0:
        raise ConfigError(f"{name} = {config.get(name)!r} ({config.origin(name)}) must be a positive {what}")
    return value


def _step(step: Any) -> int:
    try:
        index = step.__index__()
    except AttributeError:
        if isinstance(step, float) and step.is_integer():
            return int(step)
        raise InvalidValueError(f"step must be an integer, not {step!r}") from None
    return int(index)
