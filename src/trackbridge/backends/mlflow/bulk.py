"""Metric points into an MLflow SQL store (``sqlite:``, or a team server's database URI)
as multi-row inserts, through MLflow's own SQLAlchemy models.

Why: ``log_batch`` costs ~126 µs of CPU per point in MLflow's SQL store (an ORM object,
a primary-key check and a ``latest_metrics`` comparison each), which made a 4M-point
copy into an embedded store 13x slower than into the archive.  Here a batch is one
``INSERT ... VALUES (...), (...)`` of the ``metrics`` table and one read-compare-write
of the batch's keys in ``latest_metrics``, with MLflow's own rules:

* a value is stored as MLflow sanitises it (NaN as 0 with ``is_nan``, ±inf as the
  largest float), so MLflow's client reads back exactly what ``log_batch`` would store;
* ``latest_metrics`` keeps, per key, the point with the highest (step, timestamp,
  value), the rows locked ``FOR UPDATE`` on databases that lock (PostgreSQL, MySQL);
* a batch that hits the primary key (a point already stored: a resumed copy) is rolled
  back whole and sent through ``log_batch``, which skips the duplicates as MLflow does.

Used only when the store's schema is the one the installed MLflow's models describe (its
alembic revision is the migrations' head); any other store gets ``log_batch``, and one
log line says why.
"""
from __future__ import annotations

import logging
import math
import threading
from contextlib import nullcontext
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trackbridge.model import MetricPoint

log = logging.getLogger("trackbridge")

#: the columns of MLflow's ``metrics`` and ``latest_metrics`` tables, in the order rows are built here.
COLUMNS = ("key", "timestamp", "step", "value", "is_nan", "run_uuid")
#: rows per sqlite INSERT: 6 parameters each, under sqlite's 32,766 parameters per statement.
ROWS_PER_STATEMENT = 5_000


def _head_revision() -> str:
    """The alembic head of the installed MLflow's migrations: the schema its models describe."""
    import mlflow.store.db_migrations as migrations
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return str(ScriptDirectory.from_config(config).get_current_head())


class BulkMetrics:
    """Multi-row metric inserts into one SQL store (thread-safe: a session per call)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._active: set[str] = set()
        self._lock = threading.Lock()
        #: sqlite lets one transaction write at a time, and a writer it keeps waiting sleeps
        #: in growing steps (its busy handler) past the moment the lock frees: runs copied
        #: in parallel take turns here instead, woken at once.  Databases with row locks
        #: write in parallel.
        self._one_writer: Any = threading.Lock() if store.engine.dialect.name == "sqlite" else nullcontext()
        #: compiled INSERTs by table: (head, row group, parameter order).
        self._statements: dict[str, tuple[str, str, tuple[int, ...]]] = {}

    @classmethod
    def open(cls, store: Any) -> "BulkMetrics | None":
        """The bulk path for ``store`` (MLflow's ``SqlAlchemyStore``), or ``None`` when it is
        another kind of store or a schema revision this MLflow does not describe."""
        if not hasattr(store, "ManagedSessionMaker") or not hasattr(store, "engine"):
            return None
        import sqlalchemy

        try:
            with store.engine.connect() as conn:
                revision = conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar()
        except sqlalchemy.exc.SQLAlchemyError as exc:
            log.info("trackbridge: the MLflow store's schema revision cannot be read (%s): metrics go "
                     "through log_batch", type(exc).__name__)
            return None
        head = _head_revision()
        if revision != head:
            log.warning("trackbridge: the MLflow store is at schema revision %s, the installed mlflow describes %s: "
                        "metrics go through log_batch (slower). Upgrade the store with `mlflow db upgrade URI` "
                        "or install the mlflow that made it, for the bulk path.", revision, head)
            return None
        return cls(store)

    def log(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> bool:
        """Insert ``points`` in one transaction; ``False`` when some were already stored
        (nothing written: the caller sends them through ``log_batch``)."""
        import sqlalchemy
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

        if not points:
            return True
        sanitize, finite = self.store.sanitize_metric_value, math.isfinite
        unique: dict[tuple[Any, ...], None] = {}  # MLflow's dedup: a point stored once, first order kept
        for key, p in points:
            value = float(p.value)
            is_nan = False
            if not finite(value):
                is_nan, value = sanitize(value)
            unique[(key, int(p.timestamp), int(p.step), value, is_nan, run_id)] = None
        rows = list(unique)
        latest: dict[str, tuple[Any, ...]] = {}
        for row in rows:
            best = latest.get(row[0])
            if best is None or (row[2], row[1], row[3]) > (best[2], best[1], best[3]):
                latest[row[0]] = row
        with self._one_writer, self.store.ManagedSessionMaker(read_only=False) as session:
            self._check_active(run_id, session)
            try:
                self._insert(session, SqlMetric.__table__, rows)
                self._update_latest(session, SqlLatestMetric, run_id, latest)
                session.commit()
            except sqlalchemy.exc.IntegrityError:
                session.rollback()
                return False
        return True

    def _insert(self, session: Any, table: Any, rows: list[tuple[Any, ...]]) -> None:
        """``rows`` (in :data:`COLUMNS` order) into ``table``.  On sqlite, statements of
        :data:`ROWS_PER_STATEMENT` rows each (``INSERT ... VALUES (...), (...)``): one
        ``sqlite3_step`` per statement instead of per row, and each step releases Python's
        GIL, which a busy reader thread then holds for up to 5 ms — ``executemany`` under a
        concurrent reader crawled.  Other databases get SQLAlchemy's own batched insert."""
        import sqlalchemy

        conn = session.connection()
        if conn.dialect.paramstyle != "qmark":
            session.execute(sqlalchemy.insert(table), [dict(zip(COLUMNS, row)) for row in rows])
            return
        head, group, order = self._statements.get(table.name) or self._compile(table, conn.dialect)
        if order != tuple(range(len(COLUMNS))):
            rows = [tuple(row[i] for i in order) for row in rows]
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            part = rows[start:start + ROWS_PER_STATEMENT]
            conn.exec_driver_sql(head + ", ".join([group] * len(part)), tuple(v for row in part for v in row))

    def _compile(self, table: Any, dialect: Any) -> tuple[str, str, tuple[int, ...]]:
        """The table's one-row INSERT of :data:`COLUMNS` as SQLAlchemy compiles it from MLflow's
        model, cut into its head (``INSERT INTO t (...) VALUES ``) and its row group, and where
        each of its parameters is in a row."""
        import sqlalchemy

        compiled = sqlalchemy.insert(table).values({c: sqlalchemy.bindparam(c) for c in COLUMNS}).compile(
            dialect=dialect)
        sql = str(compiled)
        cut = sql.rindex(" VALUES ") + len(" VALUES ")
        self._statements[table.name] = (sql[:cut], sql[cut:], tuple(COLUMNS.index(c) for c in compiled.positiontup))
        return self._statements[table.name]

    def _check_active(self, run_id: str, session: Any) -> None:
        """MLflow refuses points for a deleted run: checked once per run."""
        with self._lock:
            if run_id in self._active:
                return
        run = self.store._get_run(run_uuid=run_id, session=session)
        self.store._check_run_is_active(run)
        with self._lock:
            self._active.add(run_id)

    def _update_latest(self, session: Any, table: Any, run_id: str, latest: dict[str, tuple[Any, ...]]) -> None:
        """MLflow's ``latest_metrics`` rule for the batch's keys: the higher (step,
        timestamp, value) wins; keys are locked in one order (as MLflow does, against deadlocks)."""
        keys = sorted(latest)
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            stored = {m.key: m for m in session.query(table)
                      .filter(table.run_uuid == run_id, table.key.in_(chunk))
                      .order_by(table.run_uuid, table.key).with_for_update().all()}
            new = []
            for key in chunk:
                row, old = latest[key], stored.get(key)
                if old is None:
                    new.append(row)
                elif (row[2], row[1], row[3]) > (old.step, old.timestamp, old.value):
                    _key, old.timestamp, old.step, old.value, old.is_nan, _run = row
            if new:
                self._insert(session, table.__table__, new)
