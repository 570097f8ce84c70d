"""The facade logging live through the real wandb SDK (``TRACKBRIDGE_BACKEND=wandb``):
offline mode read back with our reader, and an unreachable W&B that must not stall
training (the run lands offline, a warning says how to sync it)."""
from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from pathlib import Path

import pytest
from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)
from wandb_helpers import sdk_sockets  # noqa: F401  (fixture)

import trackbridge as tb
from trackbridge.backends import get_backend
from trackbridge.model import MetricPoint

STEPS = [0, 1, 1, 0, 2, 3]  # repeated and backward user steps


def _offline_reader():
    return get_backend("wandb-offline", {"path": str(Path(os.environ["WANDB_DIR"]) / "wandb")}).reader()


@pytest.fixture
def wandb_backend(monkeypatch: pytest.MonkeyPatch, sdk_sockets) -> None:  # noqa: F811
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "wandb")
    Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)


def _points(reader, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(p.step, p.value) for page in reader.iter_metric_history(run_id, key) for p in page]


def test_offline_run_through_the_sdk_reads_back(wandb_backend, tmp_path: Path) -> None:  # noqa: ARG001
    plot = tmp_path / "plot.txt"
    plot.write_text("a plot")
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"\x02" * 64)
    with tb.start_run(project="tb-live", name="trial", config={"lr": 0.1, "opt": {"beta": 0.9}},
                      tags={"team": "vision"}) as run:
        for i, step in enumerate(STEPS):
            run.log_metrics({"loss": float("nan") if i == 2 else 1.0 / (i + 1), **({"acc": i / 10} if i % 2 else {})},
                            step=step)
        run.add_labels(["baseline"])
        run.set_notes("live notes")
        run.log_summary({"best": 0.75})
        run.log_artifact(plot)
        run.log_model(model, name="clf")
        run.register_model("fraud-clf", model="clf", aliases=["champion"], description="first", tags={"k": "v"})
    remote = run.remote_ids["wandb"]
    assert remote
    reader = _offline_reader()
    rec = reader.get_run(remote)
    assert rec.experiment == "tb-live" and rec.name == "trial"
    # params reach W&B's config as JSON values, nested dicts kept (the writer's flat_params=False)
    assert rec.params == {"lr": 0.1, "opt": {"beta": 0.9}}
    assert rec.tags["team"] == "vision" and "trackbridge.local_run_id" in rec.tags
    assert rec.labels == ["baseline"] and rec.notes == "live notes" and rec.summary == {"best": 0.75}
    loss = _points(reader, remote, "loss")
    assert [s for s, _ in loss] == STEPS  # every point, at the user's step
    assert math.isnan(loss[2][1]) and loss[0][1] == 1.0
    assert _points(reader, remote, "acc") == [(STEPS[i], i / 10) for i in (1, 3, 5)]
    assert [m.name for m in rec.models] == ["clf"]
    paths = [a.path for a in reader.list_artifacts(remote)]
    assert paths == ["plot.txt"]  # the run-files Artifact is read back at the files' own paths
    # wandb 0.31 cannot link offline: the registration is in the run's config, read back as W&B's
    [registered] = list(reader.list_registered_models())
    assert registered.name == "fraud-clf" and "trackbridge.registry" not in rec.params
    assert [(v.version, v.run_id, v.artifact_path, v.description, v.tags, v.aliases) for v in registered.versions] == [
        ("1", remote, "clf", "first", {"k": "v"}, ["champion"])]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TRAINING_SCRIPT = """
import json, logging, sys, time
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
import trackbridge as tb
durations = []
started = time.perf_counter()
t = time.perf_counter()
run = tb.start_run(project="tb-down", name="down")
durations.append(time.perf_counter() - t)
for step in range(200):
    t = time.perf_counter()
    run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    durations.append(time.perf_counter() - t)
created = None
while time.perf_counter() - started < 30 and not created:
    created = run.remote_ids.get("wandb")
    time.sleep(0.02)
fallback_s = time.perf_counter() - started
run.finish()
print(json.dumps({"start_run_s": durations[0], "max_call_s": max(durations[1:]), "fallback_s": fallback_s,
                  "run_id": created}))
"""


def test_unreachable_wandb_falls_back_offline_without_stalling(wandb_backend, tmp_path: Path) -> None:  # noqa: ARG001
    """A training script (its own process, as in real use) against a W&B that refuses
    connections on 127.0.0.1: no call blocks the loop for 100 ms, the run lands offline
    within seconds (not the SDK's 90), and the warning says how to sync it."""
    import subprocess
    import sys

    env = {**os.environ, "WANDB_BASE_URL": f"http://127.0.0.1:{_closed_port()}", "WANDB_API_KEY": "local-" + "0" * 40}
    env.pop("WANDB_MODE", None)
    script = tmp_path / "train.py"
    script.write_text(TRAINING_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # no logging call blocked the loop for 100 ms while W&B was being reached in the background;
    # start_run pays trackbridge's own first imports (the facade modules), never W&B's
    assert result["max_call_s"] < 0.1, result
    assert result["start_run_s"] < 1.0, result
    assert result["run_id"] and result["fallback_s"] < 10, result  # offline in seconds, not the SDK's 90
    assert "cannot be reached" in done.stderr and "wandb sync" in done.stderr
    reader = _offline_reader()
    assert [s for s, _ in _points(reader, result["run_id"], "loss")] == list(range(200))  # the run landed offline
    print(f"init fallback {result['fallback_s']:.2f} s, slowest log call {result['max_call_s'] * 1000:.1f} ms, "
          f"start_run {result['start_run_s'] * 1000:.0f} ms")


def test_a_host_that_accepts_but_never_answers_falls_back_within_the_probe_timeout(
        sdk_sockets, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    """TCP connects, HTTP never answers: the probe gives up after ``probe_timeout`` (3 s),
    not the SDK's 90 s ``init_timeout``."""
    from trackbridge.backends.wandb.live_writer import WandbLiveWriter

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the backlog; nothing ever answers
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "local-" + "0" * 40)
    Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)
    writer = WandbLiveWriter(options={"base_url": f"http://127.0.0.1:{silent.getsockname()[1]}", "init_timeout": 2})
    try:
        t = time.perf_counter()
        with caplog.at_level(logging.WARNING, logger="trackbridge"):
            run_id = writer.create_run("tb-silent", name="silent")
        took = time.perf_counter() - t
        writer.log_metrics(run_id, [("x", MetricPoint(5, 1.5, 1_700_000_000_000))])
        writer.close()
    finally:
        silent.close()
    assert took < 8, took
    assert writer.fallbacks and writer.fallbacks[0][0] == run_id
    assert "cannot be reached" in caplog.text
    assert _points(_offline_reader(), run_id, "x") == [(5, 1.5)]


def test_a_facade_run_into_wandb_offline_files_is_finished_at_exit(tmp_path: Path) -> None:
    """The facade closes its writers at exit: a wandb-offline: folder then holds each run's
    exit record, so the run reads back finished (it read back RUNNING: the writer writes the
    exit record only when closed, and the facade never closed it)."""
    import subprocess
    import sys

    code = ("import trackbridge as tb\n"
            "with tb.start_run(name='r') as run:\n"
            "    run.log_metrics({'loss': 0.5}, step=0)\n")
    env = {**os.environ, "TRACKBRIDGE_BACKEND": f"wandb-offline:{tmp_path / 'w'}",
           "TRACKBRIDGE_HOME": str(tmp_path / 'home')}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    reader = get_backend("wandb-offline", {"path": str(tmp_path / "w")}).reader()
    (run,) = [r for e in reader.list_experiments() for r in reader.list_runs(e.name)]
    assert run.status.value == "FINISHED" and run.metrics["loss"].value == 0.5
