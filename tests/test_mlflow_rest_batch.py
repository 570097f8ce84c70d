"""Metric points POSTed straight to a real MLflow server's ``runs/log-batch`` (``rest_batch``).

The fast path must store exactly what ``MlflowClient.log_batch`` would, send the
same JSON body, and fail the same ways (closed port → transient, refusals →
plain ``BackendError`` with MLflow's message).
"""
from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

import pytest
from servers import MlflowServer, free_port

from trackbridge.backends import get_backend
from trackbridge.backends.mlflow import MlflowBackend, rest_batch
from trackbridge.backends.mlflow.writer import _metric_sizer, _request_budget, sized_batches
from trackbridge.errors import BackendError, RunNotFound, TransientBackendError
from trackbridge.model import MetricPoint

T0 = 1_700_000_000_000
KEYS = ["loss", "température/ü", "système.gpu 0:util-pct", "日本語"]
# (not -0.0 or ±1.7976931348623157e308: the server's SQL store gives back 0.0 and ±inf, on either path)
SPECIALS = [math.nan, math.inf, -math.inf, -2.5, 1e-300, 1e308, 0.1, -3]


def points() -> list[tuple[str, MetricPoint]]:
    """2,500 points over 4 keys (unicode too), NaN/±inf, repeated and negative steps, unordered timestamps."""
    out = []
    for i in range(2500):
        value = SPECIALS[i % len(SPECIALS)] if i % 3 == 0 else i / 7
        step = [i, -i, 2**40 + i, 0][i % 4]
        out.append((KEYS[i % len(KEYS)], MetricPoint(step, value, T0 + (i * 7919) % 100_003)))
    return out


def new_run(backend: MlflowBackend) -> str:
    writer = backend.writer()
    return writer.create_run(writer.ensure_experiment(f"rest-{uuid.uuid4().hex[:8]}"))


def history(backend: MlflowBackend, run_id: str, key: str) -> list[tuple[int, int, str]]:
    return sorted(p.key() for page in backend.reader().iter_metric_history(run_id, key) for p in page)


@pytest.fixture
def served(mlflow_server: MlflowServer) -> MlflowBackend:
    backend = get_backend("mlflow", {"tracking_uri": mlflow_server.url})
    assert isinstance(backend, MlflowBackend)
    return backend


def test_server_stores_exactly_what_was_sent_and_what_log_batch_stores(
    served: MlflowBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.entities import Metric

    client = served.connection.client
    sent = points()
    fast_run, slow_run = new_run(served), new_run(served)
    posts: list[int] = []
    real_post = rest_batch.post_log_batch

    def counting_post(store: Any, run_id: str, metrics: list[dict[str, Any]]) -> None:
        posts.append(len(metrics))
        real_post(store, run_id, metrics)

    monkeypatch.setattr(rest_batch, "post_log_batch", counting_post)
    with monkeypatch.context() as patch:
        patch.setattr(client, "log_batch", lambda *a, **k: pytest.fail("MlflowClient.log_batch used over REST"))
        served.writer().log_metrics(fast_run, sent)
    assert posts == [1000, 1000, 500]
    # the same points through MLflow's own client, for comparison
    for first in range(0, len(sent), 1000):
        client.log_batch(slow_run, metrics=[
            Metric(k, float(p.value), p.timestamp, p.step) for k, p in sent[first:first + 1000]
        ])

    for key in KEYS:
        expected = sorted(p.key() for k, p in sent if k == key)
        assert history(served, fast_run, key) == expected
        assert history(served, slow_run, key) == expected
    values = [p.value for key in KEYS for page in served.reader().iter_metric_history(fast_run, key) for p in page]
    assert any(math.isnan(v) for v in values)
    assert math.inf in values and -math.inf in values
    assert 1e-300 in values and 1e308 in values
    run = served.reader().get_run(fast_run)
    assert set(run.metrics) == set(KEYS)


def test_body_is_mlflows_protobuf_json(served: MlflowBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """The body equals (as JSON) what ``RestStore.log_batch`` renders for the same metrics."""
    import mlflow.utils.rest_utils as rest_utils
    from mlflow.entities import Metric
    from mlflow.protos.service_pb2 import LogBatch
    from mlflow.utils.proto_json_utils import message_to_json

    run_id = new_run(served)
    bodies: list[dict[str, Any]] = []
    real = rest_utils.http_request

    def spy(host_creds: Any, endpoint: str, method: str, **kwargs: Any) -> Any:
        if endpoint == rest_batch.LOG_BATCH_ENDPOINT:
            bodies.append(kwargs["json"])
        return real(host_creds, endpoint, method, **kwargs)

    monkeypatch.setattr(rest_utils, "http_request", spy)
    sent = points()[:40]
    served.writer().log_metrics(run_id, sent)
    expected = message_to_json(LogBatch(run_id=run_id, metrics=[
        Metric(k, float(p.value), p.timestamp, p.step).to_proto() for k, p in sent
    ]))
    assert len(bodies) == 1
    # compare as text so NaN/Infinity strings and float reprs must match exactly
    assert json.dumps(bodies[0], sort_keys=True) == json.dumps(json.loads(expected), sort_keys=True)


def test_metric_dicts_values_and_active_model_id() -> None:
    batch = [("k", MetricPoint(1, v, 2)) for v in (math.nan, math.inf, -math.inf, 1, True, 2.5)]
    assert [m["value"] for m in rest_batch.metric_dicts(batch)] == ["NaN", "Infinity", "-Infinity", 1.0, 1.0, 2.5]
    with_model = rest_batch.metric_dicts(batch[:1], "m-123")
    assert with_model == [{"key": "k", "value": "NaN", "timestamp": 2, "step": 1, "model_id": "m-123"}]


def test_metric_batches_stay_under_request_size() -> None:
    from mlflow.utils.validation import MAX_BATCH_LOG_REQUEST_SIZE

    extreme = [("é" * 250, MetricPoint(-(2**63), -1.7976931348623157e308, -(2**63))) for _ in range(3000)]
    batches = list(sized_batches(extreme, 1000, _request_budget(), _metric_sizer()))
    assert [p for b in batches for p in b] == extreme and len(batches) > 3
    for batch in batches:
        body = json.dumps({"run_id": "x" * 32, "metrics": rest_batch.metric_dicts(batch)})  # as requests sends it
        assert len(body) < MAX_BATCH_LOG_REQUEST_SIZE


def test_closed_port_is_transient_and_fast() -> None:
    backend = MlflowBackend({"tracking_uri": f"http://127.0.0.1:{free_port()}"})
    writer = backend.writer()
    started = time.monotonic()
    with pytest.raises(TransientBackendError) as info:
        writer.log_metrics(uuid.uuid4().hex, [("loss", MetricPoint(0, 1.0, T0))])
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"took {elapsed:.1f}s: MLflow's own retries were not shortened"
    assert "log 1 metric points" in str(info.value)


def test_refused_batches_are_backend_errors_with_mlflows_message(served: MlflowBackend) -> None:
    writer = served.writer()
    run_id = new_run(served)
    with pytest.raises(BackendError) as info:
        writer.log_metrics(run_id, [("a//b", MetricPoint(0, 1.0, T0))])
    assert type(info.value) is BackendError
    assert "log 1 metric points" in str(info.value)
    assert "INVALID_PARAMETER_VALUE" in str(info.value) and 'Invalid value "a//b"' in str(info.value)

    writer.delete_run(run_id)
    with pytest.raises(BackendError) as info:
        writer.log_metrics(run_id, [("ok", MetricPoint(0, 1.0, T0))])
    assert type(info.value) is BackendError
    assert "must be in the 'active' state. Current state is deleted" in str(info.value)

    with pytest.raises(RunNotFound):
        writer.log_metrics(uuid.uuid4().hex, [("ok", MetricPoint(0, 1.0, T0))])


def test_sqlite_store_keeps_log_batch(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    Path(sqlite_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    backend = get_backend("mlflow", {"tracking_uri": sqlite_uri})
    assert isinstance(backend, MlflowBackend)
    run_id = new_run(backend)
    monkeypatch.setattr(rest_batch, "post_log_batch", lambda *a: pytest.fail("REST path on a SQL store"))
    sent = points()
    backend.writer().log_metrics(run_id, sent)
    for key in KEYS:
        assert history(backend, run_id, key) == sorted(p.key() for k, p in sent if k == key)


def test_remote_credentials_reach_the_direct_request(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token of the remote's options (injected into the store's ``get_host_creds``) is used."""
    import mlflow.utils.rest_utils as rest_utils

    backend = MlflowBackend({"tracking_uri": mlflow_server.url, "token": "s3cret"})
    run_id = new_run(backend)
    seen: list[Any] = []
    real = rest_utils.http_request

    def spy(host_creds: Any, endpoint: str, method: str, **kwargs: Any) -> Any:
        if endpoint == rest_batch.LOG_BATCH_ENDPOINT:
            seen.append(host_creds)
        return real(host_creds, endpoint, method, **kwargs)

    monkeypatch.setattr(rest_utils, "http_request", spy)
    backend.writer().log_metrics(run_id, [("loss", MetricPoint(0, 1.0, T0))])
    assert [c.token for c in seen] == ["s3cret"]
    assert seen[0].host == mlflow_server.url
