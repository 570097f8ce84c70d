"""A source written the way MLflow users write it (issue 14, items 1-3 and 6):
``mlflow.sklearn.autolog()`` on ``GridSearchCV`` fitted twice in one run, so the run
holds two logged models called ``model`` (and two ``best_estimator``), child runs,
a shared dataset input; versions moved to Staging/Production with
``transition_model_version_stage`` and an alias.  Copied MLflow -> MLflow with the CLI
and read back with ``MlflowClient``: every model with its own bytes, params, metrics,
tags, type and status, the stages kept, ``check`` equal.  Then a model tag and a
version's stage are damaged at the destination by hand: ``check`` fails naming each."""
from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from corpus import invoke, runs_by_source, set_remotes

SOURCE_MODEL_ID = "trackbridge.source.model_id"
REGISTERED = "iris-grid"


@dataclass
class Source:
    uri: str
    parent: str
    #: source version -> stage
    stages: dict[str, str]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """Built once (autolog is slow); artifacts under the module's own folder."""
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    root = tmp_path_factory.mktemp("autolog")
    uri = f"sqlite:///{root / 'src.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    mlflow.set_experiment(experiment_id=client.create_experiment("grid", artifact_location=str(root / "artifacts")))
    x, y = load_iris(return_X_y=True)
    x, y = x[::5], y[::5]
    mlflow.sklearn.autolog(silent=True)
    try:
        with mlflow.start_run(run_name="grid") as run:
            for grid in ([0.1, 1.0], [0.01, 10.0]):
                GridSearchCV(LogisticRegression(max_iter=300), {"C": grid}, cv=2).fit(x, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    models = sorted((m for m in client.search_logged_models([run.info.experiment_id]) if m.name == "model"),
                    key=lambda m: m.creation_timestamp)
    stages = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for model, stage in zip(models, ("Staging", "Production")):
            version = mlflow.register_model(model.model_uri, REGISTERED)
            client.transition_model_version_stage(REGISTERED, version.version, stage)
            stages[str(version.version)] = stage
    client.set_registered_model_alias(REGISTERED, "champion", "2")
    mlflow.set_tracking_uri("")
    return Source(uri, run.info.run_id, stages)


def _models(client: MlflowClient, run_id: str) -> list:
    exp = client.get_run(run_id).info.experiment_id
    return client.search_logged_models([exp], filter_string=f"source_run_id = '{run_id}'")


def _latest(model) -> dict[str, float]:  # noqa: ANN001
    out: dict[str, tuple] = {}
    for m in model.metrics or []:
        if m.key not in out or (m.step, m.timestamp) >= out[m.key][:2]:
            out[m.key] = (m.step, m.timestamp, m.value)
    return {k: v[2] for k, v in out.items()}


def _files(client: MlflowClient, model, into: Path) -> dict[str, str]:  # noqa: ANN001
    """relative path -> sha256 of a logged model's files (``MLmodel`` names its run and
    model id, which a copy re-points: left out)."""
    import mlflow.artifacts

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location, dst_path=str(into),
                                                     tracking_uri=client._tracking_client.tracking_uri))
    return {p.relative_to(local).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in local.rglob("*") if p.is_file() and p.name != "MLmodel"}


def _model_id(version) -> str:  # noqa: ANN001
    """The logged model a version was made from (a SQL registry keeps it only in the source)."""
    return version.model_id or re.search(r"m-[0-9a-f]{32}", version.source).group(0)


def _user_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith("trackbridge.") and k != "mlflow.modelVersions"}


@pytest.mark.parametrize("transfers", ["4", "1"])  # one at a time: check once saw a file "differ" there
def test_autolog_grid_search_copies_every_model_and_stage_and_check_catches_damage(
        source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transfers: str) -> None:
    dst_uri = f"sqlite:///{tmp_path / 'dst.db'}"
    set_remotes(monkeypatch, src=source.uri, dst=dst_uri)
    out = invoke("copy", "src", "dst", "--json", "--transfers", transfers)
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "deprecated" not in out.stderr  # MLflow's warning on every stage transition is silenced

    src, dst = MlflowClient(source.uri), MlflowClient(dst_uri)
    copies = runs_by_source(dst_uri)
    assert len(copies) == len(src.search_runs([src.get_run(source.parent).info.experiment_id]))  # children too
    [parent] = copies[source.parent]
    theirs, mine = _models(src, source.parent), _models(dst, parent.info.run_id)
    assert sorted(m.name for m in theirs) == ["best_estimator", "best_estimator", "model", "model"]
    assert sorted(m.name for m in mine) == sorted(m.name for m in theirs)
    by_source = {m.tags[SOURCE_MODEL_ID]: m for m in mine}
    assert sorted(by_source) == sorted(m.model_id for m in theirs)  # one copy each, none shared
    bytes_seen = set()
    for model in theirs:
        copy = by_source[model.model_id]
        assert (copy.name, copy.model_type, copy.status) == (model.name, model.model_type, model.status)
        assert copy.params == model.params and copy.params
        assert _latest(copy) == _latest(model) and _latest(copy)
        assert _user_tags(copy.tags) == _user_tags(model.tags)
        files = _files(src, model, tmp_path / "a" / model.model_id)
        assert _files(dst, copy, tmp_path / "b" / model.model_id) == files
        bytes_seen.add(files["model.pkl"])
    assert len(bytes_seen) == 4  # each model its own bytes

    versions = {str(v.version): v for v in dst.search_model_versions(f"name = '{REGISTERED}'")}
    assert {n: v.current_stage for n, v in versions.items()} == source.stages
    for n, version in versions.items():
        [src_version] = [v for v in src.search_model_versions(f"name = '{REGISTERED}'") if str(v.version) == n]
        assert by_source[_model_id(src_version)].model_id == _model_id(version)
    assert dst.get_registered_model(REGISTERED).aliases == {"champion": 2}
    ok = invoke("check", "src", "dst")
    assert ok.exit_code == 0, ok.stdout

    damaged = by_source[sorted(by_source)[0]]
    dst.set_logged_model_tags(damaged.model_id, {"estimator_name": "damaged by hand"})
    failed = sorted(by_source)[1]
    dst.finalize_logged_model(by_source[failed].model_id, "FAILED")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        dst.transition_model_version_stage(REGISTERED, "1", "Archived")
    bad = invoke("check", "src", "dst")
    assert bad.exit_code != 0, bad.stdout
    assert f"({sorted(by_source)[0]}) tags" in bad.stdout and "damaged by hand" in bad.stdout, bad.stdout
    assert "version 1 (destination 1) stage: source 'Staging' != destination 'Archived'" in bad.stdout, bad.stdout
    assert f"({failed}) status: source 'READY' != destination 'FAILED'" in bad.stdout, bad.stdout


def test_autolog_grid_search_through_the_archive_keeps_every_model(
        source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow -> dir: -> MLflow: the archive kept one model of a name before issue 14."""
    dst_uri, archive = f"sqlite:///{tmp_path / 'dst.db'}", f"dir:{tmp_path / 'archive'}"
    set_remotes(monkeypatch, src=source.uri, dst=dst_uri)
    for a, b in (("src", archive), (archive, "dst")):
        out = invoke("copy", a, b, "--json")
        assert out.exit_code == 0, out.stdout + out.stderr
        checked = invoke("check", a, b)
        assert checked.exit_code == 0, checked.stdout

    src, dst = MlflowClient(source.uri), MlflowClient(dst_uri)
    [parent] = [r for runs in runs_by_source(dst_uri).values() for r in runs
                if r.data.tags.get("trackbridge.origin.run_id") == source.parent]  # two hops away
    theirs, mine = _models(src, source.parent), _models(dst, parent.info.run_id)
    assert sorted(m.name for m in mine) == sorted(m.name for m in theirs)
    assert sorted(_files(dst, m, tmp_path / "b" / m.model_id)["model.pkl"] for m in mine) == sorted(
        _files(src, m, tmp_path / "a" / m.model_id)["model.pkl"] for m in theirs)
    assert sorted(sorted(m.params.items()) for m in mine) == sorted(sorted(m.params.items()) for m in theirs)
    assert {str(v.version): v.current_stage for v in dst.search_model_versions(f"name = '{REGISTERED}'")} == \
        source.stages
