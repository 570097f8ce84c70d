"""Runs that share one dataset, copied with the default parallel transfers into a new
MLflow store (issue 14, item 5): MLflow keeps one dataset row per experiment, name and
digest, so several copies logging it at once raced on its UNIQUE constraint.  The
registry versions of those runs keep their numbers: version N at the destination is
the copy of source version N, on the first copy and on a re-run."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from corpus import invoke, runs_by_source, set_remotes

RUNS = 6
MODEL = "shared-data-model"


def _source(uri: str) -> dict[str, str]:
    """``RUNS`` runs logging the same dataset the way autolog does (``mlflow.log_input``),
    each registered as one version of ``MODEL`` in run order; version -> source run id."""
    import mlflow
    import mlflow.data
    import numpy as np

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("shared data")
    dataset = mlflow.data.from_numpy(np.arange(20.0).reshape(10, 2), name="train", targets=np.arange(10.0))
    client = MlflowClient(uri)
    client.create_registered_model(MODEL)
    versions: dict[str, str] = {}
    for i in range(RUNS):
        with mlflow.start_run(run_name=f"fit {i}") as run:
            mlflow.log_input(dataset, context="training")
            mlflow.log_metric("score", i / 10)
        folder = Path(run.info.artifact_uri.removeprefix("file://"))
        version = client.create_model_version(MODEL, source=str(folder), run_id=run.info.run_id,
                                              description=f"from fit {i}")
        versions[str(version.version)] = run.info.run_id
    mlflow.set_tracking_uri("")
    return versions


def _version_runs(uri: str) -> dict[str, tuple[str, str, str]]:
    """destination version -> (its run's source run id, source version tag, description)."""
    client = MlflowClient(uri)
    return {str(v.version): (client.get_run(v.run_id).data.tags["trackbridge.source.run_id"],
                             v.tags["trackbridge.source.version"], v.description)
            for v in client.search_model_versions(f"name = '{MODEL}'")}


def test_runs_sharing_a_dataset_copy_in_parallel_and_keep_version_numbers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src_uri, dst_uri = f"sqlite:///{tmp_path / 'src.db'}", f"sqlite:///{tmp_path / 'dst' / 'new.db'}"
    (tmp_path / "dst").mkdir()
    versions = _source(src_uri)
    set_remotes(monkeypatch, src=src_uri, dst=dst_uri)

    out = invoke("copy", "src", "dst", "--json")  # default --transfers (4)
    assert out.exit_code == 0, out.stdout + out.stderr
    copies = runs_by_source(dst_uri)
    assert sorted(copies) == sorted(versions.values())
    for copy in (runs[0] for runs in copies.values()):
        [used] = copy.inputs.dataset_inputs
        assert (used.dataset.name, [(t.key, t.value) for t in used.tags]) == ("train", [("mlflow.data.context", "training")])
    expected = {n: (run, n, f"from fit {int(n) - 1}") for n, run in versions.items()}
    assert _version_runs(dst_uri) == expected

    again = invoke("copy", "src", "dst", "--json")
    assert again.exit_code == 0, again.stdout + again.stderr
    assert _version_runs(dst_uri) == expected
    assert invoke("check", "src", "dst").exit_code == 0
