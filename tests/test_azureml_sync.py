"""copy / check MLflow -> Azure ML -> MLflow with the corpus the MLflow sync tests use,
through the CLI and the engine, into the prefixed mlflow server behind the Azure limit
proxy (tests/azureml_helpers.py).  The destination is also read with the plain MLflow
client on the server's own database, independently of trackbridge and of the plugin."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from azureml_helpers import RG, SUB, TOKEN, TOKEN_ENV, WS, AzureLimitProxy, AzurePrefixedServer, restore_http_env
from corpus import Corpus, build_corpus, history, invoke, runs_by_source, set_remotes
from mlflow import MlflowClient

from trackbridge.model import RunStatus

EXTRA_TAGS = 60  # a run with more user tags than Azure ML keeps (50, trackbridge's own included)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AzurePrefixedServer, AzureLimitProxy]]:
    """An empty stand-in workspace of its own (its registry holds only this module's copies)."""
    server = AzurePrefixedServer(tmp_path_factory.mktemp("azureml-sync")).start()
    proxy = AzureLimitProxy(server.url).start()
    yield server, proxy
    proxy.stop()
    server.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("corpus")
    return build_corpus(f"sqlite:///{root / 'src.db'}", root)


def _azure_remote(monkeypatch: pytest.MonkeyPatch, name: str, proxy: AzureLimitProxy) -> None:
    prefix = f"TRACKBRIDGE_REMOTE_{name.upper()}_"
    for key, value in {"BACKEND": "azureml", "SUBSCRIPTION_ID": SUB, "RESOURCE_GROUP": RG, "WORKSPACE": WS,
                       "ENDPOINT": proxy.url, "TOKEN_ENV": TOKEN_ENV, "HTTP_RETRIES": "1"}.items():
        monkeypatch.setenv(prefix + key, value)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    restore_http_env(monkeypatch)


def _json(result) -> dict:  # noqa: ANN001
    assert result.stdout.strip(), result.output
    return json.loads(result.stdout)


def test_mlflow_to_azureml_and_back_passes_check(corpus: Corpus, workspace, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    server, proxy = workspace
    proxy.reset()
    _azure_remote(monkeypatch, "az", proxy)
    set_remotes(monkeypatch, src=corpus.tracking_uri)
    out = _json(invoke("copy", "src", "az", "--json"))
    assert out["ok"], out["errors"]
    assert out["stats"]["runs_created"] == len(corpus.runs)
    assert (out["stats"]["model_versions"], out["stats"]["aliases"]) == (3, 2)
    refused = [s for s in proxy.seen if s.status >= 400 and not s.path.endswith("get-by-name")
               and not s.path.endswith("registered-models/get")]
    assert refused == [], refused  # no request broke one of Azure's limits
    checked = invoke("check", "src", "az")
    assert checked.exit_code == 0, checked.stdout

    # read the workspace's store directly with the plain MLflow client
    direct = f"sqlite:///{server.root / 'mlflow.db'}"
    found = runs_by_source(direct)
    plain_src, plain_dst = MlflowClient(corpus.tracking_uri), MlflowClient(direct)
    for name, src_id in corpus.runs.items():
        [copy] = found[src_id]
        assert copy.data.tags["trackbridge.source.platform"] == "mlflow"
        assert len(copy.data.tags) <= 50, (name, len(copy.data.tags))
        assert "mlflow.user" not in copy.data.tags or copy.data.tags["mlflow.user"] != "ünï user"
        src_tags = plain_src.get_run(src_id).data.tags
        user_tags = {k: v for k, v in src_tags.items()
                     if not k.startswith(("mlflow.", "trackbridge.")) or k.startswith("mlflow.source.")}
        assert {k: copy.data.tags.get(k) for k in user_tags} == user_tags, name
        for key in plain_src.get_run(src_id).data.metrics:
            assert history(plain_src, src_id, key) == history(plain_dst, copy.info.run_id, key), (name, key)
    parent = found[corpus.runs["parent"]][0]
    assert parent.data.tags["trackbridge.source.user"] == "ünï user"

    versions = sorted(plain_dst.search_model_versions(f"name = '{corpus.model}'"), key=lambda v: int(v.version))
    assert [v.tags["trackbridge.source.version"] for v in versions] == ["1", "2", "3"]
    assert versions[0].run_id == parent.info.run_id and versions[0].source.startswith(f"runs:/{parent.info.run_id}/")
    assert plain_dst.get_registered_model(corpus.model).aliases == {"champion": 1, "challenger": 2}

    again = _json(invoke("copy", "src", "az", "--json"))
    assert again["stats"]["runs_created"] == 0 and again["stats"]["points"] == 0

    # and back out of Azure ML into a fresh MLflow store
    back = f"sqlite:///{tmp_path / 'back.db'}"
    set_remotes(monkeypatch, back=back)
    out = _json(invoke("copy", "az", "back", "--json"))
    assert out["ok"], out["errors"]
    assert out["stats"]["runs_created"] == len(corpus.runs)
    checked = invoke("check", "az", "back")
    assert checked.exit_code == 0, checked.stdout
    returned = runs_by_source(back)
    assert {r.data.tags["trackbridge.source.platform"] for runs in returned.values() for r in runs} == {"azureml"}
    assert all(s.max_results is None or s.max_results < 1000 for s in proxy.requests("metrics/get-history"))


def test_tags_past_azures_fifty_are_kept_in_an_artifact(workspace, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    server, proxy = workspace
    proxy.reset()
    source = f"sqlite:///{tmp_path / 'many.db'}"
    client = MlflowClient(source)
    exp_id = client.create_experiment("many tags ✓", artifact_location=(tmp_path / "art").as_uri())
    run = client.create_run(exp_id, run_name="many tags", start_time=1_700_000_000_500,
                            tags={f"tag {i:02d}": f"v{i}" for i in range(EXTRA_TAGS)})
    client.set_terminated(run.info.run_id, "FINISHED", end_time=1_700_000_001_000)
    _azure_remote(monkeypatch, "az", proxy)
    set_remotes(monkeypatch, many=source)
    out = _json(invoke("copy", "many", "az", "--json"))
    assert out["ok"], out["errors"]
    direct = f"sqlite:///{server.root / 'mlflow.db'}"
    [copy] = runs_by_source(direct)[run.info.run_id]
    assert len(copy.data.tags) <= 50
    assert sum(k.startswith("tag ") for k in copy.data.tags) < EXTRA_TAGS  # the rest kept in an artifact
    stored = server.root / "artifacts" / copy.info.experiment_id / copy.info.run_id / "artifacts" / "trackbridge"
    kept = json.loads((stored / "tags.json").read_text())
    assert {k: v for k, v in kept.items() if k.startswith("tag ")} | {
        k: v for k, v in copy.data.tags.items() if k.startswith("tag ")} == {f"tag {i:02d}": f"v{i}" for i in range(EXTRA_TAGS)}
    checked = invoke("check", "many", "az")
    assert checked.exit_code == 0, checked.stdout


def test_dir_archive_to_azureml_passes_check(workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Another platform into Azure ML through the engine: the vendor-neutral archive."""
    server, proxy = workspace
    proxy.reset()
    source = build_corpus(f"sqlite:///{tmp_path / 'd.db'}", tmp_path / "d", prefix="dir-")
    set_remotes(monkeypatch, src=source.tracking_uri)
    archive = f"dir:{tmp_path / 'archive'}"
    assert _json(invoke("copy", "src", archive, "--json"))["ok"]
    _azure_remote(monkeypatch, "az", proxy)
    out = _json(invoke("copy", archive, "az", "--json"))
    assert out["ok"], out["errors"]
    assert out["stats"]["runs_created"] == len(source.runs)
    checked = invoke("check", archive, "az")
    assert checked.exit_code == 0, checked.stdout
    found = runs_by_source(f"sqlite:///{server.root / 'mlflow.db'}")
    copies = [r for runs in found.values() for r in runs if r.data.tags.get("trackbridge.source.platform") == "dir"]
    assert len(copies) == len(source.runs)
    assert {r.data.tags["trackbridge.origin.platform"] for r in copies} == {"mlflow"}


def test_corpus_into_a_workspace_without_logged_models_passes_check(workspace, monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    """Where the workspace has no MLflow 3 logged-model API, the corpus's logged model goes
    to the run's artifacts and its registry version is registered from ``runs:/``."""
    server, proxy = workspace
    proxy.reset()
    proxy.logged_models = False
    source = build_corpus(f"sqlite:///{tmp_path / 'n.db'}", tmp_path / "n", prefix="nolm-")
    set_remotes(monkeypatch, src=source.tracking_uri)
    _azure_remote(monkeypatch, "az", proxy)
    out = _json(invoke("copy", "src", "az", "--json"))
    assert out["ok"], out["errors"]
    assert (out["stats"]["runs_created"], out["stats"]["model_versions"]) == (len(source.runs), 3)
    checked = invoke("check", "src", "az")
    assert checked.exit_code == 0, checked.stdout
    direct = MlflowClient(f"sqlite:///{server.root / 'mlflow.db'}")
    versions = sorted(direct.search_model_versions(f"name = '{source.model}'"), key=lambda v: int(v.version))
    assert all(v.source.startswith("runs:/") for v in versions)


def test_azures_own_tags_stay_apart_from_the_users(workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Runs made in Azure ML carry Azure's ``azureml.*`` bookkeeping tags: copied out,
    they are kept verbatim but not taken for user tags (``check`` passes)."""
    server, proxy = workspace
    proxy.reset()
    _azure_remote(monkeypatch, "az", proxy)
    from trackbridge.backends.azureml.backend import AzureMLBackend

    backend = AzureMLBackend({"subscription_id": SUB, "resource_group": RG, "workspace": WS,
                              "endpoint": proxy.url, "token_env": TOKEN_ENV, "http_retries": 1})
    writer = backend.writer()
    exp = writer.ensure_experiment("made in azure ✓")
    run_id = writer.create_run(exp, name="native", start_time=1_700_000_000_000,
                               tags={"azureml.runsource": "azureml.scriptrun", "azureml.git.dirty": "False", "team": "a"})
    writer.finish_run(run_id, RunStatus.FINISHED, 1_700_000_001_000)
    assert AzureMLBackend.features.system_tag_prefixes == ("mlflow.", "azureml.")
    back = f"sqlite:///{tmp_path / 'out.db'}"
    set_remotes(monkeypatch, out=back)
    out = _json(invoke("copy", "az:made in azure ✓", "out", "--json"))
    assert out["ok"], out["errors"]
    [copy] = runs_by_source(back)[run_id]
    assert copy.data.tags["team"] == "a" and copy.data.tags["trackbridge.source.platform"] == "azureml"
    assert copy.data.tags["azureml.runsource"] == "azureml.scriptrun"  # kept verbatim, as bookkeeping
    checked = invoke("check", "az:made in azure ✓", "out")
    assert checked.exit_code == 0, checked.stdout


def test_long_notes_and_summary_copy_in_and_check(workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    server, proxy = workspace
    proxy.reset()
    source = f"sqlite:///{tmp_path / 'long.db'}"
    client = MlflowClient(source)
    exp_id = client.create_experiment("long fields ✓", artifact_location=(tmp_path / "art").as_uri())
    summary = json.dumps({f"final/{i:03d}": i * 1.5 for i in range(80)})
    run = client.create_run(exp_id, run_name="long", start_time=1_700_000_000_000,
                            tags={"mlflow.note.content": "a long note ✓ " * 300, "trackbridge.summary": summary})
    client.set_terminated(run.info.run_id, "FINISHED", end_time=1_700_000_002_000)
    set_remotes(monkeypatch, longsrc=source)
    _azure_remote(monkeypatch, "az", proxy)
    out = _json(invoke("copy", "longsrc", "az", "--json"))
    assert out["ok"], out["errors"]
    checked = invoke("check", "longsrc", "az")
    assert checked.exit_code == 0, checked.stdout
    [copy] = runs_by_source(f"sqlite:///{server.root / 'mlflow.db'}")[run.info.run_id]
    assert all(len(v) <= 1000 for v in copy.data.tags.values())
