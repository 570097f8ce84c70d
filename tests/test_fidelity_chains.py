"""Issue 14's proof on a source written by MLflow's own SDK as teams write it
(:mod:`realworld`): MLflow -> X -> MLflow through every other backend with an offline or
local form, ``check`` equal at each hop and end to end, versions numbered as at the
source with their stages, and ``models:/<name>@champion`` loading and predicting at the
end exactly as at the source (read with MLflow's own client)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from corpus import invoke, set_remotes
from mlflow import MlflowClient
from realworld import build_autolog_source, champion_predictions

HOPS = ["mlflow", "dir", "wandb-offline", "comet-offline"]


def _ok(*args: str) -> dict:
    result = invoke(*args, "--json")
    data = json.loads(result.stdout)
    assert data["ok"], data.get("errors")
    return data


def _check(src: str, dst: str) -> str:
    result = invoke("check", src, dst)
    assert result.exit_code == 0, result.stdout
    return result.stdout


@pytest.mark.parametrize("hop", HOPS)
def test_mlflow_through_each_backend_and_back_keeps_models_stages_and_the_champion(
        hop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = build_autolog_source(f"sqlite:///{tmp_path / 'src.db'}")
    set_remotes(monkeypatch, src=source.tracking_uri, mid=f"sqlite:///{tmp_path / 'mid.db'}",
                dst=f"sqlite:///{tmp_path / 'dst.db'}")
    middle = {"mlflow": "mid", "dir": f"dir:{tmp_path / 'archive'}", "wandb-offline": f"wandb-offline:{tmp_path / 'w'}",
              "comet-offline": f"comet-offline:{tmp_path / 'c'}"}[hop]
    first = _ok("copy", "src", middle)
    assert first["stats"]["runs_created"] >= 4  # the grid's parent and its candidates
    _check("src", middle)
    _ok("copy", middle, "dst")
    _check(middle, "dst")
    assert "0 differ, 0 errors" in _check("src", "dst")

    client = MlflowClient(f"sqlite:///{tmp_path / 'dst.db'}")
    versions = sorted(client.search_model_versions(f"name = '{source.model}'"), key=lambda v: int(v.version))
    assert [(str(v.version), v.current_stage) for v in versions] == [("1", "Archived"), ("2", "Production")]
    (run,) = client.search_runs([client.get_experiment_by_name(source.experiment).experiment_id],
                                filter_string="attributes.run_name = 'grid'")
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                         filter_string=f"source_run_id = '{run.info.run_id}'")
    assert len([m for m in models if m.name == "model"]) >= 2  # same-name models stay apart
    np.testing.assert_array_equal(champion_predictions(client.tracking_uri, source.model, source.rows),
                                  source.predictions)
