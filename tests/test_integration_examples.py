"""The Optuna sweep example, switched between embedded MLflow, W&B offline and Comet
offline by TRACKBRIDGE_BACKEND alone, each read back with trackbridge's reader."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from trackbridge.backends import get_backend  # noqa: E402

EXAMPLE = Path(__file__).parents[1] / "examples" / "integrations" / "optuna_sweep.py"
TRIALS = 3


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["mlflow", "wandb", "comet-offline:./comet-offline"])
def test_the_sweep_example_logs_wherever_one_variable_says(isolated_env: Path, backend: str) -> None:
    env = dict(os.environ, TRACKBRIDGE_BACKEND=backend, TRIALS=str(TRIALS))
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, cwd=isolated_env,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    name, options = {
        "mlflow": ("mlflow", {"tracking_uri": f"sqlite:///{isolated_env / 'mlflow.db'}"}),
        "wandb": ("wandb-offline", {"path": str(Path(os.environ["WANDB_DIR"]) / "wandb")}),
    }.get(backend, ("comet-offline", {"path": str(isolated_env / "comet-offline")}))
    reader = get_backend(name, options).reader()
    runs = {r.name: r for r in reader.list_runs("wine-sweep")}
    assert sorted(runs) == ["trial-0", "trial-1", "trial-2", "wine-sgd"]
    assert all(r.status.value == "FINISHED" for r in runs.values())
    for n in range(TRIALS):
        trial = runs[f"trial-{n}"]
        assert {"eta0", "alpha"} <= set(trial.params) and "val_loss" in trial.metrics
        points = [p for page in reader.iter_metric_history(trial.run_id, "intermediate_value") for p in page]
        assert [p.step for p in points] == list(range(20))
    assert "best_val_loss" in runs["wine-sgd"].metrics
