"""`comet upload` samples every metric to 15,000 points by default: trackbridge warns,
prints an upload command that keeps every point, and a downsampled copy differs."""
from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

import comet_helpers as h
from trackbridge.backends.comet.backend import CometOfflineBackend
from trackbridge.backends.comet.upload import (
    DEFAULT_SAMPLING_SIZE,
    archive_upload_command,
    sampling_warnings,
    upload_command,
)
from trackbridge.model import MetricPoint, RunStatus

N = 20_000


@pytest.fixture(scope="module")
def long_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("long") / "archives"
    w = CometOfflineBackend({"path": str(root)}).writer()
    run_id = w.create_run(w.ensure_experiment("p"), name="long", start_time=1,
                          tags={"trackbridge.source.platform": "mlflow", "trackbridge.source.run_id": "long-1"})
    w.log_metrics(run_id, [("loss", MetricPoint(i, 1.0 / (i + 1), 1_000 + i)) for i in range(N)])
    w.log_metrics(run_id, [("short", MetricPoint(i, float(i), 1_000 + i)) for i in range(10)])
    w.finish_run(run_id, RunStatus.FINISHED, 2)
    w.close()
    return root


@pytest.fixture
def recorder() -> Iterator[h.Recorder]:
    rec = h.Recorder().start()
    yield rec
    rec.stop()


def test_upload_command_and_warnings(long_archive: Path) -> None:
    assert upload_command("/x/run.zip", 10) == "COMET_OFFLINE_SAMPLING_SIZE=15000 comet upload /x/run.zip"
    assert upload_command("/x y/dir", 20_000) == "COMET_OFFLINE_SAMPLING_SIZE=20000 comet upload '/x y/dir'/*.zip"
    [warning] = sampling_warnings({"loss": N, "short": 10}, run="r1")
    assert "'loss' has 20,000 points" in warning and "15,000" in warning and "COMET_OFFLINE_SAMPLING_SIZE" in warning
    command, warnings = archive_upload_command(long_archive)
    assert command == f"COMET_OFFLINE_SAMPLING_SIZE={N} comet upload {long_archive}/*.zip"
    assert len(warnings) == 1 and "'loss'" in warnings[0]


def _upload(archive: Path, recorder: h.Recorder, home: Path, env: dict[str, str]) -> dict[str, list]:
    done = h.comet_upload(archive, recorder, home, env)
    assert done.returncode == 0, done.stdout + done.stderr
    return h.uploaded_metrics(recorder)


def test_the_printed_setting_uploads_every_point(long_archive: Path, recorder: h.Recorder, tmp_path: Path) -> None:
    command, _ = archive_upload_command(long_archive)
    setting = dict(item.split("=", 1) for item in shlex.split(command) if "=" in item)
    [archive] = long_archive.glob("*.zip")
    sent = _upload(archive, recorder, tmp_path / "home", setting)
    assert sent["loss"] == [(i, 1.0 / (i + 1), 1_000 + i) for i in range(N)]
    assert len(sent["short"]) == 10


def test_default_upload_drops_points_and_a_copy_of_it_differs(long_archive: Path, recorder: h.Recorder,
                                                              tmp_path: Path) -> None:
    [archive] = long_archive.glob("*.zip")
    sent = _upload(archive, recorder, tmp_path / "home", {})
    assert len(sent["loss"]) == DEFAULT_SAMPLING_SIZE < N  # what Comet would hold: 5,000 points gone
    # that downsampled experiment, as an archive, read back: it differs from the source
    w = CometOfflineBackend({"path": str(tmp_path / "down")}).writer()
    run_id = w.create_run(w.ensure_experiment("p"), name="long", start_time=1)
    w.log_metrics(run_id, [("loss", MetricPoint(s, v, t)) for s, v, t in sent["loss"]])
    w.finish_run(run_id, RunStatus.FINISHED, 2)
    w.close()
    source = CometOfflineBackend({"path": str(long_archive)}).reader()
    copy = CometOfflineBackend({"path": str(tmp_path / "down")}).reader()
    [src_run] = list(source.list_runs("p"))
    src = [p for page in source.iter_metric_history(src_run.run_id, "loss") for p in page]
    dst = [p for page in copy.iter_metric_history(run_id, "loss") for p in page]
    missing = {p.key() for p in src} - {p.key() for p in dst}
    assert len(missing) == N - DEFAULT_SAMPLING_SIZE
    assert {p.key() for p in dst} <= {p.key() for p in src}  # sampled, not altered
