"""comet-offline as a source: archives written by the real comet_ml SDK, read back equal."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import comet_helpers as h
from trackbridge.backends.comet import coverage as cov
from trackbridge.backends.comet import format as fmt
from trackbridge.backends.comet.backend import CometOfflineBackend
from trackbridge.backends.comet.offline_reader import DamagedArchiveError
from trackbridge.errors import RunNotFound
from trackbridge.model import RunStatus


@pytest.fixture(scope="module")
def sdk_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return h.sdk_archive(tmp_path_factory.mktemp("comet-sdk"))


def _reader(path: Path, **options: object):
    return CometOfflineBackend({"path": str(path), **options}).reader()


def _points(reader, run_id: str, key: str):
    return [p for page in reader.iter_metric_history(run_id, key, page_size=500) for p in page]


def test_import_does_not_import_comet_ml() -> None:
    code = ("import sys, trackbridge.backends.comet.backend, trackbridge.backends.comet.offline_reader, "
            "trackbridge.backends.comet.offline_writer, trackbridge.backends.comet.upload; "
            "assert 'comet_ml' not in sys.modules, 'comet_ml imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_sdk_archive_reads_back_equal(sdk_zip: Path) -> None:
    reader = _reader(sdk_zip.parent)
    msgs = h.messages(sdk_zip)
    meta = json.loads(zipfile.ZipFile(sdk_zip).read("experiment.json"))
    [exp] = list(reader.list_experiments())
    assert exp.name == h.PROJECT and exp.id == f"{h.WORKSPACE}/{h.PROJECT}"
    [run] = list(reader.list_runs(h.PROJECT))
    assert run.run_id == meta["offline_id"] and run.platform == "comet-offline"
    assert run.name == h.NAME
    assert run.status is RunStatus.FINISHED
    assert (run.start_time, run.end_time) == (meta["start_time"], meta["stop_time"])
    # nested params restored exactly; the SDK's step counters are not params
    assert run.params == h.PARAMS
    # the user's others are key/value tags (non-strings as JSON text); SDK others are not
    assert run.tags == {"owner": "ana", "dataset": "mnist-v2", "seed": "7"}
    assert sorted(run.labels) == sorted(h.LABELS)
    # system metrics apart from the user's
    assert set(run.metrics) == {"loss", "acc", "weird", "epoch"}
    assert run.system_metrics == {}  # no system monitor without env details
    # why stdout and the SDK's own process duration are not carried is recorded
    assert set(run.unread) == {"comet:standard_output", "comet:metric:process duration"}
    assert "console output" in run.unread["comet:standard_output"]
    # log_html and log_text are media series, never metrics or plain files
    assert {k: (s.kind, s.count) for k, s in run.media.items()} == {"html": ("html", 1), "text": ("text", 1)}


def test_every_point_with_step_and_timestamp(sdk_zip: Path) -> None:
    reader = _reader(sdk_zip)
    [run] = list(reader.list_runs(h.PROJECT))
    loss = _points(reader, run.run_id, "loss")
    assert len(loss) == h.STEPS >= 1200
    assert [(p.step, p.value) for p in loss] == h.expected_loss()
    stamps = [m["payload"]["local_timestamp"] for m in h.messages(sdk_zip)
              if m["type"] == "metric_msg" and m["payload"]["metric"]["metricName"] == "loss"]
    assert [p.timestamp for p in loss] == stamps
    assert run.metrics["loss"].step == h.STEPS - 1
    weird = _points(reader, run.run_id, "weird")
    assert [p.value for p in weird][1:] == [float("inf"), float("-inf")] and weird[0].value != weird[0].value
    # the per-point epoch is one series: a point whenever (step, epoch) changes
    epoch = _points(reader, run.run_id, "epoch")
    assert [(p.step, p.value) for p in epoch[: h.STEPS]] == [(i, float(i // h.EPOCH_EVERY)) for i in range(h.STEPS)]
    rows = list(reader.iter_rows(run.run_id, ["loss", "acc", "epoch"]))
    assert len(epoch) == h.STEPS + 3  # the three "weird" points carry epochs too
    assert sum(len(r.values) for r in rows) == h.STEPS + h.STEPS // 10 + len(epoch)
    first = {k: v for r in rows if r.step == 0 for k, v in r.values.items()}  # one row unless the ms ticked
    assert first == {"loss": 1.0, "acc": 0.0, "epoch": 0.0}


def test_asset_model_and_registry(sdk_zip: Path, tmp_path: Path) -> None:
    reader = _reader(sdk_zip.parent)
    [run] = list(reader.list_runs(h.PROJECT))
    arts = {a.path: a for a in reader.list_artifacts(run.run_id)}
    assert arts["reports/summary.txt"].size == len("asset body\n")
    got = reader.download_artifact(run.run_id, "reports/summary.txt", tmp_path / "dl")
    assert got == tmp_path / "dl" / "reports" / "summary.txt" and got.read_text() == "asset body\n"
    assert not [p for p in arts if p.startswith("text-sample/")]
    [text] = reader.iter_media(run.run_id, "text")
    assert (text.kind, text.data, text.file) == ("text", "a text sample", None)
    [html] = reader.iter_media(run.run_id, "html")
    assert (html.kind, html.data) == ("html", "<b>html</b>")
    assert [m.name for m in run.models] == ["classifier"]
    model_dir = reader.download_model(run.run_id, run.models[0], tmp_path / "models")
    files = {p.relative_to(model_dir).as_posix(): p.read_bytes() for p in model_dir.rglob("*") if p.is_file()}
    assert files == {"model-src/weights.bin": bytes(range(256)) * 4, "model-src/config.json": b'{"layers": 3}'}
    [reg] = list(reader.list_registered_models())
    [ver] = reg.versions
    assert (reg.name, reg.description, ver.version, ver.stage, ver.tags, ver.run_id) == (
        "classifier", "first", "1.2.0", "Production", {"prod": ""}, run.run_id)
    # the version points at the experiment's model (its files), by the model's id
    assert (ver.artifact_path, ver.model_id) == ("classifier", run.models[0].model_id)


def test_unknown_run(sdk_zip: Path) -> None:
    with pytest.raises(RunNotFound):
        _reader(sdk_zip.parent).get_run("0" * 32)


def test_truncated_zip_is_a_clear_error_and_recoverable(sdk_zip: Path, tmp_path: Path) -> None:
    """The SDK's zip cut in the middle of messages.json: no table of contents left."""
    info = zipfile.ZipFile(sdk_zip).getinfo("messages.json")
    cut = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    damaged = tmp_path / "damaged" / sdk_zip.name
    damaged.parent.mkdir()
    damaged.write_bytes(sdk_zip.read_bytes()[:cut])
    with pytest.raises(DamagedArchiveError) as err:
        list(_reader(damaged.parent).list_runs(h.PROJECT))
    text = str(err.value)
    assert str(damaged) in text and "messages.json" in text and "recover=true" in text
    reader = _reader(damaged.parent, recover="true")
    [run] = list(reader.list_runs(h.PROJECT))
    assert run.params == h.PARAMS  # logged before the metrics
    loss = _points(reader, run.run_id, "loss")
    assert 0 < len(loss) < h.STEPS
    assert [(p.step, p.value) for p in loss] == h.expected_loss()[: len(loss)]
    assert "comet:damaged-archive" in run.unread


def _rezip(sdk_zip: Path, tmp: Path, edit) -> Path:
    out = tmp / "edited" / sdk_zip.name
    out.parent.mkdir(parents=True)
    with zipfile.ZipFile(sdk_zip) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info.filename, edit(info.filename, data))
    return out


def test_bad_json_line_names_the_line_and_keeps_what_is_before(sdk_zip: Path, tmp_path: Path) -> None:
    lines = zipfile.ZipFile(sdk_zip).read("messages.json").splitlines(keepends=True)
    loss_lines = [i for i, line in enumerate(lines)
                  if json.loads(line)["payload"].get("metric", {}).get("metricName") == "loss"]
    bad = loss_lines[600]

    def edit(name: str, data: bytes) -> bytes:
        return b"".join(lines[:bad] + [b'{"payload": {"trunc\n'] + lines[bad + 1:]) if name == "messages.json" else data

    edited = _rezip(sdk_zip, tmp_path, edit)
    with pytest.raises(DamagedArchiveError, match=f"line {bad + 1} is not valid JSON"):
        _reader(edited).get_run(json.loads(zipfile.ZipFile(sdk_zip).read("experiment.json"))["offline_id"])
    reader = _reader(edited, recover=True)
    [run] = list(reader.list_runs(h.PROJECT))
    loss = _points(reader, run.run_id, "loss")
    assert [(p.step, p.value) for p in loss] == h.expected_loss()[:600]
    assert "line" in run.unread["comet:damaged-archive"]


def test_truncated_messages_keep_complete_lines(tmp_path: Path) -> None:
    """An archive cut inside messages.json (members ordered experiment.json first, as
    trackbridge writes them): the complete lines before the cut are recovered."""
    src = tmp_path / "whole.zip"
    lines = [json.dumps({"type": "metric_msg", "payload": {"local_timestamp": 1000 + i, "metric": {
        "metricName": "m", "metricValue": float(i), "step": i, "epoch": None}}}) for i in range(5000)]
    meta = {"offline_id": "a" * 32, "project_name": "p", "workspace": None, "start_time": 1, "stop_time": 2, "tags": []}
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("experiment.json", json.dumps(meta))
        zf.writestr("messages.json", "\n".join(lines) + "\n")
    folder = tmp_path / "cut"
    folder.mkdir()
    (folder / "a.zip").write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    with pytest.raises(DamagedArchiveError, match="cut short"):
        _reader(folder).get_run("a" * 32)
    reader = _reader(folder, recover=True)
    points = _points(reader, "a" * 32, "m")
    assert 0 < len(points) < 5000
    assert [(p.step, p.value, p.timestamp) for p in points] == [(i, float(i), 1000 + i) for i in range(len(points))]


def test_folder_of_archives_and_single_zip(sdk_zip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    shutil.copy(sdk_zip, folder / sdk_zip.name)
    other = folder / "b.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("experiment.json", json.dumps({"offline_id": "b" * 32, "project_name": None, "workspace": None,
                                                   "start_time": 5, "stop_time": 6, "tags": ["x"]}))
        zf.writestr("messages.json", "")
    reader = _reader(folder)
    assert [e.name for e in reader.list_experiments()] == [fmt.DEFAULT_PROJECT, h.PROJECT]
    [run] = list(reader.list_runs(fmt.DEFAULT_PROJECT))
    assert (run.run_id, run.labels, run.start_time) == ("b" * 32, ["x"], 5)
    assert [r.run_id for r in _reader(other).list_runs(fmt.DEFAULT_PROJECT)] == ["b" * 32]


def test_nesting_restored_only_when_unambiguous() -> None:
    assert fmt.nest_params({"a|b": 1, "a|c|d": 2, "e": 3}) == {"a": {"b": 1, "c": {"d": 2}}, "e": 3}
    assert fmt.nest_params({"a": 1, "a|b": 2}) == {"a": 1, "a|b": 2}
    assert fmt.nest_params({"a|b": 1, "a": 2}) == {"a|b": 1, "a": 2}
    assert fmt.nest_params({"a||b": 1}) == {"a||b": 1}
    assert fmt.nest_params({"a|b": {"x": 1}}) == {"a": {"b": {"x": 1}}}
    assert fmt.flatten_params({"a": {"b": 1, "c": {"d": 2}}, "e": {}}) == {"a|b": 1, "a|c|d": 2, "e": {}}


def _sdk_kinds() -> set[str]:
    """Every message type, asset upload type and written message field of the installed
    comet_ml, as coverage keys (``message:``, ``upload:``, ``field:``)."""
    import inspect

    import comet_ml.constants as c
    import comet_ml.messages as m  # the SDK's own list of message classes

    kinds: set[str] = set()
    classes = [k for k in vars(m).values()
               if isinstance(k, type) and issubclass(k, m.BaseMessage) and isinstance(getattr(k, "type", None), str)]
    for cls in classes:
        kinds.add(f"message:{cls.type}")
        if not cov.carried(cov.MESSAGES.get(cls.type, "")) or cls.type in ("html", "htmlOverride", "ws_msg"):
            continue  # a kind not carried (or carried whole) needs no field table
        for name in inspect.signature(cls.__init__).parameters:
            if name in ("self", "message_id") or name.startswith("on_") or name.endswith("_callback"):
                continue  # in-process callbacks: never written to an archive
            kinds.add(f"field:{cls.type}.{name}")
    kinds |= {f"upload:{v}" for k, v in vars(c).items()
              if isinstance(v, str) and (k.startswith("ASSET_TYPE_") or k.endswith("_ASSET_TYPE"))}
    return kinds


def test_every_sdk_kind_is_mapped_or_declared_not_carried() -> None:
    kinds = _sdk_kinds()
    assert kinds - set(cov.COVERAGE) == set(), "classify these in backends/comet/coverage.py"
    assert all(cov.carried(v) or v.startswith(cov.NOT_CARRIED_PREFIX) for v in cov.COVERAGE.values())
    assert {"upload:histogram3d", "upload:visualization", "field:register_model.status",
            "field:file_upload.metadata"} <= kinds
    mapped, not_carried = cov.counts()
    assert mapped + not_carried == len(cov.COVERAGE) and not_carried >= 10


def test_sdk_environment_details_and_system_metrics_are_kept_apart(tmp_path: Path) -> None:
    """With the SDK's environment logging on: system metrics apart, environment messages
    listed as not carried, nothing of the SDK's among the user's params, tags or metrics."""
    archive = h.sdk_archive(tmp_path, steps=60, env_details=True)
    kinds = {m["type"] for m in h.messages(archive)}
    assert {"system_details", "installed_packages"} <= kinds
    [run] = list(_reader(archive).list_runs(h.PROJECT))
    assert run.params == h.PARAMS and run.tags == {"owner": "ana", "dataset": "mnist-v2", "seed": "7"}
    assert set(run.metrics) == {"loss", "acc", "weird", "epoch"}
    assert any(k.startswith("sys.") for k in run.system_metrics)
    assert all(k.startswith("sys.") for k in run.system_metrics)
    not_carried = {k for k in kinds if not cov.carried(cov.MESSAGES[k])}
    assert {f"comet:{k}" for k in not_carried} | {"comet:metric:process duration"} == set(run.unread)


def test_a_damaged_histogram_file_names_the_archive_and_the_point(tmp_path: Path) -> None:
    from trackbridge.backends.comet.media import bin_edges
    from trackbridge.model import MediaPoint

    w = CometOfflineBackend({"path": str(tmp_path / "a")}).writer()
    run_id = w.create_run("p", name="r", start_time=1)
    comets_own = {"bins": list(bin_edges()[1000:1002]), "values": [2]}  # held by the file alone
    w.log_media(run_id, "weights", [(MediaPoint(4, 5, "histogram", data=comets_own), None)])
    w.finish_run(run_id, RunStatus.FINISHED, 9)
    w.close()
    archive = tmp_path / "a" / f"{run_id}.zip"
    with zipfile.ZipFile(archive) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    [hist] = [m["payload"]["file_path"] for m in h.messages(archive) if m["type"] == "file_upload"]
    members[hist] = b"{not json"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    reader = _reader(tmp_path / "a")
    with pytest.raises(DamagedArchiveError, match=f"{run_id}.zip: media 'weights' at step 4"):
        list(reader.iter_media(run_id, "weights"))


def test_histograms_convert_exactly_where_comets_bins_can_hold_them() -> None:
    from comet_ml.data_structure import Histogram

    from trackbridge.backends.comet.media import bin_edges, histogram_from_comet, histogram_to_comet

    assert bin_edges() == tuple(Histogram().values)  # the SDK's own edges, bit for bit
    sdk = Histogram()
    sdk.add([-2.5, -0.001, 0.0, 0.0, 3.0, 3.01, 1e6])
    data = histogram_from_comet(sdk.to_json())
    assert sum(data["values"]) == 7 and len(data["bins"]) == len(data["values"]) + 1
    doc, exact = histogram_to_comet(data)  # a histogram that came from Comet goes back as it was
    assert exact and doc["index_values"] == sdk.to_json()["index_values"]
    assert histogram_from_comet(doc) == data
    wandb_like = {"bins": [0.0, 0.5, 1.0], "values": [3, 1]}  # other bins: re-binned, not exact
    doc, exact = histogram_to_comet(wandb_like)
    assert not exact and sum(c for _, c in doc["index_values"]) == 4
    assert histogram_to_comet({"bins": [], "values": []}) == (histogram_to_comet({})[0], True)
    assert histogram_from_comet({"index_values": []}) == {"bins": [], "values": []}
