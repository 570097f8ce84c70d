"""The background thread of one backend: drains run queues, batches, sends, spools.

Why one thread per backend (not per run): nested runs must be created parent
first, and one writer per backend means one connection pool.  Why a thread at
all: the training loop must never wait for the network.

Each pass, for each attached run (:class:`~trackbridge.facade.channel.Channel`):
take what was queued, compact it into ops (:func:`~trackbridge.facade.ops.compact`),
and send them in order.  A failing op is retried with a short backoff; if it
still fails, the run's unsent ops go to its durable spool and the run switches
to *spooling*: new ops are appended to the spool, and the spool is replayed
with a growing delay (1 s → 30 s) until the backend takes it, after which the
run is live again.  Nothing is ever raised into the training loop from here;
the run decides (``on_error``) what to do with a report.

Bounded memory: a backend that is up but slower than training would otherwise
let a run's queue grow without limit.  Between two ops (live or replaying) the
worker looks at the queue; past ``max_queued`` items the run switches to the
spool the same way as when the backend is down (so still in order, exactly
once), but is replayed at once instead of after a backoff.  A run therefore
holds at most about ``max_queued`` items in memory, plus what it logs while one
request is in flight, plus the batches being sent.
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
from trackbridge.facade.channel import Channel
from trackbridge.facade.ops import Applier, RunFinder, compact
from trackbridge.facade.replay import is_refusal, parent_from_spool, reject, replay_spool

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


@dataclass
class _FlushRequest:
    channels: list[Channel]
    #: also retry spooled runs now (``False``: on disk is enough, e.g. at exit).
    deliver: bool = True
    done: threading.Event = field(default_factory=threading.Event)


class Worker:
    """Sends the ops of every run attached to one backend (remote)."""

    def __init__(
        self,
        remote: str,
        writer: Writer,
        spool_folder: Path,
        flush_interval: float = 1.0,
        find_run: RunFinder | None = None,
        parallel: int = PARALLEL_BATCHES,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.remote = remote
        self.writer = writer
        self.spool_folder = spool_folder
        self.flush_interval = flush_interval
        self.wake = threading.Event()
        self.applier = Applier(writer, self._resolve_parent, find_run)
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
        self._thread.start()

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
        or spooled if the backend is down; the event is set when that is done.
        ``deliver`` also retries runs already spooled right away, instead of waiting
        for their backoff."""
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
        """Move everything not yet sent to the spool now (flush timed out, exit, or a
        backlog past ``max_queued``); return how many ops were spooled.  An op in
        flight may also reach the platform; replay then re-sends it, which the op's
        idempotence absorbs."""
        with channel.lock:
            ops = list(channel.outbox) + compact(channel.take(), channel.batch_size)
            channel.outbox.clear()
            if ops and ops[0]["op"] == "create":
                channel.state.create_attempted = True
            self._spool_locked(channel, ops)
        return len(ops)

    def pending_channels(self) -> list[Channel]:
        with self._lock:
            return list(self._channels)

    def stop(self) -> None:
        """End the thread after its current pass (call :meth:`flush` first)."""
        self._stopped.set()
        self.wake.set()

    # -- the thread ---------------------------------------------------------

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
            items = channel.take()
            if items:
                ops = compact(items, channel.batch_size)
                if channel.spooling:
                    channel.spool.append(ops)
                else:
                    channel.outbox.extend(ops)
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
        if channel.spool.state_path.is_file():
            channel.spool.complete(channel.state, channel.meta)
        else:
            channel.spool.discard_staging()

    # -- live sending -------------------------------------------------------

    def _send(self, channel: Channel) -> None:
        """Send the outbox in order.  Metric batches of a run that exists overlap (up to
        ``parallel`` in flight, a sliding window); any other op goes alone, once
        nothing is in flight, so ``create`` comes first and ``finish`` last."""
        in_flight: dict[Future[BaseException | None], dict[str, Any]] = {}
        error: BaseException | None = None
        overflow = False
        while True:
            overflow = overflow or len(channel.queue) > self.max_queued
            with channel.lock:
                stop = channel.spooling or error is not None or overflow
                op = None if stop else self._next_op(channel, len(in_flight))
            if op is not None:
                if self._overlaps(channel, op):
                    in_flight[self._pool.submit(self._attempt, channel, op)] = op  # type: ignore[union-attr]
                else:
                    error = self._settle(channel, op, self._measured_attempt(channel, op))
                continue
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                error = self._settle(channel, in_flight.pop(future), future.result()) or error
        if error is not None:
            self._start_spooling(channel, error)
        elif overflow and not channel.spooling:
            self._spill(channel)

    def _spill(self, channel: Channel) -> None:
        """The backend is up but takes the run's ops slower than they are logged: move
        the backlog to the spool (nothing is in flight, so order is kept) and replay
        it from there right away."""
        count = self.abandon(channel)
        channel.next_retry = time.monotonic()
        self.wake.set()
        log.info("trackbridge: %s is slower than run %s logs; %d ops moved to the spool %s to bound memory",
                 self.remote, channel.local_id, count, channel.spool.log_path)

    def _spill_backlog(self, channel: Channel) -> None:
        """While a spooled run is replayed: append its queue to the spool once it is past
        ``max_queued``, so memory stays bounded however long the replay takes."""
        if len(channel.queue) > self.max_queued:
            with channel.lock:
                channel.spool.append(compact(channel.take(), channel.batch_size))

    def _next_op(self, channel: Channel, in_flight: int) -> dict[str, Any] | None:
        """The next op to start, or ``None`` to wait.  In-flight ops are always the
        head of the outbox: settled ones leave it at once."""
        if len(channel.outbox) <= in_flight:
            return None
        op = channel.outbox[in_flight]
        if in_flight and (in_flight >= self._parallel or not self._overlaps(channel, op)):
            return None
        return op

    def _overlaps(self, channel: Channel, op: dict[str, Any]) -> bool:
        return bool(self._pool is not None and self._io_bound and op["op"] == "metrics"
                    and channel.state.remote_run_id is not None)

    def _settle(self, channel: Channel, op: dict[str, Any], error: BaseException | None) -> BaseException | None:
        """Record the outcome of one op; the error if it must go to the spool, else ``None``."""
        if error is not None and not (is_refusal(error) and op["op"] != "create"):
            return error
        if error is not None:
            channel.report(channel, BackendError(reject(channel.spool, op, error)), False)
        self._note_sent(channel, op)
        with channel.lock:
            for index, queued in enumerate(channel.outbox):
                if queued is op:
                    del channel.outbox[index]
                    break
            if channel.spooling:  # abandoned meanwhile: keep the spool's view current
                channel.spool.save(channel.state, channel.meta)
        return None

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
        """Apply one op with retries; the last error, or ``None`` when it was sent."""
        error: BaseException | None = None
        for delay in (*RETRY_DELAYS, None):
            try:
                self.applier.apply(op, channel.local_id, channel.state, channel.spool.files_dir)
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
            pending = list(channel.outbox)
            channel.outbox.clear()
            if pending and pending[0]["op"] == "create":
                channel.state.create_attempted = True
            self._spool_locked(channel, pending)
        channel.report(channel, error, True)

    def _spool_locked(self, channel: Channel, ops: list[dict[str, Any]]) -> None:
        """Append ``ops`` to the spool and switch to spooling (``channel.lock`` held)."""
        for op in ops:
            if op["op"] == "create" and op.get("parent") and "parent_remote" not in op:
                parent = self._remote_ids.get(op["parent"])
                if parent:
                    op["parent_remote"] = parent
        if not channel.spooling:
            channel.spool.try_lock()
            channel.state.offset = channel.spool.size()
            channel.spooling = True
            channel.retry_delay = 1.0
            channel.next_retry = time.monotonic() + channel.retry_delay
        channel.spool.append(ops)
        channel.spool.save(channel.state, channel.meta)

    def _recover(self, channel: Channel) -> None:
        """Replay the run's spool; back to live sending when it is all through."""
        try:
            stats = replay_spool(
                channel.spool, self.applier, channel.state, channel.meta, lambda _: self._spill_backlog(channel)
            )
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
            if channel.spool.size() != channel.state.offset:
                return  # more was spooled meanwhile: next pass
            channel.spool.log_path.unlink(missing_ok=True)
            channel.state.offset = 0
            channel.spool.save(channel.state, channel.meta)
            channel.spooling = False
        log.info("trackbridge: %s reachable again; run %s is live", self.remote, channel.local_id)

    def _resolve_parent(self, local_id: str) -> str | None:
        if local_id in self._remote_ids:
            remote = self._remote_ids[local_id]
            if remote is None:
                raise TransientBackendError(f"parent run {local_id} is not created yet")
            return remote
        return parent_from_spool(self.spool_folder, local_id)
