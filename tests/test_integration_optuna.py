"""Optuna through the facade: a real study (TPE, a median pruner, a trial that fails under
``catch=``) logged by the callback, read back from the embedded MLflow store with
MlflowClient and from W&B offline runs with trackbridge's wandb-offline reader."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from mlflow import MlflowClient  # noqa: E402

from facade_helpers import stop_facade_workers  # noqa: E402,F401  (autouse fixture)
from wandb_helpers import sdk_sockets  # noqa: E402,F401  (fixture)

import trackbridge as tb  # noqa: E402
from trackbridge.backends import get_backend  # noqa: E402
from trackbridge.integrations.optuna import TrackbridgeCallback  # noqa: E402

PRUNED, FAILED = 2, 3


def objective(trial: optuna.Trial) -> float:
    """x² with four reported steps; trial 2 is pruned at step 1, trial 3 fails."""
    x = trial.suggest_float("x", -10, 10)
    layers = trial.suggest_int("layers", 1, 3)
    trial.set_user_attr("note", f"trial {trial.number}")
    for step in range(4):
        trial.report(x * x + 1.0 / (step + 1), step)
        if trial.number == PRUNED and step == 1:
            raise optuna.TrialPruned()
    if trial.number == FAILED:
        raise ValueError("diverged")
    return x * x + layers


def _sweep(callback: TrackbridgeCallback) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="sweep", direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=1))
    with callback:
        study.optimize(callback.track_in_run(objective), n_trials=5, callbacks=[callback], catch=(ValueError,))
    return study


def test_study_and_trials_arrive_in_embedded_mlflow(isolated_env: Path) -> None:
    study = _sweep(TrackbridgeCallback(project="optuna-sweep"))
    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("optuna-sweep")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["sweep"] + [f"trial-{n}" for n in range(5)]
    parent = runs["sweep"]
    assert parent.info.status == "FINISHED"
    assert parent.data.params == {"optuna.direction": "minimize", "optuna.sampler": "TPESampler",
                                  "optuna.pruner": "MedianPruner"}
    best = [m.value for m in client.get_metric_history(parent.info.run_id, "best_value")]
    assert best[-1] == study.best_value and best == sorted(best, reverse=True)
    assert json.loads(parent.data.tags["trackbridge.summary"]) == {
        "best_trial": study.best_trial.number, "best_params": study.best_params, "best_value": study.best_value}

    for trial in study.trials:
        run = runs[f"trial-{trial.number}"]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["optuna.state"] == trial.state.name
        assert run.data.params["x"] == str(trial.params["x"])
        assert run.data.params["user_attrs.note"] == f"trial {trial.number}"
        history = client.get_metric_history(run.info.run_id, "intermediate_value")
        assert {m.step: m.value for m in history} == trial.intermediate_values
        assert run.data.metrics["duration_s"] == pytest.approx(trial.duration.total_seconds())
        expected = {optuna.trial.TrialState.COMPLETE: "FINISHED", optuna.trial.TrialState.PRUNED: "KILLED",
                    optuna.trial.TrialState.FAIL: "FAILED"}[trial.state]
        assert run.info.status == expected
        if trial.value is not None:  # a pruned trial's value is its last reported one
            assert run.data.metrics["value"] == trial.value
        else:
            assert "value" not in run.data.metrics
    assert study.trials[PRUNED].state is optuna.trial.TrialState.PRUNED
    assert study.trials[FAILED].state is optuna.trial.TrialState.FAIL
    assert len(runs["trial-2"].data.params) >= 2  # pruned trials keep their params


def test_logging_inside_the_objective_goes_to_the_trial_run(isolated_env: Path) -> None:
    callback = TrackbridgeCallback(project="inside")

    @callback.track_in_run
    def inner(trial: optuna.Trial) -> float:
        tb.log_metrics({"epoch_loss": 0.5}, step=0)  # the active run is the trial's
        return trial.suggest_float("x", 0, 1)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with callback:
        optuna.create_study(study_name="s").optimize(inner, n_trials=2, callbacks=[callback])
    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("inside")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert runs["trial-0"].data.metrics["epoch_loss"] == 0.5 and runs["trial-1"].data.metrics["epoch_loss"] == 0.5
    assert "epoch_loss" not in runs["s"].data.metrics


def test_study_and_trials_arrive_in_wandb_offline(isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                 sdk_sockets: None) -> None:  # noqa: F811
    """The wandb backend with WANDB_MODE=offline (the suite's setting): the SDK's own offline runs."""
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "wandb")
    study = _sweep(TrackbridgeCallback(project="optuna-sweep"))
    reader = get_backend("wandb-offline", {"path": str(Path(os.environ["WANDB_DIR"]) / "wandb")}).reader()
    runs = {r.name: r for r in reader.list_runs("optuna-sweep")}
    assert sorted(runs) == ["sweep"] + [f"trial-{n}" for n in range(5)]
    parent = runs["sweep"]
    for trial in study.trials:
        run = runs[f"trial-{trial.number}"]
        # W&B has no nested runs: the facade's own ids keep the link
        assert run.tags["trackbridge.parent_local_run_id"] == parent.tags["trackbridge.local_run_id"]
        assert run.params["x"] == trial.params["x"]
        assert run.params["user_attrs"] == {"note": f"trial {trial.number}"} or \
            run.params["user_attrs.note"] == f"trial {trial.number}"
        assert run.tags["optuna.state"] == trial.state.name
        points = [p for page in reader.iter_metric_history(run.run_id, "intermediate_value") for p in page]
        assert {p.step: p.value for p in points} == trial.intermediate_values
    assert [runs[f"trial-{n}"].status.value for n in range(5)] == \
        ["FINISHED", "FINISHED", "KILLED", "FAILED", "FINISHED"]
    assert parent.status.value == "FINISHED"
