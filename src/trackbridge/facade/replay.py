"""Sending spooled ops: used by the live worker when a backend comes back, and by
``trackbridge replay`` for runs whose process has ended.

Exactly-once: after each op the platform confirmed, the spool's state file is
rewritten with the offset of the next op, so an interrupted replay resumes
after the last confirmed op.  A run created by a request whose answer was lost
is found again by its ``trackbridge.local_run_id`` tag (``RunFinder``).

An op the platform *refuses* (not a transient failure: e.g. a param re-logged
with another value) can never succeed; it is moved to ``<id>.rejected.jsonl``
with the reason, reported, and replay goes on, so one bad op does not hold back
the rest of the run.  A refused ``create`` stops the run instead: nothing else
of the run could land anywhere.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackbridge.backends import get_backend
from trackbridge.backends.base import Backend, RunFilter
from trackbridge.config import Config
from trackbridge.errors import BackendError, ConfigError, TrackbridgeError, TransientBackendError
from trackbridge.facade.ops import LOCAL_ID_TAG, Applier, RunFinder, RunState, count_points
from trackbridge.facade.spool import Spool, pending_spools, spool_root
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


def reject(spool: Spool, op: dict[str, Any], exc: BaseException) -> str:
    """Keep a refused op (never silently lost) and return a one-line reason."""
    line = json.dumps({"error": str(exc), "op": op}, allow_nan=True)
    path = spool.folder / f"{spool.local_id}.rejected.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return f"{op['op']} refused ({exc}); kept in {path}"


def replay_spool(
    spool: Spool,
    applier: Applier,
    state: RunState,
    meta: dict[str, Any],
    on_op: Callable[[dict[str, Any]], None] | None = None,
) -> ReplayStats:
    """Apply every op from ``state.offset`` on; raises the first transient failure
    (with ``state`` saved, so the next attempt resumes there)."""
    stats = ReplayStats()
    for op, end in spool.read_from(state.offset):
        try:
            applier.apply(op, spool.local_id, state, spool.files_dir)
        except Exception as exc:
            spool.save(state, meta)
            if not is_refusal(exc) or op["op"] == "create":
                raise
            stats.rejected.append(reject(spool, op, exc))
        state.offset = end
        spool.save(state, meta)
        stats.ops += 1
        stats.points += count_points(op)
        stats.finished = stats.finished or op["op"] == "finish"
        if on_op is not None:
            on_op(op)
    return stats


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

    @property
    def label(self) -> str:
        name = self.meta.get("name") or "-"
        return f"{self.meta.get('experiment', '?')}/{name} ({self.spool.local_id[:8]})"


def list_spooled(home: Path, remotes: Iterable[str] = (), run_ids: Iterable[str] = ()) -> list[SpooledRun]:
    """Runs with unsent ops under ``home``, parents before children (by start time)."""
    wanted_remotes, wanted_runs = set(remotes), set(run_ids)
    found = []
    for remote, spool in pending_spools(spool_root(home)):
        if wanted_remotes and remote not in wanted_remotes:
            continue
        if wanted_runs and not any(spool.local_id.startswith(r) for r in wanted_runs):
            continue
        state, meta = spool.load()
        ops = [op for op, _ in spool.read_from(state.offset)]
        if ops:
            found.append(SpooledRun(remote, spool, state, meta, len(ops), sum(map(count_points, ops))))
    return sorted(found, key=lambda r: (r.meta.get("start_time") or 0, r.spool.local_id))


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
                backend.writer(), lambda local_id: parent_from_spool(folder, local_id), run_finder(backend)
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
            stats = replay_spool(run.spool, self.applier(run), run.state, run.meta, on_op)
            run.spool.complete(run.state, run.meta)
            return stats
        finally:
            run.spool.unlock()


class SpoolBusy(TrackbridgeError):
    """The spool belongs to a process that is still running."""
