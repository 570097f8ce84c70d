"""The sqlite side of the bulk path (:mod:`.bulk`) in a process of its own.

Why: a copy into an embedded store is bound by one core.  Reading the source and
building batches is Python, and so is writing them: binding 30,000 parameters per
statement and re-taking the GIL after each sqlite step while the reader threads hold it.
In a process of its own the store's writing (sqlite's C, its fsyncs, the binding) runs
on the machine's other core.  The child imports only ``sqlite3`` and ``pickle``, never
MLflow (it would double the copy's memory).  Its SQL is what SQLAlchemy compiled in the
parent from MLflow's own models, so the rows are the ones the in-process path writes.

One request at a time, answered once its transaction is committed: ``log`` returns
only when the points are in the store, as before.  If the parent dies, the child
reads the end of its input and exits; a batch not committed is rolled back by sqlite.
"""
from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
from typing import IO, Any, Iterator, Sequence

#: MLflow's session settings (``mlflow.store.db.utils``), on the child's connection too.
PRAGMAS = ("foreign_keys = ON", "busy_timeout = 20000")

_CHILD = ("import sys; from trackbridge.backends.mlflow.sqlite_process import _serve; "
          "_serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)")


class SqliteProcess:
    """The parent's handle: ``write`` sends one batch and waits for its commit."""

    def __init__(self, path: str, setup: dict[str, Any]) -> None:
        # ``-c``, not ``-m``: the package's ``__init__`` imports this module before runpy
        # would run it, and ``-m`` then warns on stderr on every copy.
        self._proc = subprocess.Popen([sys.executable, "-c", _CHILD, path], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)
        self._send(("setup", setup))
        self._answer()

    def write(self, columns: dict[str, list[Any]], latest: list[dict[str, Any]]) -> None:
        self._send(("log", columns, latest))
        self._answer()

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._send(("close",))
                self._proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()

    def _send(self, message: tuple[Any, ...]) -> None:
        assert self._proc.stdin is not None
        try:
            pickle.dump(message, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.flush()
        except OSError:
            self._stopped()

    def _answer(self) -> None:
        assert self._proc.stdout is not None
        try:
            kind, *detail = pickle.load(self._proc.stdout)
        except (EOFError, pickle.UnpicklingError):
            self._stopped()
        if kind == "error":
            name, text = detail
            raise getattr(sqlite3, name, sqlite3.Error)(text)  # the child sends sqlite3.Error subclasses only

    def _stopped(self) -> None:
        code = self._proc.wait()
        raise sqlite3.OperationalError(f"the process writing the MLflow store stopped (exit code {code}); "
                                       "its own message is above. Re-run the same copy: it resumes.")


def _serve(path: str, source: IO[bytes], sink: IO[bytes]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    setup: dict[str, Any] = {}
    while True:
        try:
            message = pickle.load(source)
        except EOFError:
            return  # the parent is gone
        kind = message[0]
        try:
            if kind == "close":
                return
            if kind == "setup":
                setup = message[1]
                for pragma in (*PRAGMAS, *setup.get("pragmas", ())):
                    conn.execute(f"PRAGMA {pragma}")
            else:
                _log(conn, setup, message[1], message[2])
            answer: tuple[Any, ...] = ("ok",)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            answer = ("error", type(exc).__name__, str(exc))
        pickle.dump(answer, sink, protocol=pickle.HIGHEST_PROTOCOL)
        sink.flush()


def _log(conn: sqlite3.Connection, setup: dict[str, Any], columns: dict[str, list[Any]],
         latest: list[dict[str, Any]]) -> None:
    """One transaction: the points as multi-row inserts, then the ``latest_metrics`` upsert."""
    conn.execute("BEGIN")
    for sql, flat in multi_row(setup["insert_head"], setup["insert_group"], setup["insert_tail"],
                               setup["insert_names"], setup["rows_per_statement"], columns):
        conn.execute(sql, flat)
    upsert_names = setup["upsert_names"]
    conn.executemany(setup["upsert"], [[row[n] for n in upsert_names] for row in latest])
    conn.execute("COMMIT")


def multi_row(head: str, group: str, tail: str, names: Sequence[str], per_statement: int,
              columns: dict[str, list[Any]]) -> Iterator[tuple[str, list[Any]]]:
    """The points as ``INSERT ... VALUES (...), (...)`` statements of ``per_statement`` rows
    and their flat parameters (filled a column at a time: the columns are the batch's
    shape).  Shared by the child and the in-process path, and free of MLflow for the child."""
    total, width = len(columns[names[0]]), len(names)
    for start in range(0, total, per_statement):
        count = min(per_statement, total - start)
        flat: list[Any] = [None] * (count * width)
        for i, name in enumerate(names):
            flat[i::width] = columns[name][start:start + count]
        yield head + ", ".join([group] * count) + tail, flat
