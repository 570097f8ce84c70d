"""``check`` finds each kind of difference injected at the destination (with the
plain MLflow client), reports it with rclone's symbols, and exits 1."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from corpus import Corpus, build_corpus, invoke, runs_by_source, set_remotes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("check-corpus")
    return build_corpus(f"sqlite:///{root / 'src.db'}", root)


def _findings(result) -> dict[str, dict]:  # noqa: ANN001
    return {f["label"]: f for f in json.loads(result.stdout)["findings"]}


def test_check_reports_every_injected_difference(corpus: Corpus, sqlite_uri: str, tmp_path: Path,
                                                 monkeypatch) -> None:
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri)
    assert invoke("copy", "src", "dst").exit_code == 0
    assert invoke("check", "src", "dst").exit_code == 0
    dst = MlflowClient(sqlite_uri)
    copies = {name: runs_by_source(sqlite_uri)[rid][0].info.run_id for name, rid in corpus.runs.items()}

    dst.set_tag(copies["parent"], "team", "someone else")                   # a tag value
    dst.log_batch(copies["parent"], metrics=[Metric("loss", 0.25, 1_700_000_000_011, 2)])  # same step, other value
    dst.log_batch(copies["child/1 ✓"], metrics=[Metric("val/loss", 1.0, 1, 999)])          # one extra point
    same_size = tmp_path / "fold1.json"
    same_size.write_bytes(b'{"ok": fals}')  # as many bytes as the original, other content
    dst.log_artifact(copies["child 2 émoji 🧪"], str(same_size), "out/nested")
    dst.set_terminated(copies["child 2 émoji 🧪"], "KILLED", end_time=1_700_000_070_000)  # status, end time
    dst.delete_run(copies["lone"])                                            # a run gone
    dst.set_registered_model_alias(corpus.model, "champion", "3")             # an alias moved

    result = invoke("check", "src", "dst", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["counts"] == {"equal": 0, "missing": 1, "differ": 4, "error": 0}
    found = _findings(result)
    parent = found["corpus ✓ exp/parent run 🚀/a b"]
    assert parent["symbol"] == "*"
    assert any("tag 'team'" in d and "someone else" in d for d in parent["details"])
    assert any(d.startswith("metric 'loss': 2500 points at source, 2501 at destination, 0 missing, 1 extra")
               for d in parent["details"])
    child1 = found["corpus ✓ exp/child/1 ✓"]["details"]
    assert child1 == ["metric 'val/loss': 30 points at source, 31 at destination, 0 missing, 1 extra"]
    child2 = found["corpus ✓ exp/child 2 émoji 🧪"]["details"]
    assert any(d == "status: source 'FAILED' != destination 'KILLED'" for d in child2)
    assert any(d.startswith("end_time") for d in child2)
    assert "artifact 'out/nested/fold1.json': content differs (sha256)" in child2
    assert found["second/exp ü/lone"]["symbol"] == "+"
    model = found[f"model {corpus.model}"]
    assert model["symbol"] == "*" and "alias 'champion'" in model["details"][0]

    human = invoke("check", "src", "dst")
    assert human.exit_code == 1
    lines = human.stdout.splitlines()
    assert any(line.startswith("+ second/exp ü/lone") for line in lines)
    assert sum(line.startswith("* ") for line in lines) == 4
    assert lines[-1] == "0 equal, 1 missing at destination, 4 differ, 0 errors"

    # sync repairs what it can see: the deleted run is copied again, the alias moved back
    assert invoke("sync", "src", "dst").exit_code == 0
    after = _findings(invoke("check", "src", "dst", "--json"))
    assert after["second/exp ü/lone"]["symbol"] == "="
    assert after[f"model {corpus.model}"]["symbol"] == "="


def test_check_flags_an_incomplete_and_a_duplicated_copy(corpus: Corpus, sqlite_uri: str, monkeypatch) -> None:
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri)
    assert invoke("copy", "src", "dst", "--run-id", corpus.runs["lone"]).exit_code == 0
    dst = MlflowClient(sqlite_uri)
    [copy] = runs_by_source(sqlite_uri)[corpus.runs["lone"]]
    twin = dst.create_run(copy.info.experiment_id, tags={k: v for k, v in copy.data.tags.items()
                                                         if k.startswith("trackbridge.source")})
    dst.set_tag(twin.info.run_id, "trackbridge.complete", "")
    result = invoke("check", "src", "dst", "--run-id", corpus.runs["lone"], "--json")
    assert result.exit_code == 1
    [finding] = json.loads(result.stdout)["findings"]
    assert finding["symbol"] == "*" and finding["dst_id"] == copy.info.run_id
    assert finding["details"] == [f"copied more than once: also {twin.info.run_id}"]
    dst.set_tag(copy.info.run_id, "trackbridge.complete", "")
    again = json.loads(invoke("check", "src", "dst", "--run-id", corpus.runs["lone"], "--json").stdout)
    assert any("incomplete copy" in d for d in again["findings"][0]["details"])


def test_no_download_compares_listings_only(corpus: Corpus, sqlite_uri: str, tmp_path: Path, monkeypatch) -> None:
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri)
    assert invoke("copy", "src", "dst", "--run-id", corpus.runs["child/1 ✓"]).exit_code == 0
    [copy] = runs_by_source(sqlite_uri)[corpus.runs["child/1 ✓"]]
    changed = tmp_path / "fold0.json"
    changed.write_bytes(b'{"ok": fals}')
    MlflowClient(sqlite_uri).log_artifact(copy.info.run_id, str(changed), "out/nested")
    args = ("check", "src", "dst", "--run-id", corpus.runs["child/1 ✓"])
    assert invoke(*args, "--no-download").exit_code == 0  # same path and size: a listing cannot tell
    assert invoke(*args).exit_code == 1


def test_a_run_that_cannot_be_read_is_an_error_not_a_pass(corpus: Corpus, sqlite_uri: str, monkeypatch) -> None:
    set_remotes(monkeypatch, src=corpus.tracking_uri, dst=sqlite_uri)
    assert invoke("copy", "src", "dst", "--run-id", corpus.runs["lone"]).exit_code == 0
    [copy] = runs_by_source(sqlite_uri)[corpus.runs["lone"]]
    folder = Path(copy.info.artifact_uri.removeprefix("file://"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dangling").symlink_to(folder / "nowhere")  # listed, but unreadable
    result = invoke("check", "src", "dst", "--run-id", corpus.runs["lone"])
    assert result.exit_code == 1
    assert result.stdout.startswith("! second/exp ü/lone")
    assert result.stdout.splitlines()[-1] == "0 equal, 0 missing at destination, 0 differ, 1 errors"
