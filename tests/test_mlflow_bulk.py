"""The bulk path into MLflow SQL stores (:mod:`trackbridge.backends.mlflow.bulk`): what
MLflow's own client reads back after a bulk write is identical, field by field, to what
``log_batch`` writes (every point, NaN/±inf, duplicates, a re-sent batch, the latest
value per key), on an embedded sqlite store and on a real PostgreSQL; a store at a schema
revision this MLflow does not describe gets ``log_batch`` and a log line saying why."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import sqlalchemy
from mlflow import MlflowClient

from trackbridge.backends.mlflow.backend import MlflowBackend
from trackbridge.backends.mlflow.bulk import BulkMetrics
from trackbridge.model import MetricPoint

T0 = 1_700_000_000_000


def _points() -> list[list[tuple[str, MetricPoint]]]:
    """Batches as a copy sends them, with what makes latest_metrics and dedup tricky."""
    loss = [("loss", MetricPoint(i, math.sin(i), T0 + i)) for i in range(2500)]
    loss[3] = ("loss", MetricPoint(3, math.nan, T0 + 3))
    loss[5] = ("loss", MetricPoint(5, math.inf, T0 + 5))
    loss[8] = ("loss", MetricPoint(8, -math.inf, T0 + 8))
    odd = [("odd", MetricPoint(s, float(v), T0 + t)) for s, v, t in
           [(5, 1.0, 10), (1, 2.0, 11), (5, 0.5, 12), (5, 0.5, 12), (9, math.nan, 13), (2, 3.0, 14)]]
    late = [("loss", MetricPoint(1, 7.0, T0 + 99_999))]  # below the latest step: latest must not move
    return [loss[:1000], loss[1000:2000] + odd, loss[2000:], late, loss[1000:1010]]  # the last: re-sent


def _write(uri: str, bulk: bool) -> tuple[MlflowClient, str]:
    writer = MlflowBackend({"tracking_uri": uri}).writer()
    if not bulk:
        writer._bulk_metrics = None  # noqa: SLF001 - the slow path, for comparison
    run_id = writer.create_run(writer.ensure_experiment("bulk"), name="r", start_time=T0)
    for batch in _points():
        writer.log_metrics(run_id, batch)
    assert (writer._bulk() is not None) == bulk  # noqa: SLF001
    return MlflowClient(uri), run_id


def _read(client: MlflowClient, run_id: str) -> dict:
    def key(m):  # noqa: ANN001, ANN202
        return (m.step, m.timestamp, "nan" if math.isnan(m.value) else m.value)

    run = client.get_run(run_id)
    return {
        "history": {k: sorted(map(key, client.get_metric_history(run_id, k))) for k in ("loss", "odd")},
        "latest": {k: key(m) for k, m in ((m.key, m) for m in run.data._metric_objs)},
    }


def _compare(fast_uri: str, slow_uri: str) -> None:
    fast, slow = _read(*_write(fast_uri, True)), _read(*_write(slow_uri, False))
    assert len(fast["history"]["loss"]) == 2501 and len(fast["history"]["odd"]) == 5
    assert fast == slow


def test_bulk_writes_what_log_batch_writes_on_sqlite(tmp_path: Path) -> None:
    _compare(f"sqlite:///{tmp_path / 'fast.db'}", f"sqlite:///{tmp_path / 'slow.db'}")


def test_bulk_writes_what_log_batch_writes_on_postgresql(postgres) -> None:  # noqa: ANN001 - fixture
    _compare(postgres.uri("bulk_fast"), postgres.uri("bulk_slow"))


def test_a_store_at_another_schema_revision_gets_log_batch(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    client, run_id = _write(uri, True)
    engine = sqlalchemy.create_engine(uri)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = 'feedfacecafe'"))
    store = client._tracking_client.store  # noqa: SLF001
    with caplog.at_level(logging.WARNING, logger="trackbridge"):
        assert BulkMetrics.open(store) is None
    assert "schema revision feedfacecafe" in caplog.text and "log_batch" in caplog.text


def test_a_database_the_bulk_path_does_not_know_gets_log_batch(caplog) -> None:  # noqa: ANN001 - fixture
    """MySQL (no ``ON CONFLICT`` upsert for latest_metrics) keeps MLflow's own log_batch."""
    import logging
    from types import SimpleNamespace

    from trackbridge.backends.mlflow.bulk import BulkMetrics

    store = SimpleNamespace(ManagedSessionMaker=None, engine=SimpleNamespace(dialect=SimpleNamespace(name="mysql")))
    with caplog.at_level(logging.INFO, logger="trackbridge"):
        assert BulkMetrics.open(store) is None
    assert "not mysql" in caplog.text


def _sqlite_bulk(tmp_path: Path) -> tuple[object, str, BulkMetrics]:
    writer = MlflowBackend({"tracking_uri": f"sqlite:///{tmp_path / 'proc.db'}"}).writer()
    run_id = writer.create_run(writer.ensure_experiment("bulk"), name="r", start_time=T0)
    writer.log_metrics(run_id, [("loss", MetricPoint(0, 1.0, T0))])
    bulk = writer._bulk()  # noqa: SLF001
    assert bulk is not None and bulk._process is not None  # noqa: SLF001 - a sqlite file: its own process
    return writer, run_id, bulk


def _stored(tmp_path: Path) -> int:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'proc.db'}")
    with engine.connect() as conn:
        return conn.execute(sqlalchemy.text("SELECT count(*) FROM metrics")).scalar()


def test_a_batch_the_store_refuses_is_rolled_back_and_raised_as_sqlite_raised_it(tmp_path: Path) -> None:
    """An error inside the writer process comes back as the same sqlite3 error, with its
    transaction rolled back (a point of another run's id breaks MLflow's foreign key)."""
    import sqlite3

    writer, _run_id, bulk = _sqlite_bulk(tmp_path)
    columns = {"key": ["loss", "loss"], "timestamp": [T0, T0 + 1], "step": [1, 2], "value": [1.0, 2.0],
               "is_nan": [False, False], "run_uuid": ["0" * 32, "0" * 32]}
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        bulk._process.write(columns, [])  # noqa: SLF001
    assert _stored(tmp_path) == 1
    writer.close()


def test_a_writer_process_that_dies_is_a_clear_error_and_the_copy_can_be_resumed(tmp_path: Path) -> None:
    writer, run_id, bulk = _sqlite_bulk(tmp_path)
    bulk._process._proc.kill()  # noqa: SLF001 - as the OOM killer would
    with pytest.raises(Exception, match="process writing the MLflow store stopped") as raised:
        writer.log_metrics(run_id, [("loss", MetricPoint(1, 2.0, T0 + 1))])
    assert "Re-run the same copy" in str(raised.value)
    writer.close()
    again = MlflowBackend({"tracking_uri": f"sqlite:///{tmp_path / 'proc.db'}"}).writer()
    again.log_metrics(run_id, [("loss", MetricPoint(1, 2.0, T0 + 1))])
    again.close()
    assert _stored(tmp_path) == 2


def test_the_writer_process_prints_nothing(tmp_path: Path, capfd) -> None:  # noqa: ANN001 - fixture
    """The child shares the copy's stderr: a warning there is one the user sees on every
    copy into a sqlite store (``python -m`` on a module its package imports printed one)."""
    writer, run_id, _bulk = _sqlite_bulk(tmp_path)
    writer.log_metrics(run_id, [("loss", MetricPoint(1, 2.0, T0 + 1))])
    writer.close()
    assert _stored(tmp_path) == 2
    err = capfd.readouterr().err  # MLflow's own INFO lines from creating the store are there too
    assert "Warning" not in err and "Traceback" not in err, err


def test_runs_copied_in_parallel_share_one_bulk_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The transfers' threads reach the first batch together: they must share one bulk path
    (and so one writer process), not each open one that then race for the file's lock."""
    import threading
    import time

    opened: list[BulkMetrics | None] = []
    real_open = BulkMetrics.open

    def slow_open(store):  # noqa: ANN001, ANN202 - widens the window in which the threads race
        time.sleep(0.2)
        opened.append(real_open(store))
        return opened[-1]

    monkeypatch.setattr(BulkMetrics, "open", staticmethod(slow_open))
    writer = MlflowBackend({"tracking_uri": f"sqlite:///{tmp_path / 'par.db'}"}).writer()
    experiment = writer.ensure_experiment("bulk")
    runs = [writer.create_run(experiment, name=f"r{i}", start_time=T0) for i in range(4)]
    threads = [threading.Thread(target=writer.log_metrics, args=(run_id, [("loss", MetricPoint(0, 1.0, T0))]))
               for run_id in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert len(opened) == 1
    with sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'par.db'}").connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM metrics")).scalar() == 4
