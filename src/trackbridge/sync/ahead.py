"""Work done a few items ahead of the consumer, on items a slow iterator yields.

Why: a source's listing can take seconds between runs (a W&B folder is scanned file by
file), and planning a run takes a round trip or two.  The consumer (the copy) should get
each run's plan as soon as it is done, not when the listing has produced the next run,
so the listing goes on in a thread of its own while the plans are computed in a pool.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_END = object()
_WAKE = object()


def ahead(items: Iterator[T], submit: Callable[[T], Future[R]], limit: int) -> Iterator[R]:
    """The results of ``submit(item)`` for each item, in the items' order, each yielded as
    soon as it and those before it are done.  At most ``limit`` items are listed or
    worked on beyond the one being yielded.  An error of the listing is raised here, after
    the results of the items listed before it; closing this iterator stops the listing."""
    events: queue.SimpleQueue[object] = queue.SimpleQueue()  # items, _END, errors, and wake-ups
    room = threading.Semaphore(limit)  # one per item listed and not yet yielded
    stop = threading.Event()

    def listing() -> None:
        try:
            while room.acquire() and not stop.is_set():
                item = next(items, _END)
                events.put(item)
                if item is _END:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            events.put(_Failed(exc))

    lister = threading.Thread(target=listing, name="tb-list", daemon=True)
    lister.start()
    pending: deque[Future[R]] = deque()
    listed = True
    try:
        while listed or pending:
            if pending and pending[0].done():
                result = pending.popleft().result()
                room.release()
                yield result
                continue
            if not listed:
                pending[0].result()  # wait; the loop then yields it
                continue
            event = events.get()  # an item, the end, an error, or a plan done (a wake-up)
            if event is _END:
                listed = False
            elif isinstance(event, _Failed):
                listed = False
                for future in pending:  # what was listed before the error is still yielded
                    yield future.result()
                raise event.error
            elif event is not _WAKE:
                future = submit(event)  # type: ignore[arg-type]
                future.add_done_callback(lambda _f: events.put(_WAKE))
                pending.append(future)
    finally:
        stop.set()
        room.release()  # a listing waiting for room wakes, sees the stop and ends


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error
