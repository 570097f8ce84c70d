"""copy/sync/check against real ``mlflow server`` processes: server -> server,
server -> embedded sqlite and back."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from corpus import build_corpus, history, invoke, runs_by_source, set_remotes

pytestmark = pytest.mark.slow


def _copy_and_check(src: str, dst: str, *selection: str) -> dict:
    out = invoke("copy", src, dst, *selection, "--json")
    assert out.stdout.startswith("{"), out.stdout + out.stderr
    stats = json.loads(out.stdout)
    assert out.exit_code == 0, stats["errors"]
    checked = invoke("check", src, dst, *selection)
    assert checked.exit_code == 0, checked.stdout
    return stats["stats"]


def test_server_to_server_and_back_through_sqlite(mlflow_server, mlflow_server_b, sqlite_uri: str,
                                                  tmp_path: Path, monkeypatch) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]} "
    corpus = build_corpus(mlflow_server.url, tmp_path / "staging", prefix=prefix)
    set_remotes(monkeypatch, a=mlflow_server.url, b=mlflow_server_b.url, lite=sqlite_uri)
    selection = ("--experiment", corpus.experiment, "--experiment", corpus.other_experiment)

    stats = _copy_and_check("a", "b", *selection)
    assert (stats["runs_created"], stats["points"], stats["model_versions"]) == (4, corpus.total_points, 3)
    b = MlflowClient(mlflow_server_b.url)
    found = runs_by_source(mlflow_server_b.url)
    parent = found[corpus.runs["parent"]][0]
    assert len(history(b, parent.info.run_id, "loss")) == 2500
    aliases = b.get_registered_model(corpus.model).aliases  # REST gives versions as strings
    assert {k: int(v) for k, v in aliases.items()} == {"champion": 1, "challenger": 2}
    assert _copy_and_check("a", "b", *selection)["runs_created"] == 0  # no duplicates over REST either

    assert _copy_and_check("b", "lite", *selection)["runs_created"] == 4  # server -> embedded
    back = _copy_and_check("lite", f"a:{prefix}returned", "--experiment", corpus.experiment)  # embedded -> server
    assert back["runs_created"] == 3
    a = MlflowClient(mlflow_server.url)
    returned = a.search_runs([a.get_experiment_by_name(f"{prefix}returned").experiment_id])
    assert {r.data.tags["trackbridge.origin.run_id"] for r in returned} == {
        corpus.runs[n] for n in ("parent", "child/1 ✓", "child 2 émoji 🧪")}


def test_destination_server_killed_mid_copy_is_retried(mlflow_server, mlflow_server_b, tmp_path: Path,
                                                      monkeypatch) -> None:
    """kill -9 of the destination server during the metric transfer, restarted on the
    same port and store: the copy retries with backoff and ends complete, once."""
    prefix = f"k{uuid.uuid4().hex[:8]} "
    corpus = build_corpus(mlflow_server.url, tmp_path / "staging", prefix=prefix, with_model=False)
    set_remotes(monkeypatch, a=mlflow_server.url, b=mlflow_server_b.url)
    db = mlflow_server_b.root / "mlflow.db"

    def metric_rows() -> int:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM metrics m JOIN runs r ON m.run_uuid = r.run_uuid "
                "JOIN experiments e ON r.experiment_id = e.experiment_id WHERE e.name = ?",
                (corpus.experiment,)).fetchone()[0]

    args = [str(Path(sys.executable).with_name("trackbridge")), "copy", f"a:{corpus.experiment}",
            f"b:{corpus.experiment}", "--transfers", "1", "--json"]
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}  # our retries, not MLflow's
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output: dict[str, bytes] = {}
    reader = threading.Thread(target=lambda: output.update(zip(("out", "err"), proc.communicate(timeout=240))))
    reader.start()
    deadline = time.monotonic() + 120
    while metric_rows() == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the copy ended before the server could be killed"
    mlflow_server_b.kill()
    time.sleep(1.0)
    mlflow_server_b.start()
    reader.join(timeout=240)
    assert proc.returncode == 0, output.get("err", b"").decode()[-2000:]
    stats = json.loads(output["out"])["stats"]
    assert stats["retries"] >= 1 and stats["runs_created"] == 3
    found = runs_by_source(mlflow_server_b.url)
    assert all(len(found[corpus.runs[n]]) == 1 for n in ("parent", "child/1 ✓", "child 2 émoji 🧪"))
    assert invoke("check", f"a:{corpus.experiment}", f"b:{corpus.experiment}").exit_code == 0
