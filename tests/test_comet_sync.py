"""comet-offline through the CLI and the engine: MLflow -> Comet archives -> MLflow passes
``check`` against the original, a second pass adds nothing, an SDK archive copies out
and checks equal, and ``check`` catches a copy that lost points to downsampling."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import comet_helpers as h
from corpus import build_corpus, invoke, runs_by_source, set_remotes
from wandb_helpers import sdk_rich_run  # noqa: F401  (fixture)
from trackbridge.backends.comet.backend import CometOfflineBackend
from trackbridge.model import MetricPoint, RunStatus


def _ok(result) -> dict:  # noqa: ANN001 - click's Result
    data = json.loads(result.stdout)
    assert data["ok"], data["errors"]
    return data


def test_mlflow_to_comet_offline_to_mlflow_checks_against_the_original(tmp_path: Path, sqlite_uri: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = build_corpus(f"sqlite:///{tmp_path / 'src.db'}", tmp_path / "src")
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri)
    comet = f"comet-offline:{tmp_path / 'comet'}"

    copied = _ok(invoke("copy", "src", comet, "--json"))
    assert copied["stats"]["points"] == corpus.total_points
    archives = sorted((tmp_path / "comet").glob("*.zip"))
    assert len(archives) == copied["stats"]["runs_created"] == 4
    checked = invoke("check", "src", comet)
    assert checked.exit_code == 0, checked.stdout
    again = _ok(invoke("copy", "src", comet, "--json"))
    assert again["stats"]["runs_created"] == 0 and sorted((tmp_path / "comet").glob("*.zip")) == archives

    back = _ok(invoke("copy", comet, "dst", "--json"))
    assert back["stats"]["runs_created"] == 4 and back["stats"]["points"] == corpus.total_points
    assert invoke("check", comet, "dst").exit_code == 0
    end_to_end = invoke("check", "src", "dst")
    # every run is equal end to end (user and parent restored from the tags Comet kept them
    # in, inputs carried as an other), and so is the registry: versions are matched across
    # the semver hop by trackbridge.origin.version.
    assert end_to_end.exit_code == 0, end_to_end.stdout
    assert "0 missing at destination, 0 differ, 0 errors" in end_to_end.stdout, end_to_end.stdout
    assert _ok(invoke("copy", comet, "dst", "--json"))["stats"]["runs_created"] == 0
    assert all(len(v) == 1 for v in runs_by_source(sqlite_uri).values())


@pytest.mark.parametrize("kind", ["dir", "comet-offline"])
def test_sdk_archive_copies_out_and_checks_equal(tmp_path: Path, kind: str) -> None:
    """Into dir: and into another Comet folder (its html, a kind Comet's archive holds but
    trackbridge cannot write back natively, goes through the engine's media layout)."""
    archive = h.sdk_archive(tmp_path / "sdk")
    comet, out = f"comet-offline:{archive.parent}", f"{kind}:{tmp_path / 'out'}"
    plan = invoke("copy", comet, out, "--dry-run")
    assert plan.exit_code == 0, plan.stdout
    assert "'media:html'" in plan.stdout, plan.stdout  # declared: as files at both
    assert ("'media:text'" in plan.stdout) == (kind == "dir"), plan.stdout  # native in Comet
    copied = _ok(invoke("copy", comet, out, "--json"))
    assert copied["stats"]["runs_created"] == 1
    checked = invoke("check", comet, out)
    assert checked.exit_code == 0, checked.stdout


def test_check_reports_points_lost_to_downsampling(tmp_path: Path) -> None:
    src = CometOfflineBackend({"path": str(tmp_path / "src")}).writer()
    run_id = src.create_run(src.ensure_experiment("p"), name="long", start_time=1)
    points = [MetricPoint(i, float(i), 1_000 + i) for i in range(20_000)]
    src.log_metrics(run_id, [("loss", p) for p in points])
    src.finish_run(run_id, RunStatus.FINISHED, 2)
    src.close()
    comet, copy = f"comet-offline:{tmp_path / 'src'}", f"comet-offline:{tmp_path / 'copy'}"
    first = invoke("copy", comet, copy)
    assert first.exit_code == 0, first.stdout
    # the command to run next keeps every point; the long series is named
    assert f"COMET_OFFLINE_SAMPLING_SIZE=20000 comet upload {tmp_path / 'copy'}/*.zip" in first.stderr
    assert "'loss' has 20,000 points" in first.stderr
    assert invoke("check", comet, copy).exit_code == 0
    # what `comet upload` without the setting would have kept: 15,000 of the points
    [dst_zip] = (tmp_path / "copy").glob("*.zip")
    dst_key = dst_zip.stem
    w = CometOfflineBackend({"path": str(tmp_path / "copy")}).writer()
    run = CometOfflineBackend({"path": str(tmp_path / "copy")}).reader().get_run(dst_key)
    w.delete_run(dst_key)
    again = w.create_run("p", name="long", start_time=1, tags=run.tags)
    w.log_metrics(again, [("loss", p) for p in points[::4] + points[1::4] + points[2::4][:5_000]])
    w.finish_run(again, RunStatus.FINISHED, 2)
    w.close()
    checked = invoke("check", comet, copy)
    assert checked.exit_code != 0
    assert "loss" in checked.stdout and "5" in checked.stdout, checked.stdout


@pytest.mark.parametrize("direction", ["comet-offline -> wandb-offline", "wandb-offline -> comet-offline"])
def test_wandb_and_comet_offline_both_ways_check_equal(direction: str, tmp_path: Path) -> None:
    """Any-to-any with no MLflow in the middle: the conformance sample written into one
    offline format, copied into the other by the engine, checked equal, copied again: nothing."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "conformance"))
    from sample import write_sample

    from trackbridge.backends.wandb.backend import WandbOfflineBackend
    from trackbridge.sync.check import Checker
    from trackbridge.sync.engine import Options, SyncEngine, target_of
    from trackbridge.sync.plan import Action, Selection

    comet = CometOfflineBackend({"path": str(tmp_path / "comet")})
    wandb = WandbOfflineBackend({"path": str(tmp_path / "wandb")})
    src, dst = (comet, wandb) if direction.startswith("comet") else (wandb, comet)
    writer = src.writer()
    sample = write_sample(writer, tmp_path / "files", with_model=src is comet)  # W&B offline has no registry
    writer.close()
    src = type(src)(src.options)
    selection = Selection(experiments=[sample.experiment])
    outcome = SyncEngine(src, dst, Options(mode="copy")).run(selection)
    assert outcome.ok, outcome.errors
    fresh = type(dst)(dst.options)
    report = Checker(src.reader(), fresh.reader(), target_of(src, fresh, fresh.writer().limits)).check(selection)
    assert [(f.label, f.details) for f in report.findings if f.symbol != "="] == []
    again = SyncEngine(src, type(dst)(dst.options), Options(mode="copy")).run(selection)
    assert again.ok and again.plan.count(Action.UNCHANGED) == 2


def test_damaged_archive_copy_fails_clearly_and_recovers_through_a_remote(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    whole = h.sdk_archive(tmp_path / "sdk")
    folder = tmp_path / "damaged"
    folder.mkdir()
    info = __import__("zipfile").ZipFile(whole).getinfo("messages.json")
    (folder / whole.name).write_bytes(whole.read_bytes()[: info.header_offset + 30 + len(info.filename)
                                                         + info.compress_size // 2])
    failed = invoke("copy", f"comet-offline:{folder}", f"dir:{tmp_path / 'out'}")
    assert failed.exit_code != 0 and "is damaged" in failed.stderr + failed.stdout
    for key, value in {"BACKEND": "comet-offline", "PATH": str(folder), "RECOVER": "true"}.items():
        monkeypatch.setenv(f"TRACKBRIDGE_REMOTE_ARCH_{key}", value)
    copied = _ok(invoke("copy", "arch", f"dir:{tmp_path / 'out'}", "--json"))
    assert copied["stats"]["runs_created"] == 1 and 0 < copied["stats"]["points"] < h.STEPS + h.STEPS // 10
    assert invoke("check", "arch", f"dir:{tmp_path / 'out'}").exit_code == 0


def test_plan_warns_for_every_series_the_uploader_would_sample(tmp_path: Path) -> None:
    """A copy keeps every point; plan says which series `comet upload` would sample by default."""
    from trackbridge.backends.archive.backend import ArchiveBackend
    from trackbridge.model import MetricPoint, RunStatus

    writer = ArchiveBackend({"path": str(tmp_path / "src")}).writer()
    run = writer.create_run(writer.ensure_experiment("long"), name="long", start_time=1)
    writer.log_metrics(run, [("loss", MetricPoint(i, float(i), 1 + i)) for i in range(20_000)])
    writer.log_metrics(run, [("short", MetricPoint(i, float(i), 1 + i)) for i in range(100)])
    writer.finish_run(run, RunStatus.FINISHED, 30_000)
    writer.close()
    plan = invoke("plan", f"dir:{tmp_path / 'src'}", f"comet-offline:{tmp_path / 'comet'}", "--mode", "copy")
    assert plan.exit_code == 0, plan.stdout
    warnings = [line for line in plan.stdout.splitlines() if "uploader keeps" in line]
    assert len(warnings) == 1 and "'loss' has ~20,000 points" in warnings[0] and "15,000" in warnings[0]


def test_registered_sklearn_model_through_comet_offline_loads_at_champion(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14 item 4: MLflow -> comet-offline -> MLflow, ``models:/<name>@champion``
    loads and predicts as the original (the Comet registration names the experiment's
    model, whose files are the version's), and the version's stage comes back."""
    import mlflow
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    src_uri, dst_uri = f"sqlite:///{tmp_path / 'src.db'}", f"sqlite:///{tmp_path / 'dst.db'}"
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    mlflow.set_tracking_uri(src_uri)
    client = MlflowClient(src_uri)
    exp_id = client.create_experiment("grid", artifact_location=(tmp_path / "src-art").as_uri())
    with mlflow.start_run(experiment_id=exp_id):
        for c in (0.1, 10.0):  # two models of one name in one run, as autolog logs them
            model = LogisticRegression(C=c).fit(x, y)
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name="clf", input_example=x[:2])
    expected = model.predict(x)
    client.set_registered_model_alias("clf", "champion", info.registered_model_version)
    client.transition_model_version_stage("clf", info.registered_model_version, "Production")
    set_remotes(monkeypatch, src=src_uri, dst=dst_uri)
    comet = f"comet-offline:{tmp_path / 'comet'}"

    _ok(invoke("copy", "src", comet, "--json"))
    assert invoke("check", "src", comet).exit_code == 0
    _ok(invoke("copy", comet, "dst", "--json"))
    end_to_end = invoke("check", "src", "dst")
    assert end_to_end.exit_code == 0, end_to_end.stdout

    mlflow.set_tracking_uri(dst_uri)
    loaded = mlflow.pyfunc.load_model("models:/clf@champion")
    assert (loaded.predict(x) == expected).all()
    champion = MlflowClient(dst_uri).get_model_version_by_alias("clf", "champion")
    assert champion.current_stage == "Production"
    [run] = [r for runs in runs_by_source(dst_uri).values() for r in runs]
    assert len(MlflowClient(dst_uri).search_logged_models(experiment_ids=[run.info.experiment_id])) == 2


def test_wandb_media_go_native_into_comet_offline_and_check_equal(tmp_path: Path,
                                                                   sdk_rich_run) -> None:  # noqa: F811
    """W&B histograms per epoch and captioned images (the real wandb SDK) become Comet's
    own histogram3d and image uploads, read back as the same series; the table, a kind
    Comet's archive does not hold natively, goes through the engine's media layout; and
    on to dir: and back to W&B, check equal at every hop and end to end."""
    run_dir, _expected = sdk_rich_run
    source, comet = f"wandb-offline:{run_dir}", f"comet-offline:{tmp_path / 'comet'}"
    _ok(invoke("copy", source, comet, "--json"))
    checked = invoke("check", source, comet)
    assert checked.exit_code == 0, checked.stdout
    [archive] = (tmp_path / "comet").glob("*.zip")
    uploads = [m["payload"] for m in h.messages(archive) if m["type"] == "file_upload"]
    kinds = [(p["upload_type"], p["additional_params"].get("fileName") or p["additional_params"].get("figName"))
             for p in uploads]
    assert kinds.count(("histogram3d", "weights")) == 3 and kinds.count(("visualization", "val/examples")) == 3
    reader = CometOfflineBackend({"path": str(tmp_path / "comet")}).reader()
    [run] = [r for e in reader.list_experiments() for r in reader.list_runs(e.name)]
    assert {k: (s.kind, s.count) for k, s in run.media.items()} == {"weights": ("histogram", 3),
                                                                     "val/examples": ("image", 3)}
    assert not [k for k in run.metrics if k.startswith(("weights", "val/examples", "preds"))]
    for out in (f"dir:{tmp_path / 'out'}", f"wandb-offline:{tmp_path / 'back'}"):
        _ok(invoke("copy", comet, out, "--json"))
        assert invoke("check", comet, out).exit_code == 0, out
    end_to_end = invoke("check", source, f"wandb-offline:{tmp_path / 'back'}")  # W&B -> Comet -> W&B
    assert end_to_end.exit_code == 0, end_to_end.stdout
