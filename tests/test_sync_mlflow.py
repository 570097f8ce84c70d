"""copy / sync / plan between embedded MLflow stores (the fast path), verified with
the plain MLflow client, independently of trackbridge's own reader and ``check``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from corpus import Corpus, build_corpus, history, invoke, runs_by_source, set_remotes

PROVENANCE = ("trackbridge.source.platform", "trackbridge.source.run_id", "trackbridge.source.url",
              "trackbridge.origin.platform", "trackbridge.origin.run_id", "trackbridge.mapping_version",
              "trackbridge.complete", "trackbridge.claim")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """Read-only source shared by the tests of this module."""
    root = tmp_path_factory.mktemp("corpus")
    return build_corpus(f"sqlite:///{root / 'src.db'}", root)


@pytest.fixture
def fresh_corpus(tmp_path: Path) -> Corpus:
    """A source the test may change."""
    return build_corpus(f"sqlite:///{tmp_path / 'src.db'}", tmp_path / "src")


def _json(result) -> dict:  # noqa: ANN001
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def _only(found: dict[str, list], source_id: str):  # noqa: ANN202
    runs = found.get(source_id, [])
    assert len(runs) == 1, f"expected exactly one copy of {source_id}, found {len(runs)}"
    return runs[0]


def test_plan_and_dry_run_write_nothing_and_agree(corpus: Corpus, sqlite_uri: str, monkeypatch, isolated_env) -> None:
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri)
    plan = invoke("plan", "src", "dst", "--mode", "copy")
    assert plan.exit_code == 0, plan.output
    assert "+ create    corpus ✓ exp/parent run 🚀/a b" in plan.stdout
    assert "4 to create" in plan.stdout and "~" in plan.stdout  # points are an estimate, and says so
    assert "registry: 3 versions to create, 2 aliases to set" in plan.stdout
    dry = invoke("copy", "--dry-run", "src", "dst")
    assert dry.exit_code == 0 and dry.stdout == plan.stdout
    exact = _json(invoke("plan", "src", "dst", "--exact-points", "--json"))
    assert exact["totals"]["points"] == corpus.total_points and exact["totals"]["points_exact"]
    assert exact["totals"]["artifact_bytes"] > 70_000

    assert runs_by_source(sqlite_uri) == {}
    assert [e.name for e in MlflowClient(sqlite_uri).search_experiments()] == ["Default"]
    assert not (isolated_env / ".trackbridge").exists()  # not even the ledger


def test_copy_is_faithful_and_idempotent(corpus: Corpus, sqlite_uri: str, monkeypatch, isolated_env) -> None:
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri)
    out = _json(invoke("copy", "src", "dst", "--json"))
    assert out["ok"], out["errors"]
    stats = out["stats"]
    assert (stats["runs_created"], stats["points"], stats["model_versions"], stats["aliases"]) == (
        4, corpus.total_points, 3, 2)
    assert (isolated_env / ".trackbridge" / "ledger.sqlite").is_file()

    src, dst = MlflowClient(corpus.tracking_uri), MlflowClient(sqlite_uri)
    found = runs_by_source(sqlite_uri)
    assert len(found) == 4
    for name, src_id in corpus.runs.items():
        a, b = src.get_run(src_id), _only(found, src_id)
        for field in ("start_time", "end_time", "status", "run_name"):
            assert getattr(a.info, field) == getattr(b.info, field), (name, field)
        assert a.data.params == b.data.params
        mine = {k: v for k, v in b.data.tags.items() if k not in PROVENANCE and k != "mlflow.parentRunId"}
        theirs = {k: v for k, v in a.data.tags.items() if k != "mlflow.parentRunId"}
        assert mine == theirs, name
        assert b.data.tags["trackbridge.source.platform"] == "mlflow"
        assert b.data.tags["trackbridge.complete"].startswith("fp")
        for key in a.data.metrics:
            assert history(src, src_id, key) == history(dst, b.info.run_id, key), (name, key)
    parent = _only(found, corpus.runs["parent"])
    assert len(history(dst, parent.info.run_id, "loss")) == 2500
    assert {tuple(x) for x in [("nan",)]} <= {(v,) for _, _, v in history(dst, parent.info.run_id, "loss")}
    assert parent.data.tags["mlflow.user"] == "ünï user"
    assert parent.data.tags["mlflow.note.content"] == "notes ✓\nline 2"
    assert len(parent.data.params["long"]) == len(src.get_run(corpus.runs["parent"]).data.params["long"])
    for child in ("child/1 ✓", "child 2 émoji 🧪"):
        assert _only(found, corpus.runs[child]).data.tags["mlflow.parentRunId"] == parent.info.run_id
    [ds] = parent.inputs.dataset_inputs
    assert (ds.dataset.name, ds.dataset.digest, ds.tags[0].value) == ("train ✓", "abc123", "training")

    # artifacts, with the legacy MLmodel re-pointed to the destination run
    files = {a.path for a in dst.list_artifacts(parent.info.run_id, "data")}
    assert files == {"data/blob.bin", "data/sub dir"}
    mlmodel = Path(dst.download_artifacts(parent.info.run_id, "legacy_model/MLmodel", str(isolated_env)))
    text = mlmodel.read_text()
    assert f"run_id: {parent.info.run_id}" in text and corpus.runs["parent"] not in text
    # the logged model is a logged model of the destination run
    [model] = dst.search_logged_models([parent.info.experiment_id])
    assert model.source_run_id == parent.info.run_id and model.name == "model"

    # registry: versions in order, re-pointed, aliases carried over
    versions = sorted(dst.search_model_versions(f"name = '{corpus.model}'"), key=lambda v: int(v.version))
    assert [v.version for v in versions] == [1, 2, 3]
    assert [v.tags["trackbridge.source.version"] for v in versions] == ["1", "2", "3"]
    assert versions[0].run_id == parent.info.run_id and versions[0].description == "from the folder"
    assert versions[2].run_id == _only(found, corpus.runs["child/1 ✓"]).info.run_id
    assert model.model_id in versions[1].source
    assert dst.get_registered_model(corpus.model).aliases == {"champion": 1, "challenger": 2}

    ok = invoke("check", "src", "dst")
    assert ok.exit_code == 0, ok.stdout
    assert ok.stdout.count("\n= ") + ok.stdout.startswith("= ") == 5

    again = _json(invoke("copy", "src", "dst", "--json"))
    assert again["stats"]["runs_created"] == 0 and again["stats"]["runs_skipped"] == 4
    assert again["stats"]["model_versions"] == 0 and again["stats"]["points"] == 0
    (isolated_env / ".trackbridge" / "ledger.sqlite").unlink()  # the ledger is only a cache
    third = _json(invoke("copy", "src", "dst", "--json"))
    assert third["stats"]["runs_created"] == 0
    assert all(len(v) == 1 for v in runs_by_source(sqlite_uri).values())
    assert len(dst.search_model_versions(f"name = '{corpus.model}'")) == 3


def test_sync_sends_only_the_delta(fresh_corpus: Corpus, sqlite_uri: str, monkeypatch) -> None:
    c = fresh_corpus
    set_remotes(monkeypatch, src=c.tracking_uri, dst=sqlite_uri)
    assert _json(invoke("sync", "src", "dst", "--json"))["stats"]["runs_created"] == 4

    src = MlflowClient(c.tracking_uri)
    src.log_batch(c.runs["parent"], metrics=[Metric("loss", 0.1 * i, 1_800_000_000_000 + i, 10_000 + i)
                                             for i in range(5)])
    src.set_tag(c.runs["child/1 ✓"], "reviewed", "yes ✓")
    extra = Path(c.tracking_uri.removeprefix("sqlite:///")).parent / "new.txt"
    extra.write_text("new artifact")
    src.log_artifact(c.runs["child 2 émoji 🧪"], str(extra), "later")
    src.set_terminated(c.runs["lone"], "FINISHED", end_time=1_700_000_999_000)
    src.create_model_version(c.model, f"runs:/{c.runs['child 2 émoji 🧪']}/out/nested",
                             run_id=c.runs["child 2 émoji 🧪"])
    src.set_registered_model_alias(c.model, "champion", "3")

    plan = invoke("plan", "src", "dst")
    assert "4 to update" in plan.stdout and "alias     " + c.model + "@champion -> source v3" in plan.stdout

    out = _json(invoke("sync", "src", "dst", "--json"))
    assert out["ok"], out["errors"]
    s = out["stats"]
    assert (s["runs_updated"], s["runs_created"], s["points"], s["artifacts"], s["models"]) == (4, 0, 5, 1, 0)
    assert (s["model_versions"], s["aliases"]) == (1, 1)
    assert s["params"] == 0 and s["tags"] == 1  # only the new tag was sent

    dst = MlflowClient(sqlite_uri)
    found = runs_by_source(sqlite_uri)
    assert len(history(dst, _only(found, c.runs["parent"]).info.run_id, "loss")) == 2505
    assert _only(found, c.runs["lone"]).info.status == "FINISHED"
    assert dst.get_registered_model(c.model).aliases["champion"] == 3
    [v4] = [v for v in dst.search_model_versions(f"name = '{c.model}'") if v.version == 4]
    assert v4.run_id == _only(found, c.runs["child 2 émoji 🧪"]).info.run_id

    assert invoke("check", "src", "dst").exit_code == 0
    quiet = _json(invoke("sync", "src", "dst", "--json"))["stats"]
    assert (quiet["runs_skipped"], quiet["points"], quiet["tags"], quiet["model_versions"]) == (4, 0, 0, 0)


def test_sync_mirrors_tag_deletions_renames_and_alias_removals(fresh_corpus: Corpus, sqlite_uri: str,
                                                               monkeypatch) -> None:
    c = fresh_corpus
    set_remotes(monkeypatch, src=c.tracking_uri, dst=sqlite_uri)
    assert _json(invoke("copy", "src", "dst", "--json"))["ok"]
    dst = MlflowClient(sqlite_uri)
    dst_parent = _only(runs_by_source(sqlite_uri), c.runs["parent"]).info.run_id
    dst.set_tag(dst_parent, "mlflow.source.name", "set at the destination")  # bookkeeping: never deleted

    src = MlflowClient(c.tracking_uri)
    src.delete_tag(c.runs["parent"], "team")
    src.update_run(c.runs["lone"], name="lone renamed ✓")
    src.delete_registered_model_alias(c.model, "challenger")

    copied = _json(invoke("copy", "src", "dst", "--json"))  # copy never rewrites finished runs
    assert copied["stats"]["runs_updated"] == 0 and copied["stats"]["aliases"] == 0
    assert dst.get_run(dst_parent).data.tags["team"] == "ml 🚀"
    assert "challenger" in dst.get_registered_model(c.model).aliases

    plan = invoke("plan", "src", "dst")
    assert "2 to update" in plan.stdout, plan.stdout
    assert "tags to delete: 1, renames: 1" in plan.stdout
    assert "0 aliases to set, 1 aliases to remove" in plan.stdout
    assert f"unalias   {c.model}@challenger" in plan.stdout

    out = _json(invoke("sync", "src", "dst", "--json"))
    assert out["ok"], out["errors"]
    assert (out["stats"]["runs_updated"], out["stats"]["aliases"]) == (2, 1)
    found = runs_by_source(sqlite_uri)
    parent = dst.get_run(dst_parent)
    assert "team" not in parent.data.tags and parent.data.tags["path/like key"] == "v/1"
    assert parent.data.tags["mlflow.source.name"] == "set at the destination"
    lone = _only(found, c.runs["lone"])
    assert lone.info.run_name == "lone renamed ✓" and lone.data.tags["mlflow.runName"] == "lone renamed ✓"
    assert dst.get_registered_model(c.model).aliases == {"champion": 1}

    dst.delete_tag(dst_parent, "mlflow.source.name")  # so check compares equal tags
    checked = invoke("check", "src", "dst")
    assert checked.exit_code == 0, checked.stdout
    quiet = _json(invoke("sync", "src", "dst", "--json"))["stats"]
    assert (quiet["runs_skipped"], quiet["runs_updated"], quiet["aliases"], quiet["tags"]) == (4, 0, 0, 0)


def test_experiment_selection_rename_and_run_filter(corpus: Corpus, sqlite_uri: str, tmp_path: Path,
                                                   monkeypatch) -> None:
    other_uri = f"sqlite:///{tmp_path / 'other.db'}"
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri, dst2=other_uri)
    out = _json(invoke("copy", f"src:{corpus.experiment}", "dst:renamed ✓", "--json"))
    assert out["stats"]["runs_created"] == 3
    dst = MlflowClient(sqlite_uri)
    assert dst.get_experiment_by_name(corpus.other_experiment) is None
    assert len(dst.search_runs([dst.get_experiment_by_name("renamed ✓").experiment_id])) == 3

    child = corpus.runs["child/1 ✓"]
    plan = invoke("plan", "src", "dst2", "--run-id", child, "--rename-experiment", f"{corpus.experiment}=solo")
    assert "drop     'parent_run_id'" in plan.stdout  # the parent is not selected: the link is lost, and said so
    out = _json(invoke("copy", "src", "dst2", "--run-id", child, "--rename-experiment", f"{corpus.experiment}=solo",
                       "--json"))
    assert out["stats"]["runs_created"] == 1
    other = MlflowClient(other_uri)
    [run] = other.search_runs([other.get_experiment_by_name("solo").experiment_id])
    assert "mlflow.parentRunId" not in run.data.tags
    assert "parent_run_id" in json.loads(run.data.tags["trackbridge.mapping"])["dropped"]
    checked = invoke("check", "src", "dst2", "--run-id", child, "--rename-experiment", f"{corpus.experiment}=solo")
    assert checked.exit_code == 0, checked.stdout

    since = invoke("plan", "src", "dst", "--since", "2030-01-01", "--json")
    assert _json(since)["runs"] == []
    failed = _json(invoke("plan", "src", "dst", "--status", "failed", "--json"))
    assert [r["name"] for r in failed["runs"]] == ["child 2 émoji 🧪"]
    tagged = _json(invoke("plan", "src", "dst", "--tag", "fold=0", "--param", "fold=0", "--json"))
    assert [r["name"] for r in tagged["runs"]] == ["child/1 ✓"]


def test_usage_errors_exit_2_with_a_hint(corpus: Corpus, sqlite_uri: str, monkeypatch) -> None:
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri)
    for command, must in (("plan", "--exact-points"), ("copy", "never deletes"), ("sync", "--max-delete"),
                          ("check", "NaN"), ("export", "dir:PATH"), ("import", "dir:PATH")):
        shown = invoke(command, "--help")
        assert shown.exit_code == 0 and must in shown.stdout and "REMOTE[:EXPERIMENT]" in shown.stdout
    assert invoke("copy", "src", "src").exit_code == 2
    same = invoke("copy", "src", "src:other")  # every experiment of a store into itself
    assert same.exit_code == 2 and "same store" in same.stderr
    bad = invoke("copy", "src", "nowhere")
    assert bad.exit_code == 2 and "unknown remote 'nowhere'" in bad.stderr
    assert invoke("plan", "src", "dst", "--since", "yesterday").exit_code == 2
    assert invoke("export", "src", "dst").exit_code == 2
    missing = invoke("plan", "src:no such exp", "dst")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_delete_is_guarded_and_never_follows_an_error(fresh_corpus: Corpus, sqlite_uri: str, monkeypatch) -> None:
    c = fresh_corpus
    set_remotes(monkeypatch, src=c.tracking_uri, dst=sqlite_uri)
    assert invoke("copy", "src", "dst").exit_code == 0
    src, dst = MlflowClient(c.tracking_uri), MlflowClient(sqlite_uri)
    lone_copy = _only(runs_by_source(sqlite_uri), c.runs["lone"]).info.run_id
    src.delete_run(c.runs["lone"])

    assert invoke("sync", "src", "dst").exit_code == 0  # without --delete nothing is deleted
    assert dst.get_run(lone_copy).info.lifecycle_stage == "active"
    plan = invoke("plan", "src", "dst", "--delete")
    assert "- delete    second/exp ü/lone" in plan.stdout and "1 to delete" in plan.stdout
    filtered = invoke("plan", "src", "dst", "--delete", "--run-id", c.runs["parent"])
    assert "1 to delete" in filtered.stdout and "- delete" in filtered.stdout  # gone is gone, filter or not
    kept = invoke("plan", "src", "dst", "--delete", "--experiment", c.experiment)
    assert "to delete" not in kept.stdout  # the run's experiment is not selected

    refused = invoke("sync", "src", "dst", "--delete")
    assert refused.exit_code == 1 and "refusing to delete 1" in refused.stderr
    assert dst.get_run(lone_copy).info.lifecycle_stage == "active"

    # an error in the same invocation blocks deletion: a half-written copy whose
    # param conflicts with its source (MLflow params are immutable) cannot be resumed
    newbie = src.create_run(c.experiment_ids[c.experiment], run_name="newbie").info.run_id
    src.log_param(newbie, "p", "1")
    exp_id = dst.get_experiment_by_name(c.experiment).experiment_id
    conflict = dst.create_run(exp_id, tags={"trackbridge.source.platform": "mlflow",
                                            "trackbridge.source.run_id": newbie}).info.run_id
    dst.log_param(conflict, "p", "2")
    blocked = invoke("sync", "src", "dst", "--delete", "--max-delete", "1", "--json")
    out = json.loads(blocked.stdout)
    assert blocked.exit_code == 1 and out["deleted"] == []
    assert any("not deleting 1" in e for e in out["errors"]) and any("newbie" in e for e in out["errors"])
    assert dst.get_run(lone_copy).info.lifecycle_stage == "active"

    dst.delete_run(conflict)
    done = json.loads(invoke("sync", "src", "dst", "--delete", "--max-delete", "1", "--json").stdout)
    assert done["ok"] and done["deleted"] == [lone_copy] and done["stats"]["runs_created"] == 1
    assert dst.get_run(lone_copy).info.lifecycle_stage == "deleted"


def test_copy_between_experiments_of_one_store_leaves_the_registry_alone(fresh_corpus: Corpus, monkeypatch) -> None:
    c = fresh_corpus
    set_remotes(monkeypatch, src=c.tracking_uri)
    out = _json(invoke("copy", f"src:{c.experiment}", "src:copied", "--json"))
    assert out["ok"] and out["stats"]["runs_created"] == 3 and out["stats"]["model_versions"] == 0
    client = MlflowClient(c.tracking_uri)
    assert len(client.search_model_versions(f"name = '{c.model}'")) == 3
    assert invoke("check", f"src:{c.experiment}", "src:copied").exit_code == 0
    assert _json(invoke("copy", f"src:{c.experiment}", "src:copied", "--json"))["stats"]["runs_created"] == 0
