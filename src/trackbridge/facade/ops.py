"""The operations a facade run sends to a writer, and the one code path that applies them.

Why plain JSON-ready dicts: the same op is sent live by the worker, written to
the spool when the backend is down, and replayed later by ``trackbridge replay``,
so live sending and replay cannot drift apart.  Kinds::

    create    experiment, name, start_time, parent (local id), tags
              [+ parent_remote, when the parent's remote id was known at spool time]
    params    params {key: str}
    tags      tags {key: str}
    labels    labels [str, ...]           (value-less tags; Writer.set_labels)
    summary   summary {key: JSON value}   (final values; Writer.log_summary)
    notes     notes str                   (the run's description; Writer.set_notes)
    metrics   points [[key, step, value, timestamp_ms], ...]   (one writer batch)
    artifact  file (relative to the run's staging folder), artifact_dir
    model     file, name
    register  id, name, model, aliases, description, tags
    finish    status, end_time

Idempotence (what makes replay exactly-once): the :class:`RunState` remembers
the remote run id, the logged models and the registered versions, so an op
applied again after an interruption is skipped or completed, not duplicated.
The journal's acknowledgements (``offset``, ``acked``) keep everything the
platform confirmed from being sent twice.  An op that was *started* but never
confirmed (the process was killed mid-request, or the answer was lost) may or
may not have landed: metric points are platforms' one non-idempotent write
(MLflow keeps duplicate points silently), so such a batch is compared with the
destination's history first (:class:`Applier` ``history``) and only the points
it lacks are sent.  Tags, params, labels, notes, summary values, artifacts and
the final status are idempotent (the same value written again).
"""
from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trackbridge.backends.base import Writer
from trackbridge.errors import BackendError
from trackbridge.model import LoggedModel, MetricPoint, ModelVersion, RegisteredModel, RunStatus

log = logging.getLogger("trackbridge")

#: tag on every facade run: the local id, so a run created by a request whose answer
#: was lost can be found again instead of created twice.
LOCAL_ID_TAG = "trackbridge.local_run_id"
PARENT_LOCAL_ID_TAG = "trackbridge.parent_local_run_id"

#: ``resolve_parent(local_id)`` -> remote id, ``None`` if the parent is unknown here;
#: raises ``TransientBackendError`` while the parent itself is still waiting to be created.
ParentResolver = Callable[[str], "str | None"]
#: ``find_run(experiment, local_id)`` -> remote id of a run already carrying LOCAL_ID_TAG.
RunFinder = Callable[[str, str], "str | None"]
#: ``history(remote_run_id, key)`` -> the points the destination holds for ``key``.
HistoryReader = Callable[[str, str], Iterable[MetricPoint]]


@dataclass
class RunState:
    """What the remote side already holds for one local run (persisted next to a spool)."""

    remote_run_id: str | None = None
    #: a create request was sent but its answer never came back.
    create_attempted: bool = False
    #: model name -> {"artifact_path", "model_id"} as the writer returned them.
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: register-op id -> version created, so a retried op only finishes the aliases.
    versions: dict[str, str] = field(default_factory=dict)
    #: byte offset in the journal of the first op not yet confirmed.
    offset: int = 0
    #: journal offsets (end of op) after ``offset`` that the platform confirmed
    #: (parallel batches settle out of order).
    acked: list[int] = field(default_factory=list)
    #: journal offsets (end of op) after ``offset`` sent at least once, not confirmed:
    #: such metric batches are compared with the destination before they are sent again.
    started: list[int] = field(default_factory=list)
    #: the ``finish`` op was confirmed (a run killed after it is not marked KILLED).
    finished: bool = False
    #: timestamp (ms) of the latest metric point confirmed: a killed run's end time.
    last_time: int | None = None
    #: bumped each time the journal is truncated: marks of another epoch are stale.
    epoch: int = 0

    def acknowledge(self, ends: Iterable[int], offset: int | None = None) -> None:
        """Record confirmed ops (their end offsets) and, if given, the new first
        unconfirmed offset; forget marks at or before it."""
        self.acked.extend(ends)
        if offset is not None and offset > self.offset:
            self.offset = offset
        self.acked = [end for end in self.acked if end > self.offset]
        confirmed = set(self.acked)
        self.started = [end for end in self.started if end > self.offset and end not in confirmed]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunState":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def compact(items: Iterable[Any], batch_size: int) -> list[dict[str, Any]]:
    """Queue items (metric tuples and op dicts) -> ops in a safe order.

    Params, tags, summary values and notes coalesce (last value wins, as the
    platform would keep it), labels coalesce into one list (first order kept),
    metric points are cut into writer batches, everything else keeps its order;
    ``create`` goes first and ``finish`` last whatever was queued in between.
    """
    head: list[dict[str, Any]] = []
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    labels: dict[str, None] = {}
    summary: dict[str, Any] = {}
    notes: list[str] = []
    points: list[Any] = []
    files: list[dict[str, Any]] = []
    tail: list[dict[str, Any]] = []
    for item in items:
        if type(item) is tuple:
            points.append(item)
            continue
        kind = item["op"]
        if kind == "create":
            head.append(item)
        elif kind == "params":
            params.update(item["params"])
        elif kind == "tags":
            tags.update(item["tags"])
        elif kind == "labels":
            labels.update(dict.fromkeys(item["labels"]))
        elif kind == "summary":
            summary.update(item["summary"])
        elif kind == "notes":
            notes[:] = [item["notes"]]
        elif kind == "finish":
            tail.append(item)
        else:
            files.append(item)
    ops = head
    if params:
        ops.append({"op": "params", "params": params})
    if tags:
        ops.append({"op": "tags", "tags": tags})
    if labels:
        ops.append({"op": "labels", "labels": list(labels)})
    if notes:
        ops.append({"op": "notes", "notes": notes[0]})
    for start in range(0, len(points), batch_size):
        # tuples: JSON writes them as arrays, and they need no copy here
        ops.append({"op": "metrics", "points": points[start:start + batch_size]})
    if summary:  # after the points: a summary is the run's final word on its values
        ops.append({"op": "summary", "summary": summary})
    return ops + files + tail


def count_points(op: dict[str, Any]) -> int:
    """Metric points in ``op`` (for progress bars and summaries)."""
    return len(op["points"]) if op["op"] == "metrics" else 0


class Applier:
    """Applies ops of facade runs to one writer (shared by the live worker and replay)."""

    def __init__(self, writer: Writer, resolve_parent: ParentResolver, find_run: RunFinder | None = None,
                 history: HistoryReader | None = None) -> None:
        self.writer = writer
        self.resolve_parent = resolve_parent
        self.find_run = find_run
        self.history = history
        self._experiments: dict[str, str] = {}

    def apply(self, op: dict[str, Any], local_id: str, state: RunState, files_dir: Path,
              maybe_sent: bool = False) -> None:
        """Send one op; update ``state``.  Raises whatever the writer raises.
        ``maybe_sent``: the op may already have landed (started, never confirmed)."""
        kind = op["op"]
        if kind == "create":
            self._create(op, local_id, state)
            return
        run_id = state.remote_run_id
        if run_id is None:
            raise BackendError(f"run {local_id}: {kind} before the run was created (corrupt spool?)")
        writer = self.writer
        if kind == "metrics":
            points = op["points"]
            if maybe_sent and self.history is not None:
                points = self.missing_points(run_id, points)
                if not points:
                    return
            writer.log_metrics(run_id, [(k, MetricPoint(s, v, t)) for k, s, v, t in points])
        elif kind == "params":
            writer.log_params(run_id, op["params"])
        elif kind == "tags":
            writer.set_tags(run_id, op["tags"])
        elif kind == "labels":
            writer.set_labels(run_id, op["labels"])
        elif kind == "summary":
            writer.log_summary(run_id, op["summary"])
        elif kind == "notes":
            writer.set_notes(run_id, op["notes"])
        elif kind == "artifact":
            path = files_dir / op["file"]
            if not path.exists():  # sent just before an interruption, or the staging was deleted
                log.warning("trackbridge: run %s: staged artifact %s is gone; skipped", local_id, path)
                return
            writer.log_artifact(run_id, path, op.get("artifact_dir"))
            _remove_staged(files_dir, op["file"])
        elif kind == "model":
            self._model(op, run_id, state, files_dir)
        elif kind == "register":
            self._register(op, run_id, state)
        elif kind == "finish":
            writer.finish_run(run_id, RunStatus(op["status"]), op.get("end_time"))
        else:
            raise BackendError(f"run {local_id}: unknown spooled operation {kind!r} (newer trackbridge?)")

    def missing_points(self, run_id: str, points: list[Any]) -> list[Any]:
        """The points of ``points`` the destination does not hold yet (as a multiset:
        a point logged twice on purpose is kept twice).  Reads the history of the
        batch's keys once; memory stays the size of the batch."""
        wanted: dict[str, Counter[tuple[int, int, str]]] = {}
        for key, step, value, timestamp in points:
            wanted.setdefault(key, Counter())[(int(step), int(timestamp), repr(float(value)))] += 1
        held: Counter[tuple[str, int, int, str]] = Counter()
        assert self.history is not None
        for key, counts in wanted.items():
            for point in self.history(run_id, key):
                sig = (int(point.step), int(point.timestamp), repr(float(point.value)))
                if held[(key, *sig)] < counts.get(sig, 0):
                    held[(key, *sig)] += 1
        out = []
        for point in points:
            key, step, value, timestamp = point
            sig = (key, int(step), int(timestamp), repr(float(value)))
            if held[sig]:
                held[sig] -= 1
            else:
                out.append(point)
        if len(out) != len(points):
            log.info("trackbridge: run %s: %d of %d points of an unconfirmed batch were already there; "
                     "sending the other %d", run_id, len(points) - len(out), len(points), len(out))
        return out

    def _experiment(self, name: str) -> str:
        if name not in self._experiments:
            self._experiments[name] = self.writer.ensure_experiment(name)
        return self._experiments[name]

    def _create(self, op: dict[str, Any], local_id: str, state: RunState) -> None:
        if state.remote_run_id is not None:
            return
        experiment_id = self._experiment(op["experiment"])
        if state.create_attempted and self.find_run is not None:
            state.remote_run_id = self.find_run(op["experiment"], local_id)
            if state.remote_run_id is not None:
                return
        tags = dict(op.get("tags") or {})
        tags[LOCAL_ID_TAG] = local_id
        parent = op.get("parent")
        parent_remote = None
        if parent:
            tags[PARENT_LOCAL_ID_TAG] = parent
            parent_remote = op.get("parent_remote") or self.resolve_parent(parent)
        state.create_attempted = True
        state.remote_run_id = self.writer.create_run(
            experiment_id,
            name=op.get("name"),
            start_time=op.get("start_time"),
            parent_run_id=parent_remote,
            tags=tags,
        )

    def _model(self, op: dict[str, Any], run_id: str, state: RunState, files_dir: Path) -> None:
        name = op["name"]
        if name in state.models:
            return
        path = files_dir / op["file"]
        logged = self.writer.log_model(run_id, path, LoggedModel(name=name, artifact_path=name))
        state.models[name] = {"artifact_path": logged.artifact_path, "model_id": logged.model_id}
        _remove_staged(files_dir, op["file"])

    def _register(self, op: dict[str, Any], run_id: str, state: RunState) -> None:
        name, op_id = op["name"], op["id"]
        model = state.models.get(op["model"])
        if model is None:
            raise BackendError(
                f"cannot register {name!r}: this run logged no model called {op['model']!r}. "
                "Call run.log_model(path, name=...) first."
            )
        version = state.versions.get(op_id)
        if version is None:
            self.writer.register_model(RegisteredModel(name=name))
            created = self.writer.create_model_version(
                ModelVersion(
                    name=name,
                    version="",
                    run_id=run_id,
                    artifact_path=model["artifact_path"],
                    model_id=model["model_id"],
                    description=op.get("description") or "",
                    tags=dict(op.get("tags") or {}),
                ),
                run_id,
            )
            state.versions[op_id] = version = created.version
        for alias in op["aliases"]:
            self.writer.set_model_alias(name, alias, version)


def _remove_staged(files_dir: Path, relative: str) -> None:
    """Drop a staged copy once the platform has it.  Staged paths are ``<seq>/<name>``
    inside the run's staging folder: ours, never the user's files."""
    shutil.rmtree(files_dir / relative.split("/")[0], ignore_errors=True)
