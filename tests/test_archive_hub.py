"""The archive as the any-to-any hub: the real sync engine (``trackbridge copy``/``check``)
drives the archive's Reader and Writer on both sides, and everything survives."""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.cli import main
from trackbridge.model import DatasetInput, LoggedModel, MetricPoint, ModelVersion, RegisteredModel, RunRecord, RunStatus


def _fill(root: Path, tmp: Path) -> dict[str, str]:
    """An archive with one parent and one child run carrying every kind of data."""
    w = ArchiveBackend({"path": str(root)}).writer()
    exp = w.ensure_experiment("hub ✓", {"team": "x"})
    parent = w.create_run(exp, name="parent", start_time=1_000, user="ada", tags={"k": "v"})
    child = w.create_run(exp, name="child ü", start_time=2_000, parent_run_id=parent)
    w.log_params(parent, {"lr": "0.1", "opt": "adam"})
    w.set_labels(parent, ["baseline", "gpu"])
    w.set_notes(parent, "notes ✓")
    w.log_summary(parent, {"best": 0.93, "nested": {"a": [1, 2]}, "bad": math.nan})
    w.log_inputs(parent, [DatasetInput("train", "d1", "local", "/data", tags={"context": "training"})])
    series = [("loss", MetricPoint(i, [math.nan, math.inf, -math.inf][i] if i < 3 else 1 / i, 10 * i))
              for i in range(1_200)]
    w.log_metrics(parent, series[::-1])  # out of order on purpose
    w.log_system_metrics(parent, [("system/cpu", MetricPoint(i, 50.0 + i, 10 * i)) for i in range(30)])
    (tmp / "files" / "sub").mkdir(parents=True)
    (tmp / "files" / "sub" / "été.txt").write_text("x")
    w.log_artifact(parent, tmp / "files", "out")
    (tmp / "model").mkdir()
    (tmp / "model" / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    logged = w.log_model(parent, tmp / "model", LoggedModel("clf", "clf"))
    w.register_model(RegisteredModel("reg", "desc", {"o": "1"}))
    w.create_model_version(ModelVersion("reg", "1", source=f"models:/{logged.model_id}",
                                        model_id=logged.model_id), parent)
    w.create_model_version(ModelVersion("reg", "2", source="runs:/x/clf", artifact_path="clf"), child)
    w.set_model_alias("reg", "champion", "2")
    w.finish_run(parent, RunStatus.FINISHED, end_time=9_000)
    w.finish_run(child, RunStatus.FAILED, end_time=8_000)
    return {"parent": parent, "child": child}


def _comparable(run: RunRecord) -> RunRecord:
    """What must be identical after a copy: everything but the ids, url and provenance tags."""
    tags = {k: v for k, v in run.tags.items() if not k.startswith("trackbridge.")}
    return replace(run, run_id="", experiment_id=None, url=None, parent_run_id=None, tags=tags,
                   models=[replace(m, model_id=None, tags=m.user_tags()) for m in run.models],
                   summary=json.loads(json.dumps(run.summary).replace("NaN", '"nan"')))


def test_archive_to_archive_copy_keeps_everything_and_checks_clean(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    ids = _fill(a, tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["copy", f"dir:{a}", f"dir:{b}"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["check", f"dir:{a}", f"dir:{b}"])
    assert result.exit_code == 0, result.output

    src, dst = ArchiveBackend({"path": str(a)}).reader(), ArchiveBackend({"path": str(b)}).reader()
    copies = {r.name: r for r in dst.list_runs("hub ✓")}
    assert copies["child ü"].parent_run_id == copies["parent"].run_id
    for name, run_id in (("parent", ids["parent"]), ("child ü", ids["child"])):
        assert _comparable(copies[name]) == _comparable(src.get_run(run_id))
        assert copies[name].tags["trackbridge.source.run_id"] == run_id
    original = [p.key() for page in src.iter_metric_history(ids["parent"], "loss", 500) for p in page]
    copied = [p.key() for page in dst.iter_metric_history(copies["parent"].run_id, "loss", 500) for p in page]
    assert sorted(copied) == sorted(original) and len(copied) == 1_200
    assert {a.path: a.digest for a in dst.list_artifacts(copies["parent"].run_id)} == \
        {a.path: a.digest for a in src.list_artifacts(ids["parent"])}
    [model] = dst.list_registered_models()
    assert [(v.version, v.aliases) for v in model.versions] == [("1", []), ("2", ["champion"])]
    assert model.versions[0].model_id == copies["parent"].models[0].model_id  # re-pointed to the copy
    assert dst.get_experiment("hub ✓").tags == {"team": "x"}

    again = runner.invoke(main, ["copy", f"dir:{a}", f"dir:{b}"])  # idempotent: nothing new
    assert again.exit_code == 0, again.output
    assert len(list(dst.list_runs("hub ✓"))) == 2
    assert len(next(dst.list_registered_models()).versions) == 2