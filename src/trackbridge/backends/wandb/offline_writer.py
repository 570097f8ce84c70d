"""Writing W&B offline runs directly: ``PATH/offline-run-<time>-<id>/run-<id>.wandb``.

Why direct: the SDK cannot set a row's step below the last one, a run's start time,
or write faster than ≈36k points/s; the records themselves (built with the installed
wandb's own protobuf classes, framed by :mod:`.txlog`) carry everything, and
``wandb sync PATH/offline-run-*`` uploads them as if the SDK had written them.

What goes where (the reader in :mod:`.offline_reader` reads exactly this back):

* the first record after the header is the Run record (id, project, entity, name,
  start time, group / job type, tags = labels, notes); every later change of those
  writes another Run record, which ``wandb sync`` applies as an update;
* params -> Config records; key/value tags -> config ``trackbridge.tags`` (W&B tags
  are labels only); tags ``wandb.group`` / ``wandb.job_type`` -> the run's group / type;
* rows -> History records: the user's step in ``trackbridge/step`` (declared, with a
  Metric record, as the x-axis of every key), ``_step`` a row counter so steps that
  repeat or go back lose nothing, ``_timestamp`` the source's time in seconds,
  ``_runtime`` seconds since the start;
* summary -> Summary records (``key``); at close, W&B's usual copy of the last value of
  each series (``nested_key``, skipped where the user set that key);
* tag ``wandb.define_metric`` (:mod:`.metrics`) -> kept in config like other tags, and
  its definitions written as Metric records again with ``trackbridge/step`` as the
  x-axis (which holds the step the source's step metric gave), so the summaries they
  ask for (``summary="min"``) are W&B's summaries here too (written at close);
* system metrics -> Stats records (one per time, ``trackbridge/step`` among the items),
  keys without their ``system/`` prefix (a key without one is named in config
  ``trackbridge.system_keys``);
* media points -> History records holding the SDK's dict for each (:mod:`.media`,
  wandb-core's flattened form), their files under ``files/media/...`` + Files records;
* files -> ``files/<path>`` + a Files record; models -> W&B ``model`` Artifact
  records whose files are staged in ``trackbridge-staging/`` of the run dir, their
  canonical metadata in the artifact's metadata (:mod:`.artifacts`);
* artifact metadata of a path holding run files -> an Artifact record of those files
  (type, description, metadata, aliases; ``wandb-artifacts/<name>`` is artifact
  ``<name>``, another path is named in config ``trackbridge.artifact_paths``); of a
  model's path -> that model's artifact; of any other path -> config
  ``trackbridge.artifact_meta``;
* registered versions and aliases -> the run's config ``trackbridge.registry``
  (:mod:`.registry`: what a link cannot say back), and ``LinkArtifactRequest`` records
  naming the model artifact's client id in a second log of the run,
  ``registry-<id>.wandb`` (rewritten at close).  Why apart: ``wandb sync`` sends a
  link as soon as it reads it while the artifact it names is still being created, so a
  link next to its artifact can reach W&B first and fail; the files of one run are
  synced one after the other, in the order of their run records' start times, so the
  second log's links come after the first log's artifacts exist.  That log's run record
  repeats the run's fields, config and summary (an update that changes nothing), and
  its exit record the run's;
* the Exit record (exit code 0 FINISHED, 1 FAILED, 255 KILLED, runtime) is written
  last, at :meth:`close`, since the engine sets tags after ``finish_run``.

Runs get ids derived from their source run (:mod:`.ids`).  ``create_run`` for an id
whose file exists continues that file (its exit record is cut off and written again
at close), so a second copy or a ``sync`` update never makes a second run.
"""
from __future__ import annotations

import base64
import hashlib
import math
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from trackbridge.backends.base import Limits, Writer
from trackbridge.backends.wandb import media as wmedia
from trackbridge.backends.wandb import txlog
from trackbridge.backends.wandb.run_folders import RunFolders
from trackbridge.backends.wandb.artifacts import (
    ARTIFACTS_PREFIX,
    LATEST,
    PLAIN_TYPE,
    logged_model,
    meta_of,
    model_metadata,
    model_paths,
)
from trackbridge.backends.wandb.metrics import (
    DEFINE_METRIC_TAG,
    Aggregate,
    aggregates_for,
    decode_tag,
    fill,
    summary_spec,
)
from trackbridge.backends.wandb.ids import run_id_for, stable_id
from trackbridge.backends.wandb.registry import (
    DEFAULT_REGISTRY,
    REGISTRY_FILES_METADATA,
    Registry,
    artifact_client_id,
    assemble,
    collection_name,
    links,
    model_entry,
    new_entry,
    registry_project,
    version_artifact,
)
from trackbridge.backends.wandb.scan import scan
from trackbridge.backends.wandb.values import (
    ARTIFACT_META_CONFIG_KEY,
    ARTIFACT_PATHS_CONFIG_KEY,
    EXPERIMENT_CONFIG_KEY,
    GROUP_TAG,
    INPUTS_CONFIG_KEY,
    JOB_TYPE_TAG,
    REGISTRY_CONFIG_KEY,
    SOURCE_END_TIME_TAG,
    STEP_KEY,
    SYSTEM_KEYS_CONFIG_KEY,
    SYSTEM_PREFIX,
    TAGS_CONFIG_KEY,
    WANDB_CONFIG_KEY,
    encode,
    project_name,
)
from trackbridge.errors import BackendError, InvalidValueError, RunNotFound
from trackbridge.history import Row, points_to_rows
from trackbridge.model import (
    DatasetInput,
    LoggedModel,
    MediaPoint,
    MetricPoint,
    ModelVersion,
    RegisteredModel,
    RunStatus,
    now_ms,
)

STAGING_DIR = "trackbridge-staging"
EXIT_CODES = {RunStatus.FINISHED: 0, RunStatus.FAILED: 1, RunStatus.KILLED: 255}
#: W&B tags (our labels) are 1-64 characters.
MAX_LABEL = 64

LIMITS = Limits(
    max_metrics_per_batch=50_000,
    max_params_per_batch=10_000,
    max_tags_per_batch=10_000,
    flat_params=False,
    allows_nan=True,
)


def _pb() -> Any:
    try:
        from wandb.proto import wandb_internal_pb2
    except ImportError as exc:  # pragma: no cover - the extra is missing
        from trackbridge.errors import MissingDependencyError

        raise MissingDependencyError(
            "writing W&B offline runs needs wandb's protobuf classes: pip install 'trackbridge[wandb]'") from exc
    return wandb_internal_pb2


@dataclass
class _Run:
    run_id: str
    dir: Path
    project: str
    entity: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    notes: str = ""
    labels: list[str] = field(default_factory=list)
    start_time: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    summary_keys: set[str] = field(default_factory=set)
    last_values: dict[str, float] = field(default_factory=dict)
    last_time: int | None = None
    next_step: int = 0
    num: int = 0
    status: RunStatus = RunStatus.RUNNING
    end_time: int | None = None
    files: set[str] = field(default_factory=set)
    #: model artifact path (:func:`.artifacts.model_paths`) -> its client id (what a
    #: registry link names)
    models: dict[str, str] = field(default_factory=dict)
    #: names of the model artifacts, in log order (their paths follow from it)
    model_names: list[str] = field(default_factory=list)
    #: artifact metadata given for paths that hold no files yet (a model logged next)
    pending_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: config ``trackbridge.artifact_paths`` and ``trackbridge.system_keys`` as written
    artifact_paths: dict[str, str] = field(default_factory=dict)
    system_keys: dict[str, str] = field(default_factory=dict)
    #: config ``trackbridge.artifact_meta`` as written
    config_meta: dict[str, Any] = field(default_factory=dict)
    #: summaries ``define_metric`` asks for: the specs, and each key's running values
    summary_specs: list[Any] = field(default_factory=list)
    aggregates: dict[str, Aggregate | None] = field(default_factory=dict)
    #: artifacts made of run files for registry versions: name -> client id
    registry_files: dict[str, str] = field(default_factory=dict)
    #: the registry entries of this run's models (config ``trackbridge.registry``)
    registry: dict[str, Any] = field(default_factory=dict)
    offset: int = 0  # where the next record starts (the file is reopened there)
    stream: BinaryIO | None = None
    log: txlog.LogWriter | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def path(self) -> Path:
        return self.dir / f"run-{self.run_id}.wandb"


class WandbOfflineWriter(Writer):
    limits = LIMITS

    def __init__(self, root: Path, platform: str = "wandb-offline", entity: str | None = None,
                 registry: str | None = None, organization: str | None = None) -> None:
        self.root = root
        self._folders = RunFolders(root)
        self.platform = platform
        self.entity = entity or ""
        #: where registry links go: ``wandb-registry-<registry>``, in the org of the entity
        self.registry = registry or DEFAULT_REGISTRY
        self.organization = organization or ""
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        #: run id -> its registry entries, every run under the root (read once, on first use)
        self._held: dict[str, Any] | None = None
        #: model name -> (description, tags, time) given to register_model
        self._meta: dict[str, tuple[str, dict[str, str], int]] = {}
        self._registry_lock = threading.RLock()
        #: W&B project -> the experiment name it was made from, where they differ
        self._names: dict[str, str] = {}

    # -- records ------------------------------------------------------------------

    def _write(self, run: _Run, record: Any, flush: bool = True) -> None:
        """Append one Record (``num`` and stream id set here) to the run's log; with
        ``flush`` the OS has it (a killed process leaves every record written so far)."""
        with run.lock:
            if run.log is None:
                stream = open(run.path, "r+b" if run.path.exists() else "w+b")
                if run.offset:
                    stream.truncate(run.offset)
                    stream.seek(run.offset)
                    run.log = txlog.LogWriter(stream, offset=run.offset)
                else:
                    run.log = txlog.LogWriter(stream)
                run.stream = stream
            run.num += 1
            record.num = run.num
            record._info.stream_id = run.run_id
            run.log.write(record.SerializeToString())
            run.offset = run.log.offset
            if flush:
                run.stream.flush()

    def _run_record(self, run: _Run) -> Any:
        pb = _pb()
        rec = pb.Record()
        r = rec.run
        r.run_id = run.run_id
        r.project = run.project
        r.entity = run.entity
        r.display_name = run.name
        r.run_group = run.group
        r.job_type = run.job_type
        r.notes = run.notes
        r.tags.extend(run.labels)
        r.start_time.FromMilliseconds(run.start_time)
        r.telemetry.feature.offline = True
        return rec

    def _config(self, run: _Run, values: Mapping[str, Any]) -> None:
        pb = _pb()
        rec = pb.Record()
        for key, value in values.items():
            item = rec.config.update.add()
            item.key = key
            item.value_json = _json(value, key)
        self._write(run, rec)

    def _open(self, run_id: str) -> _Run:
        """A run this writer is writing, or one already under the root (a later pass of
        a copy or a sync continues it)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                run = self._existing(run_id)
                if run is None:
                    raise RunNotFound(f"no W&B offline run {run_id!r} under {self.root}")
                self._runs[run_id] = run
        return run

    # -- Writer -------------------------------------------------------------------

    def ensure_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        """W&B projects need no creation: the project is a field of each run record
        (named as W&B allows, :func:`.values.project_name`)."""
        project = project_name(name)
        if project != name:
            self._names[project] = name
        return project

    def create_run(self, experiment_id: str, *, name: str | None = None, start_time: int | None = None,
                   user: str | None = None, parent_run_id: str | None = None,
                   tags: Mapping[str, str] | None = None) -> str:
        run_id = run_id_for(tags)
        with self._lock:
            if run_id in self._runs:
                run = self._runs[run_id]
            else:
                run = self._existing(run_id) or self._new(run_id, experiment_id, name, start_time)
                self._runs[run_id] = run
        if self._names.get(run.project):
            self._config(run, {EXPERIMENT_CONFIG_KEY: self._names[run.project]})
        if tags:
            self.set_tags(run_id, tags)
        return run_id

    def _new(self, run_id: str, project: str, name: str | None, start_time: int | None) -> _Run:
        start = start_time if start_time is not None else now_ms()
        stamp = datetime.fromtimestamp(start / 1000, tz=timezone.utc).strftime("%Y%m%d_%H%M%S")
        run = _Run(run_id=run_id, dir=self.root / f"offline-run-{stamp}-{run_id}", project=project_name(project),
                   entity=self.entity, name=name or "", start_time=start)
        before = self._folders.stamp()
        (run.dir / "files").mkdir(parents=True, exist_ok=True)
        self._folders.made(run.dir, run_id, before)
        pb = _pb()
        self._write(run, _header())
        self._write(run, self._run_record(run))
        for metric in ({"name": STEP_KEY, "hidden": True}, {"glob_name": "*", "step_metric": STEP_KEY}):
            rec = pb.Record()
            if "name" in metric:
                rec.metric.name = metric["name"]
                rec.metric.options.hidden = True
            else:
                rec.metric.glob_name = metric["glob_name"]
                rec.metric.step_metric = metric["step_metric"]
                rec.metric.options.step_sync = True
            rec.metric.options.defined = True
            self._write(run, rec)
        return run

    def _existing(self, run_id: str) -> _Run | None:
        """A run of this id already under the root: continue its file."""
        found = [f / f"run-{run_id}.wandb" for f in self._folders.of(run_id) if (f / f"run-{run_id}.wandb").is_file()]
        if not found:
            return None
        old = scan(found[0])
        if not old.run_id:  # killed before its run record reached the disk: start it again
            found[0].unlink()
            return None
        run = _Run(run_id=run_id, dir=found[0].parent, project=old.project, entity=old.entity,
                   name=old.display_name, group=old.group, job_type=old.job_type, notes=old.notes,
                   labels=list(old.labels), start_time=old.start_time or now_ms())
        run.tags = {k: str(v) for k, v in (old.config.get(TAGS_CONFIG_KEY) or {}).items()}
        run.inputs = [i for i in old.config.get(INPUTS_CONFIG_KEY) or [] if isinstance(i, dict)]
        run.summary_keys = set(old.user_summary())
        run.last_values = {k: m.value for k, m in old.metrics.items()}
        run.next_step = old.last_step + 1
        run.last_time = old.last_timestamp
        run.num = old.records
        run.files = {p for p, _kind in old.files}
        models = [a for a in old.artifacts if a.type == "model" and not a.used and a.client_id]
        logged = [a for a in models if REGISTRY_FILES_METADATA not in a.metadata]
        run.model_names = [a.name for a in logged]
        run.models = {path: a.client_id for path, a in zip(model_paths(run.model_names), logged)}
        for name, key in ((ARTIFACT_PATHS_CONFIG_KEY, "artifact_paths"), (SYSTEM_KEYS_CONFIG_KEY, "system_keys"),
                          (ARTIFACT_META_CONFIG_KEY, "config_meta")):
            kept = old.config.get(name)
            setattr(run, key, dict(kept) if isinstance(kept, dict) else {})
        run.summary_specs = aggregates_for(decode_tag(run.tags.get(DEFINE_METRIC_TAG)))
        run.registry_files = {a.name: a.client_id for a in models if REGISTRY_FILES_METADATA in a.metadata}
        held = old.config.get(REGISTRY_CONFIG_KEY)
        run.registry = held if isinstance(held, dict) else {}
        # cut the exit record (written again at close) and any damaged tail
        run.offset = old.exit_offset if old.exit_offset is not None else old.end_offset
        # `wandb sync` keeps how far it uploaded in a sidecar; that offset may now fall
        # inside a record, so the next sync starts over (the file stream rewrites lines
        # by their offset: nothing is duplicated)
        found[0].with_name(found[0].name + ".syncstate").unlink(missing_ok=True)
        if old.exit_code is not None:
            run.status = {0: RunStatus.FINISHED, 255: RunStatus.KILLED}.get(old.exit_code, RunStatus.FAILED)
            run.end_time = run.start_time + (old.runtime or 0) * 1000
        return run

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        if params:
            self._config(self._open(run_id), params)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        run = self._open(run_id)
        with run.lock:
            meta = False
            if GROUP_TAG in tags:
                run.group, meta = tags[GROUP_TAG], True
            if JOB_TYPE_TAG in tags:
                run.job_type, meta = tags[JOB_TYPE_TAG], True
            rest = {k: str(v) for k, v in tags.items() if k not in (GROUP_TAG, JOB_TYPE_TAG)}
            if meta:
                self._write(run, self._run_record(run))
            if DEFINE_METRIC_TAG in rest and rest[DEFINE_METRIC_TAG] != run.tags.get(DEFINE_METRIC_TAG):
                self._define_metrics(run, decode_tag(rest[DEFINE_METRIC_TAG]))
            if rest:
                run.tags.update(rest)
                self._config(run, {TAGS_CONFIG_KEY: dict(run.tags)})

    def _define_metrics(self, run: _Run, definitions: list[dict[str, Any]]) -> None:
        """The source's ``define_metric`` definitions as Metric records, each with
        ``trackbridge/step`` as its x-axis (it holds the step the source's step metric
        gave: a row here has no value of that metric for every series it names)."""
        pb = _pb()
        for spec in definitions:
            rec = pb.Record()
            fill(rec.metric, spec, step_metric=STEP_KEY)
            self._write(run, rec)
        run.summary_specs = aggregates_for(definitions)
        run.aggregates.clear()

    def delete_tags(self, run_id: str, keys: Sequence[str]) -> None:
        run = self._open(run_id)
        with run.lock:
            for key in keys:
                run.tags.pop(key, None)
            self._config(run, {TAGS_CONFIG_KEY: dict(run.tags)})

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        """Dataset inputs in config ``trackbridge.inputs`` (W&B runs have no such field);
        inputs already there are not added twice (a resumed copy)."""
        run = self._open(run_id)
        with run.lock:
            new = [i for i in (asdict(x) for x in inputs) if i not in run.inputs]
            if new:
                run.inputs.extend(new)
                self._config(run, {INPUTS_CONFIG_KEY: list(run.inputs)})

    def set_run_name(self, run_id: str, name: str) -> None:
        run = self._open(run_id)
        with run.lock:
            run.name = name
            self._write(run, self._run_record(run))

    def set_labels(self, run_id: str, labels: Sequence[str]) -> None:
        run = self._open(run_id)
        bad = [label for label in labels if not 1 <= len(label) <= MAX_LABEL]
        if bad:
            raise InvalidValueError(f"W&B tags must be 1-{MAX_LABEL} characters: {bad[:3]!r}")
        with run.lock:
            new = [label for label in labels if label not in run.labels]
            if new:
                run.labels.extend(new)
                self._write(run, self._run_record(run))

    def set_notes(self, run_id: str, notes: str) -> None:
        run = self._open(run_id)
        with run.lock:
            run.notes = notes
            self._write(run, self._run_record(run))

    def log_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        if not summary:
            return
        run = self._open(run_id)
        rec = _pb().Record()
        for key, value in summary.items():
            item = rec.summary.update.add()
            item.key = key
            item.value_json = _json(value, key)
        with run.lock:
            run.summary_keys.update(summary)
            self._write(run, rec)

    def log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        """Points as rows (:func:`trackbridge.history.points_to_rows`)."""
        self.log_rows(run_id, points_to_rows(points))

    def log_rows(self, run_id: str, rows: Sequence[Row]) -> None:
        run = self._open(run_id)
        pb = _pb()
        with run.lock:
            start = run.start_time
            last = run.last_values
            specs, aggregates = run.summary_specs, run.aggregates
            for row in rows:
                rec = pb.Record()
                history = rec.history
                items = history.item
                for key, value in row.values.items():
                    item = items.add()
                    item.nested_key.append(key)
                    item.value_json = encode(float(value))
                    last[key] = value
                    if specs:
                        agg = aggregates.get(key, False)
                        if agg is False:
                            spec = summary_spec(specs, key)
                            agg = aggregates[key] = Aggregate(*spec) if spec and "none" not in spec[0] else None
                        if agg is not None:
                            agg.add(float(value))
                for key, value in ((STEP_KEY, str(int(row.step))), ("_step", str(run.next_step)),
                                   ("_timestamp", repr(row.timestamp / 1000)),
                                   ("_runtime", repr(max(0, row.timestamp - start) / 1000))):
                    item = items.add()
                    item.nested_key.append(key)
                    item.value_json = value
                history.step.num = run.next_step
                run.next_step += 1
                run.last_time = row.timestamp if run.last_time is None else max(run.last_time, row.timestamp)
                self._write(run, rec, flush=False)
            if run.stream is not None:
                run.stream.flush()

    def log_system_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        run = self._open(run_id)
        pb = _pb()
        groups: dict[tuple[int, int], list[tuple[str, float]]] = {}
        for key, p in points:
            groups.setdefault((p.timestamp, p.step), []).append((key, p.value))
        with run.lock:
            unnamed = {k.removeprefix(SYSTEM_PREFIX): k for k, _p in points
                       if not k.startswith(SYSTEM_PREFIX) and k not in run.system_keys.values()}
            if unnamed:  # stats keys are read as system/<key>: these keep their own names
                run.system_keys.update(unnamed)
                self._config(run, {SYSTEM_KEYS_CONFIG_KEY: dict(run.system_keys)})
            for (ts, step), items in groups.items():
                rec = pb.Record()
                rec.stats.stats_type = pb.StatsRecord.StatsType.Value("SYSTEM")
                rec.stats.timestamp.FromMilliseconds(ts)
                for key, value in [*items, (STEP_KEY, step)]:
                    item = rec.stats.item.add()
                    item.key = key.removeprefix(SYSTEM_PREFIX)
                    item.value_json = encode(float(value))
                self._write(run, rec)

    def log_artifact(self, run_id: str, local_path: Path, artifact_dir: str | None = None) -> None:
        run = self._open(run_id)
        base = PurePosixPath(artifact_dir) if artifact_dir else PurePosixPath()
        if local_path.is_dir():
            pairs = [(f, base / local_path.name / f.relative_to(local_path).as_posix())
                     for f in sorted(local_path.rglob("*")) if f.is_file()]
        else:
            pairs = [(local_path, base / local_path.name)]
        pb = _pb()
        rec = pb.Record()
        with run.lock:
            for src, rel in pairs:
                _check_rel(rel)
                dst = run.dir / "files" / Path(*rel.parts)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                item = rec.files.files.add()
                item.path = rel.as_posix()
                item.policy = pb.FilesItem.PolicyType.Value("END")
                item.type = pb.FilesItem.FileType.Value("OTHER")
                run.files.add(rel.as_posix())
            if pairs:
                self._write(run, rec)

    def log_model(self, run_id: str, local_dir: Path, source: LoggedModel) -> LoggedModel:
        """A new W&B ``model`` artifact named ``source.name`` holding the folder's files
        (staged inside the run dir, where ``wandb sync`` uploads them from), with the
        model's metadata (:mod:`.artifacts`).  A name logged again is a new artifact at
        path ``<name>#<n>``, never the same files."""
        name = source.name
        run = self._open(run_id)
        with run.lock:
            path = model_paths([*run.model_names, name])[-1]
            extra = run.pending_meta.pop(path, {})  # only what the artifact gives back exactly
            metadata = model_metadata(source, extra.get("metadata"))
            client_id = self._model_record(run, local_dir, name, metadata, key=path,
                                           description=str(extra.get("description") or ""),
                                           aliases=list(extra.get("aliases") or []),
                                           tags=[str(t) for t in extra.get("tags") or []])
            run.model_names.append(name)
            run.models[path] = client_id
        made = logged_model(name, path, client_id, metadata)
        made.flavors = list(source.flavors)
        return made

    def _model_record(self, run: _Run, local_dir: Path, name: str, metadata: Mapping[str, Any] | None = None,
                      key: str | None = None, description: str = "", aliases: Sequence[str] = (),
                      tags: Sequence[str] = ()) -> str:
        """Stage ``local_dir``'s files and write the ``model`` Artifact record; its client
        id (fixed by the run, ``key`` (the model's path) and the files)."""
        files = [f for f in sorted(local_dir.rglob("*")) if f.is_file()] if local_dir.is_dir() else [local_dir]
        with run.lock:
            stage = run.dir / STAGING_DIR / f"{name}-{run.num}"
            pairs = []
            for f in files:
                rel = f.relative_to(local_dir).as_posix() if local_dir.is_dir() else f.name
                dst = stage / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dst)
                pairs.append((rel, dst))
            return self._artifact_record(run, name, "model", pairs, metadata, key or name, description, aliases,
                                         tags)

    def _artifact_record(self, run: _Run, name: str, kind: str, files: Sequence[tuple[str, Path]],
                         metadata: Mapping[str, Any] | None, key: str, description: str = "",
                         aliases: Sequence[str] = (), tags: Sequence[str] = ()) -> str:
        """Write an Artifact record of ``files`` ((path in the artifact, local file that
        ``wandb sync`` uploads)); its client id."""
        pb = _pb()
        with run.lock:
            rec = pb.Record()
            art = rec.artifact
            art.run_id, art.project, art.entity = run.run_id, run.project, run.entity
            art.type, art.name = kind, name
            art.description = description
            art.aliases.extend([a for a in aliases if a != LATEST] + [LATEST])
            art.tags.extend(tags)
            art.sequence_client_id = stable_id(f"trackbridge:sequence:{run.run_id}:{name}", 26)
            art.finalize = True
            if metadata:
                art.metadata = _json(dict(metadata), name)
            art.digest_algorithm = "MANIFEST_MD5"
            manifest = art.manifest
            manifest.version = 1
            manifest.storage_policy = "wandb-storage-policy-v1"
            cfg = manifest.storage_policy_config.add()
            cfg.key, cfg.value_json = "storageLayout", '"V2"'
            entries = []
            for rel, dst in files:
                digest = base64.b64encode(hashlib.md5(dst.read_bytes()).digest()).decode()
                entry = manifest.contents.add()
                entry.path, entry.digest, entry.size, entry.local_path = rel, digest, dst.stat().st_size, str(dst.resolve())
                entries.append((rel, digest))
            hasher = hashlib.md5(b"wandb-artifact-manifest-v1\n")
            for rel, digest in sorted(entries):
                hasher.update(f"{rel}:{digest}\n".encode())
            art.digest = hasher.hexdigest()
            art.client_id = artifact_client_id(run.run_id, key, art.digest)
            self._write(run, rec)
        return art.client_id

    def log_media(self, run_id: str, key: str, points: Sequence[tuple[MediaPoint, Path | None]]) -> None:
        """One History record per point holding the SDK's dict (:mod:`.media`, in
        wandb-core's flattened form: ``nested_key`` ``[key, field]``), at the point's
        step and time; its file under ``files/media/`` with a Files record."""
        run = self._open(run_id)
        pb = _pb()
        safe = "/".join(p for p in key.split("/") if p not in ("", ".", "..")) or "media"
        with run.lock:
            for point, local in points:
                if point.kind not in wmedia.NATIVE_KINDS:
                    raise InvalidValueError(f"media {key!r}: W&B has no {point.kind!r} media here")
                try:
                    value, rel = wmedia.history_value(safe, point, local, run.dir / "files")
                except ValueError as exc:
                    raise InvalidValueError(str(exc)) from None
                if rel is not None:
                    files = pb.Record()
                    item = files.files.files.add()
                    item.path, item.type = rel, pb.FilesItem.FileType.Value("MEDIA")
                    self._write(run, files, flush=False)
                    run.files.add(rel)
                rec = pb.Record()
                items = rec.history.item
                for field_name, field_value in value.items():
                    item = items.add()
                    item.nested_key.extend([key, field_name])
                    item.value_json = _json(field_value, key)
                for name, text in ((STEP_KEY, str(int(point.step))), ("_step", str(run.next_step)),
                                   ("_timestamp", repr(point.timestamp / 1000)),
                                   ("_runtime", repr(max(0, point.timestamp - run.start_time) / 1000))):
                    item = items.add()
                    item.nested_key.append(name)
                    item.value_json = text
                rec.history.step.num = run.next_step
                run.next_step += 1
                self._write(run, rec, flush=False)
            if run.stream is not None:
                run.stream.flush()

    def set_artifact_meta(self, run_id: str, meta: Mapping[str, Mapping[str, Any]]) -> None:
        """Each path's type, description, metadata, aliases and tags (module doc): an
        Artifact record of the run's files there, the model logged there next, or config
        (also for metadata an artifact would not give back exactly: other fields, aliases
        out of order, an empty description...)."""
        run = self._open(run_id)
        with run.lock:
            kept: dict[str, Any] = {}
            for path, given in meta.items():
                path = path.strip("/")
                files = sorted(f for f in run.files if f == path or f.startswith(path + "/"))
                if not files or not _as_artifact(given, model=False):
                    if files or path in run.models or not _as_artifact(given, model=True):
                        kept[path] = dict(given)  # config keeps it as given (a logged model cannot change)
                    else:
                        run.pending_meta[path] = dict(given)
                    continue
                name = path[len(ARTIFACTS_PREFIX) + 1:] if path.startswith(ARTIFACTS_PREFIX + "/") else ""
                single = files == [path]
                if not name or "/" in name or single:
                    # where its files are: a folder ends with "/", a file is the artifact's one entry
                    name, where = collection_name(path), path if single else path + "/"
                    if run.artifact_paths.get(name) != where:
                        run.artifact_paths[name] = where
                        self._config(run, {ARTIFACT_PATHS_CONFIG_KEY: dict(run.artifact_paths)})
                local = run.dir / "files"
                pairs = [(PurePosixPath(f).name if f == path else f[len(path) + 1:], local / Path(*PurePosixPath(f).parts))
                         for f in files]
                metadata = given.get("metadata")
                self._artifact_record(run, name, str(given.get("type") or PLAIN_TYPE), pairs,
                                      metadata if isinstance(metadata, Mapping) else None, path,
                                      str(given.get("description") or ""), list(given.get("aliases") or []),
                                      [str(t) for t in given.get("tags") or []])
            if kept:
                self._keep_meta(run, kept)

    def _keep_meta(self, run: _Run, kept: Mapping[str, Any]) -> None:
        """Metadata of paths no artifact here holds, in config ``trackbridge.artifact_meta``."""
        run.config_meta.update(kept)
        self._config(run, {ARTIFACT_META_CONFIG_KEY: dict(run.config_meta)})

    def _files_artifact(self, run: _Run, name: str, path: str) -> str:
        """The client id of artifact ``name`` of the run's files under ``path``
        (:func:`.registry.version_artifact`), made once, marked so readers keep it out of
        the run's models."""
        if name not in run.registry_files:
            local = run.dir / "files" / Path(*PurePosixPath(path).parts)
            if not local.exists() or not any(f.is_file() for f in ([local] if local.is_file() else local.rglob("*"))):
                raise InvalidValueError(f"run {run.run_id} has no model artifact nor files at {path!r}: "
                                        "log the model (or the files) with the run first")
            run.registry_files[name] = self._model_record(run, local, name, {REGISTRY_FILES_METADATA: path})
        return run.registry_files[name]

    # -- registry (module doc of :mod:`.registry`) -----------------------------------

    @property
    def link_entity(self) -> str:
        """The entity registry links name (W&B finds the registry's org from it)."""
        return self.entity or os.environ.get("WANDB_ENTITY", "")

    def _registry(self) -> Registry:
        """The registry every run's entries make (the runs this writer has open count
        as they are now)."""
        if self._held is None:
            from trackbridge.backends.wandb.offline_reader import WandbOfflineReader

            reader = WandbOfflineReader(self.root, self.platform)
            self._held = reader.registry_entries()
        for run_id, run in list(self._runs.items()):
            self._held[run_id] = run.registry
        return assemble(self._held.items())

    def _write_links(self, run: _Run, exit_record: Any | None) -> None:
        """The run's second log, ``registry-<id>.wandb``: its registry links after a run
        record that repeats the run as it is (module doc)."""
        path = run.dir / f"registry-{run.run_id}.wandb"
        path.with_name(path.name + ".syncstate").unlink(missing_ok=True)
        made = links(run.registry)
        if not made:
            path.unlink(missing_ok=True)
            return
        pb = _pb()
        now = scan(run.path)
        records = [_header()]
        update = self._run_record(run)
        update.run.start_time.FromMilliseconds(run.start_time + 1)  # synced after the run's own log
        for key, value in now.config.items():
            if key != WANDB_CONFIG_KEY:
                item = update.run.config.update.add()
                item.key, item.value_json = key, _json(value, key)
        for key, (value, _nested) in now.summary.items():
            item = update.run.summary.update.add()
            item.key, item.value_json = key, _json(value, key)
        records.append(update)
        for client_id, collection, aliases in made:
            rec = pb.Record()
            link = rec.request.link_artifact
            link.client_id, link.portfolio_name = client_id, collection
            link.portfolio_entity, link.portfolio_project = self.link_entity, registry_project(self.registry)
            link.portfolio_organization = self.organization
            link.portfolio_aliases.extend(aliases)
            records.append(rec)
        if exit_record is not None:
            records.append(exit_record)
        with open(path, "w+b") as stream:
            log = txlog.LogWriter(stream)
            for num, rec in enumerate(records, start=1):
                rec.num = num
                rec._info.stream_id = run.run_id
                log.write(rec.SerializeToString())
            log.flush()

    def register_model(self, model: RegisteredModel) -> None:
        """W&B collections are made by their first link: the description and tags go
        with the model's next version, or now to the run of its latest one."""
        with self._registry_lock:
            current = self._registry()
            meta = (model.description or "", dict(model.tags), current.tick())
            self._meta[model.name] = meta
            existing = current.models.get(model.name)
            if existing and existing.versions:
                latest = current.locate(model.name, existing.versions[-1].version)
                run = self._open(latest.run_id)
                with run.lock:
                    model_entry(run.registry, model.name, latest.collection, meta)
                    self._config(run, {REGISTRY_CONFIG_KEY: run.registry})

    def create_model_version(self, version: ModelVersion, run_id: str | None) -> ModelVersion:
        """Link the run's model artifact into the collection; the version is numbered
        as W&B will (one after the collection's last, from 1 for W&B's v0)."""
        if not run_id:
            raise InvalidValueError(f"version of {version.name!r}: a W&B registry version is a run's model artifact")
        run = self._open(run_id)
        with self._registry_lock:
            current = self._registry()
            with run.lock:
                artifact, path = version_artifact(run.models, version, run.run_id)
                client_id = run.models[artifact] if path is None else self._files_artifact(run, artifact, path)
                collection = collection_name(version.name)
                number = current.next_number(version.name)
                entry = new_entry(artifact, client_id, current.tick(), number, version, path)
                model = model_entry(run.registry, version.name, collection, self._meta.get(version.name))
                model["versions"].append(entry)
                self._config(run, {REGISTRY_CONFIG_KEY: run.registry})
        return replace(version, version=str(number), run_id=run_id, artifact_path=path or artifact, aliases=[],
                       creation_time=entry["created"])

    def set_model_alias(self, name: str, alias: str, version: str) -> None:
        """W&B keeps an alias on one version of a collection: linking the version again
        with the alias moves it there."""
        with self._registry_lock:
            located = self._registry().locate(name, version)
            run = self._open(located.run_id)
            current = self._registry()
            located = current.locate(name, version)
            with run.lock:
                located.entry.setdefault("aliases", {})[alias] = current.tick()
                self._config(run, {REGISTRY_CONFIG_KEY: run.registry})

    def set_version_stage(self, name: str, version: str, stage: str | None) -> None:
        """W&B has no stages: the stage is kept in the version's entry of config
        ``trackbridge.registry`` (:mod:`.registry`) and read back from there."""
        with self._registry_lock:
            located = self._registry().locate(name, version)
            run = self._open(located.run_id)
            located = self._registry().locate(name, version)
            with run.lock:
                if stage:
                    located.entry["stage"] = stage
                else:
                    located.entry.pop("stage", None)
                self._config(run, {REGISTRY_CONFIG_KEY: run.registry})

    def finish_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        """Status and end time are kept; the Exit record is written by :meth:`close`
        (after the tags the engine sets last).  The file is closed meanwhile."""
        run = self._open(run_id)
        with run.lock:
            run.status = status
            if end_time is None:  # a copy's source end time is in a tag: W&B's runtime from it
                end_time = _int(run.tags.get(SOURCE_END_TIME_TAG)) or run.last_time or now_ms()
            run.end_time = end_time
            self._close_stream(run)

    def delete_run(self, run_id: str) -> None:
        """Remove the run's folder (its log, files and staged model files)."""
        run = self._open(run_id)
        with self._lock:
            self._runs.pop(run_id, None)
        if self._held is not None:
            self._held.pop(run_id, None)
        with run.lock:
            self._close_stream(run)
            shutil.rmtree(run.dir, ignore_errors=True)

    def flush(self) -> None:
        for run in list(self._runs.values()):
            with run.lock:
                if run.stream is not None:
                    run.stream.flush()

    def close(self) -> None:
        """Finalise every run: W&B's summary of the last values, then the Exit record
        of finished runs."""
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
        errors = []
        for run in runs:
            try:
                self._finalise(run)
            except OSError as exc:
                errors.append(f"{run.path}: {exc}")
        if errors:
            raise BackendError("could not finish W&B offline runs: " + "; ".join(errors))

    def _finalise(self, run: _Run) -> None:
        pb = _pb()
        with run.lock:
            if run.pending_meta:  # given for paths that never got files nor a model
                self._keep_meta(run, run.pending_meta)
                run.pending_meta = {}
            auto: dict[str, Any] = {}
            for key, value in run.last_values.items():
                if key in run.summary_keys:
                    continue
                agg = run.aggregates.get(key)
                if agg is None and run.summary_specs:
                    spec = summary_spec(run.summary_specs, key)
                    if spec and "none" in spec[0]:
                        continue  # define_metric(summary="none"): W&B keeps no summary
                auto[key] = (agg.summary() or float(value)) if agg is not None else float(value)
            if auto:
                rec = pb.Record()
                for key, value in auto.items():
                    item = rec.summary.update.add()
                    item.nested_key.append(key)
                    item.value_json = _json(value, key)
                self._write(run, rec)
            exit_record = None
            if run.status not in (RunStatus.RUNNING, RunStatus.SCHEDULED):
                exit_record = pb.Record()
                exit_record.exit.exit_code = EXIT_CODES.get(run.status, 1)
                end = run.end_time if run.end_time is not None else now_ms()
                exit_record.exit.runtime = max(0, int(math.ceil((end - run.start_time) / 1000)))
                self._write(run, exit_record)
            self._close_stream(run)
            if run.registry:
                self._write_links(run, exit_record)

    @staticmethod
    def _close_stream(run: _Run) -> None:
        if run.stream is not None:
            run.stream.flush()
            run.stream.close()
            run.stream = None
            run.log = None


def _as_artifact(given: Mapping[str, Any], model: bool) -> bool:
    """Whether a W&B artifact (a model's, with ``model``) gives ``given`` back exactly as
    the readers read it (:func:`.artifacts.meta_of`)."""
    metadata, aliases, tags = given.get("metadata", {}), given.get("aliases", []), given.get("tags", [])
    if not (isinstance(metadata, Mapping) and isinstance(aliases, list) and isinstance(tags, list)
            and all(isinstance(a, str) for a in [*aliases, *tags])
            and isinstance(given.get("description", ""), str) and isinstance(given.get("type", ""), str)):
        return False
    kind = "model" if model else str(given.get("type") or PLAIN_TYPE)
    return meta_of(kind, given.get("description", ""), metadata, aliases, tags, model=model) == dict(given)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _json(value: Any, key: str) -> str:
    try:
        return encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"value of {key!r} is not JSON ({exc}); W&B config/summary hold JSON values") from exc


def _check_rel(rel: PurePosixPath) -> None:
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise InvalidValueError(f"artifact path {rel.as_posix()!r} must be relative, without '..'")


def _header() -> Any:
    """The header record every ``.wandb`` log starts with."""
    rec = _pb().Record()
    rec.header.version_info.producer = f"trackbridge (wandb {_wandb_version()})"
    rec.header.version_info.min_consumer = "0.70.0"
    return rec


def _wandb_version() -> str:
    try:
        from importlib.metadata import version

        return version("wandb")
    except Exception:  # noqa: BLE001 - only informative
        return "unknown"

