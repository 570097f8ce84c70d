"""The facade logging to Azure ML (``TRACKBRIDGE_BACKEND=<an azureml remote>``) through the
real plugin and the limit proxy, and an unreachable workspace falling back to the spool."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from azureml_helpers import (  # noqa: F401
    RG, SUB, TOKEN, TOKEN_ENV, WS, AzureWorkspace, azureml_proxy, azureml_server, azureml_workspace, restore_http_env,
)
from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)
from mlflow import MlflowClient
from servers import free_port

import trackbridge as tb


def _remote(monkeypatch: pytest.MonkeyPatch, name: str, endpoint: str) -> None:
    prefix = f"TRACKBRIDGE_REMOTE_{name.upper()}_"
    for key, value in {"BACKEND": "azureml", "SUBSCRIPTION_ID": SUB, "RESOURCE_GROUP": RG, "WORKSPACE": WS,
                       "ENDPOINT": endpoint, "TOKEN_ENV": TOKEN_ENV, "HTTP_RETRIES": "0"}.items():
        monkeypatch.setenv(prefix + key, value)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    restore_http_env(monkeypatch)


def test_facade_logs_to_the_workspace(azureml_workspace: AzureWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    _remote(monkeypatch, "az", azureml_workspace.proxy.url)
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "az")
    project = azureml_workspace.experiment()
    with tb.start_run(project=project, name="facade ✓", config={"opt": {"lr": 0.01}}, tags={"k": "v"}) as run:
        for step in range(700):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    direct = MlflowClient(f"sqlite:///{azureml_workspace.server.root / 'mlflow.db'}")
    got = direct.get_run(run.remote_ids["az"])
    assert got.info.status == "FINISHED" and got.data.params == {"opt.lr": "0.01"} and got.data.tags["k"] == "v"
    assert sorted(m.step for m in direct.get_metric_history(got.info.run_id, "loss")) == list(range(700))
    batches = azureml_workspace.proxy.requests("runs/log-batch")
    assert batches and max(s.metrics for s in batches) <= 250
    assert all(s.status < 400 for s in batches)


def test_unreachable_workspace_falls_back_to_the_spool(monkeypatch: pytest.MonkeyPatch) -> None:
    _remote(monkeypatch, "down", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "down")
    start = time.perf_counter()
    run = tb.start_run(project="dead-azure", config={"a": 1})
    for step in range(100):
        run.log_metrics({"x": float(step)}, step=step)
    assert time.perf_counter() - start < 5  # the training loop never waits for the workspace
    run.finish(timeout=1)
    assert list((Path.cwd() / ".trackbridge" / "spool" / "down").glob(f"{run.id}.jsonl"))
