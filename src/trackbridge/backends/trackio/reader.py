"""Reading Trackio's project databases directly with sqlite (read-only).

Why not trackio's own API: its ``get_logs`` subsamples long series for the dashboard, and
importing trackio loads gradio's client; the tables are plain and their columns are checked
(:mod:`.schema`).

* ``PATH`` is a Trackio directory (``$TRACKIO_DIR``, by default ``$HF_HOME/trackio``): each
  ``<project>.db`` is an experiment (``registry-*`` databases are trackio's registries, not
  projects).
* A run is a ``run_id`` of ``metrics``, ``configs`` or ``system_metrics``; its name is
  ``run_name``.  Its config is its params, without the keys trackio adds itself
  (``_Username`` is the user, ``_Group`` the tag ``trackio.group``).  Trackio keeps no
  status and no end: a run is FINISHED, starts at its first row and ends at its last
  (``_Created`` is rewritten when a run is resumed: it is the start only of a run without rows).
* Each ``metrics`` row is one ``trackio.log`` call: a JSON object of values at a step and
  an ISO time.  Numbers (and trackio's ``"NaN"``, ``"Infinity"``, ``"-Infinity"``) are
  metric points; trackio's histograms, images, tables, videos and audio are media series
  (:data:`MEDIA`); other values are declared in ``RunRecord.unread``.  ``system_metrics`` rows have no step: a run's system points are
  numbered 0, 1, 2... in the order they were logged.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from trackbridge.backends.base import Reader, RunFilter
from trackbridge.backends.trackio import names, schema
from trackbridge.errors import RunNotFound
from trackbridge.history import pages
from trackbridge.model import (
    ArtifactInfo,
    Experiment,
    LoggedModel,
    MediaPoint,
    MediaSeries,
    MetricPoint,
    MetricSummary,
    RunRecord,
    RunStatus,
)

#: trackio's JSON spellings of the floats JSON cannot hold (``utils.serialize_values``).
SPECIAL = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
REGISTRY_PREFIX = "registry-"
#: beside the databases: the files and models of runs trackbridge wrote (``.writer``):
#: ``trackbridge-files/<project>/<run_id>/files/...`` and ``.../models/<folder>/...``.
FILES_DIR, FILES, MODELS = "trackbridge-files", "files", "models"
GROUP_TAG = "trackio.group"


#: trackio's media ``_type``\ s -> canonical kinds (payloads in ``docs/fidelity.md``).
MEDIA = {"trackio.histogram": "histogram", "trackio.image": "image", "trackio.table": "table",
         "trackio.video": "video", "trackio.audio": "audio"}
#: where trackio keeps media files: ``<TRACKIO_DIR>/media/<file_path>``.
MEDIA_DIR = "media"
#: keys of a media value trackbridge writes beside trackio's own: the point's ``meta`` and
#: a table's column order (trackio keeps rows as objects).
META_KEY, COLUMNS_KEY = "trackbridge.meta", "trackbridge.columns"


def media_point(step: int, at: int, value: dict[str, Any]) -> MediaPoint:
    """A trackio media value as a canonical point: a histogram's ``bins``/``values`` are the
    canonical shape already; a table's row objects become ``columns`` and ``data``; images,
    videos and audio are files (``file_path`` under trackio's media folder), with caption."""
    kind = MEDIA[value["_type"]]
    meta = _decoded(value.get(META_KEY) or {})
    if kind == "histogram":
        return MediaPoint(step, at, kind, data={"bins": value.get("bins"), "values": value.get("values")}, meta=meta)
    if kind == "table":
        rows = value.get("_value") or []
        columns = value.get(COLUMNS_KEY) or list(dict.fromkeys(k for r in rows for k in r))
        data = [[_decoded(r.get(c)) for c in columns] for r in rows]
        return MediaPoint(step, at, kind, data={"columns": columns, "data": data}, meta=meta)
    path = value.get("file_path") or ""
    return MediaPoint(step, at, kind, file=path, caption=value.get("caption"),
                      meta=meta or {"format": PurePosixPath(path).suffix[1:].lower()})


def ms(iso: str) -> int:
    """Trackio's ISO times (UTC offset included) -> epoch milliseconds."""
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def number(value: Any) -> float | None:
    """A metric value as a float, or ``None`` for what is not a number (text, media)."""
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        return SPECIAL.get(value)
    return None


def _decoded(value: Any) -> Any:
    """A config value with trackio's spellings of NaN/±inf back as floats (nested too)."""
    if isinstance(value, str):
        return SPECIAL.get(value, value)
    if isinstance(value, dict):
        return {k: _decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def _json(blob: bytes | str | None) -> dict[str, Any]:
    if blob is None:
        return {}
    data = json.loads(blob)
    return data if isinstance(data, dict) else {}


class TrackioReader(Reader):
    """Projects under ``root``; ``platform`` names the backend that opened it."""

    def __init__(self, root: Path, platform: str) -> None:
        self.root = root
        self.platform = platform

    def _projects(self) -> dict[str, Path]:
        if not self.root.is_dir():
            return {}
        return {db.stem: db for db in sorted(self.root.glob("*.db")) if not db.stem.startswith(REGISTRY_PREFIX)}

    def _connect(self, project: str) -> sqlite3.Connection:
        return schema.connect(self._projects()[project])

    def list_experiments(self) -> Iterator[Experiment]:
        for name in self._projects():
            yield Experiment(name, name)

    def get_experiment(self, name: str) -> Experiment | None:
        """By the project's name or the name trackio gives its file (``my run`` -> ``myrun``)."""
        project = names.canonical_project_name(name)
        return Experiment(project, project) if project in self._projects() else None

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        experiment = names.canonical_project_name(experiment)
        if experiment not in self._projects():
            return
        with closing(self._connect(experiment)) as conn:
            run_ids = [row[0] for row in conn.execute(
                "SELECT run_id FROM (SELECT run_id, MIN(id) AS first FROM metrics GROUP BY run_id "
                "UNION ALL SELECT run_id, -1 FROM configs UNION ALL SELECT run_id, -1 FROM system_metrics) "
                "WHERE run_id IS NOT NULL GROUP BY run_id ORDER BY MIN(first), run_id")]
            for run_id in run_ids:
                record = self._record(conn, experiment, run_id)
                if run_filter is None or run_filter.matches(record):
                    yield record

    def _find(self, run_id: str) -> str:
        for project in self._projects():
            with closing(self._connect(project)) as conn:
                for table in ("configs", "metrics", "system_metrics"):
                    if conn.execute(f"SELECT 1 FROM {table} WHERE run_id = ? LIMIT 1", (run_id,)).fetchone():
                        return project
        raise RunNotFound(f"trackio:{self.root}: no run {run_id!r} in any project")

    def get_run(self, run_id: str) -> RunRecord:
        project = self._find(run_id)
        with closing(self._connect(project)) as conn:
            return self._record(conn, project, run_id)

    def _record(self, conn: sqlite3.Connection, project: str, run_id: str) -> RunRecord:
        record = RunRecord(platform=self.platform, run_id=run_id, experiment=project, experiment_id=project,
                           status=RunStatus.FINISHED)
        times: list[int] = []
        created_ms: int | None = None
        end_time: int | None = None
        config_row = conn.execute("SELECT run_name, config, created_at FROM configs WHERE run_id = ?",
                                  (run_id,)).fetchone()
        if config_row is not None:
            record.name = config_row[0]
            config = _json(config_row[1])
            record.user = config.pop(schema.USERNAME, None)
            created = config.pop(schema.CREATED, None) or config_row[2]
            group = config.pop(schema.GROUP, None)
            if group is not None:
                record.tags[GROUP_TAG] = str(group)
            record.tags.update(config.pop(names.TAGS, None) or {})
            record.notes = config.pop(names.NOTES, None)
            record.summary = {k: SPECIAL.get(v, v) if isinstance(v, str) else v
                              for k, v in (config.pop(names.SUMMARY, None) or {}).items()}
            record.status = RunStatus.parse(config.pop(names.STATUS, None) or RunStatus.FINISHED.value)
            end_time = config.pop(names.END_TIME, None)
            record.models = [LoggedModel(m["name"], m["artifact_path"], flavors=list(m.get("flavors") or []))
                             for m in config.pop(names.MODELS, None) or []]
            record.params = {k: _decoded(v) for k, v in config.items()}
            created_ms = ms(created)
        for name, step, stamp, blob in conn.execute(
                "SELECT run_name, step, timestamp, metrics FROM metrics WHERE run_id = ? ORDER BY id", (run_id,)):
            record.name = record.name or name
            at = ms(stamp)
            times.append(at)
            for key, value in _json(blob).items():
                got = number(value)
                if got is not None:
                    record.metrics[key] = MetricSummary(key, got, step, at)
                elif isinstance(value, dict) and value.get("_type") in MEDIA:
                    kind = MEDIA[value["_type"]]
                    count = record.media[key].count if key in record.media else 0
                    record.media[key] = MediaSeries(kind, count + 1)
                elif isinstance(value, dict) and "_type" in value:
                    record.unread[f"media:{key}"] = f"trackio {value['_type']} values are not carried yet"
                else:
                    record.unread[f"value:{key}"] = "trackio values that are not numbers are not carried"
        for index, (name, stamp, blob) in enumerate(conn.execute(
                "SELECT run_name, timestamp, metrics FROM system_metrics WHERE run_id = ? ORDER BY id", (run_id,))):
            record.name = record.name or name
            at = ms(stamp)
            times.append(at)
            for key, value in _json(blob).items():
                got = number(value)
                if got is not None:
                    record.system_metrics[key] = MetricSummary(key, got, index, at)
        if "run_id" in {row[1] for row in conn.execute("PRAGMA table_info(run_artifact_links)")} and conn.execute(
                "SELECT 1 FROM run_artifact_links WHERE run_id = ? LIMIT 1", (run_id,)).fetchone():
            record.unread["artifacts"] = "trackio artifacts (its content-addressed store) are not read yet"
        # trackio rewrites _Created when a run is resumed: the first row's time is the start
        # that stays (rows are only appended); a run without rows starts at its config
        if created_ms is not None and (end_time is not None or not times):
            record.start_time = created_ms  # a run trackbridge wrote (never resumed by trackio) or without rows
        else:
            record.start_time = min(times) if times else None
        record.end_time = end_time if end_time is not None else (max(times) if times else created_ms)
        return record

    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        """User metrics by step; a system key (which has no step) by its row number."""
        return pages(self._points(self._find(run_id), run_id, key), page_size)

    def _points(self, project: str, run_id: str, key: str) -> Iterator[MetricPoint]:
        with closing(self._connect(project)) as conn:
            rows = conn.execute("SELECT step, timestamp, metrics FROM metrics WHERE run_id = ? ORDER BY id",
                                (run_id,))
            system = conn.execute("SELECT NULL, timestamp, metrics FROM system_metrics WHERE run_id = ? ORDER BY id",
                                  (run_id,))
            found = False
            for source in (rows, system):
                if found:  # a user key is not read again from the system rows
                    break
                for index, (step, stamp, blob) in enumerate(source):
                    values = _json(blob)
                    got = number(values[key]) if key in values else None
                    if got is None:
                        continue
                    found = True
                    yield MetricPoint(index if step is None else step, got, ms(stamp))

    def iter_media(self, run_id: str, key: str) -> Iterator[MediaPoint]:
        project = self._find(run_id)
        with closing(self._connect(project)) as conn:
            for step, stamp, blob in conn.execute(
                    "SELECT step, timestamp, metrics FROM metrics WHERE run_id = ? ORDER BY id", (run_id,)):
                value = _json(blob).get(key)
                if isinstance(value, dict) and value.get("_type") in MEDIA:
                    yield media_point(step, ms(stamp), value)

    def download_media(self, run_id: str, key: str, point: MediaPoint, dst_dir: Path) -> Path:
        assert point.file is not None
        dst_dir.mkdir(parents=True, exist_ok=True)
        local = self.root / MEDIA_DIR / PurePosixPath(point.file)
        return Path(shutil.copyfile(local, dst_dir / PurePosixPath(point.file).name))

    def _files(self, run_id: str, kind: str = FILES) -> Path:
        """Where the writer keeps a run's files or models (:data:`FILES_DIR`); trackio's own
        artifact store is not read yet (declared in ``unread``)."""
        return self.root / FILES_DIR / self._find(run_id) / run_id / kind

    def download_model(self, run_id: str, model: LoggedModel, dst_dir: Path) -> Path:
        source = self._files(run_id, MODELS).joinpath(*PurePosixPath(model.artifact_path).parts)
        target = dst_dir.joinpath(*PurePosixPath(model.artifact_path).parts)
        shutil.copytree(source, target, dirs_exist_ok=True)
        return target

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        folder = self._files(run_id)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else ():
            yield ArtifactInfo(path.relative_to(folder).as_posix(), path.stat().st_size)

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        local = self._files(run_id).joinpath(*PurePosixPath(path).parts)
        if not local.is_file():
            raise FileNotFoundError(f"trackio:{self.root}: run {run_id!r} has no file {path!r}")
        target = dst_dir.joinpath(*PurePosixPath(path).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target)
        return target
