"""Metric points into an MLflow SQL store (``sqlite:``, or a team server's database URI)
as multi-row inserts, through MLflow's own SQLAlchemy models.

Why: ``log_batch`` costs ~126 µs of CPU per point in MLflow's SQL store (an ORM object,
a primary-key check and a ``latest_metrics`` comparison each), which made a 4M-point
copy into an embedded store 13x slower than into the archive.  Here a batch is one
``INSERT ... VALUES (...), (...)`` of the ``metrics`` table and one upsert of the batch's
keys in ``latest_metrics``, with MLflow's own rules:

* a value is stored as MLflow sanitises it (NaN as 0 with ``is_nan``, ±inf as the
  largest float), so MLflow's client reads back exactly what ``log_batch`` would store;
* a point already stored (a resumed copy), or twice in a batch, is stored once
  (``ON CONFLICT DO NOTHING`` on MLflow's primary key), as ``log_batch`` skips it;
* ``latest_metrics`` keeps, per key, the point with the highest (step, timestamp,
  value), keys written in one order (as MLflow locks them, against deadlocks).

Used only when the store's schema is the one the installed MLflow's models describe (its
alembic revision is the migrations' head); any other store gets ``log_batch``, and one
log line says why.

On a sqlite file the inserts go through one connection of their own, never handed to
MLflow (its sessions run ``PRAGMA case_sensitive_like`` on every checkout, which expires a
connection's prepared statements: re-preparing a 5,000-row ``INSERT`` took longer than
running it), in a process of its own (:mod:`.sqlite_process`: the writing then uses the
machine's other core), with MLflow's session settings (foreign keys on, a 20 s busy timeout).
"""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from collections.abc import Sequence
from contextlib import nullcontext
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from trackbridge.backends.mlflow.sqlite_process import SqliteProcess, multi_row
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
    """Multi-row metric inserts into one SQL store (thread-safe: a connection per call, or
    on sqlite the one connection of its own, taken in turns)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._active: set[str] = set()
        self._lock = threading.Lock()
        #: sqlite writes one transaction at a time anyway: runs copied in parallel take
        #: turns on this lock and its one connection.  Databases with row locks write in
        #: parallel, each call on a pooled connection.
        self._sqlite = store.engine.dialect.name == "sqlite"
        self._own: Any = None
        #: the sqlite file's writer process (:mod:`.sqlite_process`), started at the first batch.
        self._process: SqliteProcess | None = None
        #: extra PRAGMAs for that process (a benchmark's reference: never set by a copy).
        self.pragmas: tuple[str, ...] = ()
        self._one_writer: Any = threading.Lock() if self._sqlite else nullcontext()
        #: compiled INSERTs by table name.
        self._statements: dict[str, _Insert] = {}

    @classmethod
    def open(cls, store: Any) -> "BulkMetrics | None":
        """The bulk path for ``store`` (MLflow's ``SqlAlchemyStore``), or ``None`` when it is
        another kind of store or a schema revision this MLflow does not describe."""
        if not hasattr(store, "ManagedSessionMaker") or not hasattr(store, "engine"):
            return None
        import sqlalchemy

        if store.engine.dialect.name not in _UPSERTS:
            log.info("trackbridge: the bulk path knows sqlite and PostgreSQL stores, not %s: metrics go "
                     "through log_batch", store.engine.dialect.name)
            return None

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

    def log(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        """Insert ``points`` in one transaction.  A point already stored (a resumed copy)
        or twice in the batch is skipped by the database (``ON CONFLICT DO NOTHING`` on
        MLflow's primary key), as ``log_batch`` skips it."""
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

        if not points:
            return
        self._check_active(run_id)
        insert = self._statement(SqlMetric.__table__)
        columns = self._columns(run_id, points)  # built before taking turns: Python time
        latest = _latest(columns)
        path = self._sqlite and _file_of(self.store.engine)
        if path:
            with self._one_writer:
                if self._process is None:
                    self._process = SqliteProcess(path, self._setup(insert, SqlLatestMetric.__table__))
                self._process.write(columns, [latest[key] for key in sorted(latest)])
            return
        with self._one_writer, self._connection() as conn, conn.begin():
            insert.run(conn, columns)
            self._update_latest(conn, SqlLatestMetric.__table__, latest)

    def _connection(self) -> Any:
        """A connection for one call: on sqlite the one of this object (opened once, with
        MLflow's session settings), elsewhere one from the store's pool."""
        if not self._sqlite:
            return self.store.engine.connect()
        if self._own is None:
            self._own = self.store.engine.connect()
            for pragma in ("foreign_keys = ON", "busy_timeout = 20000"):
                self._own.exec_driver_sql(f"PRAGMA {pragma}")
            self._own.commit()
        return nullcontext(self._own)

    def _setup(self, insert: "_Insert", latest: Any) -> dict[str, Any]:
        """The SQL of the writer process, as SQLAlchemy compiles it from MLflow's models."""
        import sqlalchemy

        upsert = _latest_upsert(latest, self.store.engine.dialect).values(
            {c: sqlalchemy.bindparam(c) for c in COLUMNS}).compile(dialect=self.store.engine.dialect)
        return {"insert_names": insert.names, "insert_head": insert.head, "insert_group": insert.group,
                "insert_tail": insert.tail, "rows_per_statement": ROWS_PER_STATEMENT,
                "upsert": str(upsert), "upsert_names": tuple(upsert.positiontup), "pragmas": self.pragmas}

    def close(self) -> None:
        """Stop the writer process; hand the sqlite connection back to the store's pool."""
        with self._one_writer:
            if self._process is not None:
                self._process.close()
                self._process = None
            if self._own is not None:
                self._own.close()
                self._own = None

    def _columns(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> dict[str, list[Any]]:
        """The batch column by column (:data:`COLUMNS`), values as MLflow sanitises them.
        Built with ``map``: a Python loop per point, and building rows, were each a tenth
        of a copy into sqlite."""
        pts = list(map(itemgetter(1), points))
        values = list(map(float, map(attrgetter("value"), pts)))
        if all(map(math.isfinite, values)):
            flags = [False] * len(values)
        else:
            sanitized = [(False, v) if math.isfinite(v) else self.store.sanitize_metric_value(v) for v in values]
            flags, values = [f for f, _ in sanitized], [v for _, v in sanitized]
        return {"key": list(map(itemgetter(0), points)), "timestamp": list(map(int, map(attrgetter("timestamp"), pts))),
                "step": list(map(int, map(attrgetter("step"), pts))), "value": values, "is_nan": flags,
                "run_uuid": [run_id] * len(values)}

    def _statement(self, table: Any) -> "_Insert":
        """The table's ``INSERT ... ON CONFLICT DO NOTHING`` of :data:`COLUMNS`, as SQLAlchemy
        compiles it from MLflow's model for the store's database (compiled once)."""
        found = self._statements.get(table.name)
        if found is None:
            found = self._statements[table.name] = _Insert.compile(table, self.store.engine.dialect)
        return found

    def _check_active(self, run_id: str) -> None:
        """MLflow refuses points for a deleted run: checked once per run."""
        with self._lock:
            if run_id in self._active:
                return
        with self.store.ManagedSessionMaker() as session:
            run = self.store._get_run(run_uuid=run_id, session=session)
            self.store._check_run_is_active(run)
        with self._lock:
            self._active.add(run_id)

    def _update_latest(self, conn: Any, table: Any, latest: dict[str, dict[str, Any]]) -> None:
        """MLflow's ``latest_metrics`` rule for the batch's keys, as one upsert: a key's row
        is replaced when the new point has the higher (step, timestamp, value); keys in
        one order (as MLflow locks them, against deadlocks).  Reading the rows first cost
        a statement more per batch inside sqlite's one-writer section."""
        conn.execute(_latest_upsert(table, conn.dialect), [latest[key] for key in sorted(latest)])


@dataclass(frozen=True)
class _Insert:
    """One table's ``INSERT ... ON CONFLICT DO NOTHING``.  On sqlite it is sent as
    statements of :data:`ROWS_PER_STATEMENT` rows each (``VALUES (...), (...)``): one
    ``sqlite3_step`` per statement instead of per row, and each step releases Python's
    GIL, which a busy reader thread then holds for up to 5 ms (``executemany`` under a
    concurrent reader crawled).  Other databases get SQLAlchemy's own batched insert."""

    #: the column of each position of a row.
    names: tuple[str, ...]
    statement: Any
    #: the multi-row text around its row groups (qmark drivers: sqlite), else None.
    head: str | None = None
    group: str = ""
    tail: str = ""

    @classmethod
    def compile(cls, table: Any, dialect: Any) -> "_Insert":
        import sqlalchemy

        statement = _dialect(dialect).insert(table).values(
            {c: sqlalchemy.bindparam(c) for c in COLUMNS}).on_conflict_do_nothing()
        if dialect.paramstyle != "qmark":
            return cls(COLUMNS, statement)
        compiled = statement.compile(dialect=dialect)
        sql = str(compiled)
        start = sql.index(" VALUES ") + len(" VALUES ")
        end = sql.index(")", start) + 1
        return cls(tuple(compiled.positiontup), statement, sql[:start], sql[start:end], sql[end:])

    def run(self, conn: Any, columns: dict[str, list[Any]]) -> None:
        if self.head is None:
            conn.execute(self.statement, [dict(zip(COLUMNS, row)) for row in zip(*(columns[c] for c in COLUMNS))])
            return
        for sql, flat in multi_row(self.head, self.group, self.tail, self.names, ROWS_PER_STATEMENT, columns):
            conn.exec_driver_sql(sql, tuple(flat))


#: SQLAlchemy's dialect module with ``insert().on_conflict_do_*`` per database.
_UPSERTS = {"sqlite": "sqlite", "postgresql": "postgresql"}


def _dialect(dialect: Any) -> Any:
    import importlib

    return importlib.import_module(f"sqlalchemy.dialects.{_UPSERTS[dialect.name]}")


def _latest_upsert(table: Any, dialect: Any) -> Any:
    """MLflow's ``latest_metrics`` rule as an upsert: a key's row is replaced when the new
    point has the higher (step, timestamp, value)."""
    import sqlalchemy

    c = table.c
    insert = _dialect(dialect).insert(table)
    new = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[c.key, c.run_uuid],
        set_={"timestamp": new.timestamp, "step": new.step, "value": new.value, "is_nan": new.is_nan},
        # a row value: compared lexicographically by sqlite and PostgreSQL
        where=sqlalchemy.tuple_(new.step, new.timestamp, new.value) > sqlalchemy.tuple_(c.step, c.timestamp, c.value),
    )


def _file_of(engine: Any) -> str | None:
    """The file of a sqlite store, or ``None`` for an in-memory or ``file:`` URI one
    (those stay in this process: a second process could not open the same database)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:") or engine.url.query:
        return None
    return str(database)


def _latest(columns: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """Per key, the point MLflow keeps in ``latest_metrics`` (a row as column -> value):
    the highest (step, timestamp, value).  A batch is mostly one key."""
    keys = columns["key"]
    ranks = zip(columns["step"], columns["timestamp"], columns["value"], range(len(keys)))
    best: dict[str, tuple[Any, ...]] = {}
    if keys[0] == keys[-1] and keys.count(keys[0]) == len(keys):
        best[keys[0]] = max(ranks)
    else:
        for key, rank in zip(keys, ranks):
            if key not in best or rank > best[key]:
                best[key] = rank
    return {key: {name: columns[name][rank[3]] for name in COLUMNS} for key, rank in best.items()}
