"""Reading Comet's cloud through comet_ml.API / APIExperiment, against a local stand-in
built from Comet's documented REST v2 shapes (tests/comet_helpers.py: CloudStandIn)."""
from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

import comet_helpers as h
from trackbridge.backends.comet.backend import CometBackend
from trackbridge.errors import RunNotFound
from trackbridge.model import RunStatus

KEY = "c" * 32
N = 20_000  # more than comet upload's sampling size: the read is never sampled

EXPERIMENT = {
    "key": KEY, "name": "cloud run", "workspace": "ws", "project": "proj", "start": 1_700_000_000_000,
    "end": 1_700_000_090_000,
    "params": {"lr": 0.1, "opt|name": "adam", "opt|beta": 0.9, "curr_step": 5},
    "others": {"Name": "cloud run", "hasNestedParams": "True", "offline_experiment": "False", "team": "vision",
               "trackbridge.notes": "cloud notes", "trackbridge.summary.best": "0.5",
               "trackbridge.source.user": "ada"},
    "tags": ["baseline", "gpu"],
    "metrics": {"loss": [(i, 1.0 / (i + 1), 1_700_000_000_000 + i) for i in range(N)],
                "odd": [(0, "NaN", 5), (1, "Infinity", 6)], "sys.cpu.percent.avg": [(0, 12.5, 7)]},
    "assets": [{"fileName": "docs/report.txt", "assetId": "a1", "type": "asset", "data": b"report body",
                "metadata": '{"pages": 3, "lang": "en"}'},  # log_asset(..., metadata=...): Comet gives JSON text
               {"fileName": "weights.bin", "assetId": "a2", "type": "model-element", "data": b"\x00\x01\x02",
                "metadata": {"groupingName": "clf"}},
               {"fileName": "train.py", "assetId": "a3", "type": "source_code", "data": b"print()"}],
    "registry": [{"name": "reg-clf", "description": "the model", "versions": [
        {"version": "1.0.0", "comment": "first", "status": "Production", "tags": ["alias:champion", "team=ml"],
         "model": "clf"},
        {"version": "2.0.0", "comment": "", "status": None, "tags": [], "model": "clf"}]}],
}


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[h.CloudStandIn]:
    stand_in = h.CloudStandIn(EXPERIMENT).start()
    monkeypatch.setenv("COMET_URL_OVERRIDE", stand_in.url)
    monkeypatch.setenv("COMET_API_KEY", "test-key-not-secret")
    yield stand_in
    stand_in.stop()


def test_runs_params_others_tags_and_summaries(cloud: h.CloudStandIn) -> None:
    reader = CometBackend({}).reader()
    assert [(e.id, e.name) for e in reader.list_experiments()] == [("ws/proj", "proj")]
    assert reader.get_experiment("ws/proj").name == "proj" and reader.get_experiment("nope") is None
    [run] = list(reader.list_runs("proj"))
    assert run == reader.get_run(KEY)
    assert (run.run_id, run.name, run.status, run.start_time, run.end_time) == (
        KEY, "cloud run", RunStatus.FINISHED, EXPERIMENT["start"], EXPERIMENT["end"])
    # Comet keeps parameters as flat text (a|b), step counters dropped
    assert run.params == {"lr": "0.1", "opt|name": "adam", "opt|beta": "0.9"}
    assert run.tags == {"team": "vision", "trackbridge.source.user": "ada"}
    assert (run.user, run.notes, run.summary, run.labels) == ("ada", "cloud notes", {"best": 0.5}, ["baseline", "gpu"])
    assert set(run.metrics) == {"loss", "odd"} and set(run.system_metrics) == {"sys.cpu.percent.avg"}
    assert run.metrics["loss"].step == N - 1
    assert [m.name for m in run.models] == ["clf"]


def test_full_metric_history_in_pages(cloud: h.CloudStandIn) -> None:
    reader = CometBackend({}).reader()
    pages = list(reader.iter_metric_history(KEY, "loss", page_size=7_000))
    assert [len(p) for p in pages] == [7_000, 7_000, 6_000]
    points = [p for page in pages for p in page]
    assert [(p.step, p.value, p.timestamp) for p in points] == EXPERIMENT["metrics"]["loss"]
    odd = [p for page in reader.iter_metric_history(KEY, "odd") for p in page]
    assert math.isnan(odd[0].value) and odd[1].value == math.inf


def test_assets_models_and_registry(cloud: h.CloudStandIn, tmp_path: Path) -> None:
    reader = CometBackend({}).reader()
    assert [(a.path, a.size) for a in reader.list_artifacts(KEY)] == [("docs/report.txt", 11)]
    got = reader.download_artifact(KEY, "docs/report.txt", tmp_path)
    assert got == tmp_path / "docs" / "report.txt" and got.read_bytes() == b"report body"
    run = reader.get_run(KEY)
    assert run.artifact_meta == {"docs/report.txt": {"metadata": {"pages": 3, "lang": "en"}}}
    [model] = run.models
    folder = reader.download_model(KEY, model, tmp_path / "m")
    assert (folder / "weights.bin").read_bytes() == b"\x00\x01\x02"
    [reg] = list(reader.list_registered_models())
    assert (reg.name, reg.description, [v.version for v in reg.versions]) == ("reg-clf", "the model", ["1.0.0", "2.0.0"])
    first = reg.versions[0]
    assert (first.run_id, first.artifact_path, first.stage, first.aliases, first.tags, first.description) == (
        KEY, "clf", "Production", ["champion"], {"team": "ml"}, "first")


def test_unknown_experiment_is_run_not_found(cloud: h.CloudStandIn) -> None:
    with pytest.raises(RunNotFound):
        CometBackend({}).reader().get_run("d" * 32)


def test_copy_of_an_archive_into_comet_sends_every_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through trackbridge, not `comet upload`: no sampling, 20,000 points with their own
    times, and the completion marker (set after the run ended) through the REST API, last."""
    from trackbridge.backends.comet.backend import CometOfflineBackend
    from trackbridge.model import MetricPoint
    from trackbridge.sync.engine import Options, SyncEngine
    from trackbridge.sync.plan import Selection
    from trackbridge.sync.provenance import COMPLETE

    stand_in = h.CloudStandIn({**EXPERIMENT, "project": "unrelated"}).start()
    try:
        monkeypatch.setenv("COMET_URL_OVERRIDE", stand_in.url)
        monkeypatch.setenv("COMET_API_KEY", "test-key-not-secret")
        w = CometOfflineBackend({"path": str(tmp_path / "src")}).writer()
        run_id = w.create_run("p", name="long", start_time=1)
        points = [MetricPoint(i, float(i), 1_000 + i) for i in range(N)]
        w.log_metrics(run_id, [("loss", p) for p in points])
        w.finish_run(run_id, RunStatus.FINISHED, 2)
        w.close()
        outcome = SyncEngine(CometOfflineBackend({"path": str(tmp_path / "src")}), CometBackend({"workspace": "ws"}),
                             Options(mode="copy")).run(Selection(experiments=["p"]))
        assert outcome.ok, outcome.errors
        assert h.uploaded_metrics(stand_in)["loss"] == [(p.step, p.value, p.timestamp) for p in points]
        others = [b["key"] for b in stand_in.bodies("/write/experiment/log-other")]
        assert others[-1] == COMPLETE
    finally:
        stand_in.stop()


def test_copy_with_registry_into_comet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The conformance sample (a registered model, two versions, an alias) copied into
    Comet by the engine: versions registered after the run ended (REST API), the alias as
    a version tag, all read back through comet_ml.API."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "conformance"))
    from sample import write_sample

    from trackbridge.backends.comet.backend import CometOfflineBackend
    from trackbridge.sync.engine import Options, SyncEngine
    from trackbridge.sync.plan import Selection

    stand_in = h.CloudStandIn({**EXPERIMENT, "project": "unrelated", "registry": []}).start()
    try:
        monkeypatch.setenv("COMET_URL_OVERRIDE", stand_in.url)
        monkeypatch.setenv("COMET_API_KEY", "test-key-not-secret")
        writer = CometOfflineBackend({"path": str(tmp_path / "src")}).writer()
        sample = write_sample(writer, tmp_path / "files")
        writer.close()
        outcome = SyncEngine(CometOfflineBackend({"path": str(tmp_path / "src")}), CometBackend({"workspace": "ws"}),
                             Options(mode="copy")).run(Selection(experiments=[sample.experiment]))
        assert outcome.ok, outcome.errors
        [reg] = [m for m in CometBackend({"workspace": "ws"}).reader().list_registered_models()
                 if m.name == sample.model]
        assert reg.description == "a model ✓" and reg.tags == {"owner": "ada"}
        assert [v.version for v in reg.versions] == ["1.0.0", "2.0.0"]
        assert reg.versions[1].aliases == ["champion"] and reg.versions[0].aliases == []
        assert {v.tags["trackbridge.source.version"] for v in reg.versions} == {"1.0.0", "2.0.0"}
    finally:
        stand_in.stop()
