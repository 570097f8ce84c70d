"""``neptune-export:PATH``: runs in neptune-exporter's parquet format (its schema and file
protocol, ``neptune_export_helpers``) are read with ids from the columns, only when complete
(part_0 there), with ``sys/`` fields, forks as nested runs parent first, decimal steps exact
or mapped as stated, series, text/histogram/image series as media and files; they copy into
``dir:`` and MLflow with ``check`` passing and a second copy adds nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus import invoke, set_remotes
from neptune_export_helpers import at, row, write_run

from trackbridge.backends.neptune_export.backend import NeptuneExportBackend
from trackbridge.backends.neptune_export.layout import sanitize_path_part
from trackbridge.model import RunStatus

T0 = 1_700_000_000_000
PROJECT = "acme/vision"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000" "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def _sys(name: str, **extra) -> list[dict]:
    rows = [row("sys/name", "string", name), row("sys/creation_time", "datetime", at(T0)),
            row("sys/modification_time", "datetime", at(T0 + 60_000)), row("sys/owner", "string", "ada"),
            row("sys/tags", "string_set", ["baseline", "gpu"]), row("sys/failed", "bool", False)]
    return rows + [row(k, "string" if isinstance(v, str) else "float", v) for k, v in extra.items()]


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    root = tmp_path / "exports"
    data, files = root / "data", root / "files" / sanitize_path_part(PROJECT)
    (files / "ckpt").mkdir(parents=True)
    (files / "ckpt" / "weights.bin").write_bytes(b"\x01" * 64)
    (files / "report.txt").write_text("report ✓", encoding="utf-8")
    (files / "img-3.png").write_bytes(PNG)
    parent = _sys("baseline run", **{"sys/description": "first try"}) + [
        row("parameters/lr", "float", 0.01), row("parameters/layers", "int", 3),
        row("parameters/opt", "string", "adam"), row("parameters/aug", "string_set", ["flip", "crop"]),
        row("model", "file_set", {"path": "ckpt"}), row("report", "file", {"path": "report.txt"}),
        *[row("train/loss", "float_series", 1.0 / (s + 1), step=s, ms=T0 + s) for s in range(40)],
        *[row("logs/stdout", "string_series", f"epoch {s}", step=s, ms=T0 + s) for s in range(3)],
        row("weights", "histogram_series", {"type": "linear", "edges": [0.0, 0.5, 1.0], "values": [2.0, 3.0]},
            step=1, ms=T0 + 1),
        row("samples", "file_series", {"path": "img-3.png"}, step=3, ms=T0 + 3),
    ]
    write_run(data, PROJECT, "VIS-1", parent, parts=3)
    fork = _sys("fork at 20", **{"sys/forking/parent": "VIS-1", "sys/forking/step": 20.0}) + [
        row("train/loss", "float_series", 0.5 + s / 1000, step=f"{s}.5", ms=T0 + 100 + s) for s in range(20, 30)]
    write_run(data, PROJECT, "VIS-2", fork)
    write_run(data, PROJECT, "VIS-3", _sys("still exporting"), parts=2, finish=False)
    return root


def test_complete_runs_with_fields_forks_steps_media_and_files(exports: Path, tmp_path: Path) -> None:
    reader = NeptuneExportBackend({"path": str(exports)}).reader()
    assert [e.name for e in reader.list_experiments()] == [PROJECT]
    runs = {r.run_id: r for r in reader.list_runs(PROJECT)}
    assert set(runs) == {"VIS-1", "VIS-2"}  # VIS-3 has no part_0 yet
    parent, fork = runs["VIS-1"], runs["VIS-2"]
    assert (parent.name, parent.start_time, parent.end_time, parent.user) == ("baseline run", T0, T0 + 60_000, "ada")
    assert parent.labels == ["baseline", "gpu"] and parent.notes == "first try"
    assert parent.status == RunStatus.FINISHED
    assert parent.params == {"parameters/lr": 0.01, "parameters/layers": 3, "parameters/opt": "adam",
                             "parameters/aug": ["crop", "flip"]}
    assert fork.parent_run_id == "VIS-1" and fork.tags["neptune.forking.step"] == "20.0"
    points = [p for page in reader.iter_metric_history("VIS-1", "train/loss") for p in page]
    assert [p.step for p in points] == list(range(40)) and "steps" not in parent.carried
    fork_steps = [p.step for page in reader.iter_metric_history("VIS-2", "train/loss") for p in page]
    assert fork_steps == [s * 10 + 5 for s in range(20, 30)] and "multiplied by 10" in fork.carried["steps"]
    assert {k: (m.kind, m.count) for k, m in parent.media.items()} == {
        "logs/stdout": ("text", 3), "weights": ("histogram", 1), "samples": ("image", 1)}
    (image,) = reader.iter_media("VIS-1", "samples")
    assert image.step == 3 and reader.download_media("VIS-1", "samples", image, tmp_path / "m").read_bytes() == PNG
    assert {a.path for a in reader.list_artifacts("VIS-1")} == {"model/weights.bin", "report/report.txt"}


def test_copies_into_dir_and_mlflow_check_equal_and_a_second_copy_adds_nothing(
        exports: Path, tmp_path: Path, sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    set_remotes(monkeypatch, dst=sqlite_uri)
    src = f"neptune-export:{exports}"
    plan = invoke("plan", src, f"dir:{tmp_path / 'planned'}")
    assert "multiplied by 10" in plan.stdout  # the step mapping is stated
    for dst in (f"dir:{tmp_path / 'archive'}", "dst"):
        first = json.loads(invoke("copy", src, dst, "--json").stdout)
        assert first["ok"], first["errors"]
        assert first["stats"]["runs_created"] == 2
        checked = invoke("check", src, dst)
        assert checked.exit_code == 0, checked.stdout
        again = json.loads(invoke("copy", src, dst, "--json").stdout)
        assert again["stats"]["runs_created"] == 0 and again["stats"]["points"] == 0
    order = [r["src_run_id"] for r in first["runs"]]
    assert order.index("VIS-1") < order.index("VIS-2")  # the fork's parent first


@pytest.mark.parametrize("dst", ["wandb-offline", "comet-offline", "trackio"])
def test_copies_into_every_other_destination_check_equal(exports: Path, tmp_path: Path, dst: str) -> None:
    src, target = f"neptune-export:{exports}", f"{dst}:{tmp_path / dst}"
    first = json.loads(invoke("copy", src, target, "--json").stdout)
    assert first["ok"], first["errors"]
    checked = invoke("check", src, target)
    assert checked.exit_code == 0, checked.stdout
    again = json.loads(invoke("copy", src, target, "--json").stdout)
    assert again["stats"]["runs_created"] == 0 and again["stats"]["points"] == 0
