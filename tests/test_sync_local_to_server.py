"""A local store moved to a team server (MLflow's defaults: sqlite:///mlflow.db with
artifacts in ./mlruns): the registry's version sources are local paths of the
source store, which a server refuses; the copy re-points them to the copied runs."""
from __future__ import annotations

import uuid
from pathlib import Path

from corpus import build_corpus, invoke, set_remotes
from mlflow import MlflowClient


def test_registry_versions_from_a_local_store_are_re_pointed_for_a_server(mlflow_server, monkeypatch,
                                                                           isolated_env: Path) -> None:
    prefix = f"l2s-{uuid.uuid4().hex[:6]} "
    local = f"sqlite:///{isolated_env / 'mlflow.db'}"
    corpus = build_corpus(local, isolated_env / "staging", prefix=prefix, mlflow_defaults=True)
    client = MlflowClient(local)
    child = corpus.runs["child/1 ✓"]
    # a version registered from the run's artifact location, as users of the local store do
    client.create_model_version(corpus.model, f"{client.get_run(child).info.artifact_uri}/out/nested", run_id=child)
    sources = [v.source for v in client.search_model_versions(f"name = '{corpus.model}'")]
    assert any(s.startswith(("/", "file:")) and "/mlruns/" in s for s in sources), sources  # the trap is real

    set_remotes(monkeypatch, src=local, dst=mlflow_server.url)
    args = ["src", "dst", "--experiment", corpus.experiment, "--experiment", corpus.other_experiment]
    copied = invoke("copy", *args, "--json")
    assert copied.exit_code == 0, copied.output
    checked = invoke("check", *args)
    assert checked.exit_code == 0, checked.output
    assert "0 differ, 0 errors" in checked.output
    dst = MlflowClient(mlflow_server.url)
    versions = dst.search_model_versions(f"name = '{corpus.model}'")
    assert len(versions) == len(sources)
    assert all(not v.source.startswith("/") for v in versions)
    aliases = dst.get_registered_model(corpus.model).aliases
    assert set(aliases) == {"champion", "challenger"}
