"""The Azure ML backend through the REAL azureml-mlflow plugin, against a REAL
``mlflow server`` under Azure's workspace URL prefix, behind a proxy enforcing
Azure ML's limits (tests/azureml_helpers.py).  A request that breaks a limit is
refused by the proxy, so each test proves the writer's compliance."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from azureml_helpers import SCOPE, TOKEN, AzureWorkspace, azureml_proxy, azureml_server, azureml_workspace  # noqa: F401

from trackbridge.backends.base import RunFilter
from trackbridge.errors import BackendError, TransientBackendError
from trackbridge.model import LoggedModel, MetricPoint, ModelVersion, RegisteredModel, RunStatus

T0 = 1_700_000_000_000


def _tracking_requests(ws: AzureWorkspace) -> list:
    return [s for s in ws.proxy.seen if "/api/2.0/mlflow/" in s.path]


def test_requests_go_through_the_plugin_under_the_workspace_prefix(azureml_workspace: AzureWorkspace) -> None:
    backend = azureml_workspace.backend()
    store = backend.connection.client._tracking_client.store
    assert type(store).__name__ == "AzureMLRestStore"
    assert type(backend.connection.client._get_registry_client().store).__name__ == "AzureMLflowModelRegistry"
    exp_id = backend.writer().ensure_experiment(azureml_workspace.experiment())
    seen = _tracking_requests(azureml_workspace)
    assert seen and all(s.path.startswith(f"/mlflow/v2.0{SCOPE}/api/2.0/mlflow/") for s in seen)
    assert [(s.path.rsplit('/mlflow/', 1)[1], s.status) for s in seen] == [
        ("experiments/get-by-name", 404), ("experiments/create", 200)] and exp_id  # 404: not there yet


def test_wrong_token_is_refused_and_not_printed(azureml_workspace: AzureWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TB_OTHER_TOKEN", "wrong-token-value")
    backend = azureml_workspace.backend(token_env="TB_OTHER_TOKEN")
    with pytest.raises(BackendError) as info:
        backend.writer().ensure_experiment(azureml_workspace.experiment())
    assert "wrong-token-value" not in str(info.value) and TOKEN not in str(info.value)
    assert azureml_workspace.proxy.seen[-1].status == 401


def test_round_trip_of_a_run(azureml_workspace: AzureWorkspace, tmp_path: Path) -> None:
    backend = azureml_workspace.backend()
    writer, reader = backend.writer(), backend.reader()
    name = azureml_workspace.experiment()
    exp_id = writer.ensure_experiment(name, {"team": "bridge ✓"})
    provenance = {"trackbridge.source.platform": "mlflow", "trackbridge.source.run_id": "abc",
                  "mlflow.source.name": "train.py", "mlflow.source.type": "LOCAL", "team": "ml 🚀"}
    parent = writer.create_run(exp_id, name="parent ✓", start_time=T0, user="ünï", tags=provenance)
    child = writer.create_run(exp_id, name="child", start_time=T0 + 5, parent_run_id=parent)
    writer.log_params(parent, {"lr": "0.01", "name with space": "émoji 🚀"})
    points = [("loss", MetricPoint(i, math.sin(i), T0 + i)) for i in range(1001)]
    points += [("loss", MetricPoint(2000, math.nan, T0 + 2000)), ("loss", MetricPoint(2001, math.inf, T0 + 2001)),
               ("loss", MetricPoint(2002, -math.inf, T0 + 2002))]
    writer.log_metrics(parent, points)
    writer.set_notes(parent, "notes ✓")
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "a.txt").write_text("hello ✓")
    writer.log_artifact(parent, tmp_path / "d", "files")
    writer.finish_run(parent, RunStatus.FINISHED, T0 + 60_000)

    create = azureml_workspace.proxy.requests("runs/create")
    assert not any(k.startswith("mlflow.source.") for s in create for k in s.tags)  # never at create
    batches = azureml_workspace.proxy.requests("runs/log-batch")
    assert max(s.metrics for s in batches) == 250 and sum(s.metrics for s in batches) == len(points)

    record = reader.get_run(parent)
    assert record.platform == "azureml" and record.name == "parent ✓" and record.status is RunStatus.FINISHED
    assert (record.start_time, record.end_time) == (T0, T0 + 60_000)
    assert {k: record.tags[k] for k in provenance} == provenance  # source tags set right after creation
    assert record.tags["trackbridge.source.user"] == "ünï" and "mlflow.user" not in record.tags
    assert record.notes == "notes ✓" and record.params["name with space"] == "émoji 🚀"
    assert record.url and record.url.startswith("https://ml.azure.com/runs/") and SCOPE in record.url
    assert reader.get_run(child).parent_run_id == parent

    pages = list(reader.iter_metric_history(parent, "loss", page_size=10_000))
    got = [p for page in pages for p in page]
    assert len(got) == len(points) and max(len(p) for p in pages) <= 999
    assert math.isnan(got[-3].value) and got[-2].value == math.inf and got[-1].value == -math.inf
    assert all(s.max_results == 999 for s in azureml_workspace.proxy.requests("metrics/get-history"))

    assert [a.path for a in reader.list_artifacts(parent)] == ["files/sub/a.txt"]
    local = reader.download_artifact(parent, "files/sub/a.txt", tmp_path / "out")
    assert local.read_text() == "hello ✓"

    listed = list(reader.list_runs(name, RunFilter(since=T0 + 1, tags={"team": "ml 🚀"})))
    assert listed == []  # the parent has the tag but starts before `since`: applied client-side
    assert [r.run_id for r in reader.list_runs(name, RunFilter(statuses=[RunStatus.FINISHED]))] == [parent]


def test_the_proxy_refuses_what_azure_refuses(azureml_workspace: AzureWorkspace) -> None:
    """The plain MLflow client through the same plugin breaks each limit: refused.
    (So the writer's passing the tests above is compliance, not a lax stand-in.)"""
    from mlflow.entities import Metric, RunTag
    from mlflow.exceptions import MlflowException

    backend = azureml_workspace.backend()
    client = backend.connection.client
    exp_id = backend.writer().ensure_experiment(azureml_workspace.experiment())
    with pytest.raises(MlflowException, match="mlflow.source.name"):
        client.create_run(exp_id, tags={"mlflow.source.name": "x.py"})
    run_id = client.create_run(exp_id).info.run_id
    with pytest.raises(MlflowException, match="Limit=250"):
        client.log_batch(run_id, metrics=[Metric("m", 1.0, T0, i) for i in range(251)])
    client.log_batch(run_id, tags=[RunTag(f"t{i}", "v") for i in range(49)])  # + mlflow.runName = 50
    with pytest.raises(MlflowException, match="at most 50 tags"):
        client.set_tag(run_id, "t-51", "v")
    with pytest.raises(MlflowException, match="less than 1000"):
        client._tracking_client.store.get_metric_history(run_id, "m", max_results=1000)
    with pytest.raises(MlflowException, match="mlflow.user"):
        client.set_tag(run_id, "mlflow.user", "someone")
    with pytest.raises(MlflowException):
        client.set_tag(run_id, "k" * 101, "v")


def test_user_tag_is_kept_not_sent(azureml_workspace: AzureWorkspace) -> None:
    backend = azureml_workspace.backend()
    writer = backend.writer()
    exp_id = writer.ensure_experiment(azureml_workspace.experiment())
    run_id = writer.create_run(exp_id, tags={"mlflow.user": "from-tags"})
    writer.set_tags(run_id, {"mlflow.user": "later"})  # moved, never sent
    tags = backend.reader().get_run(run_id).tags
    assert tags["trackbridge.source.user"] == "later"  # as a tag: the last value wins
    assert not any("mlflow.user" in s.tags for s in azureml_workspace.proxy.seen)


def test_throttling_is_retried_then_reported_as_transient(azureml_workspace: AzureWorkspace) -> None:
    backend = azureml_workspace.backend(http_retries=2)
    writer = backend.writer()
    exp_id = writer.ensure_experiment(azureml_workspace.experiment())
    run_id = writer.create_run(exp_id)
    azureml_workspace.proxy.fail_next(1, 429)
    writer.log_metrics(run_id, [("m", MetricPoint(0, 1.0, T0))])  # retried by MLflow's HTTP layer
    statuses = [s.status for s in azureml_workspace.proxy.requests("runs/log-batch")]
    assert statuses == [429, 200]
    azureml_workspace.proxy.fail_next(10, 503)
    with pytest.raises(TransientBackendError, match="retried"):
        writer.log_metrics(run_id, [("m", MetricPoint(1, 2.0, T0 + 1))])


def _model(ws: AzureWorkspace, backend, tmp_path: Path) -> tuple[str, str]:  # noqa: ANN001
    writer = backend.writer()
    exp_id = writer.ensure_experiment(ws.experiment())
    run_id = writer.create_run(exp_id, name="trainer")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    writer.log_artifact(run_id, folder, "model")
    return run_id, f"azure-model-{ws.experiment()}"


def test_registry_versions_stages_and_native_aliases(azureml_workspace: AzureWorkspace, tmp_path: Path) -> None:
    backend = azureml_workspace.backend()
    run_id, name = _model(azureml_workspace, backend, tmp_path)
    writer = backend.writer()
    writer.register_model(RegisteredModel(name, description="a model ✓", tags={"owner": "ü"}))
    v1 = writer.create_model_version(ModelVersion(name, "1", artifact_path="model", description="first",
                                                  tags={"v": "1"}, aliases=["champion"]), run_id)
    v2 = writer.create_model_version(ModelVersion(name, "2", artifact_path="model"), run_id)
    writer.set_version_stage(name, v1.version, "Production")
    writer.set_version_stage(name, v2.version, "Staging")
    writer.set_model_alias(name, "champion", v2.version)  # moves
    [model] = [m for m in backend.reader().list_registered_models() if m.name == name]
    assert (model.description, model.tags) == ("a model ✓", {"owner": "ü"})
    assert [(v.version, v.stage, v.aliases) for v in model.versions] == [("1", "Production", []), ("2", "Staging", ["champion"])]
    assert model.versions[0].run_id == run_id and model.versions[0].source == f"runs:/{run_id}/model"
    assert model.versions[0].tags == {"v": "1"} and v1.aliases == ["champion"]
    assert azureml_workspace.proxy.requests("registered-models/alias")


def test_aliases_kept_as_version_tags_where_the_registry_refuses_them(azureml_workspace: AzureWorkspace,
                                                                        tmp_path: Path) -> None:
    azureml_workspace.proxy.aliases = False
    backend = azureml_workspace.backend()
    run_id, name = _model(azureml_workspace, backend, tmp_path)
    writer = backend.writer()
    writer.register_model(RegisteredModel(name))
    writer.create_model_version(ModelVersion(name, "1", artifact_path="model", aliases=["champion", "old"]), run_id)
    v2 = writer.create_model_version(ModelVersion(name, "2", artifact_path="model"), run_id)
    writer.set_model_alias(name, "champion", v2.version)
    writer.delete_model_alias(name, "old")
    [model] = [m for m in backend.reader().list_registered_models() if m.name == name]
    assert [(v.version, v.aliases, v.tags) for v in model.versions] == [("1", [], {}), ("2", ["champion"], {})]
    refused = azureml_workspace.proxy.requests("registered-models/alias")
    assert refused and all(s.status == 404 for s in refused)
    native = azureml_workspace.backend(aliases="native").writer()
    with pytest.raises(BackendError):
        native.set_model_alias(name, "x", "1")


def test_models_fall_back_to_run_artifacts_without_the_logged_model_api(azureml_workspace: AzureWorkspace,
                                                                         tmp_path: Path) -> None:
    azureml_workspace.proxy.logged_models = False
    backend = azureml_workspace.backend()
    writer = backend.writer()
    run_id = writer.create_run(writer.ensure_experiment(azureml_workspace.experiment()), name="m")
    folder = tmp_path / "clf"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  python_function: {}\n  sklearn: {}\n")
    (folder / "model.pkl").write_bytes(b"\x00\x01")
    logged = writer.log_model(run_id, folder, LoggedModel("clf", "clf"))
    assert (logged.model_id, logged.artifact_path, logged.flavors) == (None, "clf", ["python_function", "sklearn"])
    record = backend.reader().get_run(run_id)  # listing logged models is refused too: tolerated
    assert [(m.name, m.flavors) for m in record.models] == [("clf", ["python_function", "sklearn"])]
    assert {a.path for a in backend.reader().list_artifacts(run_id)} == {"clf/MLmodel", "clf/model.pkl"}
    name = f"fallback-{azureml_workspace.experiment()}"
    writer.register_model(RegisteredModel(name))
    version = writer.create_model_version(ModelVersion(name, "1", source="models:/m-0123"), run_id)
    assert version.source == f"runs:/{run_id}/clf"
    refused = azureml_workspace.proxy.requests("logged-models/create") + azureml_workspace.proxy.requests("logged-models/search")
    assert refused and all(s.status == 404 for s in refused)


def test_one_registered_model_is_read_with_its_recorded_aliases(azureml_workspace: AzureWorkspace,
                                                                tmp_path: Path) -> None:
    azureml_workspace.proxy.aliases = False
    backend = azureml_workspace.backend()
    run_id, name = _model(azureml_workspace, backend, tmp_path)
    writer = backend.writer()
    writer.register_model(RegisteredModel(name))
    writer.create_model_version(ModelVersion(name, "1", artifact_path="model", aliases=["prod"]), run_id)
    model = backend.reader().get_registered_model(name)
    assert model is not None and [(v.version, v.aliases, v.tags) for v in model.versions] == [("1", ["prod"], {})]
    assert backend.reader().get_registered_model(name + "-missing") is None


def test_notes_and_summary_longer_than_a_tag_are_kept_whole(azureml_workspace: AzureWorkspace) -> None:
    backend = azureml_workspace.backend()
    writer, reader = backend.writer(), backend.reader()
    run_id = writer.create_run(writer.ensure_experiment(azureml_workspace.experiment()), name="long")
    notes = "# Notes ✓\n" + "line of notes\n" * 200
    writer.set_notes(run_id, notes)
    writer.log_summary(run_id, {"best": 0.5})
    writer.log_summary(run_id, {f"metric/{i:03d}": i / 7 for i in range(100)})  # > 1000 characters as JSON
    writer.log_summary(run_id, {"best": 0.75})
    record = reader.get_run(run_id)
    assert record.notes == notes
    assert record.summary["best"] == 0.75 and len(record.summary) == 101
    assert list(reader.list_artifacts(run_id)) == []  # the fields' files are not the user's artifacts
    assert all(s.status < 400 for s in azureml_workspace.proxy.requests("runs/log-batch"))
