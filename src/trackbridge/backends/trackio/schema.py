"""The part of Trackio's sqlite schema trackbridge reads, pinned and checked.

Trackio calls its schema beta (it migrates its databases on open), so every database is
checked with ``PRAGMA table_info`` before it is read: a table or column missing here is an
error naming the database, the table and the trackio versions this was written against,
never a guess.  Checked against trackio 0.43 (``SCHEMA_VERSION`` of its
``sqlite_storage``): ``metrics`` and ``system_metrics`` rows hold one JSON object of values
per logged call, ``configs`` one JSON object per run.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from trackbridge.errors import BackendError

SUPPORTED = "trackio 0.40-0.43"
#: table -> columns read (others are allowed: trackio adds columns over versions).
REQUIRED = {
    "metrics": ("run_id", "run_name", "step", "timestamp", "metrics"),
    "configs": ("run_id", "run_name", "config", "created_at"),
    "system_metrics": ("run_id", "run_name", "timestamp", "metrics"),
}
#: config keys trackio writes itself (``Run.__init__``): run fields, not params.
USERNAME, CREATED, GROUP = "_Username", "_Created", "_Group"


class UnsupportedSchemaError(BackendError):
    """A project database whose tables are not the ones :data:`REQUIRED` names."""


def connect(db: Path) -> sqlite3.Connection:
    """A read-only connection to ``db`` (never a write, never a lock on trackio's files
    beyond sqlite's own shared read), its schema checked."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    try:
        check(conn, db)
    except BaseException:
        conn.close()
        raise
    return conn


def check(conn: sqlite3.Connection, db: Path) -> None:
    """Raise :class:`UnsupportedSchemaError` unless every required table and column is there."""
    for table, columns in REQUIRED.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        missing = [c for c in columns if c not in have]
        if missing:
            what = f"table {table} is missing" if not have else f"table {table} has no column(s) {', '.join(missing)}"
            raise UnsupportedSchemaError(
                f"trackio:{db}: {what}. trackbridge reads the schema of {SUPPORTED}; open the project once "
                "with that trackio (it migrates its databases) or upgrade trackbridge.")
