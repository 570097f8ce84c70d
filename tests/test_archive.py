"""The ``dir:PATH`` archive: every RunRecord field, metric series, files and registry round-trip."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from trackbridge.backends import get_backend
from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.backends.base import RunFilter
from trackbridge.errors import BackendError, ConfigError, InvalidKeyError, RunNotFound
from trackbridge.model import (
    DatasetInput,
    LoggedModel,
    MetricPoint,
    MetricSummary,
    ModelVersion,
    RegisteredModel,
    RunStatus,
)


@pytest.fixture
def archive(tmp_path: Path) -> ArchiveBackend:
    backend = get_backend("dir", {"path": str(tmp_path / "archive")})
    assert isinstance(backend, ArchiveBackend)
    return backend


def test_every_run_field_round_trips(archive: ArchiveBackend) -> None:
    w = archive.writer()
    exp_id = w.ensure_experiment("churn", {"team": "ml"})
    assert w.ensure_experiment("churn") == exp_id  # idempotent, keeps tags
    parent = w.create_run(exp_id, name="parent", start_time=1_000)
    run_id = w.create_run(exp_id, name="child ü", start_time=1_700_000_000_123, user="ada",
                          parent_run_id=parent, tags={"k": "v", "trackbridge.source.platform": "wandb"})
    params = {"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam", "betas": {"b1": 0.9}},
              "none": None, "flag": True, "s": "x" * 10_000, "nan": math.nan}
    w.log_params(run_id, params)
    w.set_tags(run_id, {"k2": ""})
    w.set_labels(run_id, ["baseline", "gpu", "baseline"])
    w.set_labels(run_id, ["gpu", "final"])
    w.set_notes(run_id, "# Notes\nmulti-line ✓")
    w.log_summary(run_id, {"best": {"acc": 0.93}, "inf": math.inf})
    w.log_metrics(run_id, [("loss", MetricPoint(0, 1.0, 10)), ("loss", MetricPoint(1, 0.5, 20))])
    w.log_system_metrics(run_id, [("system/cpu", MetricPoint(0, 55.5, 11))])
    inputs = [DatasetInput("train", "abc123", "local", "/data/train.csv", schema='{"a": "int"}',
                           profile='{"rows": 10}', tags={"context": "training"})]
    w.log_inputs(run_id, inputs)
    w.log_inputs(run_id, inputs)  # resumed copy: no duplicate
    w.finish_run(run_id, RunStatus.FAILED, end_time=1_700_000_999_000)

    run = archive.reader().get_run(run_id)
    assert run.platform == "dir" and run.run_id == run_id
    assert (run.experiment, run.experiment_id) == ("churn", exp_id)
    assert run.name == "child ü" and run.user == "ada" and run.parent_run_id == parent
    assert (run.start_time, run.end_time, run.status) == (1_700_000_000_123, 1_700_000_999_000, RunStatus.FAILED)
    assert math.isnan(run.params.pop("nan"))
    params.pop("nan")
    assert run.params == params
    assert run.tags == {"k": "v", "trackbridge.source.platform": "wandb", "k2": ""}
    assert run.labels == ["baseline", "gpu", "final"]
    assert run.notes == "# Notes\nmulti-line ✓"
    assert run.summary == {"best": {"acc": 0.93}, "inf": math.inf}
    assert run.metrics == {"loss": MetricSummary("loss", 0.5, 1, 20)}
    assert run.system_metrics == {"system/cpu": MetricSummary("system/cpu", 55.5, 0, 11)}
    assert run.inputs == inputs
    assert run.url and run.url.startswith("file://") and run_id in run.url
    assert archive.reader().get_experiment("churn").tags == {"team": "ml"}
    assert [e.name for e in archive.reader().list_experiments()] == ["churn"]


def test_defaults_of_a_fresh_run(archive: ArchiveBackend) -> None:
    w = archive.writer()
    run_id = w.create_run(w.ensure_experiment("e"))
    w.finish_run(run_id, RunStatus.RUNNING)  # a copy of a run still running: no end time
    run = archive.reader().get_run(run_id)
    assert run.status == RunStatus.RUNNING and run.start_time and run.end_time is None
    assert (run.params, run.tags, run.labels, run.metrics, run.summary) == ({}, {}, [], {}, {})
    w.finish_run(run_id, RunStatus.KILLED)  # ending now without a time: now
    assert archive.reader().get_run(run_id).end_time >= run.start_time


def _points(reader, run_id: str, key: str, page_size: int) -> list[list[MetricPoint]]:
    return list(reader.iter_metric_history(run_id, key, page_size=page_size))


def test_metric_series_keeps_order_nan_inf_and_pages_exactly(tmp_path: Path) -> None:
    archive = ArchiveBackend({"path": str(tmp_path / "a"), "part_points": 300})  # several parts
    w = archive.writer()
    run_id = w.create_run(w.ensure_experiment("e"))
    specials = [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]
    series = [MetricPoint(step=(i * 7919) % 1050, value=specials[i] if i < len(specials) else i / 3,
                          timestamp=1_700_000_000_000 + i) for i in range(1050)]
    other = [MetricPoint(i, float(i), i) for i in range(40)]
    mixed = [p for pair in zip(series, [("b", o) for o in other] * 27) for p in (("a", pair[0]), pair[1])]
    for start in range(0, len(mixed), 250):
        w.log_metrics(run_id, mixed[start:start + 250])
    w.finish_run(run_id, RunStatus.FINISHED)

    pages = _points(archive.reader(), run_id, "a", 100)
    assert [len(p) for p in pages] == [100] * 10 + [50]
    got = [p for page in pages for p in page]
    assert [p.key() for p in got] == [p.key() for p in series]  # logged order, out-of-order steps kept
    assert math.isnan(got[0].value) and got[1].value == math.inf and got[2].value == -math.inf
    assert math.copysign(1, got[3].value) == -1 and got[5].value == 5e-324
    assert len([p for page in _points(archive.reader(), run_id, "b", 1000) for p in page]) == 1050
    assert _points(archive.reader(), run_id, "missing", 10) == []
    latest = max(series, key=lambda p: (p.step, p.timestamp))
    assert archive.reader().get_run(run_id).metrics["a"] == MetricSummary("a", latest.value, latest.step, latest.timestamp)


def test_points_are_visible_after_flush_not_before(archive: ArchiveBackend) -> None:
    w = archive.writer()
    run_id = w.create_run(w.ensure_experiment("e"))
    w.log_metrics(run_id, [("m", MetricPoint(0, 1.0, 0))])
    assert _points(archive.reader(), run_id, "m", 10) == []
    w.flush()
    assert _points(archive.reader(), run_id, "m", 10) == [[MetricPoint(0, 1.0, 0)]]


def test_a_key_cannot_be_both_user_and_system_metric(archive: ArchiveBackend) -> None:
    w = archive.writer()
    run_id = w.create_run(w.ensure_experiment("e"))
    w.log_metrics(run_id, [("cpu", MetricPoint(0, 1.0, 0))])
    w.flush()
    with pytest.raises(InvalidKeyError, match="cpu"):
        w.log_system_metrics(run_id, [("cpu", MetricPoint(1, 1.0, 1))])


def test_artifacts_with_subfolders_unicode_and_digests(archive: ArchiveBackend, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub" / "déjà vu").mkdir(parents=True)
    (src / "a.txt").write_text("hello")
    (src / "sub" / "déjà vu" / "日本.bin").write_bytes(b"\x00\x01" * 1000)
    (src / "sub" / "x.tmp").write_text("a user file that merely ends in .tmp")
    single = tmp_path / "report.md"
    single.write_text("# report")
    w = archive.writer()
    run_id = w.create_run(w.ensure_experiment("e"))
    w.log_artifact(run_id, src, "out")
    w.log_artifact(run_id, single)
    w.log_artifact(run_id, single, "docs/final")

    reader = archive.reader()
    infos = {a.path: a for a in reader.list_artifacts(run_id)}
    assert sorted(infos) == ["docs/final/report.md", "out/a.txt", "out/sub/déjà vu/日本.bin", "out/sub/x.tmp", "report.md"]
    assert infos["out/a.txt"].size == 5
    assert infos["out/a.txt"].digest == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    dst = tmp_path / "dst"
    got = reader.download_artifact(run_id, "out/sub/déjà vu/日本.bin", dst)
    assert got == dst / "out" / "sub" / "déjà vu" / "日本.bin" and got.read_bytes() == b"\x00\x01" * 1000
    with pytest.raises(BackendError, match="not a relative path"):
        reader.download_artifact(run_id, "../../etc/passwd", dst)
    with pytest.raises(BackendError, match="not a relative path"):
        w.log_artifact(run_id, single, "../escape")
    with pytest.raises(BackendError, match="not among"):
        reader.download_artifact(run_id, "nope.txt", dst)


def test_models_round_trip_with_flavors(archive: ArchiveBackend, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text(
        "artifact_path: model\nflavors:\n  python_function:\n    env: conda.yaml\n  sklearn:\n"
        "    code: null\nmodel_uuid: abc\n")
    (model_dir / "model.pkl").write_bytes(b"pickle")
    w = archive.writer()
    run_id = w.create_run(w.ensure_experiment("e"))
    meta = LoggedModel("clf", "clf", params={"C": "1.0"}, metrics={"acc": 0.5}, tags={"k": "v"},
                       model_type="classifier", status="READY")
    logged = w.log_model(run_id, model_dir, meta)
    (model_dir / "model.pkl").write_bytes(b"pickle 2")
    # autolog logs "model" on every fit: the same name again is a second model, with its own files
    again = w.log_model(run_id, model_dir, LoggedModel("clf", "clf"))
    assert logged == LoggedModel("clf", "clf", ["python_function", "sklearn"], logged.model_id, {"C": "1.0"},
                                 {"acc": 0.5}, {"k": "v"}, "classifier", "READY")
    assert again.artifact_path == "clf-2" and again.model_id != logged.model_id
    assert logged.model_id and logged.model_id.startswith("m-")

    reader = archive.reader()
    run = reader.get_run(run_id)
    assert run.models == [logged, again]
    assert list(reader.list_artifacts(run_id)) == []  # models live apart from artifacts
    out = reader.download_model(run_id, run.models[0], tmp_path / "dl")
    assert out == tmp_path / "dl" / "clf"
    assert (out / "model.pkl").read_bytes() == b"pickle" and (out / "MLmodel").is_file()
    second = reader.download_model(run_id, run.models[1], tmp_path / "dl2")
    assert (second / "model.pkl").read_bytes() == b"pickle 2"


def test_registry_three_versions_and_aliases(archive: ArchiveBackend) -> None:
    w = archive.writer()
    run_id = w.create_run(w.ensure_experiment("e"))
    w.register_model(RegisteredModel("churn/clf", "first", {"owner": "ml"}))
    w.register_model(RegisteredModel("churn/clf", "", {"team": "x"}))  # keeps description, merges tags
    made = [
        w.create_model_version(ModelVersion("churn/clf", "1", source="runs:/src/model", artifact_path="model",
                                            description="v1", tags={"t": "1"}, creation_time=100), run_id),
        w.create_model_version(ModelVersion("churn/clf", "2", source="s2", stage="Staging", aliases=["staging"],
                                            creation_time=200), run_id),
        w.create_model_version(ModelVersion("churn/clf", "", source="s3", model_id="m-1"), None),
    ]
    assert [v.version for v in made] == ["1", "2", "3"]
    again = w.create_model_version(ModelVersion("churn/clf", "2", source="s2", stage="Staging"), run_id)
    assert again.version == "2"  # identical version: resumed copy, not a new one
    clash = w.create_model_version(ModelVersion("churn/clf", "1", source="other"), run_id)
    assert clash.version == "4"  # a different version under a taken name gets the next number
    w.set_model_alias("churn/clf", "champion", "3")
    w.set_model_alias("churn/clf", "staging", "1")  # an alias moves
    with pytest.raises(BackendError, match="no version '9'"):
        w.set_model_alias("churn/clf", "x", "9")

    [model] = list(archive.reader().list_registered_models())
    assert (model.name, model.description, model.tags) == ("churn/clf", "first", {"owner": "ml", "team": "x"})
    assert [v.version for v in model.versions] == ["1", "2", "3", "4"]
    v1, v2, v3, _ = model.versions
    assert (v1.source, v1.run_id, v1.artifact_path, v1.description, v1.tags, v1.creation_time) == (
        "runs:/src/model", run_id, "model", "v1", {"t": "1"}, 100)
    assert (v1.aliases, v2.aliases, v3.aliases) == (["staging"], [], ["champion"])
    assert v2.stage == "Staging" and v3.model_id == "m-1" and v3.run_id is None and v3.creation_time


def test_list_runs_honours_filters(archive: ArchiveBackend) -> None:
    w = archive.writer()
    exp = w.ensure_experiment("e")
    other = w.ensure_experiment("other")
    ids = []
    for i, status in enumerate([RunStatus.FINISHED, RunStatus.FAILED, RunStatus.FINISHED]):
        run_id = w.create_run(exp, name=f"r{i}", start_time=1000 * (i + 1), tags={"split": "a" if i else "b"})
        w.log_params(run_id, {"seed": i})
        w.finish_run(run_id, status)
        ids.append(run_id)
    w.create_run(other)
    reader = archive.reader()

    def names(f: RunFilter | None = None) -> list[str]:
        return sorted(r.name for r in reader.list_runs("e", f))

    assert names() == ["r0", "r1", "r2"]
    assert names(RunFilter(statuses=[RunStatus.FINISHED])) == ["r0", "r2"]
    assert names(RunFilter(since=2000)) == ["r1", "r2"]
    assert names(RunFilter(until=2000)) == ["r0"]
    assert names(RunFilter(tags={"split": "a"})) == ["r1", "r2"]
    assert names(RunFilter(params={"seed": "2"})) == ["r2"]
    assert names(RunFilter(run_ids=[ids[1], "../x", "nope"])) == ["r1"]
    assert list(reader.list_runs("no such experiment")) == []


def test_delete_run(archive: ArchiveBackend) -> None:
    w = archive.writer()
    exp = w.ensure_experiment("e")
    keep, gone = w.create_run(exp), w.create_run(exp)
    w.log_metrics(gone, [("m", MetricPoint(0, 1.0, 0))])
    w.delete_run(gone)
    reader = archive.reader()
    assert [r.run_id for r in reader.list_runs("e")] == [keep]
    with pytest.raises(RunNotFound):
        reader.get_run(gone)
    with pytest.raises(RunNotFound):
        w.set_tags(gone, {"a": "b"})


def test_backend_options_and_limits(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a path"):
        ArchiveBackend({})
    for bad in ("0", "many"):
        with pytest.raises(ConfigError, match="part_points must be a positive integer"):
            ArchiveBackend({"path": str(tmp_path / "a"), "part_points": bad}).writer()
    backend = ArchiveBackend({"path": str(tmp_path / "a")})
    assert backend.describe() == f"dir:{tmp_path / 'a'}"
    assert backend.writer() is backend.writer()  # threads share one writer's locks and buffers
    limits = backend.writer().limits
    assert not limits.flat_params and limits.allows_nan and limits.key_pattern is None
    assert limits.key_ok("any key / with ü: and spaces") and limits.key_ok("k" * 100_000)


def test_copies_are_found_by_source_through_the_index_on_disk(archive: ArchiveBackend, monkeypatch) -> None:  # noqa: ANN001
    """A look-up by source run lists one small folder (not the whole experiment): entries
    are made with the run (or when a run becomes a copy later) and dropped with it."""
    from trackbridge.backends.archive import source_index
    from trackbridge.provenance_tags import SOURCE_PLATFORM, SOURCE_RUN_ID

    w = archive.writer()
    exp = w.ensure_experiment("copies")
    made = [w.create_run(exp, name=f"r{i}", tags={SOURCE_PLATFORM: "mlflow", SOURCE_RUN_ID: f"src-{i % 2}"})
            for i in range(4)]
    plain = w.create_run(exp, name="plain")
    w.set_tags(plain, {SOURCE_PLATFORM: "mlflow", SOURCE_RUN_ID: "src-late"})
    monkeypatch.setattr(source_index.SourceIndex, "runs_of", lambda *a: pytest.fail("scanned the experiment"))
    reader = archive.reader()
    assert {r.run_id for r in reader.find_runs("copies", {SOURCE_RUN_ID: "src-0"})} == {made[0], made[2]}
    assert [r.run_id for r in reader.find_runs("copies", {SOURCE_RUN_ID: "src-late"})] == [plain]
    assert reader.find_runs("copies", {SOURCE_RUN_ID: "src-1", SOURCE_PLATFORM: "wandb"}) == []
    w.delete_run(made[1])
    assert [r.run_id for r in reader.find_runs("copies", {SOURCE_RUN_ID: "src-1"})] == [made[3]]
    assert reader.find_runs("copies", {SOURCE_RUN_ID: "never"}) == []


def test_an_experiment_written_before_the_index_is_still_searched_by_source(archive: ArchiveBackend) -> None:
    from trackbridge.backends.archive.files import remove_tree
    from trackbridge.provenance_tags import SOURCE_RUN_ID

    w = archive.writer()
    exp = w.ensure_experiment("old")
    remove_tree(archive.reader().layout.sources_dir(exp))  # as an archive of the previous version has it
    first = w.create_run(exp, name="a", tags={SOURCE_RUN_ID: "s"})
    assert [r.run_id for r in archive.reader().find_runs("old", {SOURCE_RUN_ID: "s"})] == [first]
    assert not archive.reader().layout.sources_dir(exp).exists()  # never made half-complete later


def test_a_copy_in_progress_reaches_disk_when_completed_and_a_live_run_at_once(archive: ArchiveBackend) -> None:
    """A copy's run.json changes wait in memory for its completion marker (the engine
    resumes an incomplete copy from what is on disk); a run logged live is written on
    every change, and a completed copy being updated is marked incomplete on disk first."""
    from trackbridge.provenance_tags import COMPLETE, SOURCE_RUN_ID

    w = archive.writer()
    exp = w.ensure_experiment("e")
    live = w.create_run(exp, name="live")
    w.log_params(live, {"lr": 0.1})
    copy = w.create_run(exp, name="copy", tags={SOURCE_RUN_ID: "s"})
    w.log_params(copy, {"lr": 0.2})
    w.finish_run(copy, RunStatus.FINISHED, end_time=5)
    reader = archive.reader()
    assert reader.get_run(live).params == {"lr": 0.1}
    on_disk = reader.get_run(copy)
    assert on_disk.params == {} and on_disk.status == RunStatus.RUNNING and on_disk.tags[SOURCE_RUN_ID] == "s"
    w.set_tags(copy, {COMPLETE: "fp1"})
    done = reader.get_run(copy)
    assert (done.params, done.status, done.end_time, done.tags[COMPLETE]) == ({"lr": 0.2}, RunStatus.FINISHED, 5, "fp1")
    w.set_tags(copy, {COMPLETE: ""})  # an update starts: on disk at once
    w.log_params(copy, {"epochs": 3})
    assert reader.get_run(copy).tags[COMPLETE] == "" and "epochs" not in reader.get_run(copy).params
    w.set_tags(copy, {COMPLETE: "fp2"})
    assert reader.get_run(copy).params == {"lr": 0.2, "epochs": 3}


def test_the_writer_rereads_a_run_json_another_writer_changed(archive: ArchiveBackend) -> None:
    w = archive.writer()
    exp = w.ensure_experiment("e")
    run = w.create_run(exp)
    w.log_params(run, {"a": 1})
    other = ArchiveBackend({"path": str(archive.reader().layout.root)}).writer()
    assert other is not w
    other.set_tags(run, {"by": "other"})
    w.log_params(run, {"b": 2})
    record = archive.reader().get_run(run)
    assert record.params == {"a": 1, "b": 2} and record.tags["by"] == "other"


def test_a_run_with_a_damaged_run_json_can_still_be_deleted(archive: ArchiveBackend) -> None:
    from trackbridge.provenance_tags import SOURCE_RUN_ID

    w = archive.writer()
    exp = w.ensure_experiment("e")
    run = w.create_run(exp, tags={SOURCE_RUN_ID: "s"})
    layout = archive.reader().layout
    (layout.run_dir(exp, run) / "run.json").write_text("{damaged")
    fresh = ArchiveBackend({"path": str(layout.root)}).writer()
    fresh.delete_run(run)
    assert not layout.run_dir(exp, run).exists()
    assert archive.reader().find_runs("e", {SOURCE_RUN_ID: "s"}) == []  # its stale index entry is harmless
