"""``trackbridge replay``: runs logged by a process while the server was down, sent later, once.

The logging process is a real subprocess that exits with the server still down;
the server is then started on the address the spool recorded.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)
from servers import MlflowServer, free_port

from trackbridge.cli import main

SCRIPT = textwrap.dedent(
    """
    import pathlib
    import trackbridge as tb

    notes = pathlib.Path("notes.txt")
    notes.write_text("written offline")
    with tb.start_run(project="offline", name="parent", config={"opt": {"lr": 0.5}}) as parent:
        with tb.start_run(name="child") as child:
            for step in range(1500):
                child.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
            child.log_artifact(notes)
        parent.log_metrics({"best": 0.25})
    notes.unlink()
    print(parent.id, child.id)
    """
)


@pytest.fixture
def offline_spool(tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[str]]]:
    """Run SCRIPT against a port nobody listens on; yield (port, [parent id, child id])."""
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(var, raising=False)
    port = free_port()
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                          cwd=isolated_env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "trackbridge replay" in proc.stderr, "the user must be told how to send the spool"
    yield port, proc.stdout.split()


def _runs(client: MlflowClient) -> dict[str, object]:
    experiment = client.get_experiment_by_name("offline")
    if experiment is None:
        return {}
    return {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}


@pytest.mark.slow
def test_replay_sends_the_spool_exactly_once(offline_spool: tuple[int, list[str]], tmp_path: Path,
                                             isolated_env: Path) -> None:
    port, (parent_id, child_id) = offline_spool
    spool_dir = isolated_env / ".trackbridge" / "spool" / "mlflow"
    assert {p.name for p in spool_dir.glob("*.jsonl")} == {f"{parent_id}.jsonl", f"{child_id}.jsonl"}
    snapshot = tmp_path / "snapshot"
    shutil.copytree(spool_dir, snapshot)
    runner = CliRunner()

    dry = runner.invoke(main, ["replay", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would send" in dry.output and "1,500" in dry.output
    assert len(list(spool_dir.glob("*.jsonl"))) == 2, "a dry run must not consume anything"

    server = MlflowServer(tmp_path / "server", port=port).start()
    try:
        client = MlflowClient(server.url)
        assert _runs(client) == {}
        result = runner.invoke(main, ["replay"])
        assert result.exit_code == 0, result.output
        assert result.output.count("sent") == 2
        _assert_complete(client, tmp_path)

        again = runner.invoke(main, ["replay"])
        assert again.exit_code == 0 and "Nothing to replay" in again.output

        # A crash after the platform took everything but before the spool knew:
        # the same spool replayed from the start must still not duplicate anything.
        shutil.rmtree(spool_dir)
        shutil.copytree(snapshot, spool_dir)
        state = json.loads((spool_dir / f"{parent_id}.state.json").read_text())
        assert state["state"]["create_attempted"] and state["state"]["remote_run_id"] is None
        redo = runner.invoke(main, ["replay"])
        assert redo.exit_code == 0, redo.output
        _assert_complete(client, tmp_path)
    finally:
        server.stop()


def _assert_complete(client: MlflowClient, tmp_path: Path) -> None:
    runs = _runs(client)
    assert set(runs) == {"parent", "child"}, "each run exactly once"
    parent, child = runs["parent"], runs["child"]
    assert parent.info.status == "FINISHED" and child.info.status == "FINISHED"
    assert parent.data.params == {"opt.lr": "0.5"}
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    history = client.get_metric_history(child.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(s, 1.0 / (s + 1)) for s in range(1500)]
    assert [m.value for m in client.get_metric_history(parent.info.run_id, "best")] == [0.25]
    notes = client.download_artifacts(child.info.run_id, "notes.txt", str(tmp_path / "dl"))
    assert Path(notes).read_text() == "written offline"


def test_replay_with_an_empty_spool(isolated_env: Path) -> None:
    result = CliRunner().invoke(main, ["replay"])
    assert result.exit_code == 0 and "Nothing to replay" in result.output
