"""wandb-offline through the CLI and the engine: MLflow -> W&B offline runs -> MLflow passes
``check`` against the original, a second pass adds nothing, a real SDK run copies out to
the archive and back and checks equal."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus import build_corpus, invoke, runs_by_source, set_remotes
from wandb_helpers import sdk_run, sdk_sockets  # noqa: F401  (fixtures)

from trackbridge.backends import get_backend


def _ok(result) -> dict:  # noqa: ANN001 - click's Result
    data = json.loads(result.stdout)
    assert data["ok"], data["errors"]
    return data


def test_mlflow_to_wandb_offline_to_mlflow_checks_against_the_original(tmp_path: Path, sqlite_uri: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = build_corpus(f"sqlite:///{tmp_path / 'src.db'}", tmp_path / "src")
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri)
    wandb = f"wandb-offline:{tmp_path / 'wandb'}"

    plan = invoke("copy", "src", wandb, "--dry-run")
    assert plan.exit_code == 0, plan.stdout
    copied = _ok(invoke("copy", "src", wandb, "--json"))
    assert copied["stats"]["points"] == corpus.total_points
    run_dirs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == copied["stats"]["runs_created"] == 4
    checked = invoke("check", "src", wandb)
    assert checked.exit_code == 0, checked.stdout
    again = _ok(invoke("copy", "src", wandb, "--json"))
    assert again["stats"]["runs_created"] == 0 and sorted((tmp_path / "wandb").glob("offline-run-*")) == run_dirs

    back = _ok(invoke("copy", wandb, "dst", "--json"))
    assert back["stats"]["runs_created"] == 4 and back["stats"]["points"] == corpus.total_points
    assert invoke("check", wandb, "dst").exit_code == 0
    end_to_end = invoke("check", "src", "dst")
    # every run equal end to end (end time, user, parent and dataset inputs restored from where
    # the W&B copy kept them), and the registered model with its versions and aliases: W&B
    # links (one made of the run files MLflow registered a version from) and the config
    # entries of :mod:`trackbridge.backends.wandb.registry`
    assert "5 equal, 0 missing at destination, 0 differ, 0 errors" in end_to_end.stdout, end_to_end.stdout
    [model] = list(get_backend("wandb-offline", {"path": str(tmp_path / "wandb")}).reader().list_registered_models())
    assert model.name == corpus.model and [v.version for v in model.versions] == ["1", "2", "3"]
    assert sorted(a for v in model.versions for a in v.aliases) == ["challenger", "champion"]
    assert _ok(invoke("copy", wandb, "dst", "--json"))["stats"]["runs_created"] == 0
    assert all(len(v) == 1 for v in runs_by_source(sqlite_uri).values())


def test_sdk_run_copies_to_the_archive_and_back_and_checks_equal(sdk_run, tmp_path: Path) -> None:  # noqa: F811
    run_dir, exp = sdk_run
    src, archive, back = f"wandb-offline:{run_dir.parent}", f"dir:{tmp_path / 'archive'}", f"wandb-offline:{tmp_path / 'back'}"
    copied = _ok(invoke("copy", src, archive, "--json"))
    assert copied["stats"]["runs_created"] == 1
    assert copied["stats"]["points"] >= 2 * len(exp["loss"]) + len(exp["val"]) + 3  # + system metrics
    checked = invoke("check", src, archive)
    assert checked.exit_code == 0, checked.stdout
    _ok(invoke("copy", archive, back, "--json"))
    checked = invoke("check", archive, back)
    assert checked.exit_code == 0, checked.stdout
    assert _ok(invoke("copy", archive, back, "--json"))["stats"]["runs_created"] == 0


def test_mlflow_to_wandb_through_the_sdk_offline_checks_equal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             sdk_sockets) -> None:  # noqa: F811
    """The ``wandb`` destination (the SDK, here in offline mode: its runs are read back from
    $WANDB_DIR): a copy checks equal and a second copy adds nothing."""
    import os

    Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(f"sqlite:///{tmp_path / 'src.db'}", tmp_path / "src", with_model=False)
    set_remotes(monkeypatch, src=corpus.tracking_uri)
    copied = _ok(invoke("copy", "src", "wandb", "--json"))
    assert copied["stats"]["runs_created"] == 4 and copied["stats"]["points"] == corpus.total_points
    checked = invoke("check", "src", "wandb")
    assert checked.exit_code == 0, checked.stdout
    assert _ok(invoke("copy", "src", "wandb", "--json"))["stats"]["runs_created"] == 0
    assert len(list((Path(os.environ["WANDB_DIR"]) / "wandb").glob("offline-run-*"))) == 4


def test_a_new_runs_history_is_streamed_from_its_rows_in_one_pass(sdk_run, tmp_path: Path,  # noqa: F811
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B reads its rows in one pass: a new run's user metrics go from those rows to a
    series destination (no per-key split first); NaN, where the destination cannot
    store it, is left out and recorded, and check accepts exactly that."""
    from dataclasses import replace

    from trackbridge.backends.archive.backend import ArchiveBackend
    from trackbridge.backends.wandb import rows as rowio
    from trackbridge.sync.check import Checker
    from trackbridge.sync.engine import Options, SyncEngine, target_of
    from trackbridge.sync.plan import Selection

    class NoNan(ArchiveBackend):
        def limits(self):
            return replace(super().limits(), allows_nan=False)

        def writer(self):
            writer = super().writer()
            writer.limits = replace(writer.limits, allows_nan=False)
            return writer

    run_dir, exp = sdk_run
    passes: list[object] = []
    real_rows, real_split = rowio.iter_rows, rowio.row_points
    monkeypatch.setattr(rowio, "iter_rows", lambda *a, **k: passes.append(a[1]) or real_rows(*a, **k))
    monkeypatch.setattr(rowio, "row_points", lambda rows: pytest.fail("history split into per-key files"))
    src = get_backend("wandb-offline", {"path": str(run_dir.parent)})
    dst = NoNan({"path": str(tmp_path / "dst")})
    selection = Selection([e.name for e in src.reader().list_experiments()])
    outcome = SyncEngine(src, dst, Options(mode="copy")).run(selection)
    assert outcome.ok, outcome.errors
    assert len(passes) == 1 and set(passes[0]) >= {"loss", "acc"}  # one pass, every user key
    (result,) = outcome.results
    assert result.plan.fitted.record.dropped["metric:loss"] == "1 NaN point(s): destination cannot store NaN"
    dst_run = dst.reader().get_run(result.dst_run_id)
    loss = [p for page in dst.reader().iter_metric_history(dst_run.run_id, "loss") for p in page]
    assert [p.step for p in loss] == [s for s, v in exp["loss"] if v != "nan"]
    monkeypatch.setattr(rowio, "row_points", real_split)
    report = Checker(src.reader(), dst.reader(), target_of(src, dst, dst.writer().limits)).check(selection)
    assert report.ok and [f.symbol for f in report.findings] == ["="], [f.details for f in report.findings]
