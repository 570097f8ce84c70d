"""``TRACKBRIDGE_BACKEND=comet``: logging live through comet_ml (against the local
recorder standing in for Comet), quiet, and never stalling when Comet is unreachable:
the run falls back to an offline archive and the upload command is printed."""
from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import comet_helpers as h
from trackbridge.backends.comet.backend import CometBackend, CometOfflineBackend
from trackbridge.errors import BackendError
from trackbridge.history import Row
from trackbridge.model import LoggedModel, MetricPoint, ModelVersion, RegisteredModel, RunStatus


@pytest.fixture
def recorder() -> Iterator[h.Recorder]:
    rec = h.Recorder().start()
    yield rec
    rec.stop()


@pytest.fixture
def closed_url() -> str:
    """A loopback URL nobody listens on (connection refused at once)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/clientlib/"


def _wait_for(predicate, timeout: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_live_writer_sends_everything_to_comet(recorder: h.Recorder, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMET_URL_OVERRIDE", recorder.url)
    monkeypatch.setenv("COMET_API_KEY", "test-key-not-secret")
    w = CometBackend({"workspace": "ws"}).writer()
    run_id = w.create_run(w.ensure_experiment("proj"), name="live run",
                          tags={"trackbridge.source.platform": "mlflow", "trackbridge.source.run_id": "r9"})
    assert w.offline_runs == set()
    w.log_params(run_id, {"opt|lr": "0.1", "opt|name": "adam", "layers": "2"})  # fitted to flat_params
    w.log_rows(run_id, [Row(i, 5_000 + i, {"loss": 1.0 / (i + 1), "epoch": float(i // 10)}) for i in range(30)])
    w.set_tags(run_id, {"team": "vision"})
    w.set_labels(run_id, ["baseline"])
    w.set_notes(run_id, "notes ✓")
    w.log_summary(run_id, {"best": 0.5})
    (tmp_path / "r.txt").write_text("report")
    w.log_artifact(run_id, tmp_path / "r.txt", "docs")
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"\x01\x02")
    w.log_model(run_id, model, LoggedModel("clf", "clf"))
    w.register_model(RegisteredModel("reg-clf", "the model"))
    made = w.create_model_version(ModelVersion("reg-clf", "", artifact_path="clf", stage="Production"), run_id)
    assert made.version == "1.0.0"
    w.finish_run(run_id, RunStatus.FINISHED)
    w.close()

    [create] = recorder.bodies("/logger/add/run")
    assert (create["experimentKey"], create["projectName"], create["teamName"], create["offline"]) == (
        run_id, "proj", "ws", False)
    metrics = h.uploaded_metrics(recorder)
    assert metrics["loss"] == [(i, 1.0 / (i + 1), 5_000 + i) for i in range(30)]  # the points' own times
    epochs = [v["epoch"] for b in recorder.bodies("/batch/logger/experiment/metric") for v in b["values"]
              if v["metricName"] == "loss"]
    assert epochs == [i // 10 for i in range(30)]
    params = {v["parameterName"]: v["parameterValue"]
              for b in recorder.bodies("/batch/logger/experiment/parameter") for v in b["values"]}
    assert params == {"opt|lr": "0.1", "opt|name": "adam", "layers": "2"}
    others = {b["key"]: b["value"] for b in recorder.bodies("/write/experiment/log-other")}
    assert others["team"] == "vision" and others["Name"] == "live run" and others["trackbridge.notes"] == "notes ✓"
    assert others["trackbridge.source.run_id"] == "r9" and others["trackbridge.summary.best"] == "0.5"
    assert others["trackbridge.status"] == "FINISHED"
    assert recorder.bodies("/tags/add-tags-to-experiment")[0]["addedTags"] == ["baseline"]
    uploads = {r["query"]["fileName"][0]: h.multipart_file(r["body"])
               for r in recorder.requests if r["path"].endswith("/asset/upload")}
    assert uploads == {"docs/r.txt": b"report", "w.bin": b"\x01\x02"}
    [reg] = recorder.bodies("/registry-model/item/create")
    assert (reg["registryModelName"], reg["version"], reg["status"], reg["registryModelDescription"]) == (
        "reg-clf", "1.0.0", "Production", "the model")
    # quiet: no error reports, no environment details
    paths = recorder.paths()
    assert not [p for p in paths if "notify/event" in p or "system-details" in p or "env" in p.rsplit("/", 1)[-1]]


def test_unreachable_comet_falls_back_to_an_archive_fast(closed_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("COMET_URL_OVERRIDE", closed_url)
    monkeypatch.setenv("COMET_API_KEY", "test-key-not-secret")
    backend = CometBackend({"offline_directory": str(tmp_path / "fallback")})
    w = backend.writer()
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="trackbridge"):
        run_id = w.create_run(w.ensure_experiment("proj"), name="offline run")
    init = time.perf_counter() - start
    print(f"\ninit fallback time: {init * 1000:.1f} ms")
    assert init < 2.5 and w.offline_runs == {run_id}
    slowest = 0.0
    calls = [lambda: w.log_params(run_id, {"a": {"b": 1}}),
             lambda: w.log_metrics(run_id, [("loss", MetricPoint(i, float(i), 10 + i)) for i in range(1000)]),
             lambda: w.set_tags(run_id, {"k": "v"}), lambda: w.set_labels(run_id, ["x"]),
             lambda: w.set_notes(run_id, "n"), lambda: w.log_summary(run_id, {"s": 1})]
    for call in calls:
        t = time.perf_counter()
        call()
        slowest = max(slowest, time.perf_counter() - t)
    print(f"slowest writer call after init: {slowest * 1000:.2f} ms")
    assert slowest < 0.1
    with caplog.at_level(logging.WARNING, logger="trackbridge"):
        w.finish_run(run_id, RunStatus.FINISHED, 99)
    w.close()
    text = caplog.text
    assert "cannot be reached" in text and "COMET_OFFLINE_SAMPLING_SIZE=15000 comet upload" in text
    [step] = backend.next_steps()  # what copy/sync print after a copy into comet
    assert "1 run(s) could not reach Comet" in step and f"comet upload {tmp_path / 'fallback'}/*.zip" in step
    run = CometOfflineBackend({"path": str(tmp_path / "fallback")}).reader().get_run(run_id)
    assert (run.name, run.params, run.tags, run.labels, run.notes, run.summary) == (
        "offline run", {"a": {"b": 1}}, {"k": "v"}, ["x"], "n", {"s": 1})
    # a nested run that falls back keeps its parent
    w = backend.writer()
    child = w.create_run(w.ensure_experiment("proj"), name="child", parent_run_id=run_id)
    w.finish_run(child, RunStatus.FINISHED, 120)
    w.close()
    assert CometOfflineBackend({"path": str(tmp_path / "fallback")}).reader().get_run(child).parent_run_id == run_id


def test_facade_never_blocks_when_comet_is_unreachable(closed_url: str, isolated_env: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import trackbridge

    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "comet")
    monkeypatch.setenv("COMET_URL_OVERRIDE", closed_url)
    monkeypatch.setenv("COMET_API_KEY", "test-key-not-secret")
    timings: list[float] = []

    def timed(fn, *args, **kwargs):  # noqa: ANN001, ANN202
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        timings.append(time.perf_counter() - t)
        return out

    run = timed(trackbridge.start_run, project="facade-proj", name="loop", config={"opt": {"lr": 0.1}})
    for step in range(300):
        timed(run.log_metrics, {"loss": 1.0 / (step + 1), "acc": step / 300}, step=step)
    timed(run.set_tags, {"team": "vision"})
    timed(run.add_labels, ["baseline"])
    timed(run.set_notes, "from the facade")
    timed(run.log_summary, {"best": 0.9})
    (isolated_env / "a.txt").write_text("artifact")
    timed(run.log_artifact, isolated_env / "a.txt")
    print(f"\nslowest facade call: {max(timings) * 1000:.2f} ms over {len(timings)} calls")
    assert max(timings) < 0.1
    run.finish(timeout=30)
    archives = list((isolated_env / "comet-offline").glob("*.zip"))
    assert len(archives) == 1
    reader = CometOfflineBackend({"path": str(isolated_env / "comet-offline")}).reader()
    [record] = list(reader.list_runs("facade-proj"))
    # the facade flattens for Comet's cloud as Comet shows it (opt|lr, text); the archive
    # it fell back to nests that again
    assert record.params == {"opt": {"lr": "0.1"}} and record.labels == ["baseline"]
    assert record.notes == "from the facade" and record.summary == {"best": 0.9}
    loss = [p for page in reader.iter_metric_history(record.run_id, "loss") for p in page]
    assert [(p.step, p.value) for p in loss] == [(s, 1.0 / (s + 1)) for s in range(300)]
    assert [a.path for a in reader.list_artifacts(record.run_id)] == ["a.txt"]


def test_a_second_live_copy_never_makes_a_second_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is derived from the source run: a complete copy is refused with a clear
    error; an interrupted one (no completion marker) is continued in, never duplicated."""
    cloud = h.CloudStandIn().start()
    try:
        monkeypatch.setenv("COMET_URL_OVERRIDE", cloud.url)
        monkeypatch.setenv("COMET_API_KEY", "test-key-not-secret")
        tags = {"trackbridge.source.platform": "mlflow", "trackbridge.source.run_id": "same-run"}
        first = CometBackend({}).writer()
        key = first.create_run("proj", tags=tags)  # then "killed": no marker
        first.log_metrics(key, [("loss", MetricPoint(0, 1.0, 10))])
        first.close()
        again = CometBackend({"offline_directory": str(tmp_path / "off")}).writer()
        assert again.create_run("proj", tags=tags) == key  # continued in, not duplicated
        again.log_metrics(key, [("loss", MetricPoint(1, 0.5, 11))])
        again.finish_run(key, RunStatus.FINISHED)
        again.set_tags(key, {"trackbridge.complete": "fp-1"})
        again.close()
        assert cloud.experiments[key]["metrics"]["loss"] == [(0, 1.0, 10), (1, 0.5, 11)]
        third = CometBackend({"offline_directory": str(tmp_path / "off")}).writer()
        with pytest.raises(BackendError, match=f"already has experiment {key}, a complete copy"):
            third.create_run("proj", tags=tags)
        assert again.offline_runs == third.offline_runs == set() and not (tmp_path / "off").exists()
        assert list(cloud.experiments) == [key]
    finally:
        cloud.stop()


def test_no_api_key_logs_to_an_archive(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    w = CometBackend({"offline_directory": str(tmp_path / "off")}).writer()
    with caplog.at_level(logging.WARNING, logger="trackbridge"):
        run_id = w.create_run("proj", name="keyless")
    w.log_metrics(run_id, [("loss", MetricPoint(0, 1.0, 10))])
    w.finish_run(run_id, RunStatus.FINISHED, 11)
    w.close()
    assert "no COMET_API_KEY" in caplog.text and w.offline_runs == {run_id}
    assert CometOfflineBackend({"path": str(tmp_path / "off")}).reader().get_run(run_id).name == "keyless"
