"""MLflow 3 logged models and registry stages through the MLflow backend, on an
embedded sqlite store and a real server (issue 14, items 1-3): each ``log_model`` is a
new model even when the name repeats, with its own folder name, params, metrics, tags,
type and status, read back as written; a model's metrics never add points the
source run did not have; stages move with ``set_version_stage``."""
from __future__ import annotations

import uuid
import warnings
from pathlib import Path

import pytest
from mlflow import MlflowClient

from trackbridge.backends.mlflow import MlflowBackend
from trackbridge.model import SOURCE_MODEL_ID, LoggedModel, MetricPoint, ModelVersion, RegisteredModel

T0 = 1_700_000_000_000


@pytest.fixture(params=["sqlite", "server"])
def backend(request: pytest.FixtureRequest, sqlite_uri: str) -> MlflowBackend:
    if request.param == "sqlite":
        Path(sqlite_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return MlflowBackend({"tracking_uri": sqlite_uri})
    return MlflowBackend({"tracking_uri": request.getfixturevalue("mlflow_server").url})


def _folder(root: Path, content: bytes) -> Path:
    root.mkdir(parents=True)
    (root / "MLmodel").write_text("flavors:\n  sklearn: {pickled_model: model.pkl}\n")
    (root / "model.pkl").write_bytes(content)
    return root


def test_models_of_one_name_stay_apart_with_their_metadata(backend: MlflowBackend, tmp_path: Path) -> None:
    writer, reader = backend.writer(), backend.reader()
    run_id = writer.create_run(writer.ensure_experiment(f"models-{uuid.uuid4().hex[:8]}"), start_time=T0)
    writer.log_metrics(run_id, [("acc", MetricPoint(0, 0.5, T0 + 1)), ("acc", MetricPoint(1, 0.75, T0 + 2))])
    sources = [
        LoggedModel("model", "model", params={"C": "0.1"}, metrics={"acc": 0.5, "only_model": 1.5},
                    tags={"fit": "first", SOURCE_MODEL_ID: "m-source-1"}, model_type="sklearn", status="READY"),
        LoggedModel("model", "model", params={"C": "1.0"}, metrics={"acc": 0.75},
                    tags={"fit": "second", SOURCE_MODEL_ID: "m-source-2"}, status="FAILED"),
    ]
    made = [writer.log_model(run_id, _folder(tmp_path / f"m{i}", f"bytes {i}".encode()), source)
            for i, source in enumerate(sources)]
    assert made[0].model_id != made[1].model_id
    assert [m.artifact_path for m in made] == ["model", f"model-{made[1].model_id}"]

    record = reader.get_run(run_id)
    assert record.models == made
    for model, source in zip(record.models, sources):
        assert (model.name, model.params, model.metrics, model.model_type, model.status) == (
            source.name, source.params, source.metrics, source.model_type, source.status)
        assert model.user_tags() == source.user_tags() and model.source_id() == source.source_id()
        assert (reader.download_model(run_id, model, tmp_path / "dl") / "model.pkl").read_bytes() == \
            f"bytes {sources.index(source)}".encode()
    # the run's own metrics are what was logged: the models' metrics added no point to it
    assert set(record.metrics) == {"acc"} and record.metrics["acc"].value == 0.75
    assert [(p.step, p.value) for page in reader.iter_metric_history(run_id, "acc") for p in page] == [
        (0, 0.5), (1, 0.75)]
    assert MlflowClient(backend.tracking_uri).get_logged_model(made[0].model_id).metrics  # MLflow holds them


def test_version_stages_move_and_read_back(backend: MlflowBackend, tmp_path: Path) -> None:
    writer, reader = backend.writer(), backend.reader()
    run_id = writer.create_run(writer.ensure_experiment(f"stages-{uuid.uuid4().hex[:8]}"), start_time=T0)
    logged = writer.log_model(run_id, _folder(tmp_path / "m", b"x"), LoggedModel("model", "model"))
    name = f"staged-{uuid.uuid4().hex[:8]}"
    writer.register_model(RegisteredModel(name))
    versions = [writer.create_model_version(ModelVersion(name, str(i), model_id=logged.model_id), run_id).version
                for i in (1, 2)]
    assert [v.stage for v in reader.get_registered_model(name).versions] == [None, None]  # MLflow's "None"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        writer.set_version_stage(name, versions[0], "Production")
        writer.set_version_stage(name, versions[1], "Archived")
    assert not [w for w in seen if "stage" in str(w.message)]  # MLflow's deprecation warning stays quiet
    assert [(v.version, v.stage, v.model_id) for v in reader.get_registered_model(name).versions] == [
        (versions[0], "Production", logged.model_id), (versions[1], "Archived", logged.model_id)]
    writer.set_version_stage(name, versions[1], None)
    assert reader.get_registered_model(name).versions[1].stage is None


def test_a_logged_model_named_like_an_mlflow_2_model_folder_gets_its_own_path(backend: MlflowBackend,
                                                                             tmp_path: Path) -> None:
    writer, reader = backend.writer(), backend.reader()
    run_id = writer.create_run(writer.ensure_experiment(f"legacy-{uuid.uuid4().hex[:8]}"), start_time=T0)
    writer.log_artifact(run_id, _folder(tmp_path / "old", b"old"), "model")
    writer.set_tags(run_id, {"mlflow.log-model.history": '[{"artifact_path": "model", "flavors": {"sklearn": {}}}]'})
    made = writer.log_model(run_id, _folder(tmp_path / "new", b"new"), LoggedModel("model", "model"))
    assert [(m.name, m.artifact_path) for m in reader.get_run(run_id).models] == [
        ("model", "model"), ("model", f"model-{made.model_id}")]
    assert made.artifact_path == f"model-{made.model_id}"
    # a source without a model status (W&B, Comet): READY for MLflow, none read back
    assert made.status is None and reader.get_run(run_id).models[1].status is None
    assert MlflowClient(backend.tracking_uri).get_logged_model(made.model_id).status == "READY"


def test_the_copy_of_a_source_model_is_made_once(backend: MlflowBackend, tmp_path: Path) -> None:
    """Two invocations copying one run at once (or a retried request) log the same
    source model twice: the run keeps one copy."""
    writer, reader = backend.writer(), backend.reader()
    run_id = writer.create_run(writer.ensure_experiment(f"once-{uuid.uuid4().hex[:8]}"), start_time=T0)
    source = LoggedModel("model", "model", tags={SOURCE_MODEL_ID: "m-source"}, status="READY")
    first = writer.log_model(run_id, _folder(tmp_path / "a", b"a"), source)
    again = writer.log_model(run_id, _folder(tmp_path / "b", b"a"), source)
    assert again == first and [m.model_id for m in reader.get_run(run_id).models] == [first.model_id]
