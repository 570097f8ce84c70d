"""Writing an archive: the :class:`~trackbridge.backends.base.Writer` of ``dir:PATH``.

Concurrency: the sync engine writes several runs at once from threads.  Each
run has its own lock (its ``run.json``, metric buffer and manifests are only
touched under it), so different runs proceed in parallel; experiment
creation and the run-folder cache share one writer-wide lock, and the
registry has its own.  One archive should have one writing *process* at a
time (files are never corrupted by two, but two could both create an
experiment of the same name).

A copy in progress keeps its ``run.json`` changes in memory until it finishes or is
completed (its metric points are buffered the same way): until its completion marker
is on disk the engine resumes it from whatever is there, so writing ``run.json`` after
every call bought nothing and cost a third of a small run's copy.  Runs logged live,
and completed copies being updated, are written through on every change.
"""
from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from trackbridge.backends.archive import runs
from trackbridge.backends.archive.files import remove_tree, write_json
from trackbridge.backends.archive.layout import RUN_FILE, Layout, open_archive, write_manifest
from trackbridge.backends.archive.metrics import MetricBuffer
from trackbridge.backends.archive.reader import list_experiments
from trackbridge.backends.archive.source_index import forget_copy, note_copy
from trackbridge.backends.archive.registry import Registry
from trackbridge.backends.base import Limits, Writer
from trackbridge.errors import BackendError, InvalidValueError
from trackbridge.model import DatasetInput, LoggedModel, MetricPoint, ModelVersion, RegisteredModel, RunStatus, now_ms
from trackbridge.model_files import model_flavors
from trackbridge.provenance_tags import COMPLETE, SOURCE_RUN_ID

#: default number of buffered points per run before a metrics part is written (~6 MB).
DEFAULT_PART_POINTS = 250_000

#: The archive keeps anything a RunRecord can hold: no key rules, nested params, NaN.
ARCHIVE_LIMITS = Limits(
    max_metrics_per_batch=10_000,
    max_params_per_batch=10_000,
    max_tags_per_batch=10_000,
    max_key_length=sys.maxsize,
    max_param_value_length=sys.maxsize,
    max_tag_value_length=sys.maxsize,
    key_pattern=None,
    flat_params=False,
    allows_nan=True,
    max_tags_per_run=None,
)


@dataclass
class _OpenRun:
    """A run this writer has touched: its folder, its lock, its pending points, and its
    ``run.json`` as last written or read here."""

    dir: Path
    lock: threading.RLock = field(default_factory=threading.RLock)
    buffer: MetricBuffer | None = None
    data: dict[str, Any] | None = None
    #: ``run.json``'s identity when ``data`` was written or read: another change is re-read.
    stamp: tuple[int, int, int] | None = None
    #: ``data`` holds changes of a copy in progress that are not on disk yet.
    pending: bool = False


def _stamp(run_dir: Path) -> tuple[int, int, int] | None:
    try:
        st = (run_dir / RUN_FILE).stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _copy_in_progress(data: dict[str, Any]) -> bool:
    return SOURCE_RUN_ID in data["tags"] and not data["tags"].get(COMPLETE)


class ArchiveWriter(Writer):
    platform = runs.PLATFORM
    limits = ARCHIVE_LIMITS

    def __init__(self, root: Path, part_points: int = DEFAULT_PART_POINTS) -> None:
        # validated now, created by the first write (_create): opening for a dry run leaves no folder.
        self.layout: Layout = open_archive(root, create=False)
        self.part_points = part_points
        self.registry = Registry(self.layout)
        self._lock = threading.Lock()
        self._runs: dict[str, _OpenRun] = {}
        self._created = False

    def _create(self) -> None:
        """Write the archive manifest once, before the first experiment or registry entry
        (every other write lands inside one of those)."""
        if not self._created:
            try:
                write_manifest(self.layout)
            except OSError as exc:  # read-only folder, a file in the way, a full disk
                raise BackendError(
                    f"cannot write the archive at dir:{self.layout.root}: {exc.strerror or exc} "
                    f"({exc.filename or self.layout.root}). Choose a folder you can write to, or fix its permissions."
                ) from None
            self._created = True

    # -- experiments and runs ------------------------------------------------

    def ensure_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        with self._lock:
            self._create()
            existing = next((e for e in list_experiments(self.layout) if e.name == name), None)
            exp_id = existing.id if existing else uuid.uuid4().hex
            old_tags = existing.tags if existing else {}
            merged = {**old_tags, **(tags or {})}
            if existing is None:  # before the experiment is visible: its index holds every run
                self.layout.sources_dir(exp_id).mkdir(parents=True, exist_ok=True)
            if existing is None or merged != old_tags:
                write_json(self.layout.experiment_dir(exp_id) / "experiment.json",
                           {"id": exp_id, "name": name, "tags": merged})
            return exp_id

    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        start_time: int | None = None,
        user: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        if not (self.layout.experiment_dir(experiment_id) / "experiment.json").is_file():
            raise BackendError(f"experiment id {experiment_id!r} is not in the archive; call ensure_experiment first")
        run_id = uuid.uuid4().hex
        run = _OpenRun(self.layout.run_dir(experiment_id, run_id))
        data = runs.new_run(
            run_id, experiment_id, name=name, start_time=start_time if start_time is not None else now_ms(),
            user=user, parent_run_id=parent_run_id, tags=dict(tags or {}),
        )
        # a copy is made durable by its completion marker; a run logged live now.
        self._save(run, data, durable=not _copy_in_progress(data))
        note_copy(self.layout, experiment_id, tags or {}, run_id)
        with self._lock:
            self._runs[run_id] = run
        return run_id

    def _open(self, run_id: str) -> _OpenRun:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                run = self._runs[run_id] = _OpenRun(self.layout.find_run(run_id))
            return run

    @staticmethod
    def _data(run: _OpenRun) -> dict[str, Any]:
        """``run.json`` of ``run`` (the caller holds its lock): the copy in memory unless
        the file changed since (another writer)."""
        if run.data is None or not (run.pending or _stamp(run.dir) == run.stamp):
            run.data = runs.load(run.dir)
            run.stamp = _stamp(run.dir)
        return run.data

    @staticmethod
    def _save(run: _OpenRun, data: dict[str, Any], durable: bool) -> None:
        runs.save(run.dir, data, durable)
        run.data, run.stamp, run.pending = data, _stamp(run.dir), False

    def _update(self, run_id: str, change: Callable[[dict[str, Any]], None],
                durable: bool | Callable[[dict[str, Any]], bool] = False, write: bool = False) -> None:
        """Change ``run.json`` under the run's lock (atomic replace on disk), or only in
        memory while the run is a copy in progress (see the module's docstring) unless
        ``write``; ``durable`` may depend on the run (given its new ``run.json``)."""
        run = self._open(run_id)
        with run.lock:
            data = self._data(run)
            defer = not write and _copy_in_progress(data)  # as on disk: a run becoming a copy is written
            change(data)
            if defer:
                run.pending = True
                return
            self._save(run, data, durable(data) if callable(durable) else durable)

    def finish_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        run = self._open(run_id)
        with run.lock:
            self._flush_run(run)
            run.buffer = None  # finished runs keep no memory

            def finish(data: dict[str, Any]) -> None:
                final = RunStatus.parse(status)
                data["status"] = final.value
                # a copied run that is still running has no end time; a run ending now does.
                still_open = final in (RunStatus.RUNNING, RunStatus.SCHEDULED)
                data["end_time"] = end_time if end_time is not None or still_open else now_ms()

            # The end of a run logged live is made durable here; a copy's end is made durable
            # by its completion marker, written next (one fsync a run fewer: fsync was a
            # quarter of a tiny run's copy).
            self._update(run_id, finish, durable=lambda data: SOURCE_RUN_ID not in data["tags"])

    def delete_run(self, run_id: str) -> None:
        run = self._open(run_id)
        with run.lock:
            try:
                tags = self._data(run)["tags"]
            except BackendError:  # a damaged run.json: its index entry stays (harmless, see forget_copy)
                tags = {}
            forget_copy(self.layout, run.dir.parent.parent.name, tags, run_id)
            remove_tree(run.dir)
            with self._lock:
                self._runs.pop(run_id, None)

    # -- run metadata --------------------------------------------------------

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Params are stored as JSON values, nested dicts kept (``limits.flat_params`` is False)."""
        for key, value in params.items():
            try:
                json.dumps(value, allow_nan=True)
            except (TypeError, ValueError):
                raise InvalidValueError(
                    f"param {key!r}: {type(value).__name__} is not a JSON value; log str, numbers, lists or dicts"
                ) from None
        self._update(run_id, lambda data: data["params"].update(params))

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """``run.json`` is rewritten whole on every change; only the write that completes a
        copy (the marker, written last) is made durable against a machine crash: with it
        everything before is on disk too, and without it the copy is simply resumed."""
        self._update(run_id, lambda data: data["tags"].update(tags), durable=bool(tags.get(COMPLETE)),
                     write=COMPLETE in tags)
        if SOURCE_RUN_ID in tags:  # a run that becomes a copy after its creation
            note_copy(self.layout, self._open(run_id).dir.parent.parent.name, tags, run_id)

    def delete_tags(self, run_id: str, keys: Sequence[str]) -> None:
        def remove(data: dict[str, Any]) -> None:
            for key in keys:
                data["tags"].pop(key, None)

        self._update(run_id, remove)

    def set_run_name(self, run_id: str, name: str) -> None:
        self._update(run_id, lambda data: data.__setitem__("name", name))

    def set_labels(self, run_id: str, labels: Sequence[str]) -> None:
        """Adds the labels not yet on the run, keeping their order."""
        def add(data: dict[str, Any]) -> None:
            data["labels"] += [label for label in dict.fromkeys(labels) if label not in data["labels"]]

        self._update(run_id, add)

    def set_notes(self, run_id: str, notes: str) -> None:
        self._update(run_id, lambda data: data.__setitem__("notes", notes))

    def log_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        self._update(run_id, lambda data: data["summary"].update(summary))

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        """Appends inputs not already recorded (so a resumed copy adds no duplicates)."""
        def add(data: dict[str, Any]) -> None:
            data["inputs"] += [i for i in map(asdict, inputs) if i not in data["inputs"]]

        self._update(run_id, add)

    # -- metrics ---------------------------------------------------------------

    def log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        self._log(run_id, points, system=False)

    def log_system_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        self._log(run_id, points, system=True)

    def _log(self, run_id: str, points: Sequence[tuple[str, MetricPoint]], system: bool) -> None:
        run = self._open(run_id)
        with run.lock:
            if run.buffer is None:
                run.buffer = MetricBuffer(run.dir / "metrics", self.part_points)
            run.buffer.add(points, system)

    @staticmethod
    def _flush_run(run: _OpenRun) -> None:
        with run.lock:
            if run.buffer is not None:
                run.buffer.flush()

    def flush(self) -> None:
        """Commit every run's buffered points as metric parts."""
        with self._lock:
            open_runs = list(self._runs.values())
        for run in open_runs:
            self._flush_run(run)

    # -- files -----------------------------------------------------------------

    def log_artifact(self, run_id: str, local_path: Path, artifact_dir: str | None = None) -> None:
        run = self._open(run_id)
        with run.lock:
            self.layout.artifacts(run.dir).add(Path(local_path), artifact_dir)

    def log_model(self, run_id: str, local_dir: Path, source: LoggedModel) -> LoggedModel:
        """Stores the files under ``models/<folder>/``, a new model per call: the folder
        is the model's name, or ``<name>-<n>`` when a model of that name is there already
        (autolog logs ``model`` on every fit).  The model gets an archive id (``m-<hex>``)
        so registry versions can point at it as ``models:/<id>``; its metadata is kept
        whole in ``run.json``; flavors come from an MLflow ``MLmodel``."""
        local_dir = Path(local_dir)
        run = self._open(run_id)
        with run.lock:
            taken = {m["artifact_path"] for m in self._data(run)["models"]}
            folder = next(f for f in (source.name, *(f"{source.name}-{n}" for n in range(2, len(taken) + 3)))
                          if f not in taken)
            self.layout.model_files(run.dir, folder).add(local_dir)
            model = replace(source, artifact_path=folder, flavors=model_flavors(local_dir),
                            model_id=f"m-{uuid.uuid4().hex}", params=dict(source.params),
                            metrics=dict(source.metrics), tags=dict(source.tags))

            def record(data: dict[str, Any]) -> None:
                data["models"] = [*data["models"], asdict(model)]

            self._update(run_id, record)
        return model

    def set_artifact_meta(self, run_id: str, meta: Mapping[str, Mapping[str, Any]]) -> None:
        """Kept whole in ``run.json`` (the archive's own format holds it natively)."""

        def record(data: dict[str, Any]) -> None:
            data["artifact_meta"] = {**data.get("artifact_meta", {}), **{k: dict(v) for k, v in meta.items()}}

        self._update(run_id, record)

    # -- registry ----------------------------------------------------------------

    def register_model(self, model: RegisteredModel) -> None:
        with self._lock:
            self._create()
        self.registry.register(model)

    def create_model_version(self, version: ModelVersion, run_id: str | None) -> ModelVersion:
        with self._lock:
            self._create()
        return self.registry.create_version(version, run_id)

    def set_model_alias(self, name: str, alias: str, version: str) -> None:
        self.registry.set_alias(name, alias, version)

    def set_version_stage(self, name: str, version: str, stage: str | None) -> None:
        self.registry.set_stage(name, version, stage)

    def delete_model_alias(self, name: str, alias: str) -> None:
        self.registry.delete_alias(name, alias)
