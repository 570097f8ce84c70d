"""One run at one backend: the synchronous half of logging.

A :class:`Channel` checks and sanitises what user code logs, then appends it to
an in-memory deque that the backend's worker thread drains.  Why a deque of
tuples: ``deque.append`` is atomic under the GIL and costs ~50 ns, so
``run.log_metrics`` never takes a lock and never waits for the network.  A
metric point is the 4-tuple ``(key, step, value, timestamp_ms)``; everything
else is an op dict (:mod:`trackbridge.facade.ops`).

The worker-side state of the run (outbox, journal, remote id) lives here too,
guarded by :attr:`Channel.lock`, which is never held across a network call.
:meth:`Channel.drain` is the one way queued items leave memory: compacted into
ops, written to the run's journal (:mod:`~trackbridge.facade.spool`), and only
then put in the outbox to be sent, each with its place in the journal so that
the worker can record what the platform acknowledged.
"""
from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackbridge.facade.ops import RunState, compact
from trackbridge.facade.sanitise import Sanitiser
from trackbridge.facade.spool import Spool
from trackbridge.mapping import check_metric_value
from trackbridge.model import now_ms

log = logging.getLogger("trackbridge")

#: ``report(channel, error, spooled)`` — how the worker tells the run something failed.
Reporter = Callable[["Channel", BaseException, bool], None]


@dataclass(eq=False)
class Entry:
    """One journaled op waiting to be sent: the op and where it sits in the journal."""

    op: dict[str, Any]
    start: int
    end: int

    @property
    def size(self) -> int:
        """Items it holds in memory (points for a metric batch)."""
        return len(self.op["points"]) if self.op["op"] == "metrics" else 1


class Channel:
    """Queue, sanitiser and delivery state of one run at one backend (remote)."""

    def __init__(
        self,
        local_id: str,
        remote: str,
        sanitiser: Sanitiser,
        spool: Spool,
        wake: threading.Event,
        report: Reporter,
        meta: dict[str, Any],
        lacks: frozenset[str] = frozenset(),
    ) -> None:
        self.local_id = local_id
        #: features the platform lacks (``Features.lacks()``): such ops are dropped and recorded.
        self.lacks = lacks
        self.remote = remote
        self.sanitiser = sanitiser
        self.spool = spool
        self.report = report
        #: where the backend is and what the run is, saved with the spool for replay.
        self.meta = meta
        self.queue: deque[Any] = deque()
        self._append = self.queue.append
        self._metric_keys: dict[str, str] = {}
        self._allows_nan = sanitiser.limits.allows_nan
        self.batch_size = sanitiser.limits.max_metrics_per_batch
        self._wake = wake
        self._seq = itertools.count()
        # worker side, guarded by ``lock``
        self.lock = threading.Lock()
        self.outbox: deque[Entry] = deque()
        #: items (points, ops) held by the outbox.
        self.outbox_items = 0
        self.state = RunState()
        self.spooling = False
        self.retry_delay = 1.0
        self.next_retry = 0.0
        self.finished = False

    # -- user thread: the hot path -----------------------------------------

    def add_metrics(self, metrics: Mapping[str, Any], step: int, timestamp: int) -> None:
        """Check and queue one call's points; all-or-nothing if a value is bad."""
        keys = self._metric_keys
        points = []
        for key, value in metrics.items():
            name = keys.get(key)
            if name is None:
                name = self._new_metric_key(key)
            if type(value) is not float:
                value = check_metric_value(key, value)
            if value - value != 0.0 and not self._allows_nan:  # NaN or ±inf
                self._drop_non_finite(name, value)
                continue
            points.append((name, step, value, timestamp))
        self.queue.extend(points)
        if len(self.queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def _new_metric_key(self, key: str) -> str:
        name = self.sanitiser.metric_key(key)
        self._metric_keys[key] = name
        self._record_changed()
        return name

    def _drop_non_finite(self, name: str, value: float) -> None:
        if f"metric:{name}" not in self.sanitiser.record.dropped:
            log.warning(
                "trackbridge: %s cannot store NaN/inf; dropping such points of %r (recorded in the "
                "run's trackbridge.mapping tag)", self.remote, name,
            )
        self.sanitiser.drop_non_finite(name, value)
        self._record_changed()

    def note_record_changed(self) -> None:
        """Queue the mapping tag again after someone else added to the record (the run
        refusing bad input)."""
        self._record_changed()

    def _record_changed(self) -> None:
        tag = self.sanitiser.record_update()
        if tag:
            self._append({"op": "tags", "tags": tag})

    # -- user thread: everything else --------------------------------------

    def put(self, op: dict[str, Any]) -> None:
        self._append(op)

    def create(self, experiment: str, name: str | None, start_time: int, parent: str | None,
               tags: Mapping[str, Any]) -> None:
        """Queue the creation of the remote run (the worker sends it first)."""
        self._append({
            "op": "create", "experiment": experiment, "name": name, "start_time": start_time,
            "parent": parent, "tags": self.sanitiser.tags(tags),
        })
        self._record_changed()

    def add_params(self, params: Mapping[str, Any]) -> None:
        fitted, full = self.sanitiser.params(params)
        for key, text in full.items():
            folder, _, leaf = key.rpartition("/")
            relative = self.spool.write_text(next(self._seq), f"{leaf}.txt", text)
            artifact_dir = "trackbridge/params" + (f"/{folder}" if folder else "")
            self._append({"op": "artifact", "file": relative, "artifact_dir": artifact_dir})
        self._append({"op": "params", "params": fitted})
        self._record_changed()

    def add_tags(self, tags: Mapping[str, Any]) -> None:
        self._append({"op": "tags", "tags": self.sanitiser.tags(tags)})
        self._record_changed()

    def add_labels(self, labels: Any) -> None:
        self._append({"op": "labels", "labels": self.sanitiser.labels(labels)})
        self._record_changed()

    def add_summary(self, values: Mapping[str, Any]) -> None:
        summary = self.sanitiser.summary(values)
        if self.drops("summary"):
            return
        self._append({"op": "summary", "summary": summary})

    def set_notes(self, text: str) -> None:
        notes = self.sanitiser.notes(text)
        if self.drops("notes"):
            return
        self._append({"op": "notes", "notes": notes})
        self._record_changed()

    def drops(self, feature: str) -> bool:
        """True (once warned and recorded in the mapping tag) when the platform cannot hold ``feature``."""
        if feature not in self.lacks:
            return False
        if f"run:{feature}" not in self.sanitiser.record.dropped:
            log.warning("trackbridge: %s cannot hold %s; dropped (recorded in the run's trackbridge.mapping tag)",
                        self.remote, feature)
            self.sanitiser.record.dropped[f"run:{feature}"] = f"{self.remote} has no {feature}"
            self._record_changed()
        return True

    def stage(self, src: Path, link_from: Path | None = None) -> tuple[str, Path]:
        """Stage a copy of ``src``; return its relative path and where it now is."""
        relative = self.spool.stage(src, next(self._seq), src.name, link_from)
        return relative, self.spool.files_dir / relative

    def finish(self, status: str, end_time: int | None = None) -> None:
        self._append({"op": "finish", "status": status, "end_time": end_time or now_ms()})
        self._wake.set()

    # -- worker side --------------------------------------------------------

    def take(self) -> list[Any]:
        """Everything queued so far (the producer may keep appending meanwhile)."""
        queue = self.queue
        return [queue.popleft() for _ in range(len(queue))]

    def open_journal(self) -> None:
        """Own the run's journal (lock it) and record where its backend is, so that a
        process killed from now on leaves something ``trackbridge replay`` can send."""
        self.spool.try_lock()
        self.spool.save(self.state, self.meta, durable=False)

    def drain(self, parents: Mapping[str, str | None] | None = None) -> int:
        """Move what is queued to the journal, then (when live) to the outbox; return
        how many ops were journaled.  Call with :attr:`lock` held.  ``parents``: remote
        ids known for local run ids (kept in a create op, for a replay elsewhere)."""
        items = self.take()
        if not items:
            return 0
        ops = compact(items, self.batch_size)
        if parents and ops[0]["op"] == "create" and ops[0].get("parent"):
            parent = parents.get(ops[0]["parent"])
            if parent:
                ops[0]["parent_remote"] = parent
        start = self.spool.journal_end
        try:
            ends = self.spool.journal(ops)
        except OSError:
            # the disk is full or gone: keep the items (in order) for the next attempt
            # rather than send what a replay could not account for
            self.queue.extendleft(reversed(items))
            raise
        if not self.spooling:
            for op, end in zip(ops, ends):
                entry = Entry(op, start, end)
                self.outbox.append(entry)
                self.outbox_items += entry.size
                start = end
        return len(ops)

    def clear_outbox(self) -> int:
        """Forget the outbox (its ops are in the journal); return how many there were."""
        count = len(self.outbox)
        self.outbox.clear()
        self.outbox_items = 0
        return count

    def idle(self) -> bool:
        return not self.queue and not self.outbox
