"""``wandb-offline:PATH`` as a source: runs made by the real wandb SDK, read back equal."""
from __future__ import annotations

import logging
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from wandb_helpers import sdk_run, wandb_file  # noqa: F401  (fixture)

from trackbridge.backends import get_backend
from trackbridge.backends.wandb import rows as rowio
from trackbridge.backends.wandb import txlog
from trackbridge.model import RunStatus


def _reader(path: Path, **options: str):
    return get_backend("wandb-offline", {"path": str(path), **options}).reader()


def _series(reader, run_id: str, key: str, page_size: int = 10_000) -> list:
    return [p for page in reader.iter_metric_history(run_id, key, page_size) for p in page]


def _plain(points: list) -> list:
    return [[p.step, "nan" if math.isnan(p.value) else p.value] for p in points]


def test_run_metadata_equals_what_the_sdk_logged(sdk_run) -> None:  # noqa: F811
    run_dir, exp = sdk_run
    reader = _reader(run_dir.parent)
    assert [e.name for e in reader.list_experiments()] == ["proj-a"]
    (run,) = list(reader.list_runs("proj-a"))
    assert run.platform == "wandb-offline" and run.run_id == exp["run_id"] and run.name == "sdk-run"
    assert run.params == exp["config"]  # nested kept, `_wandb` apart
    assert run.labels == exp["tags"]  # edited after init: the last run record wins
    assert run.notes == exp["notes"]
    assert run.tags == {"wandb.group": "grp-1", "wandb.job_type": "train"}
    assert run.summary == exp["summary"]  # incremental, last wins, history copies apart
    assert run.status is RunStatus.FINISHED
    assert run.start_time and run.end_time and run.start_time <= run.end_time
    assert [m.name for m in run.models] == ["my-model"]
    assert set(run.metrics) == {"loss", "acc", "val/loss", "late", "late2"}
    assert run.metrics["loss"].step == len(exp["loss"]) - 1
    assert set(run.system_metrics).isdisjoint(run.metrics)
    assert reader.get_run(run.run_id).params == run.params


def test_every_history_point_with_its_step_and_time(sdk_run) -> None:  # noqa: F811
    run_dir, exp = sdk_run
    reader = _reader(run_dir)
    run = reader.get_run(exp["run_id"])
    for key, name in (("loss", "loss"), ("acc", "acc"), ("val/loss", "val"), ("late", "late"), ("late2", "late2")):
        points = _series(reader, run.run_id, key, page_size=333)
        assert _plain(points) == exp[name], key
    loss = _series(reader, run.run_id, "loss")
    assert math.isnan(loss[7].value) and loss[8].value == math.inf
    times = [p.timestamp for p in loss]
    assert all(isinstance(t, int) for t in times) and times == sorted(times)
    assert run.start_time <= times[0] and times[-1] <= run.end_time


def test_iter_rows_is_wandbs_rows_in_one_pass(sdk_run, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    run_dir, exp = sdk_run
    reader = _reader(wandb_file(run_dir))  # one .wandb file as the path
    calls = 0
    real = rowio.decode_row

    def counting(data: bytes, shapes):
        nonlocal calls
        calls += 1
        return real(data, shapes)

    monkeypatch.setattr(rowio, "decode_row", counting)
    rows = list(reader.iter_rows(exp["run_id"], ["loss", "acc", "val/loss", "late", "late2"]))
    assert len(rows) == len(exp["loss"]) + 2
    assert calls == len(rows)  # summary, stats, run... records skipped unparsed
    assert rows[0].values.keys() == {"loss", "acc", "val/loss"} and rows[1].values.keys() == {"loss", "acc"}
    assert rows[-2].step == len(exp["loss"]) + 10 and rows[-2].values == {"late": 1.0, "late2": 2.0}


def test_per_key_history_indexes_the_file_once(sdk_run, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    run_dir, exp = sdk_run
    reader = _reader(run_dir)
    passes = 0
    real = rowio.iter_rows

    def counting(*args, **kwargs):
        nonlocal passes
        passes += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(rowio, "iter_rows", counting)
    for key in ("loss", "acc", "val/loss", "late", "late2", "loss"):
        assert _series(reader, exp["run_id"], key)
    assert passes == 1
    reader.close()


def test_system_metrics_are_apart(sdk_run) -> None:  # noqa: F811
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir, exp = sdk_run
    stats_keys = set()
    for _, data in txlog.read_file(wandb_file(run_dir)):
        record = pb.Record.FromString(data)
        if record.WhichOneof("record_type") == "stats":
            stats_keys.update(i.key for i in record.stats.item)
    reader = _reader(run_dir)
    run = reader.get_run(exp["run_id"])
    # named as MLflow names system metrics, never ordinary metrics
    assert set(run.system_metrics) == {"system/" + k for k in stats_keys}
    assert set(run.system_metrics).isdisjoint(run.metrics)
    for key in sorted(run.system_metrics)[:3]:
        points = _series(reader, run.run_id, key)
        assert points and points[-1].value == run.system_metrics[key].value


def test_artifacts_and_model_files(sdk_run, tmp_path: Path) -> None:  # noqa: F811
    run_dir, exp = sdk_run
    reader = _reader(run_dir)
    arts = {a.path: a for a in reader.list_artifacts(exp["run_id"])}
    assert set(arts) == {"wandb-artifacts/dataset-a/train.csv", "wandb-artifacts/dataset-a/sub/test.csv"}
    assert arts["wandb-artifacts/dataset-a/train.csv"].size == 8
    assert arts["wandb-artifacts/dataset-a/train.csv"].digest.startswith("md5:")
    got = reader.download_artifact(exp["run_id"], "wandb-artifacts/dataset-a/sub/test.csv", tmp_path / "a")
    assert got == tmp_path / "a" / "wandb-artifacts/dataset-a/sub/test.csv" and got.read_text() == "a,b\n3,4\n"
    run = reader.get_run(exp["run_id"])
    model_dir = reader.download_model(exp["run_id"], run.models[0], tmp_path / "m")
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "weights.bin"]
    assert (model_dir / "weights.bin").read_bytes() == b"\x00\x01" * 500


def _damaged_copy(run_dir: Path, tmp: Path, change) -> Path:
    copy = tmp / "runs" / run_dir.name
    shutil.copytree(run_dir, copy)
    path = wandb_file(copy)
    data = bytearray(path.read_bytes())
    path.write_bytes(change(data))
    return copy


def test_truncated_file_lenient_and_strict(sdk_run, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    run_dir, exp = sdk_run
    size = wandb_file(run_dir).stat().st_size
    copy = _damaged_copy(run_dir, tmp_path, lambda d: bytes(d[: size // 2]))
    with caplog.at_level(logging.WARNING):
        run = _reader(copy).get_run(exp["run_id"])
    assert "byte offset" in caplog.text and "truncated" in caplog.text
    loss = _series(_reader(copy), exp["run_id"], "loss")
    assert 100 < len(loss) < len(exp["loss"]) and _plain(loss) == exp["loss"][: len(loss)]
    assert run.status is RunStatus.RUNNING  # the exit record is past the cut
    with pytest.raises(txlog.TxlogError, match=r"byte offset \d+"):
        _reader(copy, strict="true").get_run(exp["run_id"])


def test_bit_flip_lenient_and_strict(sdk_run, tmp_path: Path) -> None:  # noqa: F811
    run_dir, exp = sdk_run

    def flip(data: bytearray) -> bytes:
        data[len(data) * 3 // 4] ^= 0x01
        return bytes(data)

    copy = _damaged_copy(run_dir, tmp_path, flip)
    reader = _reader(copy)
    run = reader.get_run(exp["run_id"])
    loss = _series(reader, run.run_id, "loss")
    assert len(exp["loss"]) // 2 < len(loss) < len(exp["loss"])
    assert _plain(loss) == exp["loss"][: len(loss)]
    with pytest.raises(txlog.TxlogError, match="bad CRC"):
        _reader(copy, strict="1").get_run(exp["run_id"])


def test_path_forms(sdk_run, tmp_path: Path) -> None:  # noqa: F811
    run_dir, exp = sdk_run
    project = tmp_path / "project"
    shutil.copytree(run_dir.parent.parent, project, symlinks=True)  # holds wandb/offline-run-*
    for path in (project, project / "wandb", next((project / "wandb").glob("offline-run-*")),
                 wandb_file(next((project / "wandb").glob("offline-run-*")))):
        assert [r.run_id for r in _reader(path).list_runs("proj-a")] == [exp["run_id"]], path
    assert list(_reader(tmp_path / "missing").list_experiments()) == []


def test_importing_the_backend_does_not_import_wandb() -> None:
    code = ("import sys, trackbridge.backends.wandb.backend, trackbridge.backends.wandb.offline_reader, "
            "trackbridge.backends.wandb.scan, trackbridge.backends.wandb.rows; "
            "assert 'wandb' not in sys.modules, 'wandb imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_spill_cache_splits_each_run_once_whatever_the_runs_read_at_once(tmp_path: Path, monkeypatch) -> None:
    """Eight runs read key by key, interleaved (eight transfers): each split once; a
    released run's files go, and closing removes the folder of them all."""
    from trackbridge.model import MetricPoint

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    cache = rowio.SpillCache()
    splits: list[str] = []

    def points(run: str):
        splits.append(run)
        return [(key, MetricPoint(step, float(step), 1000 + step)) for step in range(3) for key in ("a", "b", "c")]

    for key in ("a", "b", "c"):
        for run in map(str, range(8)):
            got = [p for page in cache.pages(run, run, lambda run=run: points(run), key, 2) for p in page]
            assert [(p.step, p.value) for p in got] == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert sorted(splits) == sorted(map(str, range(8)))
    (root,) = tmp_path.glob("tb-wandb-series-*")
    assert len(list(root.iterdir())) == 8
    cache.release("3")
    assert len(list(root.iterdir())) == 7
    assert [p.step for page in cache.pages("3", "3", lambda: points("3"), "a", 10) for p in page] == [0, 1, 2]
    assert splits.count("3") == 2  # read again after its release: split again
    cache.close()
    assert not root.exists()


def test_spill_cache_bounds_runs_never_released(tmp_path: Path) -> None:
    from trackbridge.model import MetricPoint

    cache = rowio.SpillCache(runs=2)
    splits: list[str] = []

    def points(run: str):
        splits.append(run)
        return [("a", MetricPoint(0, 1.0, 1))]

    for run in ("x", "y", "z", "x"):
        assert [p.value for page in cache.pages(run, run, lambda run=run: points(run), "a", 10) for p in page] == [1.0]
    assert splits == ["x", "y", "z", "x"]  # x was the least recently read of three
    cache.close()
