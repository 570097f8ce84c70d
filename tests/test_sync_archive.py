"""export -> import through the vendor-neutral archive ``dir:``, verified end to end."""
from __future__ import annotations

import json
from pathlib import Path

from corpus import build_corpus, invoke, runs_by_source, set_remotes
from mlflow import MlflowClient
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.mapping import MAPPING_TAG
from trackbridge.model import RunStatus


def test_export_import_round_trip_checks_end_to_end(tmp_path: Path, sqlite_uri: str, monkeypatch) -> None:
    corpus = build_corpus(f"sqlite:///{tmp_path / 'src.db'}", tmp_path / "src")
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri)
    archive = f"dir:{tmp_path / 'archive'}"

    dry = invoke("export", "src", archive, "--dry-run")
    assert dry.exit_code == 0 and "4 to create" in dry.stdout
    # the dry run wrote nothing, not even the archive folder (the writer creates it on its first write)
    assert not (tmp_path / "archive").exists()
    exported = json.loads(invoke("export", "src", archive, "--json").stdout)
    assert exported["ok"], exported["errors"]
    assert exported["stats"]["points"] == corpus.total_points
    assert invoke("check", "src", archive).exit_code == 0

    imported = json.loads(invoke("import", archive, "dst", "--json").stdout)
    assert imported["ok"], imported["errors"]
    assert imported["stats"]["runs_created"] == 4 and imported["stats"]["model_versions"] == 3
    assert invoke("check", archive, "dst").exit_code == 0
    end_to_end = invoke("check", "src", "dst")  # runs are matched through their origin tags
    assert end_to_end.exit_code == 0, end_to_end.stdout

    again = json.loads(invoke("import", archive, "dst", "--json").stdout)
    assert again["stats"]["runs_created"] == 0 and again["stats"]["runs_skipped"] == 4
    direct = json.loads(invoke("copy", "src", "dst", "--json").stdout)  # a direct copy finds the imported runs
    assert direct["stats"]["runs_created"] == 0 and direct["stats"]["model_versions"] == 0
    found = runs_by_source(sqlite_uri)
    assert len(found) == 4 and all(len(v) == 1 for v in found.values())
    assert {r.data.tags["trackbridge.origin.run_id"] for v in found.values() for r in v} == set(corpus.runs.values())


def test_nested_params_stay_nested_in_archives_flatten_into_mlflow_and_long_ones_are_kept(
        tmp_path: Path, sqlite_uri: str, monkeypatch) -> None:
    long = "é" * (MAX_PARAM_VAL_LENGTH + 10)  # longer than MLflow keeps: truncated there, in full in a file
    nested = {"opt": {"lr": 0.1, "betas": [0.9, 0.99], "sched": {"kind": "cos"}}, "seed": 7, "name": "1",
              "text/long": long}
    writer = ArchiveBackend({"path": str(tmp_path / "src")}).writer()  # a source written directly, not by a copy
    run_id = writer.create_run(writer.ensure_experiment("e"), name="nested", start_time=1)
    writer.log_params(run_id, nested)
    writer.finish_run(run_id, RunStatus.FINISHED, 2)
    writer.close()
    set_remotes(monkeypatch, dst=sqlite_uri)
    src, copy = f"dir:{tmp_path / 'src'}", f"dir:{tmp_path / 'copy'}"

    for dst in (copy, "dst"):
        done = json.loads(invoke("copy", src, dst, "--json").stdout)
        assert done["ok"], done["errors"]
        checked = invoke("check", src, dst)
        assert checked.exit_code == 0, checked.stdout

    (archived,) = ArchiveBackend({"path": str(tmp_path / "copy")}).reader().list_runs("e")
    assert archived.params == nested  # JSON values kept: a dict is a dict, "1" stays a string, 7 an int
    (flat,) = [r for runs in runs_by_source(sqlite_uri).values() for r in runs]
    assert flat.data.params == {"opt.lr": "0.1", "opt.betas": "[0.9, 0.99]", "opt.sched.kind": "cos",
                                "seed": "7", "name": "1", "text/long": long[:MAX_PARAM_VAL_LENGTH]}
    mapping = json.loads(flat.data.tags[MAPPING_TAG])
    assert mapping["renamed"] == {"param:opt.lr": "opt", "param:opt.betas": "opt", "param:opt.sched.kind": "opt"}
    assert mapping["truncated"] == {"param:text/long": len(long)}
    kept = MlflowClient(sqlite_uri).download_artifacts(flat.info.run_id, "trackbridge/params/text/long.txt", str(tmp_path))
    assert Path(kept).read_text(encoding="utf-8") == long
    tampered = tmp_path / "tampered" / "long.txt"
    tampered.parent.mkdir()
    tampered.write_text("x" * len(long.encode("utf-8")), encoding="utf-8")  # same size, other content
    MlflowClient(sqlite_uri).log_artifact(flat.info.run_id, str(tampered), "trackbridge/params/text")
    checked = invoke("check", src, "dst")
    assert checked.exit_code != 0 and "content differs from the full param value" in checked.stdout

    # a changed nested value is seen by sync (compared as JSON, not as its string) and by check
    writer = ArchiveBackend({"path": str(tmp_path / "src")}).writer()
    writer.log_params(run_id, {"opt": {**nested["opt"], "lr": 0.2}})
    writer.close()
    assert invoke("check", src, copy).exit_code != 0
    synced = json.loads(invoke("sync", src, copy, "--json").stdout)
    assert synced["ok"] and synced["stats"]["runs_updated"] == 1, synced
    assert invoke("check", src, copy).exit_code == 0


def test_sync_into_an_archive_mirrors_tag_deletions_renames_and_alias_removals(tmp_path: Path, monkeypatch) -> None:
    corpus = build_corpus(f"sqlite:///{tmp_path / 'src.db'}", tmp_path / "src")
    archive = f"dir:{tmp_path / 'archive'}"
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=corpus.tracking_uri)
    assert json.loads(invoke("export", "src", archive, "--json").stdout)["ok"]

    src = MlflowClient(corpus.tracking_uri)
    src.delete_tag(corpus.runs["parent"], "team")
    src.update_run(corpus.runs["lone"], name="lone renamed")
    src.delete_registered_model_alias(corpus.model, "challenger")
    synced = json.loads(invoke("sync", "src", archive, "--json").stdout)
    assert synced["ok"], synced["errors"]

    reader = ArchiveBackend({"path": str(tmp_path / "archive")}).reader()
    runs = {r.tags["trackbridge.source.run_id"]: r for e in reader.list_experiments() for r in reader.list_runs(e.name)}
    assert "team" not in runs[corpus.runs["parent"]].tags
    assert runs[corpus.runs["lone"]].name == "lone renamed"
    [model] = [m for m in reader.list_registered_models() if m.name == corpus.model]
    assert {a for v in model.versions for a in v.aliases} == {"champion"}
    checked = invoke("check", "src", archive)
    assert checked.exit_code == 0, checked.stdout
    again = json.loads(invoke("sync", "src", archive, "--json").stdout)["stats"]
    assert (again["runs_updated"], again["aliases"]) == (0, 0)
