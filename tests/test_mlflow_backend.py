"""The MLflow backend against real MLflow: an embedded sqlite store and a real server.

Every canonical field is written with the writer and read back with the reader
of the same backend; the ``backend`` fixture runs each test on both stores.
"""
from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import pytest
from servers import MlflowServer

from trackbridge.backends import get_backend
from trackbridge.backends.base import RunFilter
from trackbridge.backends.mlflow import MlflowBackend
from trackbridge.backends.mlflow.writer import SQL_STORE_BATCH
from trackbridge.errors import BackendError, ConfigError, RunNotFound, TransientBackendError
from trackbridge.model import (
    DatasetInput,
    LoggedModel,
    MetricPoint,
    ModelVersion,
    RegisteredModel,
    RunStatus,
)

T0 = 1_700_000_000_000


@pytest.fixture(params=["sqlite", "server"])
def backend(request: pytest.FixtureRequest, sqlite_uri: str) -> MlflowBackend:
    if request.param == "sqlite":
        Path(sqlite_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        uri = sqlite_uri
    else:
        uri = request.getfixturevalue("mlflow_server").url
    backend = get_backend("mlflow", {"tracking_uri": uri})
    assert isinstance(backend, MlflowBackend)
    return backend


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_run(backend: MlflowBackend, **kwargs: object) -> tuple[str, str]:
    writer = backend.writer()
    exp_id = writer.ensure_experiment(unique("exp"))
    return exp_id, writer.create_run(exp_id, **kwargs)  # type: ignore[arg-type]


def test_every_run_field_round_trips(backend: MlflowBackend) -> None:
    writer, reader = backend.writer(), backend.reader()
    exp_name = unique("roundtrip")
    exp_id = writer.ensure_experiment(exp_name, {"team": "vision"})
    assert writer.ensure_experiment(exp_name) == exp_id  # idempotent

    parent = writer.create_run(exp_id, name="parent", start_time=T0, user="alice", tags={"kind": "sweep"})
    child = writer.create_run(
        exp_id, name="child-ü", start_time=T0 + 10, user="bob", parent_run_id=parent,
        tags={"mlflow.source.name": "train.py", "empty": "", "lr-tag": "0.1"},
    )
    params = {f"p{i:03d}": str(i) for i in range(130)}
    params["nested.opt.lr"] = "0.001"
    writer.log_params(child, params)
    writer.set_tags(child, {"extra": "yes"})
    writer.set_notes(child, "notes with\nnewlines and ünïcode")
    writer.log_metrics(child, [
        ("loss", MetricPoint(0, 1.0, T0 + 100)),
        ("loss", MetricPoint(1, 0.5, T0 + 200)),
        ("system/cpu_utilization_percentage", MetricPoint(0, 42.0, T0 + 150)),
    ])
    dataset = DatasetInput(
        name="iris", digest="d41d8cd9", source_type="local", source='{"uri": "/data/iris.csv"}',
        schema='{"mlflow_colspec": []}', profile='{"num_rows": 150}', tags={"mlflow.data.context": "training"},
    )
    writer.log_inputs(child, [dataset])
    writer.finish_run(child, RunStatus.FAILED, end_time=T0 + 5000)
    writer.finish_run(parent, RunStatus.FINISHED, end_time=T0 + 6000)

    run = reader.get_run(child)
    assert run.platform == "mlflow"
    assert (run.run_id, run.experiment, run.experiment_id) == (child, exp_name, exp_id)
    assert run.name == "child-ü"
    assert run.status is RunStatus.FAILED
    assert (run.start_time, run.end_time) == (T0 + 10, T0 + 5000)
    assert run.user == "bob"
    assert run.parent_run_id == parent
    assert run.notes == "notes with\nnewlines and ünïcode"
    assert run.params == params
    assert run.tags == {"mlflow.source.name": "train.py", "empty": "", "lr-tag": "0.1", "extra": "yes"}
    assert set(run.metrics) == {"loss"}
    assert (run.metrics["loss"].value, run.metrics["loss"].step, run.metrics["loss"].timestamp) == (0.5, 1, T0 + 200)
    assert set(run.system_metrics) == {"system/cpu_utilization_percentage"}
    assert run.system_metrics["system/cpu_utilization_percentage"].value == 42.0
    assert run.inputs == [dataset]
    assert run.models == []
    assert child in (run.url or "") and exp_id in (run.url or "")

    parent_run = reader.get_run(parent)
    assert parent_run.parent_run_id is None
    assert (parent_run.name, parent_run.user, parent_run.status) == ("parent", "alice", RunStatus.FINISHED)
    assert parent_run.end_time == T0 + 6000

    listed = {r.run_id: r for r in reader.list_runs(exp_name)}
    assert set(listed) == {parent, child}
    assert listed[child] == run

    experiment = reader.get_experiment(exp_name)
    assert experiment is not None and experiment.id == exp_id and experiment.tags["team"] == "vision"
    assert exp_name in {e.name for e in reader.list_experiments()}
    assert reader.get_experiment(unique("missing")) is None


def test_metric_history_keeps_nan_inf_steps_and_timestamps(backend: MlflowBackend) -> None:
    _, run_id = new_run(backend)
    points = [
        MetricPoint(0, math.nan, T0 + 30),      # out of order: logged first, newest
        MetricPoint(1, math.inf, T0 + 10),
        MetricPoint(2, -math.inf, T0 + 20),
        MetricPoint(7, -0.25, T0 + 5),
        MetricPoint(3, 1e-300, T0 + 40),
    ]
    backend.writer().log_metrics(run_id, [("weird", p) for p in points])
    pages = list(backend.reader().iter_metric_history(run_id, "weird"))
    got = [p for page in pages for p in page]
    assert [p.key() for p in got] == [p.key() for p in sorted(points, key=lambda p: p.timestamp)]
    assert math.isnan(got[-2].value) and got[0].value == -0.25
    assert got[1].value == math.inf and got[2].value == -math.inf

    summary = backend.reader().get_run(run_id).metrics["weird"]
    assert (summary.step, summary.value, summary.timestamp) == (7, -0.25, T0 + 5)  # latest = highest step


def test_metric_history_streams_in_pages(backend: MlflowBackend) -> None:
    _, run_id = new_run(backend)
    points = [("loss", MetricPoint(i, i / 7, T0 + i)) for i in range(1050)]
    backend.writer().log_metrics(run_id, points)  # > 1000 points: two log_batch calls
    pages = list(backend.reader().iter_metric_history(run_id, "loss", page_size=100))
    assert [len(p) for p in pages] == [100] * 10 + [50]
    flat = [p for page in pages for p in page]
    assert flat == [p for _, p in points]
    assert list(backend.reader().iter_metric_history(run_id, "no-such-key")) == []


def test_long_params_and_tags_are_split_under_request_size(backend: MlflowBackend) -> None:
    writer, reader = backend.writer(), backend.reader()
    limits = writer.limits
    _, run_id = new_run(backend)
    # 100 params at the value limit and 100 non-ASCII tags at theirs: one count-batch
    # each, but ~4.8 MB of JSON for the tags (each "é" is sent as \u00e9).
    params = {f"long{i}": chr(ord("a") + i % 26) * limits.max_param_value_length for i in range(100)}
    tags = {f"tag{i}": "é" * limits.max_tag_value_length for i in range(100)}
    writer.log_params(run_id, params)
    writer.set_tags(run_id, tags)
    run = reader.get_run(run_id)
    assert run.params == params
    assert {k: v for k, v in run.tags.items() if k.startswith("tag")} == tags


def test_batches_respect_count_and_request_size() -> None:
    from mlflow.utils.validation import MAX_BATCH_LOG_REQUEST_SIZE

    from trackbridge.backends.mlflow.writer import _kv_size, _request_budget, sized_batches

    tags = [(f"tag{i}", "é" * 8000) for i in range(100)]
    batches = list(sized_batches(tags, 100, _request_budget(), _kv_size))
    assert [t for b in batches for t in b] == tags
    assert len(batches) > 1
    for batch in batches:
        body = json.dumps({"run_id": "x" * 32, "tags": [{"key": k, "value": v} for k, v in batch]})
        assert len(body) < MAX_BATCH_LOG_REQUEST_SIZE
    small = list(sized_batches([(str(i), "v") for i in range(250)], 100, _request_budget(), _kv_size))
    assert [len(b) for b in small] == [100, 100, 50]


def test_limits_come_from_installed_mlflow() -> None:
    from mlflow.utils import validation

    limits = MlflowBackend({"tracking_uri": "http://127.0.0.1:5000"}).writer().limits
    assert limits.max_metrics_per_batch == validation.MAX_METRICS_PER_BATCH
    # a store this process writes itself takes bigger batches (one transaction each, bulk path)
    assert MlflowBackend({"tracking_uri": "sqlite:///x.db"}).writer().limits.max_metrics_per_batch == SQL_STORE_BATCH
    assert MlflowBackend({"tracking_uri": "postgresql+psycopg://u@h/db"}).limits().max_metrics_per_batch == SQL_STORE_BATCH
    assert limits.max_params_per_batch == validation.MAX_PARAMS_TAGS_PER_BATCH
    assert limits.max_param_value_length == validation.MAX_PARAM_VAL_LENGTH
    assert limits.max_tag_value_length == validation.MAX_TAG_VAL_LENGTH
    assert limits.max_key_length == validation.MAX_ENTITY_KEY_LENGTH
    assert limits.key_ok("system/gpu 0:util_pct-1.x")
    assert not limits.key_ok("loss@epoch") and not limits.key_ok("x" * 251)


def test_artifacts_files_directories_and_unicode(backend: MlflowBackend, tmp_path: Path) -> None:
    writer, reader = backend.writer(), backend.reader()
    _, run_id = new_run(backend)
    single = tmp_path / "résumé ü.txt"
    single.write_text("héllo", encoding="utf-8")
    tree = tmp_path / "outputs"
    (tree / "plots" / "deep").mkdir(parents=True)
    (tree / "a.bin").write_bytes(b"\x00" * 1234)
    (tree / "plots" / "p.png").write_bytes(b"png" * 10)
    (tree / "plots" / "deep" / "z.json").write_text("{}")
    writer.log_artifact(run_id, single)
    writer.log_artifact(run_id, single, "docs/nested")
    writer.log_artifact(run_id, tree)
    writer.log_artifact(run_id, tree, "copy")

    listed = {a.path: a.size for a in reader.list_artifacts(run_id)}
    size = len("héllo".encode())
    assert listed == {
        "résumé ü.txt": size,
        "docs/nested/résumé ü.txt": size,
        "outputs/a.bin": 1234,
        "outputs/plots/p.png": 30,
        "outputs/plots/deep/z.json": 2,
        "copy/a.bin": 1234,
        "copy/plots/p.png": 30,
        "copy/plots/deep/z.json": 2,
    }
    dst = tmp_path / "download"
    got = reader.download_artifact(run_id, "docs/nested/résumé ü.txt", dst)
    assert got == dst / "docs" / "nested" / "résumé ü.txt"
    assert got.read_text(encoding="utf-8") == "héllo"
    deep = reader.download_artifact(run_id, "outputs/plots/deep/z.json", dst)
    assert deep == dst / "outputs" / "plots" / "deep" / "z.json" and deep.read_text() == "{}"

    with pytest.raises(BackendError, match="no such file"):
        writer.log_artifact(run_id, tmp_path / "missing.txt")


def test_logged_model_is_linked_to_run_and_downloads(backend: MlflowBackend, tmp_path: Path) -> None:
    writer, reader = backend.writer(), backend.reader()
    _, run_id = new_run(backend)
    model_dir = tmp_path / "model"
    (model_dir / "sub").mkdir(parents=True)
    (model_dir / "MLmodel").write_text("flavors:\n  sklearn: {pickled_model: model.pkl}\n  python_function: {}\n")
    (model_dir / "model.pkl").write_bytes(b"pickle-bytes")
    (model_dir / "sub" / "extra.txt").write_text("x")
    logged = writer.log_model(run_id, model_dir, LoggedModel(name="classifier", artifact_path="classifier"))
    assert logged.model_id and logged.flavors == ["python_function", "sklearn"]

    run = reader.get_run(run_id)
    assert run.models == [logged]
    # MLflow 3 keeps the model outside run artifacts ...
    assert list(reader.list_artifacts(run_id)) == []
    # ... and links it to the run as an output, as mlflow.<flavor>.log_model does.
    outputs = backend.connection.client.get_run(run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [logged.model_id]

    dst = reader.download_model(run_id, logged, tmp_path / "dl")
    assert dst == tmp_path / "dl" / "classifier"
    assert (dst / "model.pkl").read_bytes() == b"pickle-bytes"
    assert (dst / "sub" / "extra.txt").read_text() == "x"
    assert (dst / "MLmodel").is_file()


def test_legacy_model_history_tag_becomes_a_model(backend: MlflowBackend, tmp_path: Path) -> None:
    """MLflow 2.x models: files in the run's artifacts, listed in mlflow.log-model.history."""
    writer, reader = backend.writer(), backend.reader()
    _, run_id = new_run(backend)
    folder = tmp_path / "old_model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {sklearn: {}}\n")
    writer.log_artifact(run_id, folder, "old_model")
    writer.set_tags(run_id, {"mlflow.log-model.history": (
        f'[{{"run_id": "{run_id}", "artifact_path": "old_model", "flavors": {{"sklearn": {{}}}}}}]'
    )})
    run = reader.get_run(run_id)
    assert "mlflow.log-model.history" not in run.tags
    assert [(m.name, m.artifact_path, m.flavors, m.model_id) for m in run.models] == [
        ("old_model", "old_model", ["sklearn"], None)
    ]
    dst = reader.download_model(run_id, run.models[0], tmp_path / "dl")
    assert (dst / "MLmodel").read_text() == "flavors: {sklearn: {}}\n"


def test_registry_versions_aliases_descriptions_tags(backend: MlflowBackend, tmp_path: Path) -> None:
    writer, reader = backend.writer(), backend.reader()
    _, run_id = new_run(backend)
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {python_function: {}}\n")
    logged = writer.log_model(run_id, model_dir, LoggedModel(name="m", artifact_path="m"))
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w")
    writer.log_artifact(run_id, folder, "plain")

    name = unique("registered")
    writer.register_model(RegisteredModel(name, "first description", {"owner": "ml"}))
    writer.register_model(RegisteredModel(name, "updated description", {"owner": "ml", "tier": "gold"}))
    v1 = writer.create_model_version(
        ModelVersion(name, "1", model_id=logged.model_id, description="from logged model", tags={"k": "1"}), run_id
    )
    v2 = writer.create_model_version(
        ModelVersion(name, "2", artifact_path="plain", description="from run folder", aliases=["staging"]), run_id
    )
    v3 = writer.create_model_version(ModelVersion(name, "3", model_id=logged.model_id, tags={"k": "3"}), None)
    assert [v1.version, v2.version, v3.version] == ["1", "2", "3"]
    writer.set_model_alias(name, "champion", "1")
    writer.set_model_alias(name, "latest-good", "3")

    [model] = [m for m in reader.list_registered_models() if m.name == name]
    assert model.description == "updated description"
    assert model.tags == {"owner": "ml", "tier": "gold"}
    assert [v.version for v in model.versions] == ["1", "2", "3"]
    by_version = {v.version: v for v in model.versions}
    assert by_version["1"].aliases == ["champion"]
    assert by_version["2"].aliases == ["staging"]
    assert by_version["3"].aliases == ["latest-good"]
    assert by_version["1"].model_id == logged.model_id and by_version["3"].model_id == logged.model_id
    assert by_version["1"].run_id == run_id and by_version["3"].run_id == run_id
    assert by_version["2"].run_id == run_id and by_version["2"].artifact_path == "plain"
    assert by_version["2"].source == f"runs:/{run_id}/plain"
    assert (by_version["1"].description, by_version["2"].description) == ("from logged model", "from run folder")
    assert by_version["1"].tags == {"k": "1"} and by_version["3"].tags == {"k": "3"}
    assert all(v.creation_time for v in model.versions)


def test_run_filters_server_side_and_client_side(backend: MlflowBackend) -> None:
    writer, reader = backend.writer(), backend.reader()
    exp_name = unique("filters")
    exp_id = writer.ensure_experiment(exp_name)
    ids = []
    for i, status in enumerate([RunStatus.FINISHED, RunStatus.FAILED, RunStatus.FINISHED, RunStatus.KILLED]):
        run_id = writer.create_run(exp_id, name=f"r{i}", start_time=T0 + i * 1000, tags={"group": "ab"[i % 2]})
        writer.log_params(run_id, {"seed": str(i % 2), "q": "it's"})
        writer.finish_run(run_id, status, T0 + i * 1000 + 1)
        ids.append(run_id)

    def names(run_filter: RunFilter) -> list[str]:
        return sorted(r.name or "" for r in reader.list_runs(exp_name, run_filter))

    assert names(RunFilter()) == ["r0", "r1", "r2", "r3"]
    assert names(RunFilter(since=T0 + 1000, until=T0 + 3000)) == ["r1", "r2"]
    assert names(RunFilter(statuses=[RunStatus.FINISHED])) == ["r0", "r2"]
    assert names(RunFilter(statuses=[RunStatus.FAILED, RunStatus.KILLED])) == ["r1", "r3"]
    assert names(RunFilter(tags={"group": "b"})) == ["r1", "r3"]
    assert names(RunFilter(params={"seed": "0"})) == ["r0", "r2"]
    assert names(RunFilter(params={"q": "it's"})) == ["r0", "r1", "r2", "r3"]
    assert names(RunFilter(run_ids=[ids[3], ids[0]])) == ["r0", "r3"]
    assert names(RunFilter(tags={"group": "a"}, statuses=[RunStatus.FINISHED], since=T0 + 1)) == ["r2"]
    assert list(reader.list_runs(unique("no-such-experiment"))) == []


def test_missing_and_deleted_runs_raise_run_not_found(backend: MlflowBackend) -> None:
    writer, reader = backend.writer(), backend.reader()
    _, run_id = new_run(backend)
    with pytest.raises(RunNotFound):
        reader.get_run(uuid.uuid4().hex)
    with pytest.raises(RunNotFound):
        writer.log_params(uuid.uuid4().hex, {"a": "1"})
    with pytest.raises(RunNotFound):
        list(reader.iter_metric_history(uuid.uuid4().hex, "loss"))
    writer.delete_run(run_id)
    with pytest.raises(RunNotFound):
        reader.get_run(run_id)


def test_deleted_experiment_is_reported_not_reused(backend: MlflowBackend) -> None:
    writer, reader = backend.writer(), backend.reader()
    name = unique("gone")
    exp_id = writer.ensure_experiment(name)
    backend.connection.client.delete_experiment(exp_id)
    assert reader.get_experiment(name) is None
    with pytest.raises(BackendError, match="deleted"):
        writer.ensure_experiment(name)


def test_refusals_are_plain_backend_errors(backend: MlflowBackend) -> None:
    writer = backend.writer()
    _, run_id = new_run(backend)
    writer.log_params(run_id, {"frozen": "1"})
    with pytest.raises(BackendError) as info:
        writer.log_params(run_id, {"frozen": "2"})  # MLflow params are immutable
    assert not isinstance(info.value, (TransientBackendError, RunNotFound))
    assert "frozen" in str(info.value)


def test_sqlite_history_is_keyset_paged_in_mlflow_order(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An in-process SQL store is read by keyset pages, not MLflow's OFFSET paging, in MLflow's
    order (timestamp, step, stored value, NaN last), across page boundaries inside ties."""
    backend = get_backend("mlflow", {"tracking_uri": sqlite_uri})
    _, run_id = new_run(backend)
    specials = [math.nan, math.inf, -math.inf, 0.0, -0.5]
    # 20 points per timestamp, timestamps logged newest first, steps reversed inside each
    points = [MetricPoint(19 - i % 20, specials[i % 5] if i % 3 == 0 else i / 7, T0 + (299 - i) // 20)
              for i in range(300)]
    # NaN is stored as 0: same (timestamp, step, stored value) as 0.0, told apart by is_nan
    points += [MetricPoint(5, v, T0 + 7) for v in (0.0, math.nan, math.inf, -math.inf, 1.5)]
    backend.writer().log_metrics(run_id, [("k", p) for p in points])
    store = backend.connection.client._tracking_client.store
    mlflow_order = [(m.timestamp, m.step) for m in store.get_metric_history(run_id, "k")]

    def stored(p: MetricPoint) -> tuple[int, int, float, bool]:
        value = 0.0 if math.isnan(p.value) else max(min(p.value, 1.7976931348623157e308), -1.7976931348623157e308)
        return (p.timestamp, p.step, value, math.isnan(p.value))

    monkeypatch.setattr(store, "get_metric_history", lambda *a, **k: pytest.fail("OFFSET paging used"))
    pages = list(backend.reader().iter_metric_history(run_id, "k", page_size=7))
    got = [p for page in pages for p in page]
    assert all(len(page) == 7 for page in pages[:-1]) and len(got) == len(points)
    assert [p.key() for p in got] == [p.key() for p in sorted(points, key=stored)]
    assert [(p.timestamp, p.step) for p in got] == mlflow_order
    with pytest.raises(RunNotFound):
        list(backend.reader().iter_metric_history(uuid.uuid4().hex, "k"))


def test_server_sqlite_file_read_in_process_with_artifacts_options(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    """Runs created through a server keep ``mlflow-artifacts:`` URIs; reading the server's
    sqlite file in-process needs ``artifacts_destination`` (or ``artifacts_server``)."""
    served = get_backend("mlflow", {"tracking_uri": mlflow_server.url})
    _, run_id = new_run(served)  # type: ignore[arg-type]
    (tmp_path / "src" / "deep").mkdir(parents=True)
    (tmp_path / "src" / "deep" / "a.txt").write_text("from the server")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    served.writer().log_artifact(run_id, tmp_path / "src", "files")
    logged = served.writer().log_model(run_id, tmp_path / "model", LoggedModel(name="m", artifact_path="m"))
    db_uri = f"sqlite:///{mlflow_server.root / 'mlflow.db'}"

    bare = get_backend("mlflow", {"tracking_uri": db_uri}).reader()
    assert [len(p) for p in bare.iter_metric_history(run_id, "none")] == []  # the database reads fine
    with pytest.raises(ConfigError, match="artifacts_destination.*ARTIFACTS_DESTINATION"):
        list(bare.list_artifacts(run_id))
    with pytest.raises(ConfigError, match="artifacts_destination"):
        bare.get_run(run_id)  # a logged model's flavors are in its MLmodel artifact

    destination = str(mlflow_server.root / "artifacts")  # the server's --artifacts-destination
    direct = get_backend("mlflow", {"tracking_uri": db_uri, "artifacts_destination": destination})
    proxied = get_backend("mlflow", {"tracking_uri": db_uri, "artifacts_server": mlflow_server.url})
    for backend in (direct, proxied):
        reader = backend.reader()
        assert [(a.path, a.size) for a in reader.list_artifacts(run_id)] == [("files/deep/a.txt", 15)]
        dst = tmp_path / f"dl-{backend is direct}"
        assert reader.download_artifact(run_id, "files/deep/a.txt", dst).read_text() == "from the server"
        assert reader.get_run(run_id).models[0].flavors == ["python_function"]
        assert (reader.download_model(run_id, logged, dst) / "MLmodel").is_file()

    # writing through the mapping lands where the server serves it from
    (tmp_path / "late.txt").write_text("written in-process")
    direct.writer().log_artifact(run_id, tmp_path / "late.txt")
    served_paths = {a.path for a in served.reader().list_artifacts(run_id)}
    assert served_paths == {"files/deep/a.txt", "late.txt"}
    got = served.reader().download_artifact(run_id, "late.txt", tmp_path / "via-server")
    assert got.read_text() == "written in-process"


def test_artifacts_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="not both"):
        MlflowBackend({"artifacts_destination": "/x", "artifacts_server": "http://127.0.0.1:1"})
    with pytest.raises(ConfigError, match="http"):
        MlflowBackend({"artifacts_server": "/not/a/url"})


def test_reading_a_store_that_does_not_exist_never_creates_it(tmp_path) -> None:
    """`trackbridge ls` or a copy from a mistyped store path must not leave an empty mlflow.db."""
    from trackbridge.backends.mlflow.backend import MlflowBackend
    from trackbridge.errors import RunNotFound

    db = tmp_path / "nowhere" / "mlflow.db"
    reader = MlflowBackend({"tracking_uri": f"sqlite:///{db}"}).reader()
    assert list(reader.list_experiments()) == [] and reader.get_experiment("x") is None
    assert list(reader.list_registered_models()) == []
    with pytest.raises(RunNotFound, match="no MLflow store at"):
        reader.get_run("abc")
    assert not db.exists() and not db.parent.exists()


def test_register_model_made_by_another_copy_meanwhile_is_updated_not_an_error(tmp_path) -> None:  # noqa: ANN001
    """Two copies at once: both look the model up, find nothing, and create it; the
    second create fails because the first made it.  It updates that one instead."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    from trackbridge.backends import get_backend
    from trackbridge.model import RegisteredModel

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    other = get_backend("mlflow", {"tracking_uri": uri}).writer()
    writer = get_backend("mlflow", {"tracking_uri": uri}).writer()
    real_get = writer._client.get_registered_model
    looked: list[str] = []

    def lookup_races_the_other_copy(name: str):  # noqa: ANN202
        looked.append(name)
        if len(looked) == 1:
            other.register_model(RegisteredModel(name, "by the other copy"))
            raise MlflowException("not found", error_code=RESOURCE_DOES_NOT_EXIST)
        return real_get(name)

    writer._client.get_registered_model = lookup_races_the_other_copy
    writer.register_model(RegisteredModel("raced", "mine", {"k": "v"}))
    got = real_get("raced")
    assert (got.description, got.tags) == ("mine", {"k": "v"})
