"""Reading W&B through ``wandb.Api`` (the cloud reader), offline against a local stand-in:
the recorder that real ``wandb sync`` uploads to serves what it received in the GraphQL
shapes wandb 0.31's Api asks for (Run, Runs, GetProjects, RunHistoryKeys,
RunParquetHistory + HistoryPage for ``scan_history``, RunFiles).  So the chain is
SDK run -> W&B's own sync -> stand-in -> wandb.Api -> our reader, compared with our
offline reader of the same file.  ``live`` tests read a real W&B when a key is set."""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from corpus import invoke
from wandb_helpers import WandbRecorder, sdk_run, sdk_sockets, wandb_sync, write_registered  # noqa: F401  (fixtures)

from trackbridge.backends import get_backend
from trackbridge.history import Row
from trackbridge.model import LoggedModel, RunStatus

LIVE_KEY = os.environ.get("WANDB_API_KEY")  # read before the suite's isolation clears it


@pytest.fixture
def synced(sdk_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sdk_sockets):  # noqa: F811
    """The SDK run uploaded by `wandb sync` into a recorder that then serves it."""
    run_dir, exp = sdk_run
    copy = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, copy)
    rec = WandbRecorder().start()
    result = wandb_sync([copy], rec.url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    _point_at(monkeypatch, rec)
    yield rec, copy, exp
    _stop(rec)


def _point_at(monkeypatch: pytest.MonkeyPatch, rec: WandbRecorder, entity: str | None = None) -> None:
    """The SDK and ``wandb.Api`` talk to the recorder, online (wandb-core's history scan
    reads the SDK's settings, not the Api's overrides); a dummy key: it accepts any."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", rec.url)
    monkeypatch.setenv("WANDB_API_KEY", "local-" + "0" * 40)
    if entity:
        monkeypatch.setenv("WANDB_ENTITY", entity)


def _copy_and_check(src: str, dst: str) -> dict:
    """``copy SRC DST`` succeeds and ``check`` passes after it; the copy's stats."""
    copied = json.loads(invoke("copy", src, dst, "--json").stdout)
    assert copied["ok"], copied["errors"]
    checked = invoke("check", src, dst)
    assert checked.exit_code == 0, checked.stdout
    return copied["stats"]


def _stop(rec: WandbRecorder) -> None:
    """wandb's service first (it talks to the recorder), then the recorder."""
    import gc

    import wandb

    gc.collect()  # history scans send their cleanup to the service when collected
    wandb.teardown()
    rec.stop()


def _cloud(rec: WandbRecorder):
    return get_backend("wandb", {"base_url": rec.url, "entity": "recorder", "mode": "online"}).reader()


def _series(reader, run_id: str, key: str) -> list[tuple]:
    return [(p.step, "nan" if math.isnan(p.value) else p.value, p.timestamp)
            for page in reader.iter_metric_history(run_id, key) for p in page]


def test_cloud_reader_reads_what_our_offline_reader_reads(synced) -> None:
    rec, copy, exp = synced
    cloud = _cloud(rec)
    offline = get_backend("wandb-offline", {"path": str(copy)}).reader()
    assert [e.name for e in cloud.list_experiments()] == ["proj-a"]
    (run,) = list(cloud.list_runs("proj-a"))
    want = offline.get_run(exp["run_id"])
    assert run.run_id == want.run_id and run.name == want.name == "sdk-run"
    assert run.params == want.params == exp["config"]
    assert run.labels == want.labels and run.notes == want.notes
    assert run.tags == want.tags == {"wandb.group": "grp-1", "wandb.job_type": "train"}
    assert run.summary == want.summary == exp["summary"]
    assert run.status is RunStatus.FINISHED
    assert set(run.metrics) == set(want.metrics)
    for key in want.metrics:
        assert _series(cloud, run.run_id, key) == _series(offline, run.run_id, key), key
    rows = list(cloud.iter_rows(run.run_id, sorted(want.metrics)))
    assert len(rows) == len(exp["loss"]) + 2
    assert [(r.step, r.timestamp) for r in rows] == [(r.step, r.timestamp) for r in
                                                     offline.iter_rows(run.run_id, sorted(want.metrics))]
    # scan_history was read unfiltered and through the history pages, never sampled
    scans = [r["variables"] for r in rec.requests if r.get("operationName") == "HistoryPage"
             or "HistoryPage" in (r.get("query") or "")]
    assert scans and all(v["pageSize"] == v["maxStep"] - v["minStep"] for v in scans)


def test_cloud_reader_files_and_copy_out_to_the_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        sdk_sockets) -> None:  # noqa: F811
    """A run written by our offline writer, synced by W&B's sync, read from the stand-in:
    its files download, and ``copy wandb -> dir`` then ``check`` pass."""
    w = get_backend("wandb-offline", {"path": str(tmp_path / "out")}).writer()
    run_id = w.create_run("proj-c", name="files", start_time=1_700_000_000_000,
                          tags={"trackbridge.source.platform": "dir", "trackbridge.source.run_id": "r1", "k": "v"})
    w.log_params(run_id, {"lr": 0.5, "nested": {"a": 1}})
    w.log_rows(run_id, [Row(s, 1_700_000_000_000 + i, {"loss": float(i)}) for i, s in enumerate([0, 1, 1, 0])])
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "notes.txt").write_text("hello")
    w.log_artifact(run_id, tmp_path / "f" / "notes.txt", "docs")
    w.finish_run(run_id, RunStatus.FINISHED, 1_700_000_004_000)
    w.close()
    rec = WandbRecorder().start()
    try:
        result = wandb_sync(list((tmp_path / "out").glob("offline-run-*")), rec.url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        _point_at(monkeypatch, rec, entity="recorder")
        cloud = _cloud(rec)
        run = cloud.get_run(run_id)
        assert run.tags == {"trackbridge.source.platform": "dir", "trackbridge.source.run_id": "r1", "k": "v"}
        assert run.params == {"lr": 0.5, "nested": {"a": 1}}
        assert [(s, v) for s, v, _ in _series(cloud, run_id, "loss")] == [(0, 0.0), (1, 1.0), (1, 2.0), (0, 3.0)]
        assert [a.path for a in cloud.list_artifacts(run_id)] == ["docs/notes.txt"]
        got = cloud.download_artifact(run_id, "docs/notes.txt", tmp_path / "dl")
        assert got.read_text() == "hello"
        stats = _copy_and_check("wandb:proj-c", f"dir:{tmp_path / 'archive'}")
        assert stats["runs_created"] == 1 and stats["points"] == 4
    finally:
        _stop(rec)


def test_cloud_reader_lists_the_registry_wandb_sync_uploaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               sdk_sockets) -> None:  # noqa: F811
    """Registered versions written offline, uploaded by W&B's sync, listed through
    ``wandb.Api`` from the stand-in: the same models, versions and aliases as offline."""
    runs, _collection = write_registered(tmp_path / "out", tmp_path / "files")
    offline = list(get_backend("wandb-offline", {"path": str(tmp_path / "out")}).reader().list_registered_models())
    rec = WandbRecorder().start()
    try:
        for run_dir in sorted((tmp_path / "out").glob("offline-run-*")):
            result = wandb_sync([run_dir], rec.url, cwd=tmp_path)
            assert result.returncode == 0, result.stderr[-2000:]
        _point_at(monkeypatch, rec)
        cloud = list(_cloud(rec).list_registered_models())
        assert cloud == offline and len(cloud[0].versions) == 2
        assert [v.run_id for v in cloud[0].versions] == runs
        assert [v.aliases for v in cloud[0].versions] == [["staging"], ["champion"]]
    finally:
        _stop(rec)


@pytest.mark.live
@pytest.mark.skipif(not LIVE_KEY, reason="needs WANDB_API_KEY (a real W&B account)")
def test_live_cloud_lists_projects_and_reads_a_run(monkeypatch: pytest.MonkeyPatch, sdk_sockets) -> None:  # noqa: F811
    monkeypatch.setenv("WANDB_API_KEY", LIVE_KEY or "")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    reader = get_backend("wandb", {"mode": "online"}).reader()
    experiments = list(reader.list_experiments())
    assert isinstance(experiments, list)
    for exp in experiments[:1]:
        for run in list(reader.list_runs(exp.name))[:1]:
            for key in list(run.metrics)[:1]:
                points = [p for page in reader.iter_metric_history(run.run_id, key) for p in page]
                assert points and all(isinstance(p.timestamp, int) for p in points)


@pytest.mark.live
@pytest.mark.skipif(not LIVE_KEY, reason="needs WANDB_API_KEY (a real W&B account)")
def test_live_registry_link_reads_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sdk_sockets) -> None:  # noqa: F811
    """Online, the SDK writer links the model artifact into the registry; the cloud reader
    lists the version with its alias."""
    import uuid

    from trackbridge.model import ModelVersion, RegisteredModel

    monkeypatch.setenv("WANDB_API_KEY", LIVE_KEY or "")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    backend = get_backend("wandb", {"mode": "online", "project": "trackbridge-live"})
    writer = backend.writer()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"\x01" * 10)
    run_id = writer.create_run("trackbridge-live", name="registry")
    writer.log_model(run_id, tmp_path / "m", LoggedModel(name="clf", artifact_path="clf"))
    name = f"tb-live-{uuid.uuid4().hex[:6]}"
    writer.register_model(RegisteredModel(name, "live test"))
    made = writer.create_model_version(ModelVersion(name, "", artifact_path="clf"), run_id)
    writer.set_model_alias(name, "champion", made.version)
    writer.finish_run(run_id, RunStatus.FINISHED)
    writer.close()
    model = next(m for m in backend.reader().list_registered_models() if m.name == name)
    assert [v.aliases for v in model.versions] == [["champion"]] and model.versions[0].run_id == run_id


def test_sdk_writer_links_registered_versions_online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     sdk_sockets) -> None:  # noqa: F811
    """Online, the SDK writer logs the model artifact and links it (``run.link_artifact``)
    into the registry collection of the entity's org, then again with an alias; the cloud
    reader lists the version with its alias.  Stand-in: the recorder answers the SDK's own
    queries (ArtifactByID, FetchOrgInfoFromEntity, LinkArtifact, ArtifactMembershipByName)."""
    from trackbridge.model import ModelVersion, RegisteredModel

    rec = WandbRecorder().start()
    _point_at(monkeypatch, rec)
    try:
        backend = get_backend("wandb", {"mode": "online", "entity": "recorder", "base_url": rec.url})
        w = backend.writer()
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "w.bin").write_bytes(b"\x01" * 10)
        run_id = w.create_run("proj-o", name="online")
        assert not w.fallbacks  # it is online, against the recorder
        w.log_model(run_id, tmp_path / "m", LoggedModel(name="clf", artifact_path="clf"))
        w.register_model(RegisteredModel("fraud model", "detects fraud"))
        made = w.create_model_version(ModelVersion("fraud model", "", artifact_path="clf", tags={"k": "v"}), run_id)
        w.set_model_alias("fraud model", "champion", made.version)
        w.finish_run(run_id, RunStatus.FINISHED)
        w.close()
        assert made.version == "1"
        assert [(link["artifactPortfolioName"], link["entityName"], link["projectName"],
                 [a["alias"] for a in link["aliases"] or []], link["versionIndex"]) for link in rec.links] == [
            ("fraud-model", "recorder-org", "wandb-registry-model", [], 0),
            ("fraud-model", "recorder-org", "wandb-registry-model", ["champion"], 0)]
        assert rec.artifacts[rec.links[0]["artifact"]]["artifactCollectionName"] == "clf"
        [model] = list(_cloud(rec).list_registered_models())
        assert (model.name, model.description) == ("fraud model", "detects fraud")
        assert [(v.version, v.run_id, v.artifact_path, v.tags, v.aliases) for v in model.versions] == [
            ("1", run_id, "clf", {"k": "v"}, ["champion"])]
    finally:
        _stop(rec)


def test_copy_then_sync_into_wandb_online_continues_the_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             sdk_sockets) -> None:  # noqa: F811
    """MLflow -> ``wandb`` (the SDK, online against the recorder): the copy checks equal, the
    registered model included; after new points and a new alias at the source, ``sync``
    resumes the runs it did not open (``wandb.init(resume="must")``) and checks equal again."""
    from corpus import build_corpus, set_remotes
    from mlflow import MlflowClient

    corpus = build_corpus(f"sqlite:///{tmp_path / 'src.db'}", tmp_path / "src")
    set_remotes(monkeypatch, src=corpus.tracking_uri)
    rec = WandbRecorder().start()
    _point_at(monkeypatch, rec, entity="recorder")
    try:
        copied = json.loads(invoke("copy", "src", "wandb", "--json").stdout)
        assert copied["ok"], copied["errors"]
        assert copied["stats"]["runs_created"] == 4 and copied["stats"]["model_versions"] == 3
        checked = invoke("check", "src", "wandb")
        assert checked.exit_code == 0, checked.stdout
        client = MlflowClient(corpus.tracking_uri)
        parent = corpus.runs["parent"]
        client.log_metric(parent, "loss", 0.5, timestamp=1_700_000_999_000, step=10_000)
        client.set_registered_model_alias(corpus.model, "champion", "3")
        synced = json.loads(invoke("sync", "src", "wandb", "--json").stdout)
        assert synced["ok"], synced["errors"]
        assert synced["stats"]["runs_created"] == 0 and synced["stats"]["points"] == 1
        assert synced["stats"]["aliases"] == 1
        checked = invoke("check", "src", "wandb")
        assert checked.exit_code == 0, checked.stdout
        assert len(rec.upserts) == 4  # no run made twice
        again = json.loads(invoke("sync", "src", "wandb", "--json").stdout)
        assert again["ok"] and again["stats"]["points"] == 0 and again["stats"]["runs_updated"] == 0
    finally:
        _stop(rec)


def test_registry_linked_in_wandb_itself_is_read_and_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            sdk_sockets) -> None:  # noqa: F811
    """A registry made with the wandb SDK alone (``run.link_artifact``, no trackbridge) is
    read through ``wandb.Api().registries().versions()``: each version from the run that
    logged its artifact, its aliases but ``latest``; a copy to the archive checks equal.
    Stand-in: the recorder answers RegistryVersions and ArtifactCreatedBy."""
    import wandb

    rec = WandbRecorder().start()
    _point_at(monkeypatch, rec, entity="recorder")
    try:
        runs = []
        for i, alias in enumerate(["prod", "staging"]):
            (tmp_path / f"m{i}").mkdir()
            (tmp_path / f"m{i}" / "w.bin").write_bytes(bytes([i]) * 20)
            run = wandb.init(project="proj-n", entity="recorder", name=f"native{i}",
                             settings=wandb.Settings(base_url=rec.url, x_disable_stats=True, console="off"))
            run.log({"loss": 1.0 / (i + 1)})
            art = wandb.Artifact("clf", type="model", description=f"weights {i}")
            art.add_dir(str(tmp_path / f"m{i}"))
            run.link_artifact(run.log_artifact(art), "wandb-registry-model/native-clf", aliases=[alias])
            runs.append(run.id)
            run.finish()
        [model] = list(_cloud(rec).list_registered_models())
        assert model.name == "native-clf"
        assert [(v.version, v.run_id, v.artifact_path, v.aliases) for v in model.versions] == [
            ("1", runs[0], "clf", ["prod"]), ("2", runs[1], "clf", ["staging"])]
        stats = _copy_and_check("wandb:proj-n", f"dir:{tmp_path / 'archive'}")
        assert stats["model_versions"] == 2 and stats["aliases"] == 2
    finally:
        _stop(rec)
