"""A copy starts writing while the source is still being listed (``Planner.stream``).

The source is a real ``dir:`` archive whose listing is held after its first run until
that run's copy is complete: an engine that planned every run before copying any waits
for ever (here: fails after the timeout), a streaming one finishes."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.backends.archive.reader import ArchiveReader
from trackbridge.backends.base import RunFilter
from trackbridge.model import MetricPoint, RunRecord, RunStatus
from trackbridge.sync.ahead import ahead
from trackbridge.sync.engine import Options, SyncEngine
from trackbridge.sync.plan import Selection
from trackbridge.sync.provenance import COMPLETE, SOURCE_RUN_ID

TIMEOUT = 30.0


class HeldListing(ArchiveBackend):
    """Lists its first run, then waits until ``first_copied`` says that run's copy is
    complete at the destination, and sets ``released`` when it goes on."""

    released: threading.Event
    first_copied: Callable[[str], bool]

    def reader(self) -> ArchiveReader:
        reader = super().reader()
        listed = reader.list_runs
        held = self

        def list_runs(experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
            for i, run in enumerate(listed(experiment, run_filter)):
                if i == 1:
                    deadline = time.monotonic() + TIMEOUT
                    while not held.first_copied(first):
                        assert time.monotonic() < deadline, "run 1 was not copied before the listing went on"
                        time.sleep(0.01)
                    held.released.set()
                if i == 0:
                    first = run.run_id
                yield run

        reader.list_runs = list_runs  # type: ignore[method-assign]
        return reader


def _source(path: Path) -> None:
    writer = ArchiveBackend({"path": str(path)}).writer()
    experiment = writer.ensure_experiment("e")
    for n in range(3):
        run_id = writer.create_run(experiment, name=f"r{n}", start_time=1_000 + n)
        writer.log_params(run_id, {"n": str(n)})
        writer.log_metrics(run_id, [("loss", MetricPoint(s, s * 0.5, 2_000 + s)) for s in range(20)])
        writer.finish_run(run_id, RunStatus.FINISHED, 3_000 + n)
    writer.close()


def _complete(path: Path, src_run_id: str) -> bool:
    """The destination holds the run's copy with its completion marker (written last)."""
    if not (path / "archive.json").exists():
        return False
    runs = ArchiveBackend({"path": str(path)}).reader().list_runs("e")
    return any(r.tags.get(SOURCE_RUN_ID) == src_run_id and COMPLETE in r.tags for r in runs)


def test_the_first_run_is_copied_before_the_listing_goes_on(tmp_path: Path) -> None:
    _source(tmp_path / "src")
    src = HeldListing({"path": str(tmp_path / "src")})
    src.released = threading.Event()
    engine = SyncEngine(src, ArchiveBackend({"path": str(tmp_path / "dst")}), Options(mode="copy", transfers=2))
    src.first_copied = lambda run_id: _complete(tmp_path / "dst", run_id)
    outcome = engine.run(Selection())
    assert outcome.ok, outcome.errors
    assert src.released.is_set()  # the hold was reached and let go, not skipped
    assert len(engine.run_map) == 3
    copied = list(ArchiveBackend({"path": str(tmp_path / "dst")}).reader().list_runs("e"))
    assert sorted(r.name for r in copied) == ["r0", "r1", "r2"]


# -- ahead(): the listing in a thread of its own ---------------------------------------


def _slow_plans(delays: dict[int, float]):  # noqa: ANN202
    pool = ThreadPoolExecutor(4)

    def submit(n: int) -> Future[int]:
        return pool.submit(lambda: (time.sleep(delays.get(n, 0)), n * 10)[1])

    return pool, submit


def test_ahead_keeps_the_order_when_later_items_finish_first() -> None:
    pool, submit = _slow_plans({0: 0.2, 1: 0.1})
    with pool:
        assert list(ahead(iter(range(6)), submit, 3)) == [0, 10, 20, 30, 40, 50]


def test_ahead_lists_at_most_limit_items_beyond_the_one_yielded() -> None:
    listed: list[int] = []

    def items() -> Iterator[int]:
        for n in range(100):
            listed.append(n)
            yield n

    pool, submit = _slow_plans({})
    with pool:
        results = ahead(items(), submit, 3)
        assert next(results) == 0
        time.sleep(0.2)  # the lister has had time to run as far ahead as it may
        assert len(listed) <= 1 + 3
        results.close()  # stops the listing
        time.sleep(0.1)
        assert len(listed) <= 1 + 3 + 1


def test_an_error_of_the_listing_comes_after_the_items_listed_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionError("listing broke")

    pool, submit = _slow_plans({1: 0.1})
    with pool:
        got: list[int] = []
        with pytest.raises(ConnectionError, match="listing broke"):
            for result in ahead(items(), submit, 4):
                got.append(result)
    assert got == [10, 20]
