"""Real ``mlflow.sklearn.autolog()`` beside the facade: on the MLflow backend a fit inside
``tb.start_run()`` logs into the trackbridge run (one run, autolog's and the custom
values together, read back with MlflowClient); on another backend a warning says where
autolog's values went."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

import mlflow  # noqa: E402
import mlflow.sklearn  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from facade_helpers import stop_facade_workers  # noqa: E402,F401  (autouse fixture)

import trackbridge as tb  # noqa: E402


@pytest.fixture
def autolog() -> Iterator[None]:
    """sklearn autolog without models (the slow part) unless a test turns them on."""
    mlflow.sklearn.autolog(silent=True, log_datasets=False, log_models=False)
    yield
    mlflow.sklearn.autolog(disable=True)


def _fit() -> LogisticRegression:
    x, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=200, C=0.5).fit(x[::3], y[::3])


def _runs(client: MlflowClient, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found is not None else []


def test_autolog_logs_into_the_trackbridge_run(isolated_env: Path, autolog: None) -> None:
    mlflow.sklearn.autolog(silent=True, log_datasets=False)  # with its model
    with tb.start_run(project="auto", name="fit", config={"custom": 1}) as run:
        _fit()
        run.log_metrics({"custom_metric": 0.5}, step=0)
    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    [found] = _runs(client, "auto")
    assert found.info.run_name == "fit" and found.info.run_id == run.remote_ids["mlflow"]
    assert found.info.status == "FINISHED"
    assert found.data.params["custom"] == "1"
    assert found.data.params["C"] == "0.5" and found.data.params["max_iter"] == "200"  # autolog's
    assert "training_accuracy_score" in found.data.metrics and found.data.metrics["custom_metric"] == 0.5
    models = client.search_logged_models([found.info.experiment_id])
    assert [m.source_run_id for m in models] == [found.info.run_id]
    assert _runs(client, "Default") == [], "autolog must not make a run of its own"
    assert mlflow.active_run() is None, "MLflow's active run ends with the trackbridge run"


def test_a_failing_fit_leaves_the_run_failed(isolated_env: Path, autolog: None) -> None:
    with pytest.raises(RuntimeError):
        with tb.start_run(project="auto-fail", name="fit"):
            _fit()
            raise RuntimeError("boom")
    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    [found] = _runs(client, "auto-fail")
    assert found.info.status == "FAILED" and "C" in found.data.params


def test_nested_runs_each_get_their_own_fit(isolated_env: Path, autolog: None) -> None:
    with tb.start_run(project="auto-nested", name="parent"):
        for c in (0.1, 1.0):
            with tb.start_run(name=f"C={c}"):
                x, y = load_iris(return_X_y=True)
                LogisticRegression(max_iter=200, C=c).fit(x[::3], y[::3])
    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    runs = {r.info.run_name: r for r in _runs(client, "auto-nested")}
    assert sorted(runs) == ["C=0.1", "C=1.0", "parent"]
    assert runs["C=0.1"].data.params["C"] == "0.1" and runs["C=1.0"].data.params["C"] == "1.0"
    assert "C" not in runs["parent"].data.params


def test_another_backend_warns_where_autolog_goes(isolated_env: Path, autolog: None,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trackbridge"):
        with tb.start_run(project="auto-dir", name="fit", backend="dir:./archive"):
            _fit()
    [message] = [r.getMessage() for r in caplog.records if "autolog" in r.getMessage()]
    assert "logs to dir, not MLflow" in message and "separate MLflow run" in message


def test_autolog_enabled_inside_the_run_is_warned_about(isolated_env: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    try:
        with caplog.at_level(logging.WARNING, logger="trackbridge"):
            with tb.start_run(project="auto-late", name="fit"):
                mlflow.sklearn.autolog(silent=True, log_datasets=False, log_models=False)
                _fit()
    finally:
        mlflow.sklearn.autolog(disable=True)
    assert any("was enabled after run fit started" in r.getMessage() for r in caplog.records)
