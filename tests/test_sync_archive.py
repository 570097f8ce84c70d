"""export -> import through the vendor-neutral archive ``dir:``, verified end to end."""
from __future__ import annotations

import json
from pathlib import Path

from corpus import build_corpus, invoke, runs_by_source, set_remotes


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
