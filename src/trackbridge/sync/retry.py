"""Jittered exponential backoff for transient backend failures.

Why a wrapper instead of retrying inside each backend: the engine decides how
patient a long copy should be (a 10-hour sync must survive a server restart),
while the facade wants the opposite (never block a training loop).  Only
:class:`~trackbridge.errors.TransientBackendError` is retried; anything else
is a real answer from the platform and is raised at once.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from trackbridge.errors import TransientBackendError

T = TypeVar("T")


@dataclass
class Retry:
    """``attempts`` tries in total.  Before try ``n + 1`` it waits ``d/2 + uniform(0, d/2)``
    with ``d = min(cap, base * 2**n)`` ("equal jitter": the fixed half gives the total
    patience a floor — about 31 s over the default 8 tries, enough for a server
    restart — the random half keeps parallel transfers from retrying in
    lock-step), or the server's ``retry_after`` when that is longer.
    ``on_retry(error, delay)`` is told about every retry (the engine counts them)."""

    attempts: int = 8
    base: float = 0.5
    cap: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)
    on_retry: Callable[[TransientBackendError, float], None] = field(default=lambda e, d: None, repr=False)

    def delay(self, attempt: int, error: TransientBackendError) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0)."""
        step = min(self.cap, self.base * 2**attempt)
        backoff = step / 2 + self.rng.uniform(0, step / 2)
        hint = getattr(error, "retry_after", None)
        return max(backoff, float(hint)) if hint else backoff

    def _wait(self, attempt: int, error: TransientBackendError) -> None:
        delay = self.delay(attempt, error)
        self.on_retry(error, delay)
        self.sleep(delay)

    def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """``fn(*args, **kwargs)``, retried on transient errors; the last error is re-raised."""
        for attempt in range(self.attempts):
            try:
                return fn(*args, **kwargs)
            except TransientBackendError as exc:
                if attempt + 1 >= self.attempts:
                    raise
                self._wait(attempt, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def iterate(self, make: Callable[[], Iterator[T]]) -> Iterator[T]:
        """Items of ``make()``, restarting it after a transient error and skipping
        the items already yielded (for paged reads: a page fails, the stream goes on)."""
        done = 0
        for attempt in range(self.attempts):
            try:
                for i, item in enumerate(make()):
                    if i >= done:
                        done += 1
                        yield item
                return
            except TransientBackendError as exc:
                if attempt + 1 >= self.attempts:
                    raise
                self._wait(attempt, exc)
