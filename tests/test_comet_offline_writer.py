"""comet-offline as a destination: archives written directly, read back equal, accepted
by Comet's own tools (``comet offline`` and the real ``comet upload`` against a local
recorder standing in for Comet)."""
from __future__ import annotations

import csv
import json
import math
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import comet_helpers as h
from trackbridge.backends.comet.backend import CometOfflineBackend
from trackbridge.backends.comet.format import experiment_key
from trackbridge.history import Row
from trackbridge.model import LoggedModel, MetricPoint, ModelVersion, RunStatus

SOURCE_TAGS = {"trackbridge.source.platform": "mlflow", "trackbridge.source.run_id": "run-123",
               "trackbridge.mapping_version": "1", "team": "vision"}
PARAMS = {"lr": 0.001, "layers": 4, "opt": {"name": "sgd", "momentum": 0.9, "nest": {"deep": "yes"}},
          "tags_list": [1, 2, 3], "flag": False}
STEPS = 1500


def _rows() -> list[Row]:
    return [Row(i, 1_700_000_000_000 + 37 * i, {"loss": 1 / (i + 1), "epoch": float(i // 500),
                                                **({"val": i * 0.5} if i % 50 == 0 else {})})
            for i in range(STEPS)]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    (d / "sub" / "w.bin").write_bytes(b"\x00\xff" * 300)
    return d


def _write(root: Path, model_dir: Path, tmp: Path, finish: bool = True) -> tuple[CometOfflineBackend, str]:
    backend = CometOfflineBackend({"path": str(root), "workspace": "ws"})
    w = backend.writer()
    exp = w.ensure_experiment("proj")
    run_id = w.create_run(exp, name="copied", start_time=1_700_000_000_000, tags=SOURCE_TAGS)
    w.log_params(run_id, PARAMS)
    w.set_labels(run_id, ["b-label", "a-label"])
    w.set_notes(run_id, "line one\nline two")
    w.log_summary(run_id, {"best": 0.25, "nested": {"nan": float("nan")}})
    w.log_rows(run_id, _rows())
    w.log_metrics(run_id, [("odd", MetricPoint(3, math.nan, 5)), ("odd", MetricPoint(4, math.inf, 6)),
                           ("odd", MetricPoint(5, -math.inf, 7))])
    w.log_system_metrics(run_id, [("system/cpu", MetricPoint(0, 12.5, 1_700_000_000_001)),
                                  ("sys.gpu.0.util", MetricPoint(0, 80.0, 1_700_000_000_002))])
    (tmp / "report.txt").write_text("report body")
    w.log_artifact(run_id, tmp / "report.txt", "docs")
    w.log_model(run_id, model_dir, LoggedModel(name="clf", artifact_path="clf"))
    w.create_model_version(ModelVersion(name="registry-clf", version="2", artifact_path="clf", stage="Staging",
                                        description="v2", tags={"team": ""}, aliases=["champion"]), run_id)
    if finish:
        w.finish_run(run_id, RunStatus.FINISHED, 1_700_000_099_000)
        w.set_tags(run_id, {"trackbridge.complete": "fp-1"})  # the marker comes last, after finish
        w.close()
    return backend, run_id


def _points(reader, run_id: str, key: str) -> list[tuple[int, float, int]]:
    return [(p.step, p.value, p.timestamp) for page in reader.iter_metric_history(run_id, key) for p in page]


def test_written_archive_reads_back_equal(tmp_path: Path, model_dir: Path) -> None:
    backend, run_id = _write(tmp_path / "dest", model_dir, tmp_path)
    assert run_id == experiment_key("mlflow", "run-123")
    assert [p.name for p in (tmp_path / "dest").iterdir()] == [f"{run_id}.zip"]  # no staging left
    r = backend.reader()
    run = r.get_run(run_id)
    assert (run.name, run.experiment, run.experiment_id, run.status) == ("copied", "proj", "ws/proj", RunStatus.FINISHED)
    assert (run.start_time, run.end_time) == (1_700_000_000_000, 1_700_000_099_000)
    assert run.params == PARAMS
    assert run.tags == {**SOURCE_TAGS, "trackbridge.complete": "fp-1"}
    assert run.labels == ["b-label", "a-label"]
    assert run.notes == "line one\nline two"
    assert run.summary["best"] == 0.25 and math.isnan(run.summary["nested"]["nan"])
    assert set(run.metrics) == {"loss", "epoch", "val", "odd"}
    assert set(run.system_metrics) == {"system/cpu", "sys.gpu.0.util"}
    assert run.unread == {}
    rows = _rows()
    assert _points(r, run_id, "loss") == [(x.step, x.values["loss"], x.timestamp) for x in rows]
    assert _points(r, run_id, "epoch") == [(x.step, x.values["epoch"], x.timestamp) for x in rows]
    assert _points(r, run_id, "val") == [(x.step, x.values["val"], x.timestamp) for x in rows if "val" in x.values]
    odd = _points(r, run_id, "odd")
    assert math.isnan(odd[0][1]) and [v for _, v, _ in odd[1:]] == [math.inf, -math.inf]
    assert _points(r, run_id, "system/cpu") == [(0, 12.5, 1_700_000_000_001)]
    assert [a.path for a in r.list_artifacts(run_id)] == ["docs/report.txt"]
    assert r.download_artifact(run_id, "docs/report.txt", tmp_path / "dl").read_text() == "report body"
    [model] = run.models
    out = r.download_model(run_id, model, tmp_path / "models")
    assert (out / "sub" / "w.bin").read_bytes() == b"\x00\xff" * 300 and (out / "MLmodel").is_file()
    [reg] = list(r.list_registered_models())
    [ver] = reg.versions
    assert (reg.name, ver.version, ver.stage, ver.aliases, ver.tags, ver.run_id, ver.artifact_path) == (
        "registry-clf", "2.0.0", "Staging", ["champion"], {"team": ""}, run_id, "clf")
    # each point carries the epoch of its row, as Comet shows it
    msgs = h.messages(tmp_path / "dest" / f"{run_id}.zip")
    epochs = {m["payload"]["metric"]["step"]: m["payload"]["metric"]["epoch"] for m in msgs
              if m["type"] == "metric_msg" and m["payload"]["metric"]["metricName"] == "loss"}
    assert epochs[0] == 0 and epochs[499] == 0 and epochs[500] == 1 and epochs[1499] == 2


def test_key_is_comets_own_deterministic_key() -> None:
    import comet_ml

    assert experiment_key("mlflow", "run-123") == comet_ml.get_experiment_key("trackbridge:mlflow:run-123")


def test_second_copy_rewrites_the_same_archive(tmp_path: Path, model_dir: Path) -> None:
    _write(tmp_path / "dest", model_dir, tmp_path)
    first = (tmp_path / "dest").iterdir().__next__().name
    backend, run_id = _write(tmp_path / "dest", model_dir, tmp_path)
    assert [p.name for p in (tmp_path / "dest").iterdir()] == [first]
    assert len(_points(backend.reader(), run_id, "loss")) == STEPS  # not twice


def test_crash_mid_run_leaves_the_committed_archive_and_a_rerun_rewrites(tmp_path: Path, model_dir: Path) -> None:
    dest = tmp_path / "dest"
    _write(dest, model_dir, tmp_path)
    committed = (dest / f"{experiment_key('mlflow', 'run-123')}.zip").read_bytes()
    # a second copy that dies before finish_run: staging only, the committed zip untouched
    _write(dest, model_dir, tmp_path, finish=False)
    assert (dest / f"{experiment_key('mlflow', 'run-123')}.zip").read_bytes() == committed
    assert (dest / ".trackbridge-staging").is_dir()
    assert len(list(CometOfflineBackend({"path": str(dest)}).reader().list_runs("proj"))) == 1
    # the next attempt rewrites from scratch and cleans up
    backend, run_id = _write(dest, model_dir, tmp_path)
    assert sorted(p.name for p in dest.iterdir()) == [f"{run_id}.zip"]
    assert len(_points(backend.reader(), run_id, "loss")) == STEPS


def test_later_writes_reopen_the_archive(tmp_path: Path, model_dir: Path) -> None:
    backend, run_id = _write(tmp_path / "dest", model_dir, tmp_path)
    w = CometOfflineBackend({"path": str(tmp_path / "dest")}).writer()  # a new process, say
    w.set_tags(run_id, {"late": "tag"})
    w.log_metrics(run_id, [("loss", MetricPoint(STEPS, 0.0, 1_700_000_200_000))])
    w.close()
    run = backend.reader().get_run(run_id)
    assert run.tags["late"] == "tag" and run.tags["trackbridge.complete"] == "fp-1"
    assert len(_points(backend.reader(), run_id, "loss")) == STEPS + 1
    [reg] = list(backend.reader().list_registered_models())
    assert [v.version for v in reg.versions] == ["2.0.0"]  # registrations kept once
    names = zipfile.ZipFile(tmp_path / "dest" / f"{run_id}.zip").namelist()
    assert names[:2] == ["experiment.json", "messages.json"] and len(names) == 2 + 3


def test_points_stream_to_disk(tmp_path: Path) -> None:
    """A long copy holds no points in memory: 200,000 points, peak Python memory small."""
    w = CometOfflineBackend({"path": str(tmp_path / "dest")}).writer()
    run_id = w.create_run(w.ensure_experiment("p"), tags={})
    tracemalloc.start()
    for chunk in range(20):
        w.log_rows(run_id, [Row(i, i, {"a": float(i), "b": 1.0}) for i in range(chunk * 5000, (chunk + 1) * 5000)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, peak
    w.finish_run(run_id, RunStatus.FINISHED, 10)
    w.close()
    assert sum(len(p) for p in CometOfflineBackend({"path": str(tmp_path / "dest")}).reader()
               .iter_metric_history(run_id, "a")) == 100_000


def test_comet_offline_reads_it(tmp_path: Path, model_dir: Path) -> None:
    _, run_id = _write(tmp_path / "dest", model_dir, tmp_path)
    done = h.run_python("import sys\nfrom comet_ml.scripts.comet import main\nmain(['offline', '--csv', sys.argv[1]])\n",
                        str(tmp_path / "dest" / f"{run_id}.zip"), env=h.child_env(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(done.stdout.splitlines()))
    loss = [r for r in rows if len(r) == 7 and r[2] == run_id and r[3] == "detail" and r[4:6] == ["metric", "loss"]]
    assert len(loss) == STEPS, done.stdout[:2000]
    assert {r[5] for r in rows if len(r) == 7 and r[4] == "metric"} == {"loss", "epoch", "val", "odd",
                                                                      "sys.system/cpu", "sys.gpu.0.util"}
    assert "invalid" not in (done.stdout + done.stderr).lower()


@pytest.fixture
def recorder() -> Iterator[h.Recorder]:
    rec = h.Recorder().start()
    yield rec
    rec.stop()


def test_comet_upload_sends_exactly_the_source(tmp_path: Path, model_dir: Path, recorder: h.Recorder) -> None:
    _, run_id = _write(tmp_path / "dest", model_dir, tmp_path)
    done = h.comet_upload(tmp_path / "dest" / f"{run_id}.zip", recorder, tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "invalid" not in out.lower() and "Number of uploaded experiments: 1" in out, out
    [create] = recorder.bodies("/logger/add/run")
    assert (create["experimentKey"], create["projectName"]) == (run_id, "proj")
    metrics = h.uploaded_metrics(recorder)
    rows = _rows()
    assert metrics["loss"] == [(x.step, x.values["loss"], x.timestamp) for x in rows]
    assert metrics["epoch"] == [(x.step, x.values["epoch"], x.timestamp) for x in rows]
    assert metrics["odd"] == [(3, "NaN", 5), (4, "Infinity", 6), (5, "-Infinity", 7)]
    params = {v["parameterName"]: v["parameterValue"]
              for b in recorder.bodies("/batch/logger/experiment/parameter") for v in b["values"]}
    assert params == {"lr": 0.001, "layers": 4, "opt|name": "sgd", "opt|momentum": 0.9, "opt|nest|deep": "yes",
                      "tags_list": [1, 2, 3], "flag": False}
    others = {b["key"]: b["value"] for b in recorder.bodies("/write/experiment/log-other")}
    assert {k: others[k] for k in SOURCE_TAGS} == SOURCE_TAGS
    assert others["Name"] == "copied" and others["trackbridge.complete"] == "fp-1"
    [tags] = recorder.bodies("/tags/add-tags-to-experiment")
    assert tags["addedTags"] == ["b-label", "a-label"]
    [times] = recorder.bodies("/status-report/offline-metadata")
    assert (times["startTimestamp"], times["endTimestamp"]) == (1_700_000_000_000, 1_700_000_099_000)
    uploads = {r["query"]["fileName"][0]: h.multipart_file(r["body"])
               for r in recorder.requests if r["path"].endswith("/asset/upload")}
    assert uploads == {"docs/report.txt": b"report body", "sub/w.bin": b"\x00\xff" * 300,
                       "MLmodel": (model_dir / "MLmodel").read_bytes()}
    [reg] = recorder.bodies("/registry-model/item/create")
    assert (reg["registryModelName"], reg["version"], reg["status"], reg["experimentModelName"]) == (
        "registry-clf", "2.0.0", "Staging", "clf")


def test_second_upload_never_makes_a_second_experiment(tmp_path: Path, model_dir: Path, recorder: h.Recorder) -> None:
    _, run_id = _write(tmp_path / "dest", model_dir, tmp_path)
    archive = tmp_path / "dest" / f"{run_id}.zip"
    assert h.comet_upload(archive, recorder, tmp_path / "home").returncode == 0
    sent = len(recorder.bodies("/batch/logger/experiment/metric"))
    again = h.comet_upload(archive, recorder, tmp_path / "home")
    assert again.returncode != 0  # Comet refuses the key it already has
    assert len(recorder.bodies("/batch/logger/experiment/metric")) == sent  # nothing sent twice
    assert recorder.keys == {run_id}


def test_tags_after_finish_are_on_disk_without_flush(tmp_path: Path, model_dir: Path) -> None:
    backend, run_id = _write(tmp_path / "dest", model_dir, tmp_path, finish=False)
    w = backend.writer()
    w.finish_run(run_id, RunStatus.FINISHED, 5)
    w.set_tags(run_id, {"trackbridge.complete": "marker"})  # no flush, no close
    assert CometOfflineBackend({"path": str(tmp_path / "dest")}).reader().get_run(run_id).tags[
        "trackbridge.complete"] == "marker"


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def _write_rich(root: Path, model_dir: Path, tmp: Path) -> str:
    """A run with what issue 14 found lost: asset metadata (a file's and a folder's), two
    models of one name with metadata, media of every native kind, a version's status."""
    from trackbridge.model import MediaPoint, RegisteredModel

    w = CometOfflineBackend({"path": str(root), "workspace": "ws"}).writer()
    run_id = w.create_run(w.ensure_experiment("proj"), name="rich", start_time=1_700_000_000_000, tags=SOURCE_TAGS)
    (tmp / "data").mkdir()
    (tmp / "data" / "rows.csv").write_text("a\n1\n")
    (tmp / "notes.txt").write_text("n")
    w.log_artifact(run_id, tmp / "data", "dataset")
    w.log_artifact(run_id, tmp / "notes.txt")
    w.set_artifact_meta(run_id, {"notes.txt": {"metadata": {"author": "ana"}},
                                 "dataset": {"type": "dataset", "metadata": {"rows": 1}, "aliases": ["v1"]}})
    for c in ("0.1", "1.0"):
        w.log_model(run_id, model_dir, LoggedModel("clf", "clf", params={"C": c}, metrics={"acc": 0.5},
                                                   tags={"fit": c}, model_type="classifier", status="READY"))
    (tmp / "img.png").write_bytes(PNG)
    (tmp / "clip.wav").write_bytes(b"RIFF....WAVE")
    w.log_media(run_id, "weights", [(MediaPoint(s, 1_700_000_000_100 + s, "histogram",
                                                data={"bins": [0.0, 0.5, 1.0], "values": [s, 2]}), None)
                                    for s in range(2)])
    w.log_media(run_id, "val/examples", [(MediaPoint(0, 1_700_000_000_200, "image", file="img.png", caption="cat",
                                                     meta={"format": "png", "width": 1, "height": 1}), tmp / "img.png")])
    w.log_media(run_id, "log", [(MediaPoint(3, 1_700_000_000_300, "text", data="hello"), None)])
    w.log_media(run_id, "speech", [(MediaPoint(1, 1_700_000_000_400, "audio", file="clip.wav",
                                                meta={"sample_rate": 8000}), tmp / "clip.wav")])
    w.register_model(RegisteredModel("registry-clf", "d"))
    made = w.create_model_version(ModelVersion(name="registry-clf", version="", run_id=run_id, artifact_path="clf",
                                               model_id=f"{run_id}:clf-2"), run_id)
    w.set_version_stage("registry-clf", made.version, "Production")
    w.finish_run(run_id, RunStatus.FINISHED, 1_700_000_099_000)
    w.close()
    return run_id


def test_rich_archive_reads_back_and_passes_comets_own_tools(tmp_path: Path, model_dir: Path,
                                                             recorder: h.Recorder) -> None:
    run_id = _write_rich(tmp_path / "dest", model_dir, tmp_path)
    reader = CometOfflineBackend({"path": str(tmp_path / "dest")}).reader()
    run = reader.get_run(run_id)
    assert run.artifact_meta == {"notes.txt": {"metadata": {"author": "ana"}},
                                 "dataset": {"type": "dataset", "metadata": {"rows": 1}, "aliases": ["v1"]}}
    assert [(m.name, m.artifact_path, m.params, m.tags["fit"]) for m in run.models] == [
        ("clf", "clf", {"C": "0.1"}, "0.1"), ("clf", "clf-2", {"C": "1.0"}, "1.0")]
    assert {k: (s.kind, s.count) for k, s in run.media.items()} == {
        "weights": ("histogram", 2), "val/examples": ("image", 1), "log": ("text", 1), "speech": ("audio", 1)}
    assert [p.data for p in reader.iter_media(run_id, "weights")] == [{"bins": [0.0, 0.5, 1.0], "values": [s, 2]}
                                                                       for s in range(2)]
    [image] = reader.iter_media(run_id, "val/examples")
    assert (image.caption, image.file, image.meta) == ("cat", "img.png", {"format": "png", "width": 1, "height": 1})
    assert reader.download_media(run_id, "val/examples", image, tmp_path / "dl").read_bytes() == PNG
    [version] = next(iter(reader.list_registered_models())).versions
    assert (version.stage, version.artifact_path) == ("Production", "clf-2")

    archive = tmp_path / "dest" / f"{run_id}.zip"
    offline = h.run_python("import sys\nfrom comet_ml.scripts.comet import main\nmain(['offline', '--csv', sys.argv[1]])\n",
                           str(archive), env=h.child_env(tmp_path / "home"))
    assert offline.returncode == 0 and "invalid" not in (offline.stdout + offline.stderr).lower(), offline.stderr
    done = h.comet_upload(archive, recorder, tmp_path / "home")
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "invalid" not in out.lower() and "Number of uploaded experiments: 1" in out, out
    uploads = [r for r in recorder.requests if r["path"].endswith("/asset/upload")]
    kinds = sorted({(r["query"].get("type") or ["asset"])[0] for r in uploads})
    assert {"histogram3d", "audio", "model-element", "text-sample"} <= set(kinds), kinds
    assert any(r["path"].endswith("/visualization/upload") or "figName" in r["query"] for r in recorder.requests)
    metadata = [json.loads(h.multipart_field(r["body"], "metadata") or "{}") for r in uploads
                if (r["query"].get("fileName") or [""])[0] == "notes.txt"]
    assert metadata == [{"author": "ana"}]
    [reg] = recorder.bodies("/registry-model/item/create")
    assert (reg["status"], reg["experimentModelName"]) == ("Production", "clf-2")


def test_metadata_with_nan_is_written_as_comet_writes_it(tmp_path: Path) -> None:
    """Comet wants strict JSON in an upload's metadata: NaN/inf go as the SDK's text
    instead of failing the copy (and read back as that text, which check shows)."""
    from trackbridge.model import MediaPoint

    w = CometOfflineBackend({"path": str(tmp_path / "dest")}).writer()
    run_id = w.create_run("proj", name="r", start_time=1)
    (tmp_path / "a.txt").write_text("a")
    w.log_artifact(run_id, tmp_path / "a.txt")
    w.set_artifact_meta(run_id, {"a.txt": {"metadata": {"score": math.nan, "ok": 1.0}}})
    w.log_media(run_id, "log", [(MediaPoint(0, 1, "text", data="t", meta={"loss": math.inf}), None)])
    w.finish_run(run_id, RunStatus.FINISHED, 2)
    w.close()
    run = CometOfflineBackend({"path": str(tmp_path / "dest")}).reader().get_run(run_id)
    assert run.artifact_meta == {"a.txt": {"metadata": {"score": "NaN", "ok": 1.0}}}
    reader = CometOfflineBackend({"path": str(tmp_path / "dest")}).reader()
    assert [p.meta for p in reader.iter_media(run_id, "log")] == [{"loss": "Infinity"}]
