"""Runs made by MLflow's own API (not by our writer) read correctly, and runs our
writer made are what MLflow's own API expects."""
from __future__ import annotations

from pathlib import Path

import pytest

from trackbridge.backends.mlflow import MlflowBackend
from trackbridge.model import LoggedModel, ModelVersion, RegisteredModel, RunStatus


@pytest.fixture
def store_uri(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """MLflow's fluent API only follows the global URI: point it (env only, restored
    after the test) at a fresh sqlite store."""
    Path(sqlite_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    return sqlite_uri


def test_reads_a_run_logged_with_mlflow_sklearn(store_uri: str, tmp_path: Path) -> None:
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment("fluent")
    with mlflow.start_run(run_name="fluent-run") as active:
        mlflow.log_params({"C": 1.0, "solver": "lbfgs"})
        mlflow.log_metric("acc", 0.9, step=3)
        mlflow.set_tag("mlflow.note.content", "made by mlflow")
        clf = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        info = mlflow.sklearn.log_model(clf, name="clf")
    mlflow.register_model(f"models:/{info.model_id}", "fluent-model")

    reader = MlflowBackend({"tracking_uri": store_uri}).reader()
    run = reader.get_run(active.info.run_id)
    assert (run.name, run.status, run.notes, run.experiment) == ("fluent-run", RunStatus.FINISHED, "made by mlflow", "fluent")
    assert run.params == {"C": "1.0", "solver": "lbfgs"}
    assert run.metrics["acc"].value == 0.9 and run.metrics["acc"].step == 3
    assert run.user  # mlflow.user is set by the fluent API
    assert "mlflow.runName" not in run.tags and "mlflow.user" not in run.tags
    assert "mlflow.source.type" in run.tags  # other mlflow.* tags are kept
    [model] = run.models
    assert model.model_id == info.model_id and model.name == "clf"
    assert {"sklearn", "python_function"} <= set(model.flavors)

    folder = reader.download_model(run.run_id, model, tmp_path / "dl")
    assert (folder / "MLmodel").is_file()
    loaded = mlflow.sklearn.load_model(str(folder))
    assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]

    [registered] = [m for m in reader.list_registered_models() if m.name == "fluent-model"]
    [version] = registered.versions
    assert version.model_id == info.model_id and version.run_id == run.run_id


def test_our_logged_model_registers_and_loads_with_mlflow(store_uri: str, tmp_path: Path) -> None:
    """A model folder saved by mlflow.sklearn, logged by our writer: MLflow loads it
    back through the registry URI, so the copy is a real MLflow model."""
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    saved = tmp_path / "saved"
    clf = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    mlflow.sklearn.save_model(clf, str(saved))

    writer = MlflowBackend({"tracking_uri": store_uri}).writer()
    exp_id = writer.ensure_experiment("ours")
    run_id = writer.create_run(exp_id, name="copied")
    logged = writer.log_model(run_id, saved, LoggedModel(name="model", artifact_path="model"))
    writer.finish_run(run_id, RunStatus.FINISHED)
    assert "sklearn" in logged.flavors
    writer.register_model(RegisteredModel("ours-model"))
    version = writer.create_model_version(ModelVersion("ours-model", "1", model_id=logged.model_id), run_id)
    writer.set_model_alias("ours-model", "prod", version.version)

    loaded = mlflow.sklearn.load_model("models:/ours-model@prod")
    assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]
    assert mlflow.MlflowClient().get_logged_model(logged.model_id).source_run_id == run_id
