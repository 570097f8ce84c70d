"""The archive survives killed writers, refuses corrupt or foreign folders clearly,
takes concurrent writers, and keeps memory bounded on long series."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.backends.archive.layout import FORMAT_NAME
from trackbridge.errors import BackendError
from trackbridge.model import MetricPoint, ModelVersion, RunStatus

PYTHON = sys.executable


def _history(backend: ArchiveBackend, run_id: str, key: str, page_size: int = 10_000) -> list[MetricPoint]:
    return [p for page in backend.reader().iter_metric_history(run_id, key, page_size) for p in page]


def _run_dir(root: Path, run_id: str) -> Path:
    [run_dir] = root.glob(f"experiments/*/runs/{run_id}")
    return run_dir


def test_leftover_temp_files_are_ignored_and_a_resumed_writer_appends(tmp_path: Path) -> None:
    root = tmp_path / "a"
    first = ArchiveBackend({"path": str(root), "part_points": 100})
    w = first.writer()
    run_id = w.create_run(w.ensure_experiment("e"), name="n")
    w.log_metrics(run_id, [("m", MetricPoint(i, float(i), i)) for i in range(150)])  # 1 part + 50 buffered
    run_dir = _run_dir(root, run_id)
    part = run_dir / "metrics" / "part-000001.parquet"
    # what a process killed mid-write leaves: a half part and a half run.json, under temp names.
    (run_dir / "metrics" / "part-000002.parquet.1234abcd.tmp").write_bytes(part.read_bytes()[:300])
    (run_dir / "run.json.1234abcd.tmp").write_text('{"run_id": "trunc')
    (root / "experiments" / "0badc0de").mkdir()  # experiment creation interrupted before its json

    resumed = ArchiveBackend({"path": str(root), "part_points": 100})  # a new process: buffer lost
    assert len(_history(resumed, run_id, "m")) == 100
    assert resumed.reader().get_run(run_id).name == "n"
    assert [e.name for e in resumed.reader().list_experiments()] == ["e"]
    w2 = resumed.writer()
    w2.log_metrics(run_id, [("m", MetricPoint(i, float(i), i)) for i in range(100, 150)])
    w2.finish_run(run_id, RunStatus.FINISHED)
    assert [p.step for p in _history(resumed, run_id, "m")] == list(range(150))
    assert sorted(p.name for p in (run_dir / "metrics").glob("*.parquet")) == ["part-000001.parquet", "part-000002.parquet"]


def test_resending_committed_points_duplicates_them_as_documented(tmp_path: Path) -> None:
    backend = ArchiveBackend({"path": str(tmp_path / "a")})
    w = backend.writer()
    run_id = w.create_run(w.ensure_experiment("e"))
    batch = [("m", MetricPoint(i, 0.5, 1000 + i)) for i in range(3)]
    w.log_metrics(run_id, batch)
    w.flush()
    w.log_metrics(run_id, batch)  # a resumed copy that re-sends what was committed
    w.flush()
    points = _history(backend, run_id, "m")
    assert len(points) == 6
    assert len({p.key() for p in points}) == 3  # MetricPoint.key() dedupes them


_KILLED_WRITER = """
import sys
from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.model import MetricPoint
w = ArchiveBackend({"path": sys.argv[1], "part_points": 5000}).writer()
run_id = w.create_run(w.ensure_experiment("e"))
print(run_id, flush=True)
step = 0
while True:
    w.log_metrics(run_id, [("m", MetricPoint(step + i, 1.0, i)) for i in range(1000)])
    w.set_tags(run_id, {"step": str(step)})
    step += 1000
"""


def test_a_writer_killed_at_any_moment_leaves_a_readable_archive(tmp_path: Path) -> None:
    root = tmp_path / "a"
    proc = subprocess.Popen([PYTHON, "-c", _KILLED_WRITER, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()
        metrics_dir = _run_dir(root, run_id) / "metrics"
        deadline = time.monotonic() + 60
        while len(list(metrics_dir.glob("part-*.parquet"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    parts = list(metrics_dir.glob("part-*.parquet"))
    assert len(parts) >= 3
    backend = ArchiveBackend({"path": str(root)})
    run = backend.reader().get_run(run_id)
    points = _history(backend, run_id, "m", page_size=777)
    assert len(points) == 5000 * len(parts)  # only whole parts, never a torn one
    assert [p.step for p in points] == list(range(len(points)))
    assert run.metrics["m"].step == len(points) - 1
    assert int(run.tags["step"]) >= len(points) - 5000


@pytest.mark.parametrize("setup, message", [
    (lambda root: (root / "notes.txt").write_text("x"), "archive.json is missing"),
    (lambda root: (root / "archive.json").write_text(json.dumps({"format": FORMAT_NAME, "version": "2.0",
                                                                 "created_by": "trackbridge 9"})),
     "newer trackbridge"),
    (lambda root: (root / "archive.json").write_text(json.dumps({"format": "something-else"})),
     "does not describe a trackbridge archive"),
    (lambda root: (root / "archive.json").write_text('{"format": "trackb'), "archive.json is corrupt"),
])
def test_foreign_or_newer_or_corrupt_archive_is_refused_clearly(tmp_path: Path, setup, message: str) -> None:
    root = tmp_path / "a"
    root.mkdir()
    setup(root)
    for make in (lambda b: b.reader(), lambda b: b.writer()):
        with pytest.raises(BackendError, match=message):
            make(ArchiveBackend({"path": str(root)}))


def test_a_newer_minor_version_is_read(tmp_path: Path) -> None:
    root = tmp_path / "a"
    ArchiveBackend({"path": str(root)}).writer().ensure_experiment("e")  # the first write creates the archive
    manifest = json.loads((root / "archive.json").read_text())
    (root / "archive.json").write_text(json.dumps({**manifest, "version": "1.9", "new_field": 1}))
    assert [e.name for e in ArchiveBackend({"path": str(root)}).reader().list_experiments()] == ["e"]


def test_missing_archive_reads_empty_without_being_created_and_a_writer_creates_it(tmp_path: Path) -> None:
    backend = ArchiveBackend({"path": str(tmp_path / "new")})
    reader = backend.reader()  # e.g. the destination of a dry run
    assert list(reader.list_experiments()) == [] and reader.get_experiment("e") is None
    assert list(reader.list_runs("e")) == [] and list(reader.list_registered_models()) == []
    assert not (tmp_path / "new").exists()
    w = backend.writer()
    w.create_run(w.ensure_experiment("e"))
    assert len(list(reader.list_runs("e"))) == 1  # the same reader sees what the writer made
    (tmp_path / "file").write_text("x")
    with pytest.raises(BackendError, match="is a file"):
        ArchiveBackend({"path": str(tmp_path / "file")}).writer()
    manifest = json.loads((tmp_path / "new" / "archive.json").read_text())
    assert manifest["format"] == FORMAT_NAME and manifest["version"] == "1.0" and "trackbridge" in manifest["created_by"]


def test_damaged_run_and_metrics_files_name_the_file(tmp_path: Path) -> None:
    backend = ArchiveBackend({"path": str(tmp_path / "a")})
    w = backend.writer()
    run_id = w.create_run(w.ensure_experiment("e"))
    w.log_metrics(run_id, [("m", MetricPoint(0, 1.0, 0))])
    w.flush()
    run_dir = _run_dir(tmp_path / "a", run_id)
    part = run_dir / "metrics" / "part-000001.parquet"
    part.write_bytes(part.read_bytes()[:-20])
    with pytest.raises(BackendError, match="part-000001.parquet is corrupt"):
        backend.reader().get_run(run_id)
    (run_dir / "run.json").write_text('{"run_id": ')
    with pytest.raises(BackendError, match=r"run\.json is corrupt"):
        backend.reader().get_run(run_id)


def test_threads_write_different_runs_and_the_registry_concurrently(tmp_path: Path) -> None:
    backend = ArchiveBackend({"path": str(tmp_path / "a"), "part_points": 500})
    w = backend.writer()
    errors: list[BaseException] = []
    made: dict[int, str] = {}

    def work(n: int) -> None:
        try:
            run_id = w.create_run(w.ensure_experiment("shared"), name=f"r{n}")
            made[n] = run_id
            for start in range(0, 2000, 100):
                w.log_metrics(run_id, [("m", MetricPoint(s, float(n), s)) for s in range(start, start + 100)])
                w.set_tags(run_id, {f"t{start}": str(n)})
            w.create_model_version(ModelVersion("shared-model", "", source=f"s{n}"), run_id)
            w.finish_run(run_id, RunStatus.FINISHED)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    reader = backend.reader()
    assert [e.name for e in reader.list_experiments()] == ["shared"]
    runs = {r.name: r for r in reader.list_runs("shared")}
    assert len(runs) == 8
    for n, run_id in made.items():
        assert len(runs[f"r{n}"].tags) == 20 and set(runs[f"r{n}"].tags.values()) == {str(n)}
        points = _history(backend, run_id, "m")
        assert [p.step for p in points] == list(range(2000)) and {p.value for p in points} == {float(n)}
    [model] = reader.list_registered_models()
    assert sorted(int(v.version) for v in model.versions) == list(range(1, 9))


_LONG_SERIES = """
import resource, sys
import pyarrow as pa
from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.model import MetricPoint
backend = ArchiveBackend({"path": sys.argv[1], "part_points": 100_000})
w = backend.writer()
run_id = w.create_run(w.ensure_experiment("e"))
w.log_metrics(run_id, [("warm", MetricPoint(0, 0.0, 0))])  # load every code path once
w.flush()
list(backend.reader().iter_metric_history(run_id, "warm"))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for start in range(0, 2_000_000, 10_000):
    w.log_metrics(run_id, [("loss", MetricPoint(i, i * 0.5, 7 * i)) for i in range(start, start + 10_000)])
w.finish_run(run_id, "FINISHED")
count = 0
for page in backend.reader().iter_metric_history(run_id, "loss", 10_000):
    assert page[0].step == count and page[-1].timestamp == 7 * (count + len(page) - 1)
    count += len(page)
growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(count, growth_kb, pa.default_memory_pool().max_memory())
"""


def test_two_million_points_stream_through_in_bounded_memory(tmp_path: Path) -> None:
    """Peak RSS growth of a fresh process, not tracemalloc: RSS also counts Arrow's
    own allocator (invisible to tracemalloc), and tracemalloc would triple the run time.
    2M points are 48 MB as raw columns and ~250 MB as Python objects."""
    out = subprocess.run([PYTHON, "-c", _LONG_SERIES, str(tmp_path / "a")],
                         capture_output=True, text=True, check=True, timeout=120).stdout.split()
    count, growth_kb, arrow_peak = map(int, out)
    assert count == 2_000_000
    assert growth_kb < 45_000, f"peak RSS grew by {growth_kb} kB"
    assert arrow_peak < 16_000_000, f"Arrow peak {arrow_peak} bytes"
    parts = list((tmp_path / "a").glob("experiments/*/runs/*/metrics/part-*.parquet"))
    assert len(parts) == 21  # 20 parts of 100k points + the warm-up part: written in streamed batches
