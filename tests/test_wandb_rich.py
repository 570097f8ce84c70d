"""Issue 14 on W&B: a run written by the real wandb SDK the way users write it
(``define_metric`` with a step metric and ``summary="min"``, a histogram and a captioned
image per epoch, a table, an artifact with type/description/metadata/aliases, two
models of one name, system metrics) reads into the canonical model without loss or
fake series, copies to ``wandb-offline:``, ``dir:`` and MLflow with ``check`` passing,
and ``check`` fails, naming it, when a media point or the artifact metadata is damaged
at the destination by hand."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from corpus import invoke, set_remotes
from wandb_helpers import sdk_rich_run, sdk_sockets, wandb_file  # noqa: F401  (fixtures)

from trackbridge.backends import get_backend
from trackbridge.backends.wandb import txlog


def _reader(path: Path):  # noqa: ANN202 - a WandbOfflineReader
    return get_backend("wandb-offline", {"path": str(path)}).reader()


def _ok(result) -> dict:  # noqa: ANN001 - click's Result
    data = json.loads(result.stdout)
    assert data["ok"], data["errors"]
    return data


def test_reader_gives_what_the_sdk_logged(sdk_rich_run, tmp_path: Path) -> None:  # noqa: F811
    run_dir, exp = sdk_rich_run
    reader = _reader(run_dir)
    run = reader.get_run(exp["run_id"])
    # media are media, never metric series (no `.width`, `nrows`...)
    assert set(run.metrics) == {"epoch", "train/loss", "val/loss"}
    assert {k: (s.kind, s.count) for k, s in run.media.items()} == {
        "weights": ("histogram", 3), "val/examples": ("image", 3), "preds": ("table", 1)}
    # the custom x-axis is the series' step, declared in the run's tag
    val = [(p.step, p.value) for page in reader.iter_metric_history(run.run_id, "val/loss") for p in page]
    assert val == [tuple(v) for v in exp["val_loss"]]
    assert [p.value for page in reader.iter_metric_history(run.run_id, "train/loss") for p in page] == exp["train"]
    assert json.loads(run.tags["wandb.define_metric"]) == [
        {"name": "epoch"}, {"glob": "val/*", "step_metric": "epoch", "summary": ["min"]}]
    assert run.summary == {}  # W&B's {"min": ...} copy of val/loss is the series', not the user's
    rows = list(reader.iter_rows(run.run_id, ["val/loss", "epoch"]))
    assert sorted((r.step, r.values["val/loss"]) for r in rows if "val/loss" in r.values) == \
        [tuple(v) for v in exp["val_loss"]]
    # one histogram per epoch, every one; captions per point; the table's rows
    hist = list(reader.iter_media(run.run_id, "weights"))
    assert [p.data for p in hist] == exp["hist"]
    assert [p.step for p in hist] == [4, 9, 14]  # not under val/*: W&B's _step (4 train rows an epoch)
    images = list(reader.iter_media(run.run_id, "val/examples"))
    assert [p.caption for p in images] == exp["captions"] and [p.step for p in images] == [0, 1, 2]
    assert all(p.meta == {"format": "png", "width": 6, "height": 8} for p in images)
    local = reader.download_media(run.run_id, "val/examples", images[1], tmp_path / "m")
    assert local.read_bytes()[:4] == b"\x89PNG"
    assert local.read_bytes() == (run_dir / "files" / images[1].file).read_bytes()
    (table,) = reader.iter_media(run.run_id, "preds")
    assert table.data == {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]} and table.file is None
    # media files are the media's, not plain files; the artifact keeps its metadata
    assert [a.path for a in reader.list_artifacts(run.run_id)] == ["wandb-artifacts/dataset-a/d.csv"]
    assert run.artifact_meta == {"wandb-artifacts/dataset-a": {
        "type": "dataset", "description": "training rows", "metadata": {"rows": 1, "src": "x"},
        "aliases": ["best", "first"]}}
    # two models of one name stay two, each with its own bytes
    assert [(m.name, m.artifact_path, m.status) for m in run.models] == [("clf", "clf", "READY"), ("clf", "clf#2", "READY")]
    assert len({m.model_id for m in run.models}) == 2
    got = [(reader.download_model(run.run_id, m, tmp_path / str(n)) / "model.pkl").read_bytes()
           for n, m in enumerate(run.models)]
    assert got == [b"weights C=1", b"weights C=2"]
    # system metrics (the SDK's stats records) apart, named as MLflow names them
    assert run.system_metrics and all(k.startswith("system/") for k in run.system_metrics)
    assert not set(run.system_metrics) & set(run.metrics)
    assert run.unread == {}


def _copy_checks(src: str, dst: str) -> None:
    copied = _ok(invoke("copy", src, dst, "--json"))
    assert copied["stats"]["runs_created"] == 1
    checked = invoke("check", src, dst)
    assert checked.exit_code == 0, checked.stdout
    assert _ok(invoke("copy", src, dst, "--json"))["stats"]["runs_created"] == 0


def _rewrite(path: Path, change: Callable[[Any], bool]) -> None:
    """Rewrite a ``.wandb`` file with ``change`` applied to each record (it returns whether
    it changed one): damage by hand, as an edit at the destination would."""
    from wandb.proto import wandb_internal_pb2 as pb

    records, changed = [], 0
    for _offset, data in txlog.read_file(path):
        record = pb.Record.FromString(data)
        changed += bool(change(record))
        records.append(record.SerializeToString())
    assert changed == 1
    with open(path, "w+b") as stream:
        log = txlog.LogWriter(stream)
        for data in records:
            log.write(data)


def _bump_histogram(record: Any) -> bool:
    """Add one to the first count of the first histogram of a history record."""
    if record.WhichOneof("record_type") != "history":
        return False
    for item in record.history.item:
        if list(item.nested_key) == ["weights", "values"]:
            values = json.loads(item.value_json)
            item.value_json = json.dumps([values[0] + 1, *values[1:]])
            return True
    return False


def _first(change: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """``change`` applied to the first record it changes only."""
    done = False

    def once(record: Any) -> bool:
        nonlocal done
        if done:
            return False
        done = change(record)
        return done
    return once


def test_copy_to_wandb_offline_checks_equal_and_damage_fails(sdk_rich_run, tmp_path: Path) -> None:  # noqa: F811
    run_dir, exp = sdk_rich_run
    src, dst = f"wandb-offline:{run_dir.parent}", f"wandb-offline:{tmp_path / 'copy'}"
    _copy_checks(src, dst)
    reader = _reader(tmp_path / "copy")
    (copy,) = list(reader.list_runs("rich"))
    assert {k: (s.kind, s.count) for k, s in copy.media.items()} == {
        "weights": ("histogram", 3), "val/examples": ("image", 3), "preds": ("table", 1)}
    assert [p.caption for p in reader.iter_media(copy.run_id, "val/examples")] == exp["captions"]
    assert copy.artifact_meta["wandb-artifacts/dataset-a"]["aliases"] == ["best", "first"]
    assert copy.tags["wandb.define_metric"] == _reader(run_dir).get_run(exp["run_id"]).tags["wandb.define_metric"]
    # W&B's summary of val/loss is again the minimum the definition asks for
    from trackbridge.backends.wandb.scan import scan

    assert scan(wandb_file(next((tmp_path / "copy").glob("offline-run-*")))).summary["val/loss"][0] == \
        {"min": min(v for _s, v in exp["val_loss"])}

    # damage: one image's bytes, one histogram count, the artifact's description, a model's status
    image = next(p for p in reader.iter_media(copy.run_id, "val/examples"))
    copy_dir = next((tmp_path / "copy").glob("offline-run-*"))
    (copy_dir / "files" / image.file).write_bytes(b"\x89PNG not the image")
    out = invoke("check", src, dst).stdout
    assert "media 'val/examples' point 0 (step 0): file content differ" in out, out
    _rewrite(wandb_file(copy_dir), _first(_bump_histogram))
    out = invoke("check", src, dst).stdout
    assert "media 'weights' point 0 (step 4): data differ" in out, out

    def describe(record: Any) -> bool:
        if record.WhichOneof("record_type") == "artifact" and record.artifact.name == "dataset-a":
            record.artifact.description = "edited by hand"
            return True
        return False

    _rewrite(wandb_file(copy_dir), describe)
    out = invoke("check", src, dst).stdout
    assert "artifact metadata" in out and "edited by hand" in out, out

    def fail_model(record: Any) -> bool:
        if record.WhichOneof("record_type") == "artifact" and record.artifact.type == "model":
            metadata = json.loads(record.artifact.metadata)
            metadata["trackbridge.model"]["status"] = "FAILED"
            record.artifact.metadata = json.dumps(metadata)
            return True
        return False

    _rewrite(wandb_file(copy_dir), _first(fail_model))
    out = invoke("check", src, dst).stdout
    assert "status: source 'READY' != destination 'FAILED'" in out, out


def test_copy_to_dir_and_mlflow_checks_equal(sdk_rich_run, tmp_path: Path, sqlite_uri: str,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir, _exp = sdk_rich_run
    src = f"wandb-offline:{run_dir.parent}"
    _copy_checks(src, f"dir:{tmp_path / 'archive'}")
    set_remotes(monkeypatch, dst=sqlite_uri)
    _copy_checks(src, "dst")
    # and back into W&B from MLflow (media kept there as files, native again here)
    _copy_checks("dst", f"wandb-offline:{tmp_path / 'back'}")
    reader = _reader(tmp_path / "back")
    (back,) = list(reader.list_runs("rich"))
    assert {k: s.kind for k, s in back.media.items()} == {"weights": "histogram", "val/examples": "image",
                                                         "preds": "table"}
    first = next(reader.iter_media(back.run_id, "val/examples"))
    digest = hashlib.sha256(reader.download_media(back.run_id, "val/examples", first, tmp_path / "d").read_bytes())
    source = _reader(run_dir.parent)
    (orig,) = list(source.list_runs("rich"))
    original = next(source.iter_media(orig.run_id, "val/examples"))
    assert digest.hexdigest() == hashlib.sha256((run_dir / "files" / original.file).read_bytes()).hexdigest()


def test_wandb_sync_accepts_the_copy_with_its_media_and_artifact(sdk_rich_run, tmp_path: Path) -> None:  # noqa: F811
    """W&B's own Go ``wandb sync`` uploads what the writer made of the rich run: media as
    the SDK's history values with their files, the artifact with its metadata."""
    from wandb_helpers import WandbRecorder, wandb_sync

    run_dir, exp = sdk_rich_run
    _ok(invoke("copy", f"wandb-offline:{run_dir.parent}", f"wandb-offline:{tmp_path / 'copy'}", "--json"))
    recorder = WandbRecorder().start()
    try:
        result = wandb_sync(list((tmp_path / "copy").glob("offline-run-*")), recorder.url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        (run_id,) = recorder.upserts
        history = recorder.history(run_id)
        hist = [h["weights"] for h in history if "weights" in h]
        assert [{"bins": h["bins"], "values": h["values"]} for h in hist] == exp["hist"]
        assert all(h["_type"] == "histogram" for h in hist)
        images = [h["val/examples"] for h in history if "val/examples" in h]
        assert [i["caption"] for i in images] == exp["captions"] and all(i["_type"] == "image-file" for i in images)
        uploaded = {path.split(f"/upload/{run_id}/", 1)[-1] for path in recorder.uploads}
        assert {i["path"] for i in images} <= uploaded
        tables = [h["preds"] for h in history if "preds" in h]
        assert tables and tables[0]["_type"] == "table-file" and tables[0]["path"] in uploaded
        made = [a for a in recorder.artifacts.values() if a.get("artifactCollectionName") == "dataset-a"]
        assert made and made[0].get("description") == "training rows"
        assert json.loads(made[0].get("metadata") or "{}") == {"rows": 1, "src": "x"}
    finally:
        recorder.stop()


T0 = 1_700_000_000_000


def test_writer_round_trips_every_native_kind_and_metadata(tmp_path: Path) -> None:
    """What ``wandb-offline:`` declares native comes back exactly: every media kind, the
    metadata of a folder, a file, a model path and a path without files, a stage, the
    define_metric tag with W&B's summary again, system keys with and without prefix."""
    from trackbridge.model import LoggedModel, MediaPoint, MetricPoint, ModelVersion, RegisteredModel, RunStatus

    backend = get_backend("wandb-offline", {"path": str(tmp_path / "w")})
    w = backend.writer()
    run = w.create_run(w.ensure_experiment("kinds"), name="k", start_time=T0,
                       tags={"trackbridge.source.platform": "x", "trackbridge.source.run_id": "r1"})
    definitions = '[{"glob":"val/*","step_metric":"epoch","summary":["min","max"]}]'
    w.set_tags(run, {"wandb.define_metric": definitions})
    w.log_metrics(run, [("val/loss", MetricPoint(i, v, T0 + i)) for i, v in enumerate([0.5, 0.2, 0.3])])
    w.log_system_metrics(run, [("system/cpu", MetricPoint(0, 1.0, T0)), ("gpu_util", MetricPoint(0, 2.0, T0))])
    files = tmp_path / "f"
    (files / "data").mkdir(parents=True)
    (files / "data" / "a.csv").write_text("a\n1\n")
    (files / "report.txt").write_text("r")
    w.log_artifact(run, files / "data")
    w.log_artifact(run, files / "report.txt")
    blobs = {}
    points: dict[str, list] = {
        "h": [(MediaPoint(0, T0, "histogram", data={"bins": [0, 1, 2], "values": [3, 4]}, meta={"values": "x"}), None)],
        "t": [(MediaPoint(1, T0 + 1, "table", data={"columns": ["x"], "data": [[1], [2]]}, meta={"log_mode": "IMMUTABLE"}), None)],
        "p": [(MediaPoint(2, T0 + 2, "plotly", data={"data": [], "layout": {"title": "t"}}), None)],
    }
    for kind, suffix in (("image", ".png"), ("audio", ".wav"), ("video", ".mp4"), ("html", ".html"),
                         ("object3d", ".pts.json"), ("molecule", ".pdb")):
        local = tmp_path / f"{kind}{suffix}"
        local.write_bytes(kind.encode() * 3)
        blobs[kind] = local.read_bytes()
        points[kind] = [(MediaPoint(3, T0 + 3, kind, file=local.name, caption=f"{kind} one",
                                    meta={"k": 1, "size": 9, "path": "elsewhere"}), local),  # W&B's own names too
                        (MediaPoint(3, T0 + 3, kind, file=local.name, caption=None), local)]
    for key, given in points.items():
        w.log_media(run, key, given)
    w.set_artifact_meta(run, {"data": {"type": "dataset", "description": "d", "metadata": {"n": 1}, "aliases": ["a"],
                                       "tags": ["t1"]},
                              "report.txt": {"metadata": {"from": "comet"}},
                              "clf": {"description": "the model", "aliases": ["best"]},
                              "nowhere": {"metadata": {"x": 1}},
                              # what an artifact would not give back exactly is kept as given
                              "data/a.csv": {"aliases": ["z", "a"], "step": 3, "metadata": {}}})
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(b"m")
    logged = [w.log_model(run, model_dir, LoggedModel("clf", "clf", params={"C": str(c)}, metrics={"s": c},
                                                      tags={"trackbridge.source.model_id": f"src-{c}"},
                                                      model_type="classifier", status="READY"))
              for c in (1, 2)]
    w.finish_run(run, RunStatus.FINISHED, T0 + 100)
    w.register_model(RegisteredModel("reg"))
    made = [w.create_model_version(ModelVersion("reg", "", run_id=run, artifact_path=m.artifact_path,
                                                model_id=m.model_id), run) for m in logged]
    w.set_version_stage("reg", made[0].version, "Archived")
    w.set_version_stage("reg", made[1].version, "Production")
    w.close()

    reader = backend.reader()
    got = reader.get_run(run)
    assert got.tags["wandb.define_metric"] == definitions
    assert set(got.system_metrics) == {"system/cpu", "gpu_util"}
    assert {k: (s.kind, s.count) for k, s in got.media.items()} == {k: (v[0][0].kind, len(v)) for k, v in points.items()}
    for key, given in points.items():
        back = list(reader.iter_media(run, key))
        for (want, local), have in zip(given, back):
            assert (have.step, have.timestamp, have.kind, have.data, have.caption, have.meta) == \
                (want.step, want.timestamp, want.kind, want.data, want.caption, want.meta), key
            if local is not None:
                assert reader.download_media(run, key, have, tmp_path / "dl" / key).read_bytes() == blobs[key]
    assert got.artifact_meta == {"data": {"type": "dataset", "description": "d", "metadata": {"n": 1},
                                          "aliases": ["a"], "tags": ["t1"]},
                                 "report.txt": {"metadata": {"from": "comet"}},
                                 "clf": {"description": "the model", "aliases": ["best"]},
                                 "nowhere": {"metadata": {"x": 1}},
                                 "data/a.csv": {"aliases": ["z", "a"], "step": 3, "metadata": {}}}
    assert sorted(a.path for a in reader.list_artifacts(run)) == ["data/a.csv", "report.txt"]
    assert [(m.artifact_path, m.params, m.metrics, m.tags, m.model_type, m.status) for m in got.models] == [
        ("clf", {"C": "1"}, {"s": 1.0}, {"trackbridge.source.model_id": "src-1"}, "classifier", "READY"),
        ("clf#2", {"C": "2"}, {"s": 2.0}, {"trackbridge.source.model_id": "src-2"}, "classifier", "READY")]
    (reg,) = list(reader.list_registered_models())
    assert [(v.version, v.model_id, v.stage) for v in reg.versions] == [
        ("1", logged[0].model_id, "Archived"), ("2", logged[1].model_id, "Production")]
    from trackbridge.backends.wandb.scan import scan

    summary = scan(wandb_file(next((tmp_path / "w").glob("offline-run-*")))).summary
    assert summary["val/loss"][0] == {"min": 0.2, "max": 0.5}


def test_older_writers_media_and_values_no_kind_holds(tmp_path: Path) -> None:
    """A media dict as one value (older writers), text values and a W&B type no canonical
    kind holds: media, or declared in ``unread``, never metrics and never silent."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir = tmp_path / "wandb" / "offline-run-20240101_000000-old1"
    run_dir.mkdir(parents=True)
    records = []
    rec = pb.Record()
    rec.run.run_id, rec.run.project = "old1", "legacy"
    rec.run.start_time.FromMilliseconds(T0)
    records.append(rec)
    for step in range(3):
        rec = pb.Record()
        for path, value in ((["_step"], step), (["_timestamp"], T0 / 1000 + step), (["loss"], 1.0 / (step + 1)),
                            (["hist"], {"_type": "histogram", "bins": [0, 1, 2], "values": [step, 1]}),
                            (["note"], f"text {step}"),
                            (["plot", "_type"], "bokeh-file"), (["plot", "width"], 3)):
            item = rec.history.item.add()
            item.nested_key.extend(path)
            item.value_json = json.dumps(value)
        rec.history.step.num = step
        records.append(rec)
    with open(run_dir / "run-old1.wandb", "w+b") as stream:
        log = txlog.LogWriter(stream)
        for n, rec in enumerate(records, start=1):
            rec.num = n
            log.write(rec.SerializeToString())
    reader = _reader(tmp_path / "wandb")
    run = reader.get_run("old1")
    assert set(run.metrics) == {"loss"}
    assert {k: (s.kind, s.count) for k, s in run.media.items()} == {"hist": ("histogram", 3)}
    assert [p.data["values"] for p in reader.iter_media("old1", "hist")] == [[0, 1], [1, 1], [2, 1]]
    assert set(run.unread) == {"history 'note'", "history 'plot'"}
    assert "bokeh-file" in run.unread["history 'plot'"] and "str" in run.unread["history 'note'"]


def test_copy_into_wandb_through_the_sdk_checks_equal(sdk_rich_run, tmp_path: Path,  # noqa: F811
                                                      sdk_sockets) -> None:  # noqa: F811
    """The ``wandb`` destination (the SDK, offline here): media kept as trackbridge's files,
    artifact metadata in its file, models with their metadata; ``check`` passes."""
    import os

    Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)
    run_dir, _exp = sdk_rich_run
    _copy_checks(f"wandb-offline:{run_dir.parent}", "wandb")


def test_cloud_reader_after_wandb_sync_makes_no_fake_series(sdk_rich_run, tmp_path: Path,  # noqa: F811
                                                            monkeypatch: pytest.MonkeyPatch, sdk_sockets) -> None:  # noqa: F811
    """The SDK's own run uploaded by ``wandb sync`` and read through ``wandb.Api`` (the
    recorder serving it): media are no metric series and, not fetched by this reader,
    are declared in ``unread``; the artifact's metadata and both models are read."""
    import gc
    import shutil

    import wandb
    from wandb_helpers import WandbRecorder, wandb_sync

    run_dir, exp = sdk_rich_run
    copy = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, copy)
    rec = WandbRecorder().start()
    try:
        assert wandb_sync([copy], rec.url, cwd=tmp_path).returncode == 0
        monkeypatch.delenv("WANDB_MODE", raising=False)
        monkeypatch.setenv("WANDB_BASE_URL", rec.url)
        monkeypatch.setenv("WANDB_API_KEY", "local-" + "0" * 40)
        cloud = get_backend("wandb", {"base_url": rec.url, "entity": "recorder", "mode": "online"}).reader()
        (run,) = list(cloud.list_runs("rich"))
        assert set(run.metrics) == {"epoch", "train/loss", "val/loss"}
        # W&B lists each history key's types; the stand-in says "number" for all, so here
        # they are found by the media the summary holds ("val/examples" is not: W&B made
        # its summary {"min": ...} per field, as define_metric("val/*", summary="min") asks)
        assert {"media 'weights'", "media 'preds'"} <= set(run.unread)
        # the definitions W&B keeps in config _wandb.m: the same tag, the same steps
        offline = _reader(run_dir).get_run(exp["run_id"])
        assert run.tags["wandb.define_metric"] == offline.tags["wandb.define_metric"]
        val = [(p.step, p.value) for page in cloud.iter_metric_history(run.run_id, "val/loss") for p in page]
        assert val == [tuple(v) for v in exp["val_loss"]]
        assert run.summary == {}
    finally:
        gc.collect()
        wandb.teardown()
        rec.stop()


def test_through_comet_and_back_checks_equal_with_the_original(sdk_rich_run, tmp_path: Path) -> None:  # noqa: F811
    """W&B -> comet-offline -> wandb-offline: media native at both (histograms, images), the
    rest kept as each declares; the end checks equal against the SDK's own run."""
    run_dir, exp = sdk_rich_run
    src, comet, back = (f"wandb-offline:{run_dir.parent}", f"comet-offline:{tmp_path / 'comet'}",
                        f"wandb-offline:{tmp_path / 'back'}")
    _copy_checks(src, comet)
    _copy_checks(comet, back)
    checked = invoke("check", src, back)
    assert checked.exit_code == 0, checked.stdout
    reader = _reader(tmp_path / "back")
    (run,) = list(reader.list_runs("rich"))
    assert [p.caption for p in reader.iter_media(run.run_id, "val/examples")] == exp["captions"]
    assert [p.data for p in reader.iter_media(run.run_id, "weights")] == exp["hist"]


def test_rich_sample_into_wandb_through_the_sdk_keeps_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              sdk_sockets) -> None:  # noqa: F811
    """The conformance suite's rich run (two models of one name with metadata, media,
    artifact metadata, two versions with stages) copied into ``wandb`` (the SDK, offline
    here): ``check`` passes and the stages read back from the registry entries."""
    import os

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "conformance"))
    from sample import write_rich_sample

    from trackbridge.backends.archive.backend import ArchiveBackend

    Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)
    src = ArchiveBackend({"path": str(tmp_path / "src")})
    writer = src.writer()
    sample = write_rich_sample(writer, tmp_path / "rich", src.features)
    writer.close()
    _copy_checks(f"dir:{tmp_path / 'src'}", "wandb")
    reader = get_backend("wandb", {}).reader()
    versions = next(m for m in reader.list_registered_models() if m.name == sample.model).versions
    assert [v.stage for v in versions] == ["Archived", "Production"]
    (run,) = list(reader.list_runs(sample.experiment))
    assert sorted(m.params["C"] for m in run.models) == ["0.1", "1.0"]


def test_a_custom_x_axis_is_declared_by_plan_as_kept() -> None:
    """The step a define_metric series carries is its step metric's value: plan lists that."""
    from trackbridge.backends.archive.backend import ArchiveBackend
    from trackbridge.backends.base import Limits
    from trackbridge.backends.wandb.metrics import carried
    from trackbridge.model import RunRecord
    from trackbridge.sync.fit import Target, fit_run

    definitions = [{"glob": "val/*", "step_metric": "epoch", "summary": ["min"]}]
    assert "epoch" in carried(definitions)["define_metric"]
    assert carried([{"name": "loss", "summary": ["min"]}]) == {}
    run = RunRecord("wandb-offline", "r", "e", carried=carried(definitions))
    fitted = fit_run(run, Target(ArchiveBackend.features, Limits()))
    assert "source:define_metric" in fitted.record.kept
