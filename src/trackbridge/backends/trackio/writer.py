"""Writing runs into Trackio's project databases, as trackio itself stores them.

A new project's database is created by trackio (``SQLiteStorage.init_db`` in a child
process pointed at ``PATH``: trackio fixes its directory when imported, and its own schema
and migrations are then exactly its own); rows are then written with sqlite into the
pinned columns of :mod:`.schema`, in short transactions, so ``trackio show`` (and trackio's
API) lists the runs, their config and every point.

* A run is a ``configs`` row (``run_id``, ``run_name``, the config with trackio's
  ``_Username``/``_Created``/``_Group``) and its ``metrics`` rows: the points of one step
  and time go into one row, as one ``trackio.log`` call writes them; NaN/±inf spelled as
  trackio spells them.
* Run fields trackio has no place for (tags, notes, summary, status, end time) are config
  keys ``trackbridge.*`` (:mod:`.names`), read back by the reader.
* Files (and models, media kept as files) go beside the databases, under
  ``PATH/trackbridge-files/<project>/<run_id>/``: trackio's own artifact store is
  content-addressed per project and not written yet.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from trackbridge.backends.base import Limits, Writer
from trackbridge.backends.trackio import names, schema
from trackbridge.backends.trackio.reader import COLUMNS_KEY, FILES, FILES_DIR, MEDIA, MEDIA_DIR, META_KEY, MODELS
from trackbridge.errors import BackendError, MissingDependencyError, RunNotFound
from trackbridge.history import Row
from trackbridge.model import LoggedModel, MediaPoint, MetricPoint, RunStatus, now_ms
from trackbridge.model_files import model_flavors

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: canonical media kind -> trackio's ``_type``.
TYPES = {kind: type_ for type_, kind in MEDIA.items()}
#: creates a project's database with trackio's own code; prints its path.
_INIT = ("import sys\nfrom trackio.sqlite_storage import SQLiteStorage\n"
         "print(SQLiteStorage.init_db(sys.argv[1]))\n")


def _copy_in(local: Path, target: Path) -> None:
    if local.is_dir():
        shutil.copytree(local, target, dirs_exist_ok=True)
    elif local.is_file():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target / local.name)
    else:
        raise BackendError(f"cannot log {local}: no such file or folder")


def iso(ms: int) -> str:
    """Epoch ms -> trackio's ISO time (exact: no float seconds in between)."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat()


def plain(value: Any) -> Any:
    """``value`` with every float JSON cannot hold spelled as trackio spells it (its reader,
    orjson, refuses NaN tokens)."""
    if isinstance(value, float):
        return value_json(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def value_json(value: float) -> float | str:
    """A float as trackio stores it (``utils.serialize_values``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


#: what a Trackio project takes: JSON values, any key (known to the backend without a writer).
TRACKIO_LIMITS = Limits()


class TrackioWriter(Writer):
    """Writes into the Trackio directory ``root``."""

    limits = TRACKIO_LIMITS

    def __init__(self, root: Path, platform: str) -> None:
        self.root = root
        self.platform = platform
        self._lock = threading.Lock()
        #: run id -> project (database stem), for the runs this writer made or found
        self._projects: dict[str, str] = {}

    # -- databases -----------------------------------------------------------------

    def _db(self, project: str) -> Path:
        return self.root / f"{project}.db"

    def _init_db(self, project: str) -> None:
        """trackio creates the database (its schema, its migrations), in a child process
        pointed at ``root``, with the Hub unreachable by configuration."""
        env = {**os.environ, "TRACKIO_DIR": str(self.root), "HF_HUB_OFFLINE": "1"}
        done = subprocess.run([sys.executable, "-c", _INIT, project], env=env, capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0:
            if "No module named 'trackio'" in done.stderr:
                raise MissingDependencyError("trackio: creating a project needs trackio. Install it with: "
                                             "pip install 'trackbridge[trackio]'")
            raise BackendError(f"trackio:{self.root}: trackio could not create project {project!r}: "
                               f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")

    def _connect(self, project: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self._db(project), timeout=60, check_same_thread=False)
        schema.check(conn, self._db(project))
        return conn

    def _project_of(self, run_id: str) -> str:
        with self._lock:
            found = self._projects.get(run_id)
        if found is not None:
            return found
        for db in sorted(self.root.glob("*.db")):
            with closing(self._connect(db.stem)) as conn:
                if conn.execute("SELECT 1 FROM configs WHERE run_id = ?", (run_id,)).fetchone():
                    with self._lock:
                        self._projects[run_id] = db.stem
                    return db.stem
        raise RunNotFound(f"trackio:{self.root}: no run {run_id!r}")

    def _update_config(self, run_id: str, change: Any) -> None:
        """Apply ``change(config)`` to the run's config, in one transaction."""
        project = self._project_of(run_id)
        with closing(self._connect(project)) as conn, conn:
            conn.execute("BEGIN IMMEDIATE")  # read and write under one lock: no update lost to another writer
            row = conn.execute("SELECT config FROM configs WHERE run_id = ?", (run_id,)).fetchone()
            config = json.loads(row[0]) if row else {}
            change(config)
            conn.execute("UPDATE configs SET config = ? WHERE run_id = ?",
                         (json.dumps(plain(config), allow_nan=False, default=str), run_id))

    def _run_dir(self, run_id: str) -> Path:
        return self.root / FILES_DIR / self._project_of(run_id) / run_id

    # -- Writer --------------------------------------------------------------------

    def ensure_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        project = names.canonical_project_name(name)
        if not self._db(project).exists():
            self._init_db(project)
        return project

    def create_run(self, experiment_id: str, *, name: str | None = None, start_time: int | None = None,
                   user: str | None = None, parent_run_id: str | None = None,
                   tags: Mapping[str, str] | None = None) -> str:
        run_id = uuid.uuid4().hex
        start = start_time if start_time is not None else now_ms()
        config: dict[str, Any] = {schema.USERNAME: user, schema.CREATED: iso(start), schema.GROUP: None}
        if tags:
            config[names.TAGS] = dict(tags)
        with closing(self._connect(experiment_id)) as conn, conn:
            conn.execute("INSERT INTO configs (run_id, run_name, config, created_at) VALUES (?, ?, ?, ?)",
                         (run_id, name or run_id[:8], json.dumps(config), iso(start)))
        with self._lock:
            self._projects[run_id] = experiment_id
        return run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self._update_config(run_id, lambda config: config.update(params))

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._update_config(run_id, lambda config: config.setdefault(names.TAGS, {}).update(tags))

    def delete_tags(self, run_id: str, keys: Sequence[str]) -> None:
        def drop(config: dict[str, Any]) -> None:
            for key in keys:
                config.get(names.TAGS, {}).pop(key, None)
        self._update_config(run_id, drop)

    def set_notes(self, run_id: str, notes: str) -> None:
        self._update_config(run_id, lambda config: config.__setitem__(names.NOTES, notes))

    def log_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        self._update_config(run_id, lambda config: config.setdefault(names.SUMMARY, {}).update(summary))

    def log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        """Points of one step and time share a row (one ``trackio.log`` call); a key
        repeated at one step and time starts a new row, so no point overwrites another."""
        rows: list[Row] = []
        for key, point in points:
            last = rows[-1] if rows else None
            if last is None or last.step != point.step or last.timestamp != point.timestamp or key in last.values:
                rows.append(Row(point.step, point.timestamp))
            rows[-1].values[key] = point.value
        self.log_rows(run_id, rows)

    def log_rows(self, run_id: str, rows: Sequence[Row]) -> None:
        """One ``metrics`` row per row (``Features.history_rows``: the engine merges a run's
        series by step, so trackio shows one row per step, as its own ``log`` writes)."""
        project = self._project_of(run_id)
        with closing(self._connect(project)) as conn, conn:
            (name,) = conn.execute("SELECT run_name FROM configs WHERE run_id = ?", (run_id,)).fetchone()
            conn.executemany(
                "INSERT INTO metrics (run_id, run_name, step, timestamp, metrics, log_id) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, name, row.step, iso(row.timestamp),
                  json.dumps({k: value_json(v) for k, v in row.values.items()}), uuid.uuid4().hex) for row in rows])

    def log_media(self, run_id: str, key: str, points: Sequence[tuple[MediaPoint, Path | None]]) -> None:
        """Each point a ``metrics`` row holding trackio's own media value (``trackio.histogram``
        with ``bins``/``values``, ``trackio.table`` with row objects, ``trackio.image`` /
        ``video`` / ``audio`` with the file copied under ``media/``), so trackio's dashboard
        shows it; what trackio's value has no field for (``meta``, a table's column order)
        rides along under ``trackbridge.*`` keys of the value."""
        project = self._project_of(run_id)
        rows = []
        for point, local in points:
            value: dict[str, Any] = {"_type": TYPES[point.kind]}
            if point.kind == "histogram":
                value.update(bins=point.data["bins"], values=point.data["values"])
            elif point.kind == "table":
                columns = list(point.data["columns"])
                value.update({"_value": [dict(zip(columns, r)) for r in point.data["data"]], COLUMNS_KEY: columns})
            else:
                assert local is not None, f"{point.kind} point without its file"
                relative = f"{project}/{run_id}/{point.step}/{uuid.uuid4().hex}{local.suffix}"
                target = self.root / MEDIA_DIR / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local, target)
                value.update(file_path=relative, caption=point.caption)
            if point.meta:
                value[META_KEY] = point.meta
            rows.append((point.step, point.timestamp, {key: plain(value)}))
        with closing(self._connect(project)) as conn, conn:
            (name,) = conn.execute("SELECT run_name FROM configs WHERE run_id = ?", (run_id,)).fetchone()
            conn.executemany(
                "INSERT INTO metrics (run_id, run_name, step, timestamp, metrics, log_id) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, name, step, iso(at), json.dumps(values), uuid.uuid4().hex) for step, at, values in rows])

    def log_artifact(self, run_id: str, local_path: Path, artifact_dir: str | None = None) -> None:
        """A file to ``artifact_dir/<name>``, a folder's contents under ``artifact_dir``."""
        _copy_in(Path(local_path), self._run_dir(run_id) / FILES / (artifact_dir or ""))

    def log_model(self, run_id: str, local_dir: Path, model: LoggedModel) -> LoggedModel:
        """The files under ``models/<folder>`` beside the run's files (``<name>``, or
        ``<name>-<n>`` when a model of that name is there: autolog logs ``model`` on every
        fit); name, folder and flavors in config ``trackbridge.models``, in logging order."""
        local_dir = Path(local_dir)
        made: list[LoggedModel] = []

        def record(config: dict[str, Any]) -> None:
            listed = config.setdefault(names.MODELS, [])
            taken = {m["artifact_path"] for m in listed}
            folder = next(f for f in (model.name, *(f"{model.name}-{n}" for n in range(2, len(taken) + 3)))
                          if f not in taken)
            made.append(LoggedModel(model.name, folder, flavors=model_flavors(local_dir)))
            listed.append({"name": model.name, "artifact_path": folder, "flavors": made[0].flavors})

        self._update_config(run_id, record)
        _copy_in(local_dir, self._run_dir(run_id) / MODELS / made[0].artifact_path)
        return made[0]

    def finish_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        def finish(config: dict[str, Any]) -> None:
            config[names.STATUS] = status.value
            config[names.END_TIME] = end_time if end_time is not None else now_ms()
        self._update_config(run_id, finish)

    def set_run_name(self, run_id: str, name: str) -> None:
        project = self._project_of(run_id)
        with closing(self._connect(project)) as conn, conn:
            for table in ("configs", "metrics", "system_metrics"):
                conn.execute(f"UPDATE {table} SET run_name = ? WHERE run_id = ?", (name, run_id))

    def delete_run(self, run_id: str) -> None:
        project = self._project_of(run_id)
        shutil.rmtree(self._run_dir(run_id), ignore_errors=True)
        with closing(self._connect(project)) as conn, conn:
            for table in ("configs", "metrics", "system_metrics"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        with self._lock:
            self._projects.pop(run_id, None)
