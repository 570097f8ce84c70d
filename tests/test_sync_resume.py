"""Killed at any point and re-run, a copy ends equal to a clean one: ``check`` passes,
no run exists twice, and points already written are not sent again.

Deterministic crash points use the ``TRACKBRIDGE_CRASH_AT`` hook (``os._exit(137)``
in a real subprocess, like ``kill -9``); one test sends a real SIGKILL mid-copy.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from corpus import Corpus, build_corpus, history, invoke, runs_by_source, set_remotes
from trackbridge.backends import get_backend
from trackbridge.model import MetricPoint

TRACKBRIDGE = str(Path(sys.executable).with_name("trackbridge"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("resume-corpus")
    return build_corpus(f"sqlite:///{root / 'src.db'}", root)


def _spawn(*args: str, crash_at: str | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.pop("TRACKBRIDGE_CRASH_AT", None)
    if crash_at:
        env["TRACKBRIDGE_CRASH_AT"] = crash_at
    return subprocess.Popen([TRACKBRIDGE, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _batch(uri: str) -> int:
    """Points a copy writes into ``uri`` per call (the crash point ``mid_metrics`` is after the first)."""
    return get_backend("mlflow", {"tracking_uri": uri}).limits().max_metrics_per_batch


def _incomplete(uri: str) -> list:
    return [r for runs in runs_by_source(uri).values() for r in runs if not r.data.tags.get("trackbridge.complete")]


def _resume_and_verify(uri: str, expected_runs: int) -> dict:
    """Re-run copy in-process; then every run exists once and check passes."""
    out = invoke("copy", "src", "dst", "--json")
    assert out.exit_code == 0, out.stdout + out.stderr
    stats = json.loads(out.stdout)["stats"]
    found = runs_by_source(uri)
    assert len(found) == expected_runs and all(len(v) == 1 for v in found.values())
    assert not _incomplete(uri)
    checked = invoke("check", "src", "dst")
    assert checked.exit_code == 0, checked.stdout
    return stats


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_create", "mid_metrics", "mid_artifacts", "before_complete"])
def test_crash_then_resume_equals_a_clean_copy(point: str, corpus: Corpus, sqlite_uri: str, monkeypatch) -> None:
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri)
    proc = _spawn("copy", "src", "dst", "--transfers", "1", crash_at=point)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 137, err.decode()
    [half] = _incomplete(sqlite_uri)  # findable through its provenance tags, without a marker
    assert half.data.tags["trackbridge.source.platform"] == "mlflow"

    plan = invoke("plan", "src", "dst", "--mode", "copy")
    assert "~ resume" in plan.stdout
    before = invoke("check", "src", "dst")
    assert before.exit_code == 1 and "incomplete copy" in before.stdout

    source_id = half.data.tags["trackbridge.source.run_id"]
    dst = MlflowClient(sqlite_uri)
    already = sum(len(history(dst, half.info.run_id, k)) for k in half.data.metrics)
    stats = _resume_and_verify(sqlite_uri, expected_runs=4)
    assert stats["runs_resumed"] == 1
    if point == "mid_metrics":
        name = next(n for n, rid in corpus.runs.items() if rid == source_id)
        assert already == min(_batch(sqlite_uri), corpus.points[name])  # exactly one batch had been written...
        assert stats["points"] == corpus.total_points - already  # ...and it is not sent again
    if point == "before_complete":
        name = next(n for n, rid in corpus.runs.items() if rid == source_id)
        assert stats["points"] == corpus.total_points - corpus.points[name]


@pytest.mark.slow
def test_real_sigkill_mid_copy_then_resume(tmp_path: Path, sqlite_uri: str, monkeypatch) -> None:
    src_uri = f"sqlite:///{tmp_path / 'big.db'}"
    client = MlflowClient(src_uri)
    exp = client.create_experiment("big", artifact_location=(tmp_path / "art").as_uri())
    run = client.create_run(exp, run_name="long", start_time=1).info.run_id
    for key in ("a", "b", "c"):
        for start in range(0, 10_000, 1000):
            client.log_batch(run, metrics=[Metric(key, i * 0.5, 10 + i, i) for i in range(start, start + 1000)])
    client.set_terminated(run, "FINISHED", end_time=2)
    set_remotes(monkeypatch, src=src_uri, dst=sqlite_uri)

    proc = _spawn("copy", "src", "dst", "--transfers", "1")
    db = Path(sqlite_uri.removeprefix("sqlite:///"))
    deadline = time.monotonic() + 120
    written = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                written = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        except sqlite3.Error:
            written = 0
        if written > 0:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the copy finished before it could be killed"
    assert 0 < written < 30_000

    stats = _resume_and_verify(sqlite_uri, expected_runs=1)
    assert stats["runs_resumed"] == 1 and stats["points"] < 30_000
    [copy] = runs_by_source(sqlite_uri)[run]
    assert sum(len(history(MlflowClient(sqlite_uri), copy.info.run_id, k)) for k in "abc") == 30_000


def test_mlflow_store_deduplicates_identical_points(sqlite_uri: str) -> None:
    """Verified, not assumed: re-sending a batch to MLflow adds no rows (the sync
    engine still skips present points itself, since other platforms do not dedupe)."""
    backend = get_backend("mlflow", {"tracking_uri": sqlite_uri})
    writer = backend.writer()
    run = writer.create_run(writer.ensure_experiment("dedupe"), name="r")
    points = [("m", MetricPoint(i, float("nan") if i == 2 else i / 7, 100 + i)) for i in range(50)]
    writer.log_metrics(run, points)
    writer.log_metrics(run, points)
    writer.log_metrics(run, points[:10] + [("m", MetricPoint(0, 5.0, 100))])
    assert len(MlflowClient(sqlite_uri).get_metric_history(run, "m")) == 51


@pytest.mark.slow
def test_crash_during_an_update_is_resumed_not_mistaken_for_done(tmp_path: Path, sqlite_uri: str,
                                                                monkeypatch) -> None:
    c = build_corpus(f"sqlite:///{tmp_path / 'src.db'}", tmp_path / "src")
    set_remotes(monkeypatch, src=c.tracking_uri, dst=sqlite_uri)
    assert invoke("copy", "src", "dst").exit_code == 0
    src = MlflowClient(c.tracking_uri)
    src.log_batch(c.runs["parent"], metrics=[Metric("loss", float(i), 1_800_000_000_000 + i, 20_000 + i)
                                             for i in range(1500)])
    src.set_tag(c.runs["parent"], "after", "update")

    proc = _spawn("sync", "src", "dst", crash_at="mid_metrics")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 137, err.decode()
    [half] = _incomplete(sqlite_uri)
    assert half.data.tags["trackbridge.complete"] == ""  # the old marker was blanked before the delta
    assert half.data.tags["after"] == "update"

    out = invoke("sync", "src", "dst", "--json")
    stats = json.loads(out.stdout)["stats"]
    assert out.exit_code == 0 and stats["runs_resumed"] == 1
    assert stats["points"] == 1500 - min(_batch(sqlite_uri), 1500)  # the first batch of new points was there
    assert invoke("check", "src", "dst").exit_code == 0
    assert len(history(MlflowClient(sqlite_uri), half.info.run_id, "loss")) == 4000
