"""Sending a run's journal: used by the live worker when a backend comes back, and by
``trackbridge replay`` (and the next ``start_run``, :mod:`~trackbridge.facade.recovery`)
for runs whose process has ended, normally or killed.

Exactly-once: every op the platform confirmed is marked acknowledged (a line in
``<id>.marks``, folded into the state file now and then), so an interrupted
replay resumes after the last confirmed op and skips the ones confirmed out of
order.  A metric batch sent but never confirmed was marked *started*: it is
compared with the destination's history and only the points it lacks are sent.
A run created by a request whose answer was lost is found again by its
``trackbridge.local_run_id`` tag (``RunFinder``).  A run whose process ended
without finishing it gets a ``finish`` KILLED op, at the time of its last point,
appended to its journal before the replay (:func:`mark_killed`).

An op the platform *refuses* (not a transient failure: e.g. a param re-logged
with another value) can never succeed; it is moved to ``<id>.rejected.jsonl``
with the reason, reported, and replay goes on, so one bad op does not hold back
the rest of the run.  A refused ``create`` stops the run instead: nothing else
of the run could land anywhere.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackbridge.backends import get_backend
from trackbridge.backends.base import Backend, RunFilter
from trackbridge.config import Config
from trackbridge.errors import BackendError, ConfigError, TrackbridgeError, TransientBackendError
from trackbridge.facade.ops import LOCAL_ID_TAG, Applier, HistoryReader, RunFinder, RunState, count_points
from trackbridge.model import MetricPoint, RunStatus
from trackbridge.facade.spool import MARKS_PER_SAVE, Spool, pending_spools, spool_root
from trackbridge.remotes import parse_remote


def is_refusal(exc: BaseException) -> bool:
    """True when retrying cannot help: the platform answered and said no."""
    return isinstance(exc, BackendError) and not isinstance(exc, TransientBackendError)


@dataclass
class ReplayStats:
    ops: int = 0
    points: int = 0
    rejected: list[str] = field(default_factory=list)
    finished: bool = False
    #: end time given to a run its process never finished (marked KILLED), else ``None``.
    killed_at: int | None = None


def reject(spool: Spool, op: dict[str, Any], exc: BaseException) -> str:
    """Keep a refused op (never silently lost) and return a one-line reason."""
    line = json.dumps({"error": str(exc), "op": op}, allow_nan=True)
    path = spool.folder / f"{spool.local_id}.rejected.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return f"{op['op']} refused ({exc}); kept in {path}"


#: ops that are not idempotent: marked as started in the state file before they are sent.
_MARKED = ("metrics", "create")


def replay_spool(
    spool: Spool,
    applier: Applier,
    state: RunState,
    meta: dict[str, Any],
    on_op: Callable[[dict[str, Any]], None] | None = None,
    durable: bool = True,
) -> ReplayStats:
    """Apply every op from ``state.offset`` on, skipping those already acknowledged;
    raises the first transient failure (with ``state`` saved, so the next attempt
    resumes there).  A metric batch or a create is marked *started* in the state
    file before it is sent, so an attempt cut short (killed, timed out) is checked
    against the destination next time instead of being sent twice."""
    stats = ReplayStats()
    for op, end in spool.read_from(state.offset):
        if end in state.acked:
            state.acknowledge((), end)
            continue
        kind = op["op"]
        maybe_sent = end in state.started
        if kind == "create" and maybe_sent:
            state.create_attempted = True
        if kind in _MARKED and not maybe_sent:
            state.started.append(end)
            state.create_attempted = state.create_attempted or kind == "create"
            spool.mark("s", state.epoch, [end])
        try:
            applier.apply(op, spool.local_id, state, spool.files_dir, maybe_sent)
        except Exception as exc:
            spool.checkpoint(state, meta, durable)
            if not is_refusal(exc) or kind == "create":
                raise
            stats.rejected.append(reject(spool, op, exc))
        note_confirmed(state, op)
        state.acknowledge((), end)
        if kind == "metrics" and spool.marks_since_save < MARKS_PER_SAVE:
            spool.mark("a", state.epoch, [end])  # a line, not a rename of the state file
        else:
            spool.checkpoint(state, meta, durable)
        stats.ops += 1
        stats.points += count_points(op)
        stats.finished = stats.finished or kind == "finish"
        if on_op is not None:
            on_op(op)
    if spool.marks_since_save:
        spool.checkpoint(state, meta, durable)
    return stats


def note_confirmed(state: RunState, op: dict[str, Any]) -> None:
    """What a confirmed op tells the state: the run's end, its latest point."""
    kind = op["op"]
    if kind == "finish":
        state.finished = True
    elif kind == "metrics" and op["points"]:
        latest = max(point[3] for point in op["points"])
        state.last_time = latest if state.last_time is None else max(state.last_time, latest)


def history_reader(backend: Backend) -> HistoryReader:
    """The destination's points of one key (to check an unconfirmed batch), if it can read."""

    readers: list[Any] = []

    def points(run_id: str, key: str) -> Iterator[MetricPoint]:
        try:
            if not readers:
                readers.append(backend.reader())
            for page in readers[0].iter_metric_history(run_id, key):
                yield from page
        except NotImplementedError:
            return

    return points


def run_finder(backend: Backend) -> RunFinder:
    """Find a run by its local-id tag (a create whose answer was lost), if the backend can read."""

    def find(experiment: str, local_id: str) -> str | None:
        try:
            for record in backend.reader().list_runs(experiment, RunFilter(tags={LOCAL_ID_TAG: local_id})):
                return record.run_id
        except NotImplementedError:
            return None
        return None

    return find


def spooled_remote_id(folder: Path, local_id: str) -> tuple[bool, str | None]:
    """``(known here, remote id)`` of a run from its spool state in ``folder``."""
    spool = Spool(folder, local_id)
    if not spool.state_path.is_file() and not spool.has_log():
        return False, None
    state, _ = spool.load()
    return True, state.remote_run_id


def parent_from_spool(folder: Path, local_id: str) -> str | None:
    """Parent resolution for replay: the parent's remote id if it has one, ``None``
    if the parent is unknown here (the child is then created without a parent),
    and a transient error while the parent is itself still spooled uncreated."""
    known, remote = spooled_remote_id(folder, local_id)
    if known and remote is None:
        raise TransientBackendError(
            f"parent run {local_id} is not created yet; replay it first (trackbridge replay)"
        )
    return remote


@dataclass
class SpooledRun:
    """One run waiting in the spool, as ``trackbridge replay`` lists it."""

    remote: str
    spool: Spool
    state: RunState
    meta: dict[str, Any]
    ops: int
    points: int
    #: no ``finish`` in the journal: its process ended without finishing it (killed).
    unfinished: bool = False

    @property
    def label(self) -> str:
        name = self.meta.get("name") or "-"
        return f"{self.meta.get('experiment', '?')}/{name} ({self.spool.local_id[:8]})"

    @property
    def busy(self) -> bool:
        """Its process is still running (it holds the run's lock and sends it itself)."""
        if not self.spool.try_lock():
            return True
        self.spool.unlock()
        return False


def list_spooled(home: Path, remotes: Iterable[str] = (), run_ids: Iterable[str] = ()) -> list[SpooledRun]:
    """Runs with unsent ops under ``home``, or never finished by their process (both
    kinds are what replay sends), parents before children (by start time)."""
    wanted_remotes, wanted_runs = set(remotes), set(run_ids)
    found = []
    for remote, spool in pending_spools(spool_root(home)):
        if wanted_remotes and remote not in wanted_remotes:
            continue
        if wanted_runs and not any(spool.local_id.startswith(r) for r in wanted_runs):
            continue
        run = read_spooled(remote, spool)
        if run.ops or run.unfinished:
            found.append(run)
    return sorted(found, key=lambda r: (r.meta.get("start_time") or 0, r.spool.local_id))


def read_spooled(remote: str, spool: Spool) -> SpooledRun:
    state, meta = spool.load()
    ops = points = 0
    finish = state.finished
    for op, end in spool.read_from(state.offset):
        if end in state.acked:
            continue
        ops += 1
        points += count_points(op)
        finish = finish or op["op"] == "finish"
    unfinished = not finish and bool(meta) and not meta.get("complete")
    return SpooledRun(remote, spool, state, meta, ops, points, unfinished)


def mark_killed(run: SpooledRun) -> int | None:
    """Journal a ``finish`` with status KILLED for a run its process never finished, at
    the time of its last point (else of the journal's last write); the end time, or
    ``None`` if the run had a finish after all.  Call with the run's lock held."""
    fresh = read_spooled(run.remote, run.spool)
    if not fresh.unfinished:
        return None
    latest = run.state.last_time
    for op, _end in run.spool.read_from(run.state.offset):  # acknowledged ones too: they are there
        if op["op"] == "metrics" and op["points"]:
            newest = max(point[3] for point in op["points"])
            latest = newest if latest is None else max(latest, newest)
    if latest is None:
        try:
            latest = int(run.spool.log_path.stat().st_mtime * 1000)
        except OSError:
            latest = run.meta.get("start_time")
    run.spool.append([{"op": "finish", "status": RunStatus.KILLED.value, "end_time": latest}])
    run.spool.close_journal()
    run.ops += 1
    run.unfinished = False
    return latest


def open_backend(run: SpooledRun, config: Config) -> Backend:
    """The backend a spooled run was meant for: the remote as configured now (for its
    secrets), with the non-secret options recorded at spool time on top (its location)."""
    recorded = dict(run.meta.get("options") or {})
    backend = run.meta.get("backend") or run.remote
    try:
        spec = parse_remote(run.meta.get("remote") or run.remote, config)
        options = {**spec.options, **recorded} if spec.backend == backend else recorded
    except ConfigError:
        options = recorded
    return get_backend(backend, options)


class Replayer:
    """Replays spooled runs with one writer per backend location (``trackbridge replay``)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._appliers: dict[str, Applier] = {}

    def applier(self, run: SpooledRun) -> Applier:
        backend = open_backend(run, self.config)
        key = f"{run.remote}|{backend.describe()}"
        if key not in self._appliers:
            folder = run.spool.folder
            self._appliers[key] = Applier(
                backend.writer(), lambda local_id: parent_from_spool(folder, local_id), run_finder(backend),
                history_reader(backend),
            )
        return self._appliers[key]

    def replay(self, run: SpooledRun, on_op: Callable[[dict[str, Any]], None] | None = None) -> ReplayStats:
        """Send one run's spool; raises ``SpoolBusy`` if its process still owns it."""
        if not run.spool.try_lock():
            raise SpoolBusy(
                f"run {run.label} is still owned by a running process (pid {run.meta.get('pid', '?')}), "
                "which keeps retrying it itself; replay it after that process ends."
            )
        try:
            fresh = read_spooled(run.remote, run.spool)  # another replay may have sent it meanwhile
            if not fresh.ops and not fresh.unfinished:
                if run.spool.has_log():  # all confirmed, killed before it was tidied up
                    run.spool.complete(fresh.state, fresh.meta)
                else:  # sent by another replay meanwhile
                    run.spool.discard_staging()
                return ReplayStats(finished=True)
            run.state, run.meta, run.ops, run.points = fresh.state, fresh.meta, fresh.ops, fresh.points
            run.unfinished = fresh.unfinished
            killed_at = mark_killed(run)
            stats = replay_spool(run.spool, self.applier(run), run.state, run.meta, on_op, durable=False)
            stats.killed_at = killed_at
            run.spool.complete(run.state, run.meta)
            return stats
        finally:
            run.spool.unlock()


class SpoolBusy(TrackbridgeError):
    """The spool belongs to a process that is still running."""
