"""The logging facade end to end into a real embedded MLflow store, read back with plain MlflowClient."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from mlflow import MlflowClient

from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)

import trackbridge as tb
from trackbridge.errors import TrackbridgeError
from trackbridge.facade.codec import decode
from trackbridge.facade.ops import LOCAL_ID_TAG


@pytest.fixture(scope="module")
def shared_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite store for the module (creating one costs MLflow ~2 s of migrations);
    tests use their own experiment names."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('facade-store') / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    return uri


@pytest.fixture
def store(shared_uri: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    """The facade's default backend ("mlflow") pointed at the module's sqlite store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shared_uri)
    return MlflowClient(shared_uri)


def _remote(run: tb.Run) -> str:
    remote_id = run.remote_ids["mlflow"]
    assert remote_id is not None, "the run was never created at the backend"
    return remote_id


def test_full_run_lands_in_mlflow(store: MlflowClient, tmp_path: Path) -> None:
    plot = tmp_path / "plot.txt"
    plot.write_text("a plot")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(pickle.dumps({"w": [1, 2, 3]}))

    with tb.start_run(project="full", name="trial-1", config={"lr": 0.1, "opt": {"beta": 0.9, "eps": 1e-8}},
                      tags={"team": "vision"}) as run:
        assert tb.active_run() is run
        run.log_params({"layers": [64, 32], "seed": 7})
        for step in range(25):
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 25}, step=step)
        run.set_tags({"stage": "dev"})
        run.log_artifact(plot)
        plot.unlink()  # a copy was taken: the user may delete the file at once
        run.log_model(model_dir, name="model")
        run.register_model("demo-model", aliases=["champion"], description="first", tags={"k": "v"})
    assert tb.active_run() is None
    assert run.status.value == "FINISHED"

    got = store.get_run(_remote(run))
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "trial-1"
    assert store.get_experiment(got.info.experiment_id).name == "full"
    assert got.data.params == {
        "lr": "0.1", "opt.beta": "0.9", "opt.eps": "1e-08", "layers": "[64, 32]", "seed": "7",
    }
    assert got.data.tags["team"] == "vision" and got.data.tags["stage"] == "dev"
    assert got.data.tags[LOCAL_ID_TAG] == run.id
    history = store.get_metric_history(got.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(s, 1.0 / (s + 1)) for s in range(25)]
    assert len(store.get_metric_history(got.info.run_id, "acc")) == 25
    assert [a.path for a in store.list_artifacts(got.info.run_id)] == ["plot.txt"]

    versions = store.search_model_versions("name = 'demo-model'")
    assert len(versions) == 1
    version = store.get_model_version("demo-model", versions[0].version)  # search omits model_id
    assert version.run_id == got.info.run_id
    assert version.description == "first" and version.tags == {"k": "v"}
    assert store.get_model_version_by_alias("demo-model", "champion").version == version.version
    logged = store.search_logged_models([got.info.experiment_id])
    assert [m.name for m in logged] == ["model"] and logged[0].source_run_id == got.info.run_id
    assert version.source == logged[0].artifact_location


def test_module_level_shortcuts_act_on_the_active_run(store: MlflowClient) -> None:
    run = tb.init(project="demo", name="shortcuts")
    tb.log_params({"a": 1})
    tb.log_metrics({"m": 2.5})
    tb.log_metrics({"m": 3.5})
    tb.set_tags({"t": "x"})
    tb.finish()
    got = store.get_run(_remote(run))
    assert got.data.params == {"a": "1"}
    assert got.data.tags["t"] == "x"
    assert sorted((m.step, m.value) for m in store.get_metric_history(got.info.run_id, "m")) == [(0, 2.5), (1, 3.5)]
    with pytest.raises(TrackbridgeError, match="no active run"):
        tb.log_metrics({"m": 1.0})


def test_exception_inside_with_finishes_failed_and_propagates(store: MlflowClient) -> None:
    with pytest.raises(ZeroDivisionError):
        with tb.start_run(project="demo", name="boom") as run:
            run.log_metrics({"x": 1.0}, step=0)
            1 / 0
    got = store.get_run(_remote(run))
    assert got.info.status == "FAILED"
    assert len(store.get_metric_history(got.info.run_id, "x")) == 1


def test_nested_runs_point_at_their_parent(store: MlflowClient) -> None:
    with tb.start_run(project="sweep", name="parent") as parent:
        with tb.start_run(name="implicit-child") as child:  # started inside: nested
            child.log_metrics({"x": 1.0})
        explicit = tb.start_run(project="sweep", name="explicit-child", parent=parent)
        explicit.finish()
    parent_id = _remote(parent)
    assert store.get_run(_remote(child)).data.tags["mlflow.parentRunId"] == parent_id
    assert store.get_run(_remote(explicit)).data.tags["mlflow.parentRunId"] == parent_id
    assert "mlflow.parentRunId" not in store.get_run(parent_id).data.tags
    experiment = store.get_run(parent_id).info.experiment_id
    assert store.get_run(_remote(child)).info.experiment_id == experiment  # inherits the project


def test_logging_to_a_finished_run_is_an_error(store: MlflowClient) -> None:
    run = tb.start_run(project="demo")
    run.finish()
    with pytest.raises(TrackbridgeError, match="finished"):
        run.log_metrics({"x": 1.0})


def test_register_after_finish_picks_the_best_run(store: MlflowClient, tmp_path: Path) -> None:
    model_file = tmp_path / "m.pkl"
    runs = []
    for score in (0.2, 0.9, 0.5):
        model_file.write_bytes(pickle.dumps(score))
        with tb.start_run(project="pick", config={"score": score}) as run:
            run.log_metrics({"score": score})
            run.log_model(model_file, name="clf")
        runs.append((score, run))
    best = max(runs, key=lambda item: item[0])[1]
    best.register_model("picked", aliases=["champion"])
    assert best.flush(timeout=60)
    version = store.get_model_version_by_alias("picked", "champion")
    assert version.run_id == _remote(best)


def test_fan_out_each_backend_gets_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uris = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        uris[name] = f"sqlite:///{tmp_path / name / 'mlflow.db'}"
        monkeypatch.setenv(f"TRACKBRIDGE_REMOTE_{name.upper()}_BACKEND", "mlflow")
        monkeypatch.setenv(f"TRACKBRIDGE_REMOTE_{name.upper()}_TRACKING_URI", uris[name])
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "a,b")
    artifact = tmp_path / "notes.txt"
    artifact.write_text("hello")
    with tb.start_run(project="fan", config={"p": 1}) as run:
        for step in range(10):
            run.log_metrics({"loss": float(step)}, step=step)
        run.log_artifact(artifact)
    assert set(run.remote_ids) == {"a", "b"}
    for name, uri in uris.items():
        client = MlflowClient(uri)
        got = client.get_run(run.remote_ids[name])
        assert got.data.params == {"p": "1"}
        assert len(client.get_metric_history(got.info.run_id, "loss")) == 10
        assert [a.path for a in client.list_artifacts(got.info.run_id)] == ["notes.txt"]


def test_fan_out_a_dead_backend_does_not_affect_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from servers import free_port

    good = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("TRACKBRIDGE_REMOTE_GOOD_BACKEND", "mlflow")
    monkeypatch.setenv("TRACKBRIDGE_REMOTE_GOOD_TRACKING_URI", good)
    monkeypatch.setenv("TRACKBRIDGE_REMOTE_DEAD_BACKEND", "mlflow")
    monkeypatch.setenv("TRACKBRIDGE_REMOTE_DEAD_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TRACKBRIDGE_REMOTE_DEAD_HTTP_RETRIES", "0")
    with tb.start_run(project="iso", backend="dead,good") as run:
        for step in range(50):
            run.log_metrics({"loss": float(step)}, step=step)
    client = MlflowClient(good)
    assert len(client.get_metric_history(run.remote_ids["good"], "loss")) == 50
    assert run.remote_ids["dead"] is None
    spool = tmp_path / "work" / ".trackbridge" / "spool" / "dead" / f"{run.id}.jsonl"
    ops = [decode(line) for line in spool.read_bytes().splitlines()]
    assert ops[0]["op"] == "create" and ops[-1]["op"] == "finish"
    assert sum(len(op["points"]) for op in ops if op["op"] == "metrics") == 50
    assert "trackbridge replay" in caplog.text
