"""The write-ahead journal on its own: every op on disk within the journal interval
whatever the backend does, acknowledgements that make a replay exactly-once after a
partial send, torn last lines, truncation, and the interval setting."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)
from servers import free_port

import trackbridge as tb
from trackbridge.backends import get_backend
from trackbridge.backends.mlflow.writer import MlflowWriter
from trackbridge.cli import main
from trackbridge.errors import ConfigError
from trackbridge.facade import spool as spool_module
from trackbridge.facade.codec import decode, encode
from trackbridge.facade.ops import Applier, RunState, compact
from trackbridge.facade.replay import Replayer, history_reader, list_spooled, replay_spool
from trackbridge.facade.spool import Spool
from trackbridge.model import MetricPoint

_HTTP_VARS = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")


@pytest.fixture(autouse=True)
def no_http_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in _HTTP_VARS:
        monkeypatch.delenv(var, raising=False)
    yield


def _points_in(path: Path) -> list[list]:
    points: list[list] = []
    if not path.exists():
        return points
    for line in path.read_bytes().splitlines():
        op = decode(line)
        if op["op"] == "metrics":
            points.extend(op["points"])
    return points


def test_every_point_is_on_disk_within_the_interval_while_the_backend_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("TRACKBRIDGE_JOURNAL_INTERVAL", "0.05")
    run = tb.start_run(project="journal-down", name="down")
    journal = run._channels[0].spool.log_path
    for step in range(3):  # the sender is busy failing and retrying meanwhile
        for i in range(300):
            run.log_metrics({"loss": float(i)}, step=step * 300 + i)
        deadline = time.monotonic() + 0.05 + 0.5  # interval + generous scheduling slack on a loaded box
        while len(_points_in(journal)) < (step + 1) * 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(_points_in(journal)) == (step + 1) * 300, "logged points not on disk within the interval"
    assert sorted(p[1] for p in _points_in(journal)) == list(range(900))
    run.finish(timeout=0.5)


def test_the_journal_interval_setting(monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    monkeypatch.setenv("TRACKBRIDGE_JOURNAL_INTERVAL", "soon")
    with pytest.raises(ConfigError, match="TRACKBRIDGE_JOURNAL_INTERVAL"):
        tb.start_run(project="journal-setting")
    monkeypatch.setenv("TRACKBRIDGE_JOURNAL_INTERVAL", "0")
    with pytest.raises(ConfigError, match="must be a positive number of seconds"):
        tb.start_run(project="journal-setting")
    monkeypatch.setenv("TRACKBRIDGE_JOURNAL_INTERVAL", "0.15")
    with tb.start_run(project="journal-setting") as run:
        assert run._workers[0].journal_interval == 0.15
    monkeypatch.delenv("TRACKBRIDGE_JOURNAL_INTERVAL")
    Path("trackbridge.toml").write_text("journal_interval = 0.12\n")  # a setting like the others
    from trackbridge.config import load_config

    assert load_config().get("journal_interval") == 0.12


class CountingWriter(MlflowWriter):
    """The real MLflow writer, counting the points it is handed."""

    sent: list[int]

    def log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        self.sent.extend(p.step for _, p in points)
        super().log_metrics(run_id, points)


def test_replay_after_a_partial_send_sends_each_point_once(tmp_path: Path, sqlite_uri: str) -> None:
    """The create and metric batches 1-3 acknowledged (2 out of order, as parallel batches
    settle), batch 4 started and half of it landed but never acknowledged (the kill came
    mid-request), batch 5 never started: the replay sends batch 4's missing half and
    batch 5, nothing else."""
    backend = get_backend("mlflow", {"tracking_uri": sqlite_uri})
    writer = CountingWriter(backend.writer().connection)
    writer.sent = []
    spool = Spool(tmp_path / "spool", "local1")
    create = {"op": "create", "experiment": "journal-partial", "name": "p", "start_time": 1, "parent": None,
              "tags": {}}
    batches = [compact([("loss", s, s * 0.5, 100 + s) for s in range(first, first + 10)], 10)[0]
               for first in range(0, 50, 10)]
    ends = spool.journal([create, *batches])
    applier = Applier(writer, lambda _: None, None, history_reader(backend))
    state = RunState()
    applier.apply(create, "local1", state, spool.files_dir)
    for batch in batches[:3]:
        applier.apply(batch, "local1", state, spool.files_dir)
    half = {"op": "metrics", "points": batches[3]["points"][:5]}
    applier.apply(half, "local1", state, spool.files_dir)  # what reached the server before the kill
    state.acknowledge([ends[0], ends[1], ends[3]], ends[0])
    state.acknowledge([ends[2]])  # confirmed out of order (parallel batches)
    state.started = [ends[4]]
    writer.sent = []

    stats = replay_spool(spool, applier, state, {})
    assert sorted(writer.sent) == list(range(35, 50)), "only the points the destination lacked are sent"
    assert stats.points == 20 and state.offset == ends[-1] and not state.acked and not state.started
    steps = sorted(m.step for m in MlflowClient(sqlite_uri).get_metric_history(state.remote_run_id, "loss"))
    assert steps == list(range(50))


def test_a_torn_last_line_is_cut_before_the_killed_marker(tmp_path: Path, isolated_env: Path,
                                                          sqlite_uri: str) -> None:
    home = isolated_env / ".trackbridge"
    spool = Spool(home / "spool" / "mlflow", "killed1")
    spool.append([
        {"op": "create", "experiment": "journal-torn", "name": "torn", "start_time": 1, "parent": None, "tags": {}},
        {"op": "metrics", "points": [["loss", 0, 1.0, 500], ["loss", 1, 2.0, 600]]},
    ])
    spool.save(RunState(), {"remote": "mlflow", "backend": "mlflow", "options": {"tracking_uri": sqlite_uri},
                            "experiment": "journal-torn", "name": "torn", "start_time": 1})
    spool.close_journal()
    spool.unlock()
    with spool.log_path.open("ab") as fh:
        fh.write(b'{"op":"metrics","points":[["loss",2,3.0,7')  # the kill came mid-write
    (run,) = list_spooled(home)
    assert run.unfinished and run.ops == 2
    Replayer(tb.facade.api.load_config()).replay(run)
    got = MlflowClient(sqlite_uri).search_runs(
        [MlflowClient(sqlite_uri).get_experiment_by_name("journal-torn").experiment_id])[0]
    assert got.info.status == "KILLED" and got.info.end_time == 600
    assert sorted(m.step for m in MlflowClient(sqlite_uri).get_metric_history(got.info.run_id, "loss")) == [0, 1]


def test_a_long_run_truncates_its_acknowledged_journal(monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    monkeypatch.setattr("trackbridge.facade.worker.TRUNCATE_AT", 20_000)
    run = tb.start_run(project="journal-truncate", name="long")
    spool = run._channels[0].spool
    sizes = []
    for step in range(6000):
        run.log_metrics({"loss": float(step)}, step=step)
        if step % 1000 == 999:
            assert run.flush(60)
            sizes.append(spool.log_path.stat().st_size)
    run.finish()
    assert max(sizes) < 20_000 + 60_000, f"journal grew to {max(sizes)} bytes"
    assert not spool.log_path.exists(), "a finished run's journal is removed"
    history = MlflowClient(sqlite_uri).get_metric_history(run.remote_ids["mlflow"], "loss")
    assert sorted(m.step for m in history) == list(range(6000))


def test_replay_leaves_a_live_run_to_its_process(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    run = tb.start_run(project="journal-live", name="live")
    run.log_metrics({"x": 1.0})
    time.sleep(0.3)
    dry = CliRunner().invoke(main, ["replay", "--dry-run"])
    assert dry.exit_code == 0 and "owned by a running process" in dry.output, dry.output
    result = CliRunner().invoke(main, ["replay"])
    assert result.exit_code == 0 and "skipped" in result.output, result.output
    assert run._channels[0].spool.has_log()
    run.finish(timeout=0.5)


def test_spool_save_is_not_fsynced_unless_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(spool_module.os, "fsync", lambda fd: calls.append(fd))
    spool = Spool(tmp_path, "r")
    spool.save(RunState(offset=3), {}, durable=False)
    spool.journal([{"op": "tags", "tags": {}}])
    assert calls == [] and spool.load()[0].offset == 3
    spool.save(RunState(offset=4), {})
    assert len(calls) == 1


def test_marks_fold_into_the_state_by_epoch(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "r")
    spool.save(RunState(offset=10, epoch=2), {"remote": "mlflow"})
    spool.mark("a", 1, [50])  # a stale epoch (the journal was truncated since)
    spool.mark("a", 2, [30, 40])
    spool.mark("s", 2, [60, 5])  # 5 is before the offset: forgotten
    with spool.marks_path.open("ab") as fh:
        fh.write(b"a 2 70\njunk\na 2 8")  # junk is ignored; the last mark was cut by a kill (it was 80)
    state, meta = spool.load()
    assert (state.offset, state.acked, state.started, meta) == (10, [30, 40, 70], [60], {"remote": "mlflow"})
    spool.checkpoint(state, meta)
    assert spool.marks_path.read_bytes() == b"" and spool.load()[0] == state


def test_metric_batches_are_packed_and_read_back_exactly() -> None:
    points = [["loss", 0, 0.1, 1_700_000_000_000], ["acc", 0, float("nan"), 1_700_000_000_001],
              ["loss", -3, float("-inf"), 5], ["acc", 2**62, 1e308, 0]]
    line = encode({"op": "metrics", "points": points})
    assert b'"pack":1' in line and line.endswith(b"\n") and b"\n" not in line[:-1]
    back = decode(line)["points"]
    assert [p[:2] + p[3:] for p in back] == [p[:2] + p[3:] for p in points]
    assert back[0][2] == 0.1 and back[1][2] != back[1][2] and back[2][2] == float("-inf") and back[3][2] == 1e308
    one_key = decode(encode({"op": "metrics", "points": [("m", 1, 2.0, 3)]}))
    assert one_key == {"op": "metrics", "points": [["m", 1, 2.0, 3]]}


def test_what_does_not_fit_the_arrays_and_old_lines_stay_plain_json() -> None:
    huge = {"op": "metrics", "points": [["m", 2**70, 1.0, 1]]}
    assert b"pack" not in encode(huge) and decode(encode(huge)) == huge
    tags = {"op": "tags", "tags": {"a": "b"}}
    assert decode(encode(tags)) == tags
    old = b'{"op":"metrics","points":[["m",0,NaN,1]]}\n'  # a journal written before packing
    (key, step, value, ts), = decode(old)["points"]
    assert (key, step, ts) == ("m", 0, 1) and value != value
