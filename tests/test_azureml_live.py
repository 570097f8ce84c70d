"""Against a real Azure ML workspace, when its variables are set (never in CI by default):
AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME and a credential
(TRACKBRIDGE_LIVE_AZUREML_TOKEN_ENV naming a token variable, or the service principal
variables, or an Azure CLI login).  The values are read at import, before the suite's
isolation clears AZURE_* for every test, and put back for these tests only."""
from __future__ import annotations

import math
import os
import uuid

import pytest

from trackbridge.model import MetricPoint, RunStatus

_NAMES = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME", "AZURE_CLIENT_ID",
          "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZUREML_ENDPOINT", "TRACKBRIDGE_LIVE_AZUREML_TOKEN_ENV")
_LIVE = {k: os.environ[k] for k in _NAMES if os.environ.get(k)}
_TOKEN_ENV = _LIVE.get("TRACKBRIDGE_LIVE_AZUREML_TOKEN_ENV")
if _TOKEN_ENV and os.environ.get(_TOKEN_ENV):
    _LIVE[_TOKEN_ENV] = os.environ[_TOKEN_ENV]
_READY = all(k in _LIVE for k in _NAMES[:3])

pytestmark = [pytest.mark.live,
              pytest.mark.skipif(not _READY, reason="needs AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME")]


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    from trackbridge.backends.azureml.backend import AzureMLBackend

    for key, value in _LIVE.items():
        monkeypatch.setenv(key, value)
    return AzureMLBackend({"token_env": _TOKEN_ENV} if _TOKEN_ENV else {})


def test_live_round_trip(backend) -> None:  # noqa: ANN001
    writer, reader = backend.writer(), backend.reader()
    exp = writer.ensure_experiment(f"trackbridge-live-{uuid.uuid4().hex[:8]}")
    run_id = writer.create_run(exp, name="live", start_time=1_700_000_000_000,
                               tags={"mlflow.source.name": "live.py", "k": "v"}, user="someone")
    writer.log_metrics(run_id, [("m", MetricPoint(i, math.cos(i), 1_700_000_000_000 + i)) for i in range(600)])
    writer.finish_run(run_id, RunStatus.FINISHED, 1_700_000_100_000)
    record = reader.get_run(run_id)
    assert record.tags["mlflow.source.name"] == "live.py" and record.tags["trackbridge.source.user"] == "someone"
    assert sum(len(p) for p in reader.iter_metric_history(run_id, "m")) == 600
    assert any(line.startswith("tracking URI: azureml://") for line in backend.diagnose(resolve=True))
