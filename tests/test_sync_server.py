"""copy/sync/check against real ``mlflow server`` processes: server -> server,
server -> embedded sqlite and back."""
from __future__ import annotations

import json
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
