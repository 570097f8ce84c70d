"""The background threads of one backend: journal, batch, send, recover.

Why one sender thread per backend (not per run): nested runs must be created
parent first, and one writer per backend means one connection pool.  Why a
thread at all: the training loop must never wait for the network.

Every op is on local disk before it is sent (:meth:`Channel.drain`): the
sender drains each run's queue into the run's journal and outbox at the start
of each pass, and a second thread, the *journaller*, drains every
``journal_interval`` seconds (``TRACKBRIDGE_JOURNAL_INTERVAL``, 0.05 s by
default) whatever the sender is doing, so a process killed while the backend is
down, slow or retrying leaves at most that much unwritten.  Both write in
batches, never per call; the training thread only appends to a deque.

Each pass, for each attached run: send the outbox in order (metric batches of a
created run up to ``parallel`` at once when sending is I/O-bound; consecutive
journaled metric ops merged up to the writer's batch size).  A batch or a create
is marked *started* in the run's state file before it is sent and every op is
marked *acknowledged* once the platform took it, so a replay after a kill sends
each op exactly once (:mod:`trackbridge.facade.replay`).  A failing op is retried
with a short backoff; if it still fails, the run switches to *spooling*: its
outbox is dropped (it is all in the journal), and the journal is replayed from
the first unacknowledged op with a growing delay (1 s → 30 s) until the backend
takes it, after which the run is live again.  Nothing is ever raised into the
training loop from here; the run decides (``on_error``) what to do with a report.

Bounded memory: past ``max_queued`` items waiting in a run's outbox (a backend
up but slower than training), the outbox is dropped the same way and the run is
replayed from its journal at once instead of after a backoff.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackbridge.backends.base import Writer
from trackbridge.errors import BackendError, TransientBackendError
from trackbridge.facade.channel import Channel, Entry
from trackbridge.facade.ops import Applier, HistoryReader, RunFinder
from trackbridge.facade.replay import is_refusal, note_confirmed, parent_from_spool, reject, replay_spool
from trackbridge.facade.spool import MARKS_PER_SAVE, TRUNCATE_AT

log = logging.getLogger("trackbridge")

#: delays between attempts of one op before the run switches to the spool.
RETRY_DELAYS = (0.2, 1.0)
MAX_RECOVERY_DELAY = 30.0
#: metric batches sent at once when sending is I/O-bound: overlaps one request's
#: serialisation with another's round trip.  An embedded store (CPU-bound in this
#: process) only gets slower with it, so the worker measures before it decides.
PARALLEL_BATCHES = 4
#: a batch whose sending thread was on the CPU less than this share of its wall
#: time was waiting for I/O: parallel sending pays off.
IO_BOUND_CPU_SHARE = 0.25
#: queued items (metric points and other ops) of one run past which new ones go
#: to the spool: a queued point takes ~170 bytes, so ~50 MB here and as much again
#: in the batch being sent.
MAX_QUEUED = 300_000
#: ops whose confirmation changes more of the run's state than its offset: saved at once.
_STATEFUL = frozenset({"create", "model", "register", "finish"})
#: seconds between two journal writes of a run at most (``TRACKBRIDGE_JOURNAL_INTERVAL``): at
#: most this much of logging is lost to a SIGKILL (the issue asks for <= 0.2 s).
JOURNAL_INTERVAL = 0.05


@dataclass
class _FlushRequest:
    channels: list[Channel]
    #: also retry spooled runs now (``False``: on disk is enough, e.g. at exit).
    deliver: bool = True
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False)
class _Batch:
    """What one request sends: one journaled op, or consecutive metric ops merged."""

    entries: list[Entry]
    op: dict[str, Any]


class Worker:
    """Journals and sends the ops of every run attached to one backend (remote)."""

    def __init__(
        self,
        remote: str,
        writer: Writer,
        spool_folder: Path,
        flush_interval: float = 1.0,
        find_run: RunFinder | None = None,
        parallel: int = PARALLEL_BATCHES,
        max_queued: int = MAX_QUEUED,
        journal_interval: float = JOURNAL_INTERVAL,
        history: HistoryReader | None = None,
    ) -> None:
        self.remote = remote
        self.writer = writer
        self.spool_folder = spool_folder
        self.flush_interval = flush_interval
        self.journal_interval = journal_interval
        self.wake = threading.Event()
        self.applier = Applier(writer, self._resolve_parent, find_run, history)
        self._channels: list[Channel] = []
        self._requests: list[_FlushRequest] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        #: local id -> remote id of every run this worker created (parents of later runs).
        self._remote_ids: dict[str, str | None] = {}
        self._parallel = parallel
        self.max_queued = max_queued
        #: decided from the first metric batch: ``None`` = not measured yet.
        self._io_bound: bool | None = None
        self._pool = ThreadPoolExecutor(parallel, thread_name_prefix=f"trackbridge-{remote}") if parallel > 1 else None
        self._thread = threading.Thread(target=self._loop, name=f"trackbridge-{remote}", daemon=True)
        self._journaller = threading.Thread(target=self._journal_loop, name=f"trackbridge-journal-{remote}",
                                            daemon=True)
        self._thread.start()
        self._journaller.start()

    # -- called from user threads ------------------------------------------

    def attach(self, channel: Channel) -> None:
        """Start (or resume, for ops after ``finish``) sending ``channel``'s queue."""
        with self._lock:
            if channel not in self._channels:
                self._channels.append(channel)
            self._remote_ids.setdefault(channel.local_id, None)
        self.wake.set()

    def request_flush(self, channels: Iterable[Channel] | None = None, deliver: bool = True) -> threading.Event:
        """Ask for everything queued so far on ``channels`` (default: all) to be sent,
        or left in the journal if the backend is down; the event is set when that is
        done.  ``deliver`` also retries runs already spooled right away, instead of
        waiting for their backoff."""
        with self._lock:
            chosen = list(self._channels) if channels is None else list(channels)
            request = _FlushRequest(chosen, deliver)
            self._requests.append(request)
        self.wake.set()
        return request.done

    def flush(self, channels: Iterable[Channel] | None = None, timeout: float | None = None) -> bool:
        """:meth:`request_flush` and wait; ``False`` if not done within ``timeout`` seconds."""
        return self.request_flush(channels).wait(timeout)

    def abandon(self, channel: Channel) -> int:
        """Stop sending ``channel`` live (flush timed out, exit): journal what is still
        queued, drop the outbox, and leave the run to the journal's replay; return how
        many ops wait there.  An op in flight may still reach the platform; it was
        marked started, so a replay checks before sending it again."""
        with channel.lock:
            drained = self._drain(channel)
            count = max(drained, channel.clear_outbox())
            self._switch_to_journal(channel, delay=1.0)
            channel.spool.sync()
        return count

    def pending_channels(self) -> list[Channel]:
        with self._lock:
            return list(self._channels)

    def stop(self) -> None:
        """End the threads after their current pass (call :meth:`flush` first)."""
        self._stopped.set()
        self.wake.set()

    # -- the journaller -----------------------------------------------------

    def _journal_loop(self) -> None:
        """Drain every run's queue to its journal every ``journal_interval`` seconds,
        even while the sender waits on the network."""
        due = time.monotonic() + self.journal_interval
        while not self._stopped.wait(max(0.0, due - time.monotonic())):
            due = max(due + self.journal_interval, time.monotonic())  # a fixed rate, not interval + work
            with self._lock:
                channels = list(self._channels)
            for channel in channels:
                try:
                    with channel.lock:
                        if not self._drain(channel):
                            continue
                        ready = channel.outbox_items >= channel.batch_size
                    if ready:
                        self.wake.set()
                except Exception:  # a full disk must not kill the thread; the sender retries
                    log.exception("trackbridge: cannot write the journal of run %s", channel.local_id)

    def _drain(self, channel: Channel) -> int:
        """:meth:`Channel.drain` (``channel.lock`` held), spilling a backlog past
        ``max_queued`` to the journal's replay."""
        count = channel.drain(self._remote_ids)
        if not channel.spooling and channel.outbox_items > self.max_queued:
            items = channel.outbox_items
            channel.clear_outbox()
            self._switch_to_journal(channel, delay=0.0)
            self.wake.set()
            log.info("trackbridge: %s is slower than run %s logs; %d items left to its journal %s to bound memory",
                     self.remote, channel.local_id, items, channel.spool.log_path)
        return count

    def _switch_to_journal(self, channel: Channel, delay: float) -> None:
        """Send ``channel`` from its journal from now on (``channel.lock`` held)."""
        if not channel.spooling:
            channel.spooling = True
            channel.retry_delay = max(delay, 1.0)
            channel.next_retry = time.monotonic() + delay

    # -- the sender ---------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self.wake.wait(self.flush_interval)
            self.wake.clear()
            with self._lock:
                requests, self._requests = self._requests, []
                channels = list(self._channels)
            urgent = {id(ch) for r in requests if r.deliver for ch in r.channels}
            for channel in channels:
                try:
                    self._service(channel, id(channel) in urgent)
                except Exception as exc:  # a bug here must not kill logging for every run
                    log.exception("trackbridge: internal error while sending run %s", channel.local_id)
                    channel.report(channel, exc, False)
            for request in requests:
                request.done.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def _service(self, channel: Channel, urgent: bool) -> None:
        with channel.lock:
            self._drain(channel)
        if channel.spooling:
            if urgent or time.monotonic() >= channel.next_retry:
                self._recover(channel)
        else:
            self._send(channel)
        if channel.finished and not channel.spooling and channel.idle():
            self._retire(channel)

    def _retire(self, channel: Channel) -> None:
        with self._lock:
            if channel in self._channels:
                self._channels.remove(channel)
        with channel.lock:
            channel.spool.complete(channel.state, channel.meta)

    # -- live sending -------------------------------------------------------

    def _send(self, channel: Channel) -> None:
        """Send the outbox in order.  Metric batches of a run that exists overlap (up to
        ``parallel`` in flight, a sliding window); any other op goes alone, once
        nothing is in flight, so ``create`` comes first and ``finish`` last."""
        in_flight: dict[Future[BaseException | None], _Batch] = {}
        error: BaseException | None = None
        while True:
            with channel.lock:
                stop = channel.spooling or error is not None
                batch = None if stop else self._next_batch(channel, in_flight.values())
                if batch is not None:
                    self._mark_started(channel, batch)
            if batch is not None:
                if self._overlaps(channel, batch.op):
                    in_flight[self._pool.submit(self._attempt, channel, batch.op)] = batch  # type: ignore[union-attr]
                else:
                    error = self._settle(channel, batch, self._measured_attempt(channel, batch.op))
                continue
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                error = self._settle(channel, in_flight.pop(future), future.result()) or error
        if error is not None:
            self._start_spooling(channel, error)

    def _next_batch(self, channel: Channel, in_flight: Iterable[_Batch]) -> _Batch | None:
        """The next request to start, or ``None`` to wait (``channel.lock`` held).
        In-flight entries are always the head of the outbox: settled ones leave it."""
        batches = list(in_flight)
        busy = sum(len(batch.entries) for batch in batches)
        outbox = channel.outbox
        if len(outbox) <= busy:
            return None
        first = outbox[busy]
        if batches and (len(batches) >= self._parallel or not self._overlaps(channel, first.op)):
            return None
        if first.op["op"] != "metrics":
            return _Batch([first], first.op)
        entries, points = [first], list(first.op["points"])
        for index in range(busy + 1, len(outbox)):
            entry = outbox[index]
            if entry.op["op"] != "metrics" or len(points) + len(entry.op["points"]) > channel.batch_size:
                break
            entries.append(entry)
            points.extend(entry.op["points"])
        return _Batch(entries, first.op if len(entries) == 1 else {"op": "metrics", "points": points})

    def _mark_started(self, channel: Channel, batch: _Batch) -> None:
        """Before a create or a metric batch goes out: note it in the state file, so a
        replay after a kill checks the destination instead of sending it twice."""
        kind = batch.op["op"]
        if kind not in ("metrics", "create"):
            return
        state = channel.state
        fresh = [e.end for e in batch.entries if e.end not in state.started]
        if not fresh:
            return
        state.started.extend(fresh)
        # (the in-memory state learns of an attempted create from the create itself: a
        # first create needs no look-up at the destination, only a retried one does)
        channel.spool.mark("s", state.epoch, fresh)

    def _overlaps(self, channel: Channel, op: dict[str, Any]) -> bool:
        return bool(self._pool is not None and self._io_bound and op["op"] == "metrics"
                    and channel.state.remote_run_id is not None)

    def _settle(self, channel: Channel, batch: _Batch, error: BaseException | None) -> BaseException | None:
        """Record the outcome of one request; the error if the run must go to its
        journal's replay, else ``None``."""
        if error is not None and not (is_refusal(error) and batch.op["op"] != "create"):
            return error
        if error is not None:
            channel.report(channel, BackendError(reject(channel.spool, batch.op, error)), False)
        self._note_sent(channel, batch.op)
        with channel.lock:
            sent = {id(entry) for entry in batch.entries}
            kept = [entry for entry in channel.outbox if id(entry) not in sent]
            if len(kept) != len(channel.outbox):
                channel.outbox.clear()
                channel.outbox.extend(kept)
                channel.outbox_items = sum(entry.size for entry in kept)
            note_confirmed(channel.state, batch.op)
            self._acknowledge(channel, [entry.end for entry in batch.entries], batch.op["op"] in _STATEFUL)
        return None

    def _acknowledge(self, channel: Channel, ends: list[int], save: bool = False) -> None:
        """Record confirmed ops (``channel.lock`` held): a mark per batch, the state file
        when ``save`` (the op changed more than the offset) or every :data:`MARKS_PER_SAVE`
        marks; truncate a large journal once all of it is confirmed."""
        state, spool = channel.state, channel.spool
        if channel.spooling:  # the journal's replay owns the offset now
            offset = None
        elif channel.outbox:
            offset = channel.outbox[0].start
        else:
            offset = spool.journal_end
        state.acknowledge(ends, offset)
        if not channel.spooling and not channel.outbox and state.offset == spool.journal_end >= TRUNCATE_AT:
            spool.truncate()
            state.offset, state.acked, state.started = 0, [], []
            state.epoch += 1
            save = True
        if save or spool.marks_since_save >= MARKS_PER_SAVE:
            spool.checkpoint(state, channel.meta)
        else:
            spool.mark("a", state.epoch, ends)

    def _measured_attempt(self, channel: Channel, op: dict[str, Any]) -> BaseException | None:
        """:meth:`_attempt`, deciding from the first metric batch whether sending is I/O-bound."""
        if self._io_bound is not None or self._pool is None or op["op"] != "metrics":
            return self._attempt(channel, op)
        cpu, wall = time.thread_time(), time.perf_counter()
        error = self._attempt(channel, op)
        if error is None:
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            self._io_bound = cpu < IO_BOUND_CPU_SHARE * wall
            log.debug("trackbridge: %s batch took %.3f s wall, %.3f s CPU: parallel=%s",
                      self.remote, wall, cpu, self._io_bound)
        return error

    def _attempt(self, channel: Channel, op: dict[str, Any]) -> BaseException | None:
        """Apply one op with retries; the last error, or ``None`` when it was sent.
        A retry after an ambiguous failure (a timeout) checks what already landed."""
        error: BaseException | None = None
        for delay in (*RETRY_DELAYS, None):
            try:
                self.applier.apply(op, channel.local_id, channel.state, channel.spool.files_dir,
                                   maybe_sent=error is not None)
                return None
            except Exception as exc:
                error = exc
                if is_refusal(exc) or delay is None or channel.spooling:
                    return exc
                time.sleep(delay)
        return error

    def _note_sent(self, channel: Channel, op: dict[str, Any]) -> None:
        """Bookkeeping once an op is settled: parents' remote ids, the run's end."""
        if op["op"] == "create":
            self._remote_ids[channel.local_id] = channel.state.remote_run_id
        elif op["op"] == "finish":
            channel.finished = True

    # -- spooling and recovery ---------------------------------------------

    def _start_spooling(self, channel: Channel, error: BaseException) -> None:
        with channel.lock:
            channel.clear_outbox()
            self._switch_to_journal(channel, delay=1.0)
            channel.spool.checkpoint(channel.state, channel.meta)
        channel.report(channel, error, True)

    def _recover(self, channel: Channel) -> None:
        """Replay the run's journal from its first unconfirmed op; back to live sending
        once it has caught up with what is journaled."""
        for _ in range(100):  # a run logging faster than the replay stays on the journal
            try:
                stats = replay_spool(channel.spool, self.applier, channel.state, channel.meta,
                                     lambda _: None, durable=False)
            except Exception as exc:
                channel.retry_delay = min(channel.retry_delay * 2, MAX_RECOVERY_DELAY)
                channel.next_retry = time.monotonic() + channel.retry_delay
                log.debug("trackbridge: %s still unreachable: %s", self.remote, exc)
                return
            for reason in stats.rejected:
                channel.report(channel, BackendError(reason), False)
            if channel.state.remote_run_id is not None:
                self._remote_ids[channel.local_id] = channel.state.remote_run_id
            channel.finished = channel.finished or stats.finished
            with channel.lock:
                self._drain(channel)  # journal what came meanwhile, then look again
                if channel.spool.journal_end == channel.state.offset:
                    channel.spooling = False
                    self._acknowledge(channel, [], save=True)
                    break
        else:
            channel.next_retry = time.monotonic()
            self.wake.set()
            return
        log.info("trackbridge: %s reachable again; run %s is live", self.remote, channel.local_id)

    def _resolve_parent(self, local_id: str) -> str | None:
        if local_id in self._remote_ids:
            remote = self._remote_ids[local_id]
            if remote is None:
                raise TransientBackendError(f"parent run {local_id} is not created yet")
            return remote
        return parent_from_spool(self.spool_folder, local_id)
