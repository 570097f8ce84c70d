"""The facade against real ``mlflow server`` processes: full round trip, a server killed
mid-run (the training loop neither raises nor stalls, and every point lands exactly
once), and ``on_error="raise"``."""
from __future__ import annotations

import pickle
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)
from servers import MlflowServer, free_port

import trackbridge as tb
from trackbridge.errors import BackendError

_HTTP_VARS = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")


@pytest.fixture(autouse=True)
def restore_http_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The MLflow backend sets MLflow's process-wide HTTP retry variables; undo after each test."""
    for var in _HTTP_VARS:
        monkeypatch.delenv(var, raising=False)
    yield


def test_full_run_through_a_server(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(pickle.dumps([1, 2]))
    report = tmp_path / "report.md"
    report.write_text("# ok")
    with tb.start_run(project="server-full", name="srv", config={"opt": {"lr": 0.01}}, tags={"k": "v"}) as run:
        for step in range(2500):  # several writer batches
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        run.log_artifact(report, artifact_dir="docs")
        run.log_model(model_dir, name="model")
        run.register_model("server-model", aliases=["champion"])
    client = MlflowClient(mlflow_server.url)
    got = client.get_run(run.remote_ids["mlflow"])
    assert got.info.status == "FINISHED"
    assert got.data.params == {"opt.lr": "0.01"}
    assert got.data.tags["k"] == "v"
    history = client.get_metric_history(got.info.run_id, "loss")
    assert sorted(m.step for m in history) == list(range(2500))
    assert [a.path for a in client.list_artifacts(got.info.run_id, "docs")] == ["docs/report.md"]
    version = client.get_model_version_by_alias("server-model", "champion")
    assert version.run_id == got.info.run_id


@pytest.mark.slow
def test_server_killed_mid_run_loses_nothing_and_never_stalls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast; the worker retries itself
    caplog.set_level("INFO", logger="trackbridge")
    server = MlflowServer(tmp_path / "server").start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        run = tb.start_run(project="kill", name="victim")
        blocked: list[float] = []

        def log(first: int, last: int, pause: float = 0.0) -> None:
            for step in range(first, last):
                start = time.perf_counter()
                run.log_metrics({"loss": step * 0.5, "step_copy": float(step)}, step=step)
                blocked.append(time.perf_counter() - start)
                if pause:
                    time.sleep(pause)

        log(0, 1000)
        assert run.flush(timeout=60), "the live server should take the first part"
        remote_id = run.remote_ids["mlflow"]
        assert remote_id is not None

        server.kill()
        down_started = time.perf_counter()
        log(1000, 2000, pause=0.002)  # ~3 s of training while the server is dead
        down_logging = time.perf_counter() - down_started
        server.start()  # same port, same store
        log(2000, 3000)
        run.finish(timeout=120)  # the worker replays its spool, then sends the rest

        assert "keeps logging to the spool" in caplog.text, "the outage should have gone through the spool"
        assert "is live" in caplog.text or "reachable again" in caplog.text
        assert down_logging < 10, f"logging stalled while the server was down ({down_logging:.1f} s)"
        assert max(blocked) < 0.1, f"one log call blocked {max(blocked) * 1000:.1f} ms"
        assert statistics.median(blocked) < 50e-6
        client = MlflowClient(server.url)
        got = client.get_run(remote_id)
        assert got.info.status == "FINISHED"
        for key, scale in (("loss", 0.5), ("step_copy", 1.0)):
            history = client.get_metric_history(remote_id, key)
            assert len(history) == 3000, f"{key}: {len(history)} points, expected exactly 3000"
            assert sorted((m.step, m.value) for m in history) == [(s, s * scale) for s in range(3000)]
        assert not list((tmp_path / "work" / ".trackbridge" / "spool").glob("*/*.jsonl")), "spool not drained"
    finally:
        server.stop()


def test_on_error_raise_surfaces_the_failure_at_the_next_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKBRIDGE_REMOTE_DOWN_BACKEND", "mlflow")
    monkeypatch.setenv("TRACKBRIDGE_REMOTE_DOWN_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TRACKBRIDGE_REMOTE_DOWN_HTTP_RETRIES", "0")
    run = tb.start_run(project="raise", backend="down", on_error="raise")
    deadline = time.monotonic() + 30
    with pytest.raises(BackendError, match="unreachable"):
        while time.monotonic() < deadline:
            run.log_metrics({"x": 1.0})
            time.sleep(0.01)
    run.finish(timeout=10)
    spooled = list((Path.cwd() / ".trackbridge" / "spool" / "down").glob(f"{run.id}.jsonl"))
    assert spooled, "the failed run must be kept in the spool"


def test_start_run_does_not_wait_for_a_dead_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    import mlflow  # noqa: F401  (imported up front: only trackbridge's own cost is timed)

    start = time.perf_counter()
    run = tb.start_run(project="dead", config={"a": 1})
    for step in range(100):
        run.log_metrics({"x": float(step)}, step=step)
    assert time.perf_counter() - start < 1.0
    assert run.remote_ids["mlflow"] is None
    run.finish(timeout=0.5)  # whatever is not through by then goes to the spool
    assert list((Path.cwd() / ".trackbridge" / "spool" / "mlflow").glob(f"{run.id}.jsonl"))
