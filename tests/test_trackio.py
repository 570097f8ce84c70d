"""``trackio:PATH``: projects logged by trackio itself (``init/log/log_system/finish`` in
a child process, as trackio fixes its directory on import) are read whole, copied into
``dir:`` and MLflow with ``check`` passing, a second copy adds nothing, ``sync`` after a
resumed run logged more adds only the new points, and what trackbridge cannot carry yet
(trackio media) is declared, never dropped silently."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from corpus import invoke, set_remotes

from trackbridge.backends.trackio.backend import TrackioBackend
from trackbridge.backends.trackio.schema import UnsupportedSchemaError

LOG = textwrap.dedent("""
    import sys
    import trackio
    start, stop, resume = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    quiet = dict(auto_log_cpu=False, auto_log_gpu=False, embed=False)
    trackio.init(project="vision", name="resnet", group="sweep-1", resume=resume,
                 config={"lr": 0.1, "opt": {"name": "sgd", "momentum": 0.9}}, **quiet)
    for step in range(start, stop):
        trackio.log({"train/loss": 1.0 / (step + 1), "acc": step / 100}, step=step)
    trackio.log({"nan": float("nan")}, step=stop)
    trackio.log_system({"cpu": 12.5})
    if start == 0:
        trackio.log({"preview": trackio.Histogram([1, 2, 2, 3])}, step=stop)
    trackio.finish()
""")


def _log(root: Path, start: int, stop: int, resume: str = "never") -> None:
    env = {**os.environ, "TRACKIO_DIR": str(root), "HF_HOME": str(root.parent / "hf"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", LOG, str(start), str(stop), resume], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture
def trackio_dir(tmp_path: Path) -> Path:
    root = tmp_path / "trackio"
    _log(root, 0, 50)
    return root


def test_a_project_is_read_whole_with_its_config_group_and_system_metrics(trackio_dir: Path) -> None:
    reader = TrackioBackend({"path": str(trackio_dir)}).reader()
    assert [e.name for e in reader.list_experiments()] == ["vision"]
    (run,) = reader.list_runs("vision")
    assert run.name == "resnet" and run.params == {"lr": 0.1, "opt": {"name": "sgd", "momentum": 0.9}}
    assert run.tags == {"trackio.group": "sweep-1"} and run.start_time is not None
    points = [p for page in reader.iter_metric_history(run.run_id, "train/loss", page_size=7) for p in page]
    assert [p.step for p in points] == list(range(50)) and points[3].value == 0.25
    nan = next(iter(reader.iter_metric_history(run.run_id, "nan")))[0]
    assert nan.value != nan.value and nan.step == 50
    assert run.system_metrics["cpu"].value == 12.5 and "cpu" not in run.metrics
    assert "media:preview" in run.unread and "preview" not in run.metrics  # declared, never a fake series


def test_copies_into_dir_and_mlflow_check_equal_and_sync_adds_only_new_points(
        trackio_dir: Path, tmp_path: Path, sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    set_remotes(monkeypatch, dst=sqlite_uri)
    src = f"trackio:{trackio_dir}"
    for dst in (f"dir:{tmp_path / 'archive'}", "dst"):
        first = json.loads(invoke("copy", src, dst, "--json").stdout)
        assert first["ok"], first["errors"]
        assert first["stats"]["runs_created"] == 1 and first["stats"]["points"] == 2 * 50 + 1 + 1
        assert invoke("check", src, dst).exit_code == 0
        again = json.loads(invoke("copy", src, dst, "--json").stdout)
        assert again["stats"]["runs_created"] == 0 and again["stats"]["points"] == 0
    planned = invoke("plan", src, f"dir:{tmp_path / 'other'}")
    assert "preview" in planned.stdout  # trackio media are listed as not carried

    _log(trackio_dir, 50, 60, resume="must")  # the same run, resumed: 10 more steps
    synced = json.loads(invoke("sync", src, "dst", "--json").stdout)
    assert synced["ok"], synced["errors"]
    assert synced["stats"]["runs_created"] == 0 and synced["stats"]["points"] == 2 * 10 + 1 + 1
    checked = invoke("check", src, "dst")
    assert checked.exit_code == 0, checked.stdout


def test_a_database_of_another_schema_is_refused_naming_what_is_missing(tmp_path: Path) -> None:
    root = tmp_path / "trackio"
    root.mkdir()
    with sqlite3.connect(root / "old.db") as db:
        db.execute("CREATE TABLE metrics (id INTEGER PRIMARY KEY, timestamp TEXT, run_name TEXT, step INTEGER, "
                   "metrics TEXT)")
    with pytest.raises(UnsupportedSchemaError, match="table metrics has no column.*run_id.*trackio 0.4"):
        list(TrackioBackend({"path": str(root)}).reader().list_runs("old"))
