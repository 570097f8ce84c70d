"""Runs left open are finished and flushed when the process exits (atexit)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mlflow import MlflowClient

from trackbridge.facade.ops import LOCAL_ID_TAG

SCRIPT = textwrap.dedent(
    """
    import sys
    import trackbridge as tb

    run = tb.init(project="exit", name=sys.argv[1], config={"mode": sys.argv[1]})
    for step in range(3000):
        run.log_metrics({"x": float(step)}, step=step)
    print(run.id, flush=True)
    if sys.argv[1] == "crash":
        raise RuntimeError("training crashed")
    # no finish(): the exit hook must finish and flush
    """
)


def _run_script(tmp_path: Path, mode: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    proc = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, env=env, timeout=120)
    return uri, proc


def _find(uri: str, local_id: str):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("exit")
    runs = client.search_runs([experiment.experiment_id], f"tags.`{LOCAL_ID_TAG}` = '{local_id}'")
    assert len(runs) == 1
    return client, runs[0]


def test_exit_without_finish_flushes_everything(tmp_path: Path) -> None:
    uri, proc = _run_script(tmp_path, "clean")
    assert proc.returncode == 0, proc.stderr
    client, run = _find(uri, proc.stdout.split()[0])
    assert run.info.status == "FINISHED"
    assert run.data.params == {"mode": "clean"}
    assert len(client.get_metric_history(run.info.run_id, "x")) == 3000


def test_exit_on_uncaught_exception_marks_the_run_failed(tmp_path: Path) -> None:
    uri, proc = _run_script(tmp_path, "crash")
    assert proc.returncode == 1 and "training crashed" in proc.stderr
    client, run = _find(uri, proc.stdout.split()[0])
    assert run.info.status == "FAILED"
    assert len(client.get_metric_history(run.info.run_id, "x")) == 3000
