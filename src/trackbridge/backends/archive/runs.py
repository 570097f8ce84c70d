"""``run.json``: a run's metadata, and its conversion to a :class:`RunRecord`.

Everything a :class:`RunRecord` carries is stored here except the metric
summaries, which are derived from the metric parts' footers (so they can
never disagree with the points), and the platform/url, which describe where
the record is read from (``dir`` and the run folder).
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from trackbridge.backends.archive import metrics
from trackbridge.backends.archive.files import read_json, write_json
from trackbridge.backends.archive.layout import RUN_FILE
from trackbridge.errors import RunNotFound
from trackbridge.model import DatasetInput, LoggedModel, RunRecord, RunStatus

PLATFORM = "dir"
T = TypeVar("T")


def new_run(run_id: str, experiment_id: str, **values: Any) -> dict[str, Any]:
    """The ``run.json`` content of a fresh run."""
    return {
        "run_id": run_id, "experiment_id": experiment_id, "status": RunStatus.RUNNING.value,
        "name": None, "start_time": None, "end_time": None, "user": None, "parent_run_id": None,
        "notes": None, "params": {}, "tags": {}, "labels": [], "summary": {}, "inputs": [],
        "models": [], "artifact_meta": {}, **values,
    }


def load(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of ``run_dir``; a run deleted meanwhile is :class:`RunNotFound`."""
    try:
        return read_json(run_dir / RUN_FILE)
    except FileNotFoundError:
        raise RunNotFound(f"run {run_dir.name!r} is no longer in the archive ({run_dir} is gone)") from None


def save(run_dir: Path, data: dict[str, Any], durable: bool = True) -> None:
    write_json(run_dir / RUN_FILE, data, durable)


def to_record(run_dir: Path, data: dict[str, Any], experiment: str, resolved: Path | None = None) -> RunRecord:
    """A :class:`RunRecord` from ``run.json`` alone: metric summaries are left empty
    so a listing can filter runs before paying for :func:`add_metric_summaries`.
    ``resolved``: ``run_dir`` already resolved (its URL), when the caller knows it."""
    return RunRecord(
        platform=PLATFORM,
        run_id=data["run_id"],
        experiment=experiment,
        experiment_id=data["experiment_id"],
        name=data.get("name"),
        status=RunStatus.parse(data.get("status")),
        start_time=data.get("start_time"),
        end_time=data.get("end_time"),
        user=data.get("user"),
        parent_run_id=data.get("parent_run_id"),
        url=(resolved or run_dir.resolve()).as_uri(),
        params=data.get("params", {}),
        tags=data.get("tags", {}),
        labels=data.get("labels", []),
        notes=data.get("notes"),
        summary=data.get("summary", {}),
        inputs=[from_json(DatasetInput, i) for i in data.get("inputs", [])],
        models=[from_json(LoggedModel, m) for m in data.get("models", [])],
        artifact_meta=data.get("artifact_meta", {}),
    )


def add_metric_summaries(record: RunRecord, run_dir: Path) -> RunRecord:
    """Fill the latest point per user and system key from the metric part footers."""
    record.metrics, record.system_metrics = metrics.summaries(run_dir / "metrics")
    return record


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """Build a model dataclass from its JSON, ignoring fields a newer format minor may add."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
