"""Bounded memory: a backend that is up but slower than training must not let a run's
queue grow without limit, and must still get every point exactly once."""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)

import trackbridge as tb
from trackbridge.backends.base import Writer
from trackbridge.backends.mlflow.writer import MlflowWriter
from trackbridge.facade import registry
from trackbridge.facade.channel import Channel
from trackbridge.facade.ops import RunFinder
from trackbridge.facade.worker import Worker
from trackbridge.model import MetricPoint

#: seconds the slow writer spends per metric batch: at most 10k points/s.
BATCH_DELAY = 0.1


class SlowMlflowWriter(MlflowWriter):
    """The real MLflow writer, slowed down: a backend that answers, just slowly."""

    def log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        time.sleep(BATCH_DELAY)
        super().log_metrics(run_id, points)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return MlflowClient(uri)


def _held_in_memory(channel: Channel) -> int:
    """Items the run holds in memory for this backend: its queue and its unsent ops' points."""
    with channel.lock:
        outbox = sum(len(entry.op["points"]) for entry in channel.outbox if entry.op["op"] == "metrics")
        return len(channel.queue) + outbox


def test_a_slow_backend_spills_to_the_spool_and_gets_every_point_once(
    store: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound, total = 2_000, 40_000

    def slow_worker(remote: str, writer: Writer, folder: Path, flush_interval: float, find_run: RunFinder,
                    max_queued: int, **options: Any) -> Worker:
        assert isinstance(writer, MlflowWriter) and max_queued == bound
        return Worker(remote, SlowMlflowWriter(writer.connection), folder, flush_interval, find_run,
                      max_queued=max_queued, **options)

    monkeypatch.setattr(registry, "Worker", slow_worker)
    monkeypatch.setenv("TRACKBRIDGE_MAX_QUEUED", str(bound))
    run = tb.start_run(project="facade-slow-backend", name="slow")
    channel = run._channels[0]
    peak, spooled = 0, False
    for step in range(total):
        run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        if step % 100 == 99:
            time.sleep(0.005)  # a training loop logging ~20k points/s: twice what the writer takes
            peak = max(peak, _held_in_memory(channel))
            spooled = spooled or channel.spooling
    run.finish(timeout=120)

    # Unbounded, ~10k points are waiting by the end of the loop.  Bounded: the
    # bound, plus what is logged while one slow batch is in flight (~1.5k here).
    assert spooled, "the backlog never went to the spool"
    assert peak <= bound + 4_000, f"{peak} points held in memory with a bound of {bound}"
    steps = sorted(p.step for p in store.get_metric_history(run.remote_ids["mlflow"], "loss"))
    assert steps == list(range(total)), "points lost or sent twice"
    assert not channel.spool.has_log(), "the spool was not emptied once the backend caught up"
    assert store.get_run(run.remote_ids["mlflow"]).info.status == "FINISHED"
