"""Comet as users write it (issue 14): an Optuna sweep logging each trial as an offline
experiment with the real comet_ml SDK: params, metrics per epoch, an asset with
metadata, a histogram and an image per epoch, a text sample, a model, and registry
versions with a status.  The reader's canonical output is asserted against what the
script logged; copies to ``dir:``, MLflow and another ``comet-offline:`` folder pass
``check``; asset metadata, a model param, a status, a histogram count or an image
byte damaged at the destination makes ``check`` fail naming it."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import comet_helpers as h
from corpus import invoke
from trackbridge.backends.comet.backend import CometOfflineBackend

PROJECT = "sweep"
TRIALS = 3
EPOCHS = 3
ASSET_META = {"rows": 120, "source": "synthetic", "split": {"train": 0.8}}

_SWEEP = '''
import json, os, sys
import numpy as np
import optuna
import comet_ml
from comet_ml import ExperimentConfig

spec = json.loads(sys.argv[1])
out, work = spec["out"], spec["work"]
logged = {"trials": []}
os.makedirs(os.path.join(work, "model"), exist_ok=True)
with open(os.path.join(work, "train.csv"), "w") as fh:
    fh.write("x,y\\n1,2\\n")

def objective(trial):
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    depth = trial.suggest_int("depth", 2, 6)
    exp = comet_ml.start(online=False, project_name=spec["project"], workspace="tb-ws",
                         experiment_config=ExperimentConfig(offline_directory=out, log_env_details=False,
                                                            log_code=False, log_git_metadata=False,
                                                            log_git_patch=False, display_summary_level=0))
    exp.set_name(f"trial-{trial.number}")
    exp.log_parameters(trial.params)
    rng = np.random.default_rng(trial.number)
    record = {"key": exp.get_key(), "params": trial.params, "loss": [], "weights": []}
    loss = 1.0
    for epoch in range(spec["epochs"]):
        loss = loss * (0.5 + lr)
        exp.log_metric("loss", loss, step=epoch, epoch=epoch)
        weights = rng.normal(0, 1 + epoch, size=200)
        exp.log_histogram_3d(weights, name="weights", step=epoch)
        exp.log_image(rng.integers(0, 255, size=(8, 6, 3), dtype=np.uint8), name="val/sample", step=epoch)
        record["loss"].append(loss)
        record["weights"].append(weights.tolist())
    exp.log_asset(os.path.join(work, "train.csv"), file_name="data/train.csv", metadata=spec["asset_meta"])
    exp.log_text(f"trial {trial.number} done", step=spec["epochs"])
    with open(os.path.join(work, "model", "weights.bin"), "wb") as fh:
        fh.write(bytes([trial.number]) * 64)
    exp.log_model("sweep-net", os.path.join(work, "model"), metadata={"depth": depth})
    if trial.number < 2:
        exp.register_model("sweep-net", registry_name="sweep-model", version=f"{trial.number + 1}.0.0",
                           status=["Production", "Staging"][trial.number], tags=["optuna"])
    exp.end()
    logged["trials"].append(record)
    return loss

study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=3))
optuna.logging.set_verbosity(optuna.logging.WARNING)
study.optimize(objective, n_trials=spec["trials"])
with open(spec["log"], "w") as fh:
    json.dump(logged, fh)
'''


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The folder of archives the sweep wrote, and what it logged."""
    pytest.importorskip("optuna")
    tmp = tmp_path_factory.mktemp("comet-sweep")
    spec = {"out": str(tmp / "archives"), "work": str(tmp / "work"), "project": PROJECT, "epochs": EPOCHS,
            "trials": TRIALS, "asset_meta": ASSET_META, "log": str(tmp / "logged.json")}
    done = h.run_python(_SWEEP, json.dumps(spec), env=h.child_env(tmp / "home"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((tmp / "archives").glob("*.zip"))) == TRIALS, done.stderr[-2000:]
    return tmp / "archives", json.loads((tmp / "logged.json").read_text())


def _expected_histogram(values: list[float]) -> dict:
    """What the SDK's own Histogram holds for ``values``, as contiguous edges and counts."""
    from comet_ml.data_structure import Histogram

    hist = Histogram()
    hist.add(values)
    nonzero = [i for i, c in enumerate(hist.counts) if c]
    lo, hi = min(nonzero), max(nonzero)
    return {"bins": list(hist.values[lo:hi + 2]), "values": [int(c) for c in hist.counts[lo:hi + 1]]}


def test_reader_gives_the_sweep_back(sweep: tuple[Path, dict], tmp_path: Path) -> None:
    folder, logged = sweep
    reader = CometOfflineBackend({"path": str(folder)}).reader()
    runs = {r.run_id: r for r in reader.list_runs(PROJECT)}
    assert set(runs) == {t["key"] for t in logged["trials"]}
    for trial in logged["trials"]:
        run = runs[trial["key"]]
        assert run.params == trial["params"]
        assert [p.value for page in reader.iter_metric_history(run.run_id, "loss") for p in page] == trial["loss"]
        assert {k: (s.kind, s.count) for k, s in run.media.items()} == {
            "weights": ("histogram", EPOCHS), "val/sample": ("image", EPOCHS), "text": ("text", 1)}
        assert not [k for k in run.metrics if k.startswith(("weights", "val/"))]  # never fake series
        hists = list(reader.iter_media(run.run_id, "weights"))
        assert [p.step for p in hists] == list(range(EPOCHS))
        assert [p.data for p in hists] == [_expected_histogram(w) for w in trial["weights"]]
        images = list(reader.iter_media(run.run_id, "val/sample"))
        assert [(p.step, p.meta) for p in images] == [(e, {"format": "png", "width": 6, "height": 8})
                                                       for e in range(EPOCHS)]
        got = reader.download_media(run.run_id, "val/sample", images[1], tmp_path / run.run_id)
        assert got.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        [text] = reader.iter_media(run.run_id, "text")
        assert (text.step, text.data) == (EPOCHS, f"trial {logged['trials'].index(trial)} done")
        assert run.artifact_meta == {"data/train.csv": {"metadata": ASSET_META}}
        [model] = run.models
        assert (model.name, model.params) == ("sweep-net", {"depth": str(trial["params"]["depth"])})
        assert not [k for k in run.unread if "asset" in k or "histogram" in k or "visualization" in k]
    [registered] = reader.list_registered_models()
    versions = {v.version: v for v in registered.versions}
    assert {k: v.stage for k, v in versions.items()} == {"1.0.0": "Production", "2.0.0": "Staging"}
    for number, trial in zip(("1.0.0", "2.0.0"), logged["trials"]):
        assert versions[number].run_id == trial["key"]
        assert versions[number].model_id == runs[trial["key"]].models[0].model_id  # the experiment's model


def _ok(result) -> dict:  # noqa: ANN001 - click's Result
    data = json.loads(result.stdout)
    assert data["ok"], data["errors"]
    return data


@pytest.mark.parametrize("kind", ["dir", "mlflow", "comet-offline"])
def test_sweep_copies_and_checks_equal(sweep: tuple[Path, dict], tmp_path: Path, kind: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = sweep
    source = f"comet-offline:{folder}"
    if kind == "mlflow":
        monkeypatch.setenv("TRACKBRIDGE_REMOTE_DST_BACKEND", "mlflow")
        monkeypatch.setenv("TRACKBRIDGE_REMOTE_DST_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
        dest = "dst"
    else:
        dest = f"{kind}:{tmp_path / 'out'}"
    copied = _ok(invoke("copy", source, dest, "--json"))
    assert copied["stats"]["runs_created"] == TRIALS
    checked = invoke("check", source, dest)
    assert checked.exit_code == 0, checked.stdout
    assert _ok(invoke("copy", source, dest, "--json"))["stats"]["runs_created"] == 0


def _rewrite(archive: Path, change) -> None:  # noqa: ANN001 - a callable on (message, members)
    """Edit an archive by hand (what a damaged copy would hold): ``change`` sees each
    message of messages.json and the archive's files by name, and may edit both."""
    with zipfile.ZipFile(archive) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    lines = []
    for raw in members["messages.json"].splitlines():
        msg = json.loads(raw)
        change(msg, members)
        lines.append(json.dumps(msg))
    members["messages.json"] = ("\n".join(lines) + "\n").encode()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _upload(msg: dict, upload_type: str) -> dict | None:
    payload = msg["payload"]
    return payload if msg["type"] == "file_upload" and payload.get("upload_type") == upload_type else None


def _asset_metadata(msg: dict, _members: dict) -> None:
    if (payload := _upload(msg, "asset")) is not None:
        payload["metadata"] = {**payload["metadata"], "rows": 7}


def _model_param(msg: dict, _members: dict) -> None:
    if (payload := _upload(msg, "model-element")) is not None:
        payload["metadata"] = {**payload["metadata"], "depth": 99}


def _status(msg: dict, _members: dict) -> None:
    if msg["type"] == "register_model" and msg["payload"]["status"] == "Production":
        msg["payload"]["status"] = "Archived"


def _histogram_count(msg: dict, members: dict) -> None:
    if (payload := _upload(msg, "histogram3d")) is not None and payload["additional_params"]["step"] == 1:
        doc = json.loads(members[payload["file_path"]])
        doc["index_values"][0][1] += 1
        members[payload["file_path"]] = json.dumps(doc).encode()


def _image_bytes(msg: dict, members: dict) -> None:
    if (payload := _upload(msg, "visualization")) is not None and payload["additional_params"]["step"] == 2:
        members[payload["file_path"]] += b"!"


@pytest.mark.parametrize(("damage", "named"), [
    (_asset_metadata, "artifact metadata: source"),
    (_model_param, "params: source"),
    (_status, "stage: source 'Production' != destination 'Archived'"),
    (_histogram_count, "media 'weights' point 1 (step 1): data differ"),
    (_image_bytes, "media 'val/sample' point 2 (step 2): file content differ"),
])
def test_damage_at_the_destination_fails_check_naming_it(sweep: tuple[Path, dict], tmp_path: Path,
                                                         damage, named: str) -> None:  # noqa: ANN001
    folder, _ = sweep
    source, dest = f"comet-offline:{folder}", f"comet-offline:{tmp_path / 'out'}"
    _ok(invoke("copy", source, dest, "--json"))
    assert invoke("check", source, dest).exit_code == 0
    for archive in (tmp_path / "out").glob("*.zip"):
        _rewrite(archive, damage)
    checked = invoke("check", source, dest)
    assert checked.exit_code != 0 and named in checked.stdout, checked.stdout
