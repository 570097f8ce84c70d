"""A training process killed with SIGKILL (the OOM killer, a preempted node) loses
(almost) nothing: a real child process logs 100 points every 20 ms through the
facade, is killed after ~4 s, and what its journal kept is sent by ``trackbridge
replay`` (or by the next ``start_run`` in the same home) exactly once, the run
marked KILLED at the time of its last point.  Once with the server up, once with
the tracking URI on a closed port and the server started only before the replay."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)
from servers import MlflowServer, free_port

from trackbridge.backends.mlflow.writer import MlflowWriter
from trackbridge.cli import main
from trackbridge.model import MetricPoint

TRAIN = textwrap.dedent(
    """
    import sys, time
    import trackbridge as tb

    run = tb.start_run(project=sys.argv[1], name="victim", config={"lr": 0.1})
    run.add_labels(["oom"])
    run.log_summary({"phase": "train"})
    run.set_notes("killed on purpose")
    print("started", run.id, flush=True)
    step = 0
    while True:
        for _ in range(100):
            run.log_metrics({"loss": step * 0.001}, step=step)
            step += 1
        print("logged", step, flush=True)  # every point up to here was handed to the facade
        time.sleep(0.02)
    """
)

NEXT = textwrap.dedent(
    """
    import sys, threading
    import trackbridge as tb

    with tb.start_run(project=sys.argv[1], name="next") as run:
        run.log_metrics({"x": 1.0})
    for thread in threading.enumerate():
        if thread.name == "trackbridge-recovery":
            thread.join(120)
    """
)

_HTTP_VARS = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")


@pytest.fixture(autouse=True)
def no_http_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in _HTTP_VARS:
        monkeypatch.delenv(var, raising=False)
    yield


def _train_and_kill(tmp_path: Path, cwd: Path, env: dict[str, str], project: str,
                    seconds: float = 4.0) -> tuple[str, int]:
    """Run TRAIN, SIGKILL it ``seconds`` after its run started; (local run id, points logged)."""
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    proc = subprocess.Popen([sys.executable, str(script), project], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        first = proc.stdout.readline().split()  # type: ignore[union-attr]
        assert first[:1] == ["started"], f"child did not start: {first}"
        time.sleep(seconds)
        os.kill(proc.pid, signal.SIGKILL)
        out, _err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    logged = [int(line.split()[1]) for line in out.splitlines() if line.startswith("logged ")]
    assert logged, "the child logged nothing before the kill"
    return first[1], logged[-1]


def _assert_recovered(client: MlflowClient, project: str, logged: int) -> None:
    experiment = client.get_experiment_by_name(project)
    assert experiment is not None, "not even the run arrived"
    runs = client.search_runs([experiment.experiment_id], "attributes.run_name = 'victim'")
    assert len(runs) == 1, f"{len(runs)} runs named victim: the run must exist exactly once"
    run = runs[0]
    history = client.get_metric_history(run.info.run_id, "loss")
    steps = sorted(m.step for m in history)
    print(f"{project}: {len(steps)} points arrived of {logged} reported logged before the kill")
    assert len(steps) == len(set(steps)), f"{len(steps) - len(set(steps))} points arrived twice"
    assert steps == list(range(len(steps))), "points are missing in the middle of the series"
    assert len(steps) >= 0.95 * logged, f"only {len(steps)} of {logged} points survived the kill"
    assert len(steps) <= logged + 100  # at most the burst in progress beyond the last one reported
    assert all(m.value == m.step * 0.001 for m in history)
    assert run.info.status == "KILLED"
    assert run.info.end_time == max(m.timestamp for m in history), "end time must be the last point's"
    assert run.data.params == {"lr": "0.1"}
    assert run.data.tags["oom"] == "" and run.data.tags["mlflow.note.content"] == "killed on purpose"
    assert json.loads(run.data.tags["trackbridge.summary"]) == {"phase": "train"}


def _journals(home: Path) -> list[Path]:
    return sorted((home / "spool").glob("*/*.jsonl"))


def _count_sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Steps of every point the writer hands to MLflow from now on in this process.  MLflow's
    SQL store silently drops an exact duplicate point, so the store alone cannot show a
    re-send: this does."""
    sent: list[int] = []
    original = MlflowWriter.log_metrics

    def counting(self: MlflowWriter, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        sent.extend(p.step for _, p in points)
        original(self, run_id, points)

    monkeypatch.setattr(MlflowWriter, "log_metrics", counting)
    return sent


def _steps_at(client: MlflowClient, project: str) -> set[int]:
    experiment = client.get_experiment_by_name(project)
    if experiment is None:
        return set()
    return {m.step for r in client.search_runs([experiment.experiment_id])
            for m in client.get_metric_history(r.info.run_id, "loss")}


@pytest.mark.slow
def test_killed_with_the_server_up(mlflow_server: MlflowServer, tmp_path: Path, isolated_env: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    project = "crash-server-up"
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server.url)
    local_id, logged = _train_and_kill(tmp_path, isolated_env, env, project)
    assert logged >= 10_000, f"the child logged only {logged} points in 4 s"
    home = isolated_env / ".trackbridge"
    assert [p.stem for p in _journals(home)] == [local_id], "the killed run must leave its journal"
    client = MlflowClient(mlflow_server.url)
    before = _steps_at(client, project)
    assert before, "with the server up, the child should have sent part of the run itself"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    sent = _count_sent(monkeypatch)
    dry = CliRunner().invoke(main, ["replay", "--dry-run"])
    assert dry.exit_code == 0 and "mark KILLED" in dry.output, dry.output
    result = CliRunner().invoke(main, ["replay"])
    assert result.exit_code == 0, result.output
    assert "marked KILLED" in result.output
    print(f"crash-server-up: {len(before)} points there before the replay, {len(sent)} sent by it")
    assert len(sent) == len(set(sent)) and not before & set(sent), "the replay re-sent points already there"
    _assert_recovered(client, project, logged)
    again = CliRunner().invoke(main, ["replay"])
    assert again.exit_code == 0 and "Nothing to replay" in again.output
    _assert_recovered(client, project, logged)
    assert not _journals(home)


@pytest.mark.slow
def test_killed_with_the_server_down_then_replayed(tmp_path: Path, isolated_env: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    project = "crash-server-down"
    port = free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    _local_id, logged = _train_and_kill(tmp_path, isolated_env, env, project)
    assert logged >= 10_000, f"the child logged only {logged} points in 4 s"

    server = MlflowServer(tmp_path / "server", port=port).start()
    try:
        sent = _count_sent(monkeypatch)
        result = CliRunner().invoke(main, ["replay"])
        assert result.exit_code == 0, result.output
        assert "marked KILLED" in result.output
        assert len(sent) == len(set(sent)), "the replay sent some points twice"
        _assert_recovered(MlflowClient(server.url), project, logged)
    finally:
        server.stop()
    assert not _journals(isolated_env / ".trackbridge")


@pytest.mark.slow
def test_the_next_start_run_sends_what_a_killed_process_left(tmp_path: Path, isolated_env: Path) -> None:
    project = "crash-next-run"
    port = free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    _local_id, logged = _train_and_kill(tmp_path, isolated_env, env, project)

    server = MlflowServer(tmp_path / "server", port=port).start()
    try:
        script = tmp_path / "next.py"
        script.write_text(NEXT)
        proc = subprocess.run([sys.executable, str(script), project], capture_output=True, text=True, env=env,
                              cwd=isolated_env, timeout=180)
        assert proc.returncode == 0, proc.stderr
        assert "left unsent by a process that ended" in proc.stderr and "KILLED" in proc.stderr, proc.stderr
        assert "are sent" in proc.stderr, proc.stderr
        client = MlflowClient(server.url)
        _assert_recovered(client, project, logged)
        experiment = client.get_experiment_by_name(project)
        names = sorted(r.info.run_name for r in client.search_runs([experiment.experiment_id]))
        assert names == ["next", "victim"]
    finally:
        server.stop()
    assert not _journals(isolated_env / ".trackbridge")
