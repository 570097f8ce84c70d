"""``wandb-offline:PATH`` as a destination: read back exactly, idempotent, and accepted by
the real ``wandb sync`` (Go core) uploading to a local recorder on 127.0.0.1."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from wandb_helpers import WandbRecorder, sdk_run, wandb_sync, write_registered  # noqa: F401  (fixture)

from trackbridge.backends import get_backend
from trackbridge.backends.wandb import txlog
from trackbridge.backends.wandb.ids import derived_run_id
from trackbridge.errors import InvalidValueError
from trackbridge.history import Row
from trackbridge.model import LoggedModel, MetricPoint, RunStatus

T0 = 1_700_000_000_000
SOURCE = {"trackbridge.source.platform": "mlflow", "trackbridge.source.run_id": "run-abc",
          "trackbridge.mapping_version": "1", "team": "vision"}
PARAMS = {"lr": 0.001, "opt": {"name": "adam", "betas": [0.9, 0.999]}, "layers": 4, "name": "x"}
#: repeated (1, 1) and backward (0 after 1) user steps, NaN and +-inf
STEPS = [0, 1, 1, 0, 5, 6]
VALUES = [0.5, 0.25, float("nan"), float("inf"), float("-inf"), 0.125]


@pytest.fixture
def recorder():
    rec = WandbRecorder().start()
    yield rec
    rec.stop()


def _backend(root: Path):
    return get_backend("wandb-offline", {"path": str(root)})


def _write_run(root: Path, files_dir: Path) -> str:
    w = _backend(root).writer()
    exp = w.ensure_experiment("proj-b")
    run_id = w.create_run(exp, name="copied", start_time=T0, tags=SOURCE)
    w.log_params(run_id, PARAMS)
    w.set_labels(run_id, ["baseline", "gpu"])
    w.set_notes(run_id, "notes of the source")
    w.set_tags(run_id, {"wandb.group": "g7", "wandb.job_type": "eval"})
    w.log_summary(run_id, {"best": 0.9, "final": {"a": 1}})
    rows = [Row(s, T0 + 10 * i, {"loss": v, **({"acc": i / 10} if i % 2 == 0 else {})})
            for i, (s, v) in enumerate(zip(STEPS, VALUES))]
    w.log_rows(run_id, rows[:3])
    w.log_rows(run_id, rows[3:])
    w.log_system_metrics(run_id, [("system/cpu", MetricPoint(0, 12.5, T0 + 5)), ("system/cpu", MetricPoint(1, 13.5, T0 + 15))])
    (files_dir / "sub").mkdir(parents=True)
    (files_dir / "sub" / "notes.txt").write_text("hello")
    (files_dir / "model").mkdir()
    (files_dir / "model" / "weights.bin").write_bytes(b"\x01" * 100)
    w.log_artifact(run_id, files_dir / "sub" / "notes.txt", "docs")
    w.log_model(run_id, files_dir / "model", LoggedModel(name="clf", artifact_path="clf"))
    w.finish_run(run_id, RunStatus.FINISHED, T0 + 4_500)
    w.set_tags(run_id, {"trackbridge.complete": "fp-1"})  # the engine's marker comes after finish_run
    w.close()
    return run_id


def _points(reader, run_id: str, key: str) -> list[tuple]:
    return [(p.step, "nan" if math.isnan(p.value) else p.value, p.timestamp)
            for page in reader.iter_metric_history(run_id, key) for p in page]


def test_reader_reads_back_exactly_what_the_writer_wrote(tmp_path: Path) -> None:
    run_id = _write_run(tmp_path / "out", tmp_path / "files")
    assert run_id == derived_run_id("mlflow", "run-abc")
    (run_dir,) = (tmp_path / "out").glob("offline-run-*")
    assert run_dir.name == f"offline-run-20231114_221320-{run_id}"
    reader = _backend(tmp_path / "out").reader()
    run = reader.get_run(run_id)
    assert run.experiment == "proj-b" and run.name == "copied"
    assert run.params == PARAMS
    assert run.tags == {**SOURCE, "trackbridge.complete": "fp-1", "wandb.group": "g7", "wandb.job_type": "eval"}
    assert run.labels == ["baseline", "gpu"] and run.notes == "notes of the source"
    assert run.summary == {"best": 0.9, "final": {"a": 1}}
    assert run.status is RunStatus.FINISHED and run.start_time == T0
    assert T0 + 4_500 <= run.end_time < T0 + 5_500  # exit runtime is whole seconds
    expected = [(s, "nan" if math.isnan(v) else v, T0 + 10 * i) for i, (s, v) in enumerate(zip(STEPS, VALUES))]
    assert _points(reader, run_id, "loss") == expected  # no point lost to repeated/backward steps
    assert _points(reader, run_id, "acc") == [(STEPS[i], i / 10, T0 + 10 * i) for i in (0, 2, 4)]
    assert _points(reader, run_id, "system/cpu") == [(0, 12.5, T0 + 5), (1, 13.5, T0 + 15)]
    assert set(run.metrics) == {"loss", "acc"} and set(run.system_metrics) == {"system/cpu"}
    assert [(a.path, a.size) for a in reader.list_artifacts(run_id)] == [("docs/notes.txt", 5)]
    assert [m.name for m in run.models] == ["clf"]
    got = reader.download_model(run_id, run.models[0], tmp_path / "dl")
    assert (got / "weights.bin").read_bytes() == b"\x01" * 100


def test_records_parse_with_wandbs_own_protobuf_classes(tmp_path: Path) -> None:
    from wandb.proto import wandb_internal_pb2 as pb

    run_id = _write_run(tmp_path / "out", tmp_path / "files")
    (path,) = (tmp_path / "out").glob(f"*/run-{run_id}.wandb")
    kinds = [pb.Record.FromString(data).WhichOneof("record_type") for _, data in txlog.read_file(path)]
    assert kinds[:2] == ["header", "run"] and kinds[-1] == "exit" and kinds.count("exit") == 1
    assert kinds.count("history") == len(STEPS)


def test_copying_twice_continues_the_same_run(tmp_path: Path) -> None:
    root = tmp_path / "out"
    run_id = _write_run(root, tmp_path / "files")
    (path,) = root.glob(f"*/run-{run_id}.wandb")
    sidecar = path.with_name(path.name + ".syncstate")
    sidecar.write_text("{}")  # as `wandb sync` leaves it
    w = _backend(root).writer()
    again = w.create_run("proj-b", name="copied", start_time=T0, tags=SOURCE)
    assert not sidecar.exists()  # the next `wandb sync` uploads the continued file from the start
    assert again == run_id
    w.log_rows(run_id, [Row(9, T0 + 900, {"loss": 9.0})])
    w.set_tags(run_id, {"trackbridge.complete": "fp-2"})
    w.close()
    reader = _backend(root).reader()
    assert [r.run_id for r in reader.list_runs("proj-b")] == [run_id]  # one run, not two
    run = reader.get_run(run_id)
    assert run.status is RunStatus.FINISHED and run.tags["trackbridge.complete"] == "fp-2"
    assert [p[0] for p in _points(reader, run_id, "loss")] == [*STEPS, 9]
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = root.glob(f"*/run-{run_id}.wandb")
    kinds = [pb.Record.FromString(d).WhichOneof("record_type") for _, d in txlog.read_file(path)]
    assert kinds.count("exit") == 1 and kinds[-1] == "exit"
    steps = [json.loads(i.value_json) for _, d in txlog.read_file(path)
             for i in pb.Record.FromString(d).history.item if i.nested_key == ["_step"]]
    assert steps == list(range(len(STEPS) + 1))  # W&B's _step strictly increases across both passes


def test_delete_run_removes_its_folder(tmp_path: Path) -> None:
    run_id = _write_run(tmp_path / "out", tmp_path / "files")
    _backend(tmp_path / "out").writer().delete_run(run_id)
    assert list((tmp_path / "out").glob("offline-run-*")) == []
    assert list(_backend(tmp_path / "out").reader().list_runs("proj-b")) == []


def test_sync_copy_again_sync_keeps_every_row_once(tmp_path: Path, recorder: WandbRecorder) -> None:
    """A run uploaded by `wandb sync`, continued by a second copy, uploaded again: W&B
    holds every row once (lines are kept by offset) and the new row with them."""
    root = tmp_path / "out"
    run_id = _write_run(root, tmp_path / "files")
    assert wandb_sync(list(root.glob("offline-run-*")), recorder.url, cwd=tmp_path).returncode == 0
    w = _backend(root).writer()
    w.create_run("proj-b", name="copied", start_time=T0, tags=SOURCE)
    w.log_rows(run_id, [Row(9, T0 + 900, {"loss": 9.0})])
    w.close()
    again = wandb_sync(list(root.glob("offline-run-*")), recorder.url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    history = recorder.history(run_id)
    assert [h["trackbridge/step"] for h in history] == [*STEPS, 9]
    assert [h["_step"] for h in history] == list(range(len(STEPS) + 1))
    assert recorder.stream[run_id]["__complete__"][-1] == "0"


def test_unfinished_run_has_no_exit_record(tmp_path: Path) -> None:
    w = _backend(tmp_path).writer()
    run_id = w.create_run("p", start_time=T0)
    w.log_rows(run_id, [Row(0, T0, {"x": 1.0})])
    w.close()
    run = _backend(tmp_path).reader().get_run(run_id)
    assert run.status is RunStatus.RUNNING and run.end_time is None


def test_wandb_sync_uploads_what_the_source_had(tmp_path: Path, recorder: WandbRecorder) -> None:
    """The strongest offline check W&B offers: its own Go ``wandb sync`` reads our file and
    uploads it; the recorder keeps what arrived."""
    run_id = _write_run(tmp_path / "out", tmp_path / "files")
    result = wandb_sync(list((tmp_path / "out").glob("offline-run-*")), recorder.url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Finished syncing" in result.stderr + result.stdout
    assert not recorder.unknown or set(recorder.unknown) <= {"ServerFeaturesQuery", "POST /sdk/otel/v1/metrics"}
    first = recorder.upserts[run_id][0]
    assert first["project"] == "proj-b" and first["displayName"] == "copied" and first["name"] == run_id
    last = recorder.upserts[run_id][-1]
    assert last["tags"] == ["baseline", "gpu"] and last["notes"] == "notes of the source"
    assert last["groupName"] == "g7" and last["jobType"] == "eval"
    config = recorder.config(run_id)
    assert {k: v for k, v in config.items() if k != "_wandb"} == {
        **PARAMS, "trackbridge.tags": {**{k: v for k, v in SOURCE.items()}, "trackbridge.complete": "fp-1"}}
    history = recorder.history(run_id)
    assert [h["trackbridge/step"] for h in history] == STEPS
    assert [h["_step"] for h in history] == list(range(len(STEPS)))
    assert [round(h["_timestamp"] * 1000) for h in history] == [T0 + 10 * i for i in range(len(STEPS))]
    got = [h["loss"] for h in history]
    assert math.isnan(got[2]) and got[:2] == VALUES[:2] and got[3:] == VALUES[3:]
    assert [h.get("acc") for h in history] == [0.0, None, 0.2, None, 0.4, None]
    summary = recorder.summary(run_id)
    assert summary["best"] == 0.9 and summary["final"] == {"a": 1} and summary["loss"] == 0.125
    events = [json.loads(e) for e in recorder.stream[run_id]["wandb-events.jsonl"]]
    assert [e["system.cpu"] for e in events] == [12.5, 13.5]
    assert recorder.stream[run_id]["__complete__"] == ["0"]  # exit code 0: finished
    assert recorder.uploads[f"/upload/{run_id}/docs/notes.txt"] == b"hello"
    assert recorder.uploads["/upload/artifact/weights.bin"] == b"\x01" * 100
    assert "CommitArtifact" in recorder.operations


def test_wandb_sync_uploads_an_sdk_run_as_our_reader_reads_it(sdk_run, tmp_path: Path,  # noqa: F811
                                                               recorder: WandbRecorder) -> None:
    """The recorder itself checked against the SDK's own file: what W&B's sync uploads
    from a real SDK run is what our reader reads from it."""
    import shutil

    run_dir, exp = sdk_run
    copy = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, copy)
    result = wandb_sync([copy], recorder.url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    reader = _backend(copy).reader()
    run = reader.get_run(exp["run_id"])
    history = recorder.history(exp["run_id"])
    assert len(history) == len(exp["loss"]) + 2
    ours = list(reader.iter_rows(run.run_id, sorted(run.metrics)))
    assert [r.step for r in ours] == [h["_step"] for h in history]
    assert [r.timestamp for r in ours] == [round(h["_timestamp"] * 1000) for h in history]
    for row, h in zip(ours, history):
        for key, value in row.values.items():
            assert (math.isnan(value) and math.isnan(h[key])) or h[key] == value
    config = recorder.config(exp["run_id"])
    assert {k: v for k, v in config.items() if k != "_wandb"} == run.params
    assert recorder.upserts[exp["run_id"]][-1]["tags"] == run.labels


def test_registry_versions_and_aliases_read_back(tmp_path: Path) -> None:
    runs, collection = write_registered(tmp_path / "out", tmp_path / "files")
    reader = _backend(tmp_path / "out").reader()
    [model] = list(reader.list_registered_models())
    assert (model.name, model.description, model.tags) == ("fraud model/v2", "detects fraud", {"owner": "ada"})
    assert [(v.version, v.run_id, v.artifact_path, v.description, v.tags) for v in model.versions] == [
        ("1", runs[0], "clf", f"version from {runs[0]}", {"k": "0"}),
        ("2", runs[1], "clf", f"version from {runs[1]}", {"k": "1"})]
    assert [v.aliases for v in model.versions] == [["staging"], ["champion"]]
    assert [v.source for v in model.versions] == [f"{collection}:v0", f"{collection}:v1"]
    assert "trackbridge.registry" not in reader.get_run(runs[0]).params
    # a later writer continues the numbering and moves an alias back
    from trackbridge.model import ModelVersion

    w = _backend(tmp_path / "out").writer()
    w.set_model_alias("fraud model/v2", "champion", "1")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "w.bin").write_bytes(b"x")
    w.log_model(runs[0], tmp_path / "other", LoggedModel(name="other", artifact_path="other"))
    with pytest.raises(InvalidValueError, match="no model artifact nor files at 'nope'"):
        w.create_model_version(ModelVersion("fraud model/v2", "", artifact_path="nope"), runs[0])
    third = w.create_model_version(ModelVersion("fraud model/v2", "", artifact_path="other"), runs[0])
    assert third.version == "3"
    w.close()
    [model] = list(_backend(tmp_path / "out").reader().list_registered_models())
    assert [v.aliases for v in model.versions] == [["champion", "staging"], [], []]
    assert [v.artifact_path for v in model.versions] == ["clf", "clf", "other"]


def test_wandb_sync_links_registered_versions(tmp_path: Path, recorder: WandbRecorder) -> None:
    """The real `wandb sync` replays our link records: each version's model artifact is
    linked into the registry collection of the entity's org, aliases with it.  One run
    after the other, in folder order (what ``next_steps`` says; ``-n 1`` is not enough:
    it takes runs in no set order): W&B numbers versions and moves aliases in the order
    links arrive."""
    runs, collection = write_registered(tmp_path / "out", tmp_path / "files")
    backend = _backend(tmp_path / "out")
    assert any("do wandb sync" in line for line in backend.next_steps())
    for run_dir in sorted((tmp_path / "out").glob("offline-run-*")):
        result = wandb_sync([run_dir], recorder.url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    assert "FetchOrgEntityFromEntity" in recorder.operations
    links = [(link["artifactPortfolioName"], link["entityName"], link["projectName"],
              [a["alias"] for a in link.get("aliases") or []], link["versionIndex"]) for link in recorder.links]
    assert links == [(collection, "recorder-org", "wandb-registry-model", [], 0),
                     (collection, "recorder-org", "wandb-registry-model", ["champion"], 0),
                     (collection, "recorder-org", "wandb-registry-model", ["staging"], 0),
                     (collection, "recorder-org", "wandb-registry-model", [], 1),
                     (collection, "recorder-org", "wandb-registry-model", ["champion"], 1)]
    assert all(link["artifact"] is not None for link in recorder.links)  # the client ids named created artifacts
    # each link after its artifact was committed (the links are in the run's second log)
    order = [(r.get("operationName"), r.get("variables") or {}) for r in recorder.requests]
    committed = {v.get("artifactID"): i for i, (op, v) in enumerate(order) if op == "CommitArtifact"}
    linked = [i for i, (op, _v) in enumerate(order) if op == "LinkArtifact"]
    assert all(i > committed[link["artifact"]] for i, link in zip(linked, recorder.links))
    # the second log's update leaves the run as it was: config, labels, summary, status
    for i, run_id in enumerate(runs):
        config = recorder.config(run_id)
        assert config["trackbridge.tags"]["trackbridge.source.platform"] == "mlflow"
        assert "fraud model/v2" in config["trackbridge.registry"]
        assert recorder.stream[run_id]["__complete__"] == ["0", "0"]
        assert recorder._run_attrs(run_id)["displayName"] == f"r{i}"
        assert recorder.summary(run_id)["best"] == i and recorder.summary(run_id)["loss"] == 0.5 + i
        assert [h["loss"] for h in recorder.history(run_id)] == [0.5 + i]


def test_used_artifacts_are_read_as_dataset_inputs(tmp_path: Path) -> None:
    """A ``use_artifact`` record (what an online SDK run writes for ``run.use_artifact``) is
    read as a dataset input, not dropped; a copy keeps it in config ``trackbridge.inputs``."""
    from wandb.proto import wandb_internal_pb2 as pb

    from corpus import invoke

    w = _backend(tmp_path / "src").writer()
    run_id = w.create_run("proj-u", start_time=T0)
    w.finish_run(run_id, RunStatus.FINISHED, T0 + 1000)
    w.close()
    [path] = (tmp_path / "src").glob(f"*/run-{run_id}.wandb")
    rec = pb.Record()
    rec.use_artifact.id, rec.use_artifact.type, rec.use_artifact.name = "QXJ0aWZhY3Q6MQ==", "dataset", "mnist:v3"
    with open(path, "r+b") as stream:
        stream.seek(0, 2)
        log = txlog.LogWriter(stream, offset=stream.tell())
        log.write(rec.SerializeToString())
        log.flush()
    [used] = _backend(tmp_path / "src").reader().get_run(run_id).inputs
    assert (used.name, used.digest, used.source_type, used.tags) == (
        "mnist:v3", "QXJ0aWZhY3Q6MQ==", "wandb-artifact", {"wandb.artifact_type": "dataset"})
    copied = json.loads(invoke("copy", f"wandb-offline:{tmp_path / 'src'}", f"dir:{tmp_path / 'archive'}",
                               "--json").stdout)
    assert copied["ok"], copied["errors"]
    assert invoke("check", f"wandb-offline:{tmp_path / 'src'}", f"dir:{tmp_path / 'archive'}").exit_code == 0
