"""``trackio:PATH``: projects logged by trackio itself (``init/log/log_system/finish`` in
a child process, as trackio fixes its directory on import) are read whole, copied into
``dir:`` and MLflow with ``check`` passing, a second copy adds nothing, ``sync`` after a
resumed run logged more adds only the new points, and trackio's media (histograms,
images) are media series, never fake metric series.  What trackbridge writes into Trackio
is what trackio's own API shows, also into a project trackio itself made (its importers
refuse those), and the facade logs live into Trackio."""
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
from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)

import trackbridge as tb
from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.backends.trackio.backend import TrackioBackend
from trackbridge.model import MetricPoint, RunStatus
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
        import numpy as np
        trackio.log({"preview": trackio.Histogram([1, 2, 2, 3]),
                     "sample": trackio.Image(np.zeros((4, 4, 3), dtype=np.uint8), caption="zero")}, step=stop)
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
    assert run.media["preview"].kind == "histogram" and "preview" not in run.metrics  # media, never a fake series
    (histogram,) = reader.iter_media(run.run_id, "preview")
    assert sum(histogram.data["values"]) == 4 and len(histogram.data["bins"]) == len(histogram.data["values"]) + 1
    (image,) = reader.iter_media(run.run_id, "sample")
    assert image.caption == "zero" and reader.download_media(run.run_id, "sample", image, trackio_dir.parent / "m") \
        .read_bytes().startswith(b"\x89PNG")


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
    assert "preview" in planned.stdout  # trackio media: kept as files where the destination has no such kind

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


#: what trackio's own API shows of a project: runs, each one's config and every log row.
SHOW = textwrap.dedent("""
    import json, sys
    from trackio.sqlite_storage import SQLiteStorage
    project = sys.argv[1]
    out = {}
    for run in SQLiteStorage.get_runs(project):
        logs = SQLiteStorage.get_logs(project, run)
        out[run] = {"config": SQLiteStorage.get_run_config(project, run),
                    "logs": [{k: v for k, v in row.items() if k != "timestamp"} for row in logs]}
    print(json.dumps(out, default=str))
""")


def _show(root: Path, project: str) -> dict:
    env = {**os.environ, "TRACKIO_DIR": str(root), "HF_HOME": str(root.parent / "hf"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", SHOW, project], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _archive(path: Path, experiment: str, steps: range) -> str:
    writer = ArchiveBackend({"path": str(path)}).writer()
    run = writer.create_run(writer.ensure_experiment(experiment), name="copied", start_time=1_700_000_000_000,
                            tags={"team": "vision"})
    writer.log_params(run, {"lr": 0.01, "opt": {"name": "adam"}})
    writer.log_metrics(run, [(k, MetricPoint(s, v, 1_700_000_000_000 + s)) for s in steps
                             for k, v in (("loss", 1.0 / (s + 1)), ("acc", s / 100))])
    writer.finish_run(run, RunStatus.FINISHED, 1_700_000_100_000)
    writer.close()
    return run


def test_what_a_copy_writes_is_what_trackio_shows_even_in_a_project_trackio_made(
        trackio_dir: Path, tmp_path: Path) -> None:
    _archive(tmp_path / "src", "vision", range(20))
    src, dst = f"dir:{tmp_path / 'src'}", f"trackio:{trackio_dir}"
    done = json.loads(invoke("copy", src, dst, "--json").stdout)  # into trackio's own project "vision"
    assert done["ok"], done["errors"]
    assert invoke("check", src, dst).exit_code == 0
    shown = _show(trackio_dir, "vision")
    assert set(shown) == {"resnet", "copied"}  # trackio's run and ours, side by side
    copied = shown["copied"]
    assert copied["config"]["lr"] == 0.01 and copied["config"]["opt"] == {"name": "adam"}
    assert copied["config"]["trackbridge.tags"]["team"] == "vision"
    assert [(row["step"], row["loss"], row["acc"]) for row in copied["logs"]] == [
        (s, 1.0 / (s + 1), s / 100) for s in range(20)]

    again = json.loads(invoke("copy", src, dst, "--json").stdout)
    assert again["stats"]["runs_created"] == 0 and again["stats"]["points"] == 0
    writer = ArchiveBackend({"path": str(tmp_path / "src")}).writer()  # the source run goes on
    (run,) = ArchiveBackend({"path": str(tmp_path / "src")}).reader().list_runs("vision")
    writer.log_metrics(run.run_id, [("loss", MetricPoint(s, 0.5, 1_700_000_000_000 + s)) for s in range(20, 25)])
    writer.close()
    synced = json.loads(invoke("sync", src, dst, "--json").stdout)
    assert synced["ok"] and synced["stats"]["points"] == 5, synced
    assert invoke("check", src, dst).exit_code == 0
    assert len(_show(trackio_dir, "vision")["copied"]["logs"]) == 25


def test_the_facade_logs_live_into_trackio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "live"
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "trackio")
    monkeypatch.setenv("TRACKIO_DIR", str(root))
    with tb.start_run(project="live", name="trial", config={"lr": 0.1}) as run:
        for step in range(5):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    shown = _show(root, "live")
    assert [row["loss"] for row in shown["trial"]["logs"]] == [1.0 / (s + 1) for s in range(5)]
    assert shown["trial"]["config"]["lr"] == 0.1


@pytest.mark.parametrize("dst", ["wandb-offline", "comet-offline"])
def test_copies_into_the_offline_vendor_formats_check_equal(trackio_dir: Path, tmp_path: Path, dst: str) -> None:
    src, target = f"trackio:{trackio_dir}", f"{dst}:{tmp_path / dst}"
    first = json.loads(invoke("copy", src, target, "--json").stdout)
    assert first["ok"], first["errors"]
    checked = invoke("check", src, target)
    assert checked.exit_code == 0, checked.stdout
    again = json.loads(invoke("copy", src, target, "--json").stdout)
    assert again["stats"]["runs_created"] == 0 and again["stats"]["points"] == 0
