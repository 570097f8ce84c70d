"""``tensorboard:PATH``, a read-only source: event files written by a real TensorBoard
writer (tensorboardX) are read whole (every point, its step and wall time; histograms,
images, text as media; hparams as params), copied into ``dir:`` and MLflow with ``check``
passing, a second copy adds nothing, ``sync`` after new points adds only them, and the CLI
refuses the source as a destination in one line."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from corpus import invoke, set_remotes
from tensorboardX import SummaryWriter

from trackbridge.backends.tensorboard.backend import TensorboardBackend
from trackbridge.backends.tensorboard.records import DamagedEventFileError, iter_records
from trackbridge.model import RunStatus

T0 = 1_700_000_000.0  # seconds, as event files keep wall times


def _log(logdir: Path, start: int, stop: int, hparams: bool = True, suffix: str = "") -> None:
    """Scalars, a histogram and an image per 10 steps, a text, and an hparams session
    (``add_hparams`` writes it into a sub-folder: a nested run).  ``suffix`` tells two
    writers of one second apart (their files are named by the second they start)."""
    with SummaryWriter(logdir=str(logdir), flush_secs=3600, filename_suffix=suffix) as writer:
        for step in range(start, stop):
            writer.add_scalar("train/loss", 1.0 / (step + 1), step, walltime=T0 + step)
            if step % 10 == 0:
                writer.add_histogram("weights", np.linspace(0, 1, 50) * (step + 1), step, walltime=T0 + step)
                writer.add_image("samples", np.full((3, 4, 4), step / 100), step, walltime=T0 + step)
        writer.add_scalar("odd", math.nan, stop, walltime=T0 + stop)
        writer.add_text("summary", f"steps {start}..{stop}", stop, walltime=T0 + stop)
        if hparams:
            writer.add_hparams({"lr": 0.1, "opt": "adam", "amp": True}, {"hparam/acc": 0.75}, name="session",
                               global_step=stop)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    _log(root / "run-a", 0, 100)
    return root


def test_every_point_media_and_hparams_are_read(logs: Path, tmp_path: Path) -> None:
    reader = TensorboardBackend({"path": str(logs)}).reader()
    assert [e.name for e in reader.list_experiments()] == ["logs"]
    runs = {r.run_id: r for r in reader.list_runs("logs")}
    assert set(runs) == {"run-a", "run-a/session"}
    run, session = runs["run-a"], runs["run-a/session"]
    assert session.parent_run_id == "run-a" and session.params == {"lr": 0.1, "opt": "adam", "amp": True}
    assert session.metrics["hparam/acc"].value == 0.75 and session.status == RunStatus.FINISHED
    points = [p for page in reader.iter_metric_history("run-a", "train/loss", page_size=30) for p in page]
    assert [p.step for p in points] == list(range(100))
    assert [p.timestamp for p in points] == [int((T0 + s) * 1000) for s in range(100)]
    assert points[3].value == float(np.float32(1 / 4))  # simple_value is float32: kept as it was written
    assert math.isnan(next(iter(reader.iter_metric_history("run-a", "odd")))[0].value)
    assert {k: (m.kind, m.count) for k, m in run.media.items()} == {
        "weights": ("histogram", 10), "samples": ("image", 10), "summary/text_summary": ("text", 1)}
    histograms = list(reader.iter_media("run-a", "weights"))
    assert len(histograms[0].data["bins"]) == len(histograms[0].data["values"]) + 1
    assert sum(histograms[0].data["values"]) == 50 and histograms[0].meta["num"] == 50
    images = list(reader.iter_media("run-a", "samples"))
    assert images[2].step == 20 and images[2].meta["format"] == "png" and images[2].meta["width"] == 4
    local = reader.download_media("run-a", "samples", images[2], tmp_path / "media")
    assert local.read_bytes().startswith(b"\x89PNG")
    (text,) = reader.iter_media("run-a", "summary/text_summary")
    assert text.data == "steps 0..100"
    assert run.start_time is not None and run.start_time <= int(T0 * 1000)


def test_copies_into_dir_and_mlflow_check_equal_and_a_second_copy_adds_nothing(
        logs: Path, tmp_path: Path, sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    set_remotes(monkeypatch, dst=sqlite_uri)
    src = f"tensorboard:{logs}"
    for dst in (f"dir:{tmp_path / 'archive'}", "dst"):
        first = json.loads(invoke("copy", src, dst, "--json").stdout)
        assert first["ok"], first["errors"]
        assert first["stats"]["runs_created"] == 2
        checked = invoke("check", src, dst)
        assert checked.exit_code == 0, checked.stdout
        again = json.loads(invoke("copy", src, dst, "--json").stdout)
        assert again["stats"]["runs_created"] == 0 and again["stats"]["points"] == 0


def test_sync_after_new_points_adds_only_them(logs: Path, tmp_path: Path) -> None:
    src, dst = f"tensorboard:{logs}", f"dir:{tmp_path / 'archive'}"
    assert json.loads(invoke("copy", src, dst, "--json").stdout)["ok"]
    _log(logs / "run-a", 100, 150, hparams=False, suffix=".resumed")  # a resumed run: a second event file in the same folder
    synced = json.loads(invoke("sync", src, dst, "--json").stdout)
    assert synced["ok"], synced["errors"]
    assert synced["stats"]["runs_created"] == 0
    assert synced["stats"]["points"] == 51  # 50 new train/loss points and one more "odd"
    assert invoke("check", src, dst).exit_code == 0


def test_a_read_only_source_is_refused_as_destination_in_one_line(logs: Path, tmp_path: Path) -> None:
    refused = invoke("copy", f"dir:{tmp_path}", f"tensorboard:{logs}")
    assert refused.exit_code == 2
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: tensorboard: is a read-only source") and "dir:PATH" in lines[0]
    assert "tensorboard:PATH" in invoke("--help").stdout and "tensorboard:PATH" in invoke("copy", "--help").stdout


def test_a_record_cut_short_is_left_for_later_and_damage_is_named(logs: Path) -> None:
    (events,) = (logs / "run-a").glob("*tfevents*")
    data = events.read_bytes()
    events.write_bytes(data[:-5])  # a writer still writing
    reader = TensorboardBackend({"path": str(logs)}).reader()
    assert reader.get_run("run-a").metrics["odd"].step == 100  # every whole record read
    events.write_bytes(data)
    offsets = [offset for offset, _data in iter_records(events)]
    damaged = bytearray(data)
    damaged[offsets[len(offsets) // 2] + 2] ^= 0x40  # a record's length: the framing is lost from there
    events.write_bytes(bytes(damaged))
    with pytest.raises(DamagedEventFileError, match="damaged at byte"):
        TensorboardBackend({"path": str(logs)}).reader().get_run("run-a")


@pytest.mark.parametrize("dst", ["wandb-offline", "comet-offline", "trackio"])
def test_copies_into_every_other_destination_check_equal(logs: Path, tmp_path: Path, dst: str) -> None:
    src, target = f"tensorboard:{logs}", f"{dst}:{tmp_path / dst}"
    first = json.loads(invoke("copy", src, target, "--json").stdout)
    assert first["ok"], first["errors"]
    checked = invoke("check", src, target)
    assert checked.exit_code == 0, checked.stdout
    again = json.loads(invoke("copy", src, target, "--json").stdout)
    assert again["stats"]["runs_created"] == 0 and again["stats"]["points"] == 0
