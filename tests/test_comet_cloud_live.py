"""Against Comet's real cloud, when COMET_API_KEY is set (never in CI by default):
a run logged live through the writer is read back through comet_ml.API.  The key (and
COMET_WORKSPACE / COMET_URL_OVERRIDE) are read at import, before the suite's isolation
clears COMET_API* for every test, and put back for these tests only."""
from __future__ import annotations

import os
import time
import uuid

import pytest

from trackbridge.model import MetricPoint, RunStatus

_LIVE = {k: os.environ[k] for k in ("COMET_API_KEY", "COMET_WORKSPACE", "COMET_URL_OVERRIDE") if os.environ.get(k)}

pytestmark = [pytest.mark.live, pytest.mark.skipif("COMET_API_KEY" not in _LIVE, reason="needs COMET_API_KEY")]


def test_live_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    from trackbridge.backends.comet.backend import CometBackend

    for key, value in _LIVE.items():
        monkeypatch.setenv(key, value)
    backend = CometBackend({})
    writer, reader = backend.writer(), backend.reader()
    project = f"trackbridge-live-{uuid.uuid4().hex[:8]}"
    run_id = writer.create_run(writer.ensure_experiment(project), name="live",
                               tags={"trackbridge.source.platform": "test", "trackbridge.source.run_id": project})
    assert writer.offline_runs == set(), "Comet was not reachable"
    writer.log_params(run_id, {"opt|lr": "0.1"})
    writer.log_metrics(run_id, [("m", MetricPoint(i, i / 10, 1_700_000_000_000 + i)) for i in range(500)])
    writer.set_labels(run_id, ["live"])
    writer.finish_run(run_id, RunStatus.FINISHED)
    writer.close()
    deadline = time.monotonic() + 120
    while True:  # Comet processes uploads asynchronously
        record = reader.get_run(run_id)
        points = [p for page in reader.iter_metric_history(run_id, "m") for p in page]
        if len(points) == 500 or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert [(p.step, p.timestamp) for p in points] == [(i, 1_700_000_000_000 + i) for i in range(500)]
    assert record.params == {"opt|lr": "0.1"} and record.labels == ["live"]
    assert record.tags["trackbridge.source.run_id"] == project
