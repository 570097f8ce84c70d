"""Memory stays bounded whatever the series length: the engine never collects a series.

The source here is a *generated* backend (a real Reader/Writer implementation of
the public interface, not a mock of any vendor): it produces millions of points
lazily, which a real store could not do within the suite's time budget, so the
measurement isolates the engine itself (``tracemalloc`` counts Python
allocations only).  End-to-end RSS on real MLflow servers is measured by
``benchmarks/sync_mlflow.py``.
"""
from __future__ import annotations

import tracemalloc
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow.compute  # noqa: F401 - imported up front: tracemalloc must measure the engine, not an import

from trackbridge.backends.base import Backend, BackendInfo, Features, Limits, Reader, RunFilter, Writer
from trackbridge.model import ArtifactInfo, Experiment, MetricPoint, MetricSummary, RunRecord, RunStatus
from trackbridge.sync.engine import Options, SyncEngine
from trackbridge.sync.plan import Selection
from trackbridge.sync.provenance import SOURCE_PLATFORM, SOURCE_RUN_ID

POINTS = 60_000  # per key (x3 keys; the bound below does not grow with it)
KEYS = ("a", "b", "c")


def _points(start: int, stop: int, page: int, backwards: bool = False) -> Iterator[list[MetricPoint]]:
    firsts = range(start, stop, page)
    for first in reversed(firsts) if backwards else firsts:
        yield [MetricPoint(i, i * 0.5, 1_000 + i) for i in range(first, min(stop, first + page))]


class Generated(Reader):
    """One run whose series are computed on the fly (``have`` points per key)."""

    platform = "generated"

    def __init__(self, run: RunRecord | None, have: int, backwards: bool = False) -> None:
        self.run, self.have, self.backwards = run, have, backwards

    def list_experiments(self) -> Iterator[Experiment]:
        yield Experiment("1", "big")

    def get_experiment(self, name: str) -> Experiment | None:
        return Experiment("1", "big") if self.run else None

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        if self.run:
            yield self.run

    def get_run(self, run_id: str) -> RunRecord:
        assert self.run is not None
        return self.run

    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        return _points(0, self.have, page_size, self.backwards)

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        return iter(())

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        raise AssertionError("no artifacts")


class Counting(Writer):
    """Keeps counts, not points; checks every batch respects the limit."""

    platform = "counting"
    limits = Limits(max_metrics_per_batch=1000)

    def __init__(self) -> None:
        self.points = 0
        self.largest_batch = 0
        self.tags: dict[str, str] = {}

    def ensure_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        return "1"

    def create_run(self, experiment_id: str, **kw: object) -> str:
        return "dst"

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        pass

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self.tags.update(tags)

    def log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        self.points += len(points)
        self.largest_batch = max(self.largest_batch, len(points))

    def log_artifact(self, run_id: str, local_path: Path, artifact_dir: str | None = None) -> None:
        pass

    def finish_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        pass


class Pair(Backend):
    info = BackendInfo(name="generated", target="test_sync_memory:Pair")
    features = Features().disable("run_rename", "tag_deletion", "alias_removal", "run_deletion", "registry")

    def __init__(self, reader: Reader, writer: Writer | None = None) -> None:
        super().__init__({})
        self._reader, self._writer = reader, writer

    def reader(self) -> Reader:
        return self._reader

    def writer(self) -> Writer:
        assert self._writer is not None
        return self._writer


def _source() -> RunRecord:
    last = {k: MetricSummary(k, (POINTS - 1) * 0.5, POINTS - 1, 1_000 + POINTS - 1) for k in KEYS}
    return RunRecord("generated", "src", "big", "1", name="big", status=RunStatus.FINISHED,
                     start_time=1, end_time=2, metrics=last)


def _copy(dest_has: int, backwards: bool = False) -> tuple[Counting, int]:
    dest_run = None
    if dest_has:  # a half-written copy: provenance tags, no completion marker
        dest_run = RunRecord("counting", "dst", "big", "1", tags={SOURCE_PLATFORM: "generated", SOURCE_RUN_ID: "src"},
                             metrics={k: MetricSummary(k, 0.0, 0, 0) for k in KEYS})
    writer = Counting()
    engine = SyncEngine(Pair(Generated(_source(), POINTS)), Pair(Generated(dest_run, dest_has, backwards), writer),
                        Options(mode="copy", transfers=2))
    tracemalloc.start()
    outcome = engine.run(Selection())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert outcome.ok, outcome.errors
    return writer, peak


def test_a_long_copy_holds_a_few_batches_not_the_series() -> None:
    writer, peak = _copy(dest_has=0)
    assert writer.points == POINTS * len(KEYS) and writer.largest_batch == 1000
    assert writer.tags["trackbridge.complete"].startswith("fp")
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB for {POINTS * len(KEYS):,} points"


def test_resuming_a_prefix_walks_both_streams_side_by_side() -> None:
    writer, peak = _copy(dest_has=POINTS // 2)
    assert writer.points == (POINTS - POINTS // 2) * len(KEYS)
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_resuming_out_of_order_indexes_the_destination_at_8_bytes_a_point() -> None:
    writer, peak = _copy(dest_has=POINTS // 2, backwards=True)
    assert writer.points == (POINTS - POINTS // 2) * len(KEYS)
    # one key's index (30k hashes, 0.25 MB) plus pages and batches
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MiB"
