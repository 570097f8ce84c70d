"""Logging live through the wandb SDK (``TRACKBRIDGE_BACKEND=wandb``), online or offline.

Why the SDK here (and not the direct file writer): live runs get wandb's own system
metrics, console capture and online streaming.  The facade calls this writer from its
background worker thread, so SDK latency never reaches the training loop.

Mapping (the same conventions as the offline writer, so both read back alike):

* params -> ``run.config`` (nested kept); key/value tags -> config ``trackbridge.tags``;
  tags ``wandb.group`` / ``wandb.job_type`` given at ``create_run`` -> group / job type;
* metrics -> history rows: ``trackbridge/step`` carries the user's step and is declared
  (``define_metric``) the x-axis of every key; W&B's own ``_step`` just counts rows, so
  a step that repeats or goes back loses no point; ``_timestamp`` is the point's time;
* labels -> W&B tags, notes -> notes, summary -> ``run.summary``;
* files -> one W&B Artifact ``<run id>-files`` (type ``run-files``) logged at finish with
  every file at its path; models -> W&B ``model`` Artifacts;
* registered versions and aliases -> ``run.link_artifact`` of the model artifact into
  ``wandb-registry-<registry>/<collection>``, and the run's config
  ``trackbridge.registry`` (:mod:`.registry`).  wandb 0.31 cannot link offline: an
  offline run keeps the registration in its config only, and a warning says how to
  link it (copy the run into ``wandb-offline:`` and ``wandb sync`` it).  A copy whose
  run logged a model stays open until :meth:`close`, after the engine's registry step.

Runs of earlier processes (a later ``sync`` pass, a replay) are resumed online with
``wandb.init(resume="must")``, found through ``wandb.Api``; W&B cannot resume offline.

Reachability: ``WANDB_MODE=offline`` (or option ``mode``) writes offline at once.  In
online mode the W&B host is probed first (one HTTP request, ``probe_timeout`` s, default
3) and ``init`` is given ``init_timeout`` s (default 10) instead of the SDK's 90; if
either fails the run is created offline (after a timed-out ``init`` under the id
``<id>-offline``, since wandb's service still holds the first) and a warning says where
it is and the ``wandb sync`` command that uploads it later.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trackbridge.backends.base import Limits, Writer
from trackbridge.backends.wandb.artifacts import logged_model, model_metadata, model_paths
from trackbridge.backends.wandb.ids import derived_run_id, run_id_for
from trackbridge.backends.wandb.metrics import DEFINE_METRIC_TAG, decode_tag
from trackbridge.backends.wandb.reach import reachable
from trackbridge.backends.wandb.registry import (
    DEFAULT_REGISTRY,
    REGISTRY_FILES_METADATA,
    assemble,
    collection_name,
    model_entry,
    new_entry,
    registry_project,
    version_artifact,
)
from trackbridge.backends.wandb.values import (
    EXPERIMENT_CONFIG_KEY,
    GROUP_TAG,
    INPUTS_CONFIG_KEY,
    JOB_TYPE_TAG,
    REGISTRY_CONFIG_KEY,
    SOURCE_END_TIME_TAG,
    SOURCE_START_TIME_TAG,
    STEP_KEY,
    TAGS_CONFIG_KEY,
    UNFINISHED_TAG,
    project_name,
)
from trackbridge.errors import BackendError, InvalidValueError, MissingDependencyError, RunNotFound
from trackbridge.history import Row, points_to_rows
from trackbridge.model import DatasetInput, LoggedModel, MetricPoint, ModelVersion, RegisteredModel, RunStatus

log = logging.getLogger("trackbridge")

LOCAL_ID_TAG = "trackbridge.local_run_id"
DEFAULT_BASE_URL = "https://api.wandb.ai"

LIMITS = Limits(
    max_metrics_per_batch=10_000,
    max_params_per_batch=10_000,
    max_tags_per_batch=10_000,
    flat_params=False,
    allows_nan=True,
)


#: W&B run states -> the exit code a resumed run ends with again (running: none).
RESUMED_EXIT_CODES = {"finished": 0, "failed": 1, "crashed": 1, "killed": 255}
#: SDK settings of a copied run: no system metrics, console or code of this process in it.
COPY_SETTINGS = dict(x_disable_stats=True, console="off", save_code=False, disable_git=True, x_disable_meta=True)


def _client_id(artifact: Any) -> str:
    """The id a logged artifact is known by before the server names it (the SDK's own)."""
    return str(getattr(artifact, "_client_id", "") or "")


def _wandb() -> Any:
    try:
        import wandb
    except ImportError as exc:
        raise MissingDependencyError("the wandb backend needs the wandb SDK: pip install 'trackbridge[wandb]'") from exc
    return wandb


@dataclass
class _Live:
    run: Any
    tags: dict[str, str] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    files: list[tuple[Path, str]] = field(default_factory=list)
    #: every file logged (staged path, path in the run), kept after finish for registry versions
    logged_files: list[tuple[Path, str]] = field(default_factory=list)
    offline: bool = False
    #: a copy made by the engine (provenance tags): it sets tags after ``finish_run``
    copy: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: exit code once ``finish_run`` was called; the SDK run is finished a moment later
    exit_code: int | None = None
    timer: threading.Timer | None = None
    #: model artifacts logged by the run, by path (:func:`.artifacts.model_paths`: what
    #: registry links link)
    models: dict[str, Any] = field(default_factory=dict)
    #: the registry entries of the run's models (config ``trackbridge.registry``)
    registry: dict[str, Any] = field(default_factory=dict)


class WandbLiveWriter(Writer):
    limits = LIMITS

    def __init__(self, platform: str = "wandb", options: Mapping[str, Any] | None = None) -> None:
        self.platform = platform
        self.options = dict(options or {})
        self._runs: dict[str, _Live] = {}
        self._lock = threading.Lock()
        #: W&B project -> the experiment name it was made from, where they differ
        self._names: dict[str, str] = {}
        self._staging = Path(tempfile.mkdtemp(prefix="tb-wandb-files-"))
        #: (run id, offline dir) of every run that fell back to offline mode.
        self.fallbacks: list[tuple[str, str]] = []
        #: run id -> registry entries of every run (read from W&B on first use)
        self._held: dict[str, dict[str, Any]] | None = None
        #: model name -> (description, tags, time) given to register_model
        self._meta: dict[str, tuple[str, dict[str, str], int]] = {}
        self._warned_offline_link = False

    # -- settings -------------------------------------------------------------------

    def _opt(self, name: str, env: str | None = None, default: Any = None) -> Any:
        value = self.options.get(name)
        if value in (None, "") and env:
            value = os.environ.get(env)
        return default if value in (None, "") else value

    @property
    def mode(self) -> str:
        return str(self._opt("mode", "WANDB_MODE", "online")).lower()

    @property
    def base_url(self) -> str:
        return str(self._opt("base_url", "WANDB_BASE_URL", DEFAULT_BASE_URL)).rstrip("/")

    # -- runs -----------------------------------------------------------------------

    @contextmanager
    def _use(self, run_id: str) -> Iterator[_Live]:
        """The open run, locked; a run whose finish is pending stays open for the call
        and is finished ``finish_grace`` seconds after the last one."""
        with self._lock:
            live = self._runs.get(run_id)
        if live is None:
            live = self._reopen(run_id)
        with live.lock:
            if live.timer is not None:
                live.timer.cancel()
                live.timer = None
            try:
                yield live
            finally:
                if live.exit_code is not None:
                    self._schedule_finish(run_id, live)

    def _reopen(self, run_id: str) -> _Live:
        """A run this process did not open (a later ``sync`` pass, a replay), resumed with
        ``wandb.init(resume="must")``: W&B continues its ``_step`` and keeps its config,
        and the run's tags, inputs and registry entries are read back from that config.
        Online only: W&B cannot resume an offline run."""
        if self.mode in ("offline", "dryrun", "disabled"):
            raise RunNotFound(
                f"W&B run {run_id!r} is not open in this process, and W&B cannot resume an offline run "
                "(with W&B, register a model before the run's finish). To copy in several passes, copy into "
                "wandb-offline:DIR, whose runs later passes continue, and upload it with wandb sync")
        from trackbridge.backends.wandb.cloud_reader import WandbCloudReader

        found = WandbCloudReader(self.platform, self.options).api_run(run_id)
        config = dict(found.config)
        tags = {str(k): str(v) for k, v in (config.get(TAGS_CONFIG_KEY) or {}).items()}
        copy = "trackbridge.source.run_id" in tags
        wandb = _wandb()
        settings = wandb.Settings(init_timeout=float(self._opt("init_timeout", None, 10)), base_url=self.base_url,
                                  **(COPY_SETTINGS if copy else {}))
        try:
            run = wandb.init(project=found.project, entity=found.entity, id=run_id, resume="must",
                             reinit="create_new", dir=self._opt("dir", "WANDB_DIR"), settings=settings)
        except Exception as exc:  # noqa: BLE001 - the SDK raises several kinds
            raise BackendError(f"could not resume W&B run {found.entity}/{found.project}/{run_id}: {exc}") from exc
        run.define_metric(STEP_KEY, hidden=True)
        run.define_metric("*", step_metric=STEP_KEY)
        registry = config.get(REGISTRY_CONFIG_KEY)
        # a run that had ended ends again as it did, once the pass is done with it
        ended = None if tags.get(UNFINISHED_TAG) else RESUMED_EXIT_CODES.get(str(getattr(found, "state", "")))
        live = _Live(run=run, tags=tags, copy=copy, exit_code=ended,
                     inputs=[i for i in config.get(INPUTS_CONFIG_KEY) or [] if isinstance(i, dict)],
                     registry=dict(registry) if isinstance(registry, dict) else {})
        with self._lock:
            live = self._runs.setdefault(run_id, live)
        try:
            logged = [a for a in found.logged_artifacts() if a.type == "model"]
            live.models.update(zip(model_paths(a.name.split(":")[0] for a in logged), logged))
        except Exception as exc:  # noqa: BLE001 - the SDK raises several kinds
            raise BackendError(f"could not list the artifacts of W&B run {run_id}: {exc}") from exc
        return live

    def _schedule_finish(self, run_id: str, live: _Live) -> None:
        if live.copy and (live.models or live.logged_files):
            return  # the engine's registry step comes after every run: finished at close()
        grace = float(self._opt("finish_grace", None, 2)) if live.copy else 0.0
        if grace <= 0:
            live.lock.release()  # _finish_now takes the locks in order: writer, then run
            try:
                self._finish_now(run_id)
            finally:
                live.lock.acquire()
            return
        live.timer = threading.Timer(grace, self._finish_now, args=(run_id,))
        live.timer.daemon = True
        live.timer.start()

    def _finish_now(self, run_id: str) -> None:
        with self._lock:
            live = self._runs.pop(run_id, None)
        if live is None:
            return
        with live.lock:
            if live.timer is not None:
                live.timer.cancel()
                live.timer = None
            live.run.finish(exit_code=live.exit_code if live.exit_code is not None else 1)

    def ensure_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        """W&B projects are created by the first run logged to them (named as W&B
        allows, :func:`.values.project_name`)."""
        project = project_name(name)
        if project != name:
            self._names[project] = name
        return project

    def create_run(self, experiment_id: str, *, name: str | None = None, start_time: int | None = None,
                   user: str | None = None, parent_run_id: str | None = None,
                   tags: Mapping[str, str] | None = None) -> str:
        wandb = _wandb()
        tags = dict(tags or {})
        run_id = run_id_for(tags)
        if LOCAL_ID_TAG in tags and "trackbridge.source.run_id" not in tags:
            run_id = derived_run_id("local", tags[LOCAL_ID_TAG])  # a retried create resumes, never duplicates
        group = tags.pop(GROUP_TAG, None)
        job_type = tags.pop(JOB_TYPE_TAG, None)
        if start_time is not None:
            # the SDK stamps its own start (wandb.init, in the facade's worker, after the
            # first points were logged): keep the caller's, which the readers prefer, so
            # start, points and end share one clock and a duration is never negative
            tags.setdefault(SOURCE_START_TIME_TAG, str(start_time))
        project = project_name(experiment_id)
        config: dict[str, Any] = {TAGS_CONFIG_KEY: tags} if tags else {}
        if self._names.get(project):
            config[EXPERIMENT_CONFIG_KEY] = self._names[project]
        kwargs = dict(project=project, entity=self._opt("entity", "WANDB_ENTITY"), id=run_id, name=name,
                      group=group, job_type=job_type, config=config or None,
                      resume="allow", reinit="create_new", dir=self._opt("dir", "WANDB_DIR"))
        copy = "trackbridge.source.run_id" in tags
        if copy:  # a copy: no system metrics, console or code of this process in the run
            kwargs["settings"] = dict(COPY_SETTINGS)
        offline = self.mode in ("offline", "dryrun")
        reason = None
        if self.mode == "disabled":
            offline = False
        elif not offline:
            reason = reachable(self.base_url, float(self._opt("probe_timeout", None, 3)))
            offline = reason is not None
        run = None
        if not offline:
            settings = wandb.Settings(init_timeout=float(self._opt("init_timeout", None, 10)), base_url=self.base_url,
                                      **kwargs.get("settings", {}))
            try:
                run = wandb.init(**{**kwargs, "settings": settings})
            except Exception as exc:  # noqa: BLE001 - the SDK raises several kinds (CommError, timeouts)
                reason = f"{type(exc).__name__}: {exc}"
                offline = True
        if run is None:
            mode = "offline" if offline else self.mode
            kwargs["settings"] = wandb.Settings(**kwargs.get("settings", {}))
            try:
                run = wandb.init(mode=mode, **kwargs)
            except Exception as exc:  # noqa: BLE001
                if reason is None or "in use" not in str(exc):
                    raise BackendError(f"wandb.init failed in {mode} mode: {exc}") from exc
                # the timed-out online init still holds the id in wandb's service
                kwargs["id"] = f"{run_id}-offline"
                run = wandb.init(mode=mode, **kwargs)
        live = _Live(run=run, tags=tags, offline=offline, copy=copy)
        if reason is not None:
            sync_dir = getattr(run.settings, "sync_dir", None) or run.dir
            self.fallbacks.append((run.id, str(sync_dir)))
            log.warning("W&B at %s cannot be reached (%s): run %s is logged offline in %s; upload it later "
                        "with: wandb sync %s", self.base_url, reason, run.id, sync_dir, sync_dir)
        run.define_metric(STEP_KEY, hidden=True)
        run.define_metric("*", step_metric=STEP_KEY)
        with self._lock:
            self._runs[run.id] = live
        return run.id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        with self._use(run_id) as live:
            live.run.config.update(dict(params), allow_val_change=True)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Tags in config ``trackbridge.tags``; a ``wandb.define_metric`` tag is also
        declared again (:mod:`.metrics`), x-axis ``trackbridge/step``, so W&B keeps the
        summaries it asks for."""
        with self._use(run_id) as live:
            if DEFINE_METRIC_TAG in tags and tags[DEFINE_METRIC_TAG] != live.tags.get(DEFINE_METRIC_TAG):
                for spec in decode_tag(tags[DEFINE_METRIC_TAG]):
                    live.run.define_metric(str(spec.get("name") or spec.get("glob")), step_metric=STEP_KEY,
                                           summary=",".join(spec.get("summary") or ()) or None,
                                           goal=spec.get("goal") or None, hidden=bool(spec.get("hidden")) or None)
            live.tags.update({k: str(v) for k, v in tags.items()})
            live.run.config.update({TAGS_CONFIG_KEY: dict(live.tags)}, allow_val_change=True)

    def set_labels(self, run_id: str, labels: Sequence[str]) -> None:
        with self._use(run_id) as live:
            current = list(live.run.tags or ())
            new = [label for label in labels if label not in current]
            if new:
                live.run.tags = tuple(current + new)

    def set_notes(self, run_id: str, notes: str) -> None:
        with self._use(run_id) as live:
            live.run.notes = notes

    def log_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        with self._use(run_id) as live:
            live.run.summary.update(dict(summary))

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        from dataclasses import asdict

        with self._use(run_id) as live:
            live.inputs.extend(i for i in map(asdict, inputs) if i not in live.inputs)
            live.run.config.update({INPUTS_CONFIG_KEY: list(live.inputs)}, allow_val_change=True)

    def log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        """Points as rows (:func:`trackbridge.history.points_to_rows`)."""
        self.log_rows(run_id, points_to_rows(points))

    def log_rows(self, run_id: str, rows: Sequence[Row]) -> None:
        with self._use(run_id) as live:
            for row in rows:
                live.run.log({**row.values, STEP_KEY: int(row.step), "_timestamp": row.timestamp / 1000})

    def log_artifact(self, run_id: str, local_path: Path, artifact_dir: str | None = None) -> None:
        """Files are staged (the facade may delete its copy) and logged at finish as one
        W&B Artifact holding every file of the run at its path."""
        import shutil

        base = Path(artifact_dir) if artifact_dir else Path()
        with self._use(run_id) as live:
            stage = self._staging / run_id / str(len(live.files))
            if local_path.is_dir():
                shutil.copytree(local_path, stage / local_path.name)
                live.files.append((stage / local_path.name, (base / local_path.name).as_posix()))
            else:
                stage.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local_path, stage / local_path.name)
                live.files.append((stage / local_path.name, (base / local_path.name).as_posix()))

    def log_model(self, run_id: str, local_dir: Path, source: LoggedModel) -> LoggedModel:
        """A new W&B ``model`` artifact (what ``run.log_model`` logs) with the model's
        metadata (:mod:`.artifacts`), kept for registry links; a name logged again is a
        new artifact at path ``<name>#<n>``."""
        name = source.name
        wandb = _wandb()
        with self._use(run_id) as live:
            path = model_paths([*(p.split("#")[0] for p in live.models), name])[-1]
            metadata = model_metadata(source)
            artifact = wandb.Artifact(name, type="model", metadata=metadata)
            if local_dir.is_dir():
                artifact.add_dir(str(local_dir))
            else:
                artifact.add_file(str(local_dir))
            live.models[path] = logged = live.run.log_artifact(artifact)
        made = logged_model(name, path, _client_id(logged), metadata)
        made.flavors = list(source.flavors)
        return made

    # -- registry (module doc of :mod:`.registry`) -----------------------------------

    @property
    def registry(self) -> str:
        return str(self._opt("registry", None, DEFAULT_REGISTRY))

    def _link(self, live: _Live, name: str, collection: str, aliases: list[str]) -> int | None:
        """Link the run's model artifact ``name``; the W&B version index, when online."""
        if live.offline or self.mode in ("offline", "dryrun"):
            if not self._warned_offline_link:
                self._warned_offline_link = True
                log.warning("W&B offline runs cannot hold registry links (wandb %s): run %s keeps the registration "
                            "in its config %r; to link it, copy the run with trackbridge into wandb-offline:DIR and "
                            "upload its runs one after the other with wandb sync", _wandb().__version__,
                            live.run.id, REGISTRY_CONFIG_KEY)
            return None
        linked = live.run.link_artifact(live.models[name], f"{registry_project(self.registry)}/{collection}",
                                        aliases=aliases)
        version = str(getattr(linked, "version", "") or "")
        return int(version[1:]) if version[1:].isdigit() else None

    def _files_artifact(self, live: _Live, name: str, path: str) -> None:
        """Log artifact ``name`` of the run's files under ``path``
        (:func:`.registry.version_artifact`), marked so readers keep it out of the run's
        models."""
        artifact = _wandb().Artifact(name, type="model", metadata={REGISTRY_FILES_METADATA: path})
        added = False
        for local, logged in [*live.logged_files, *live.files]:
            if logged == path or logged.startswith(path + "/"):
                rel = logged[len(path):].strip("/")
            elif path.startswith(logged + "/") and (local / path[len(logged) + 1:]).exists():
                local, rel = local / path[len(logged) + 1:], ""
            else:
                continue
            if local.is_dir():
                artifact.add_dir(str(local), name=rel or None)
            else:
                artifact.add_file(str(local), name=rel or local.name)
            added = True
        if not added:
            raise InvalidValueError(f"run {live.run.id} has no model artifact nor files at {path!r}: "
                                    "log the model (or the files) with the run first")
        live.models[name] = live.run.log_artifact(artifact)

    def _registry(self) -> Any:
        """The registry of every run (read once from W&B, or the offline runs in offline
        mode), with the runs open here as they are now."""
        if self._held is None:
            if self.mode in ("offline", "dryrun", "disabled"):
                from trackbridge.backends.wandb.offline_reader import WandbOfflineReader

                root = Path(str(self._opt("dir", "WANDB_DIR", "."))) / "wandb"
                self._held = WandbOfflineReader(root, self.platform).registry_entries()
            else:
                from trackbridge.backends.wandb.cloud_reader import WandbCloudReader

                self._held = WandbCloudReader(self.platform, self.options).registry_entries()
        for run_id, live in list(self._runs.items()):
            if live.registry or run_id in self._held:
                self._held[run_id] = live.registry
        return assemble(self._held.items())

    def register_model(self, model: RegisteredModel) -> None:
        """Kept for the model's next version (W&B collections are made by their first
        link); a model with versions already gets it in its latest version's run now."""
        current = self._registry()
        meta = (model.description or "", dict(model.tags), current.tick())
        self._meta[model.name] = meta
        existing = current.models.get(model.name)
        if existing and existing.versions:
            latest = current.locate(model.name, existing.versions[-1].version)
            with self._use(latest.run_id) as live:
                model_entry(live.registry, model.name, latest.collection, meta)
                live.run.config.update({REGISTRY_CONFIG_KEY: live.registry}, allow_val_change=True)

    def create_model_version(self, version: ModelVersion, run_id: str | None) -> ModelVersion:
        if not run_id:
            raise BackendError(f"version of {version.name!r}: a W&B registry version is a run's model artifact")
        with self._use(run_id) as live:
            name, path = version_artifact({n: _client_id(a) for n, a in live.models.items()}, version, run_id)
            if path is not None and name not in live.models:
                self._files_artifact(live, name, path)
            current = self._registry()
            collection = collection_name(version.name)
            index = self._link(live, name, collection, [])
            number = index + 1 if index is not None else current.next_number(version.name)
            entry = new_entry(name, _client_id(live.models[name]), current.tick(), number, version, path)
            model_entry(live.registry, version.name, collection, self._meta.get(version.name))["versions"].append(entry)
            live.run.config.update({REGISTRY_CONFIG_KEY: live.registry}, allow_val_change=True)
        return replace(version, version=str(number), run_id=run_id, artifact_path=path or name, aliases=[],
                       creation_time=entry["created"])

    def set_model_alias(self, name: str, alias: str, version: str) -> None:
        """Linking the version again with the alias moves it there (W&B keeps an alias
        on one version of a collection)."""
        located = self._registry().locate(name, version)
        with self._use(located.run_id) as live:
            current = self._registry()  # the run is open now: its entries are the live ones
            located = current.locate(name, version)
            self._link(live, str(located.entry.get("artifact") or ""), located.collection, [alias])
            located.entry.setdefault("aliases", {})[alias] = current.tick()
            live.run.config.update({REGISTRY_CONFIG_KEY: live.registry}, allow_val_change=True)

    def set_version_stage(self, name: str, version: str, stage: str | None) -> None:
        """W&B has no stages: the stage is kept in the version's entry of config
        ``trackbridge.registry`` (:mod:`.registry`) of its run, still open in a copy."""
        located = self._registry().locate(name, version)
        with self._use(located.run_id) as live:
            located = self._registry().locate(name, version)
            if stage:
                located.entry["stage"] = stage
            else:
                located.entry.pop("stage", None)
            live.run.config.update({REGISTRY_CONFIG_KEY: live.registry}, allow_val_change=True)

    def finish_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        """Logs the run's files as one Artifact and finishes the SDK run ``finish_grace``
        seconds (default 2) after the last call on it: a copy sets its completion tag just
        after ``finish_run``, and W&B runs cannot be reopened offline."""
        wandb = _wandb()
        with self._use(run_id) as live:
            if live.files:
                artifact = wandb.Artifact(f"{run_id}-files", type="run-files")
                for path, name in live.files:
                    if path.is_dir():
                        artifact.add_dir(str(path), name=name)
                    else:
                        artifact.add_file(str(path), name=name)
                live.run.log_artifact(artifact)
                live.logged_files.extend(live.files)
                live.files = []
            if status in (RunStatus.RUNNING, RunStatus.SCHEDULED):
                self._mark_unfinished(live)
            elif end_time is not None and live.tags.get(SOURCE_END_TIME_TAG) != str(end_time):
                # the exit record keeps whole seconds of the SDK's own runtime: the exact end, kept
                live.tags[SOURCE_END_TIME_TAG] = str(end_time)
                live.run.config.update({TAGS_CONFIG_KEY: dict(live.tags)}, allow_val_change=True)
            live.exit_code = 0 if status is RunStatus.FINISHED else (255 if status is RunStatus.KILLED else 1)

    @staticmethod
    def _mark_unfinished(live: _Live) -> None:
        live.tags[UNFINISHED_TAG] = "1"
        live.run.config.update({TAGS_CONFIG_KEY: dict(live.tags)}, allow_val_change=True)

    def flush(self) -> None:
        """Finish the runs whose finish is pending now."""
        for run_id, live in list(self._runs.items()):
            if live.exit_code is not None:
                self._finish_now(run_id)

    def close(self) -> None:
        """Pending finishes happen now.  Runs never finished must end too (the SDK cannot
        leave a run running): they end "failed" at W&B, marked ``trackbridge.unfinished``
        so that trackbridge reads them back as RUNNING."""
        for run_id, live in list(self._runs.items()):
            try:
                if live.exit_code is None:
                    with live.lock:
                        self._mark_unfinished(live)
                        live.exit_code = 1
                self._finish_now(run_id)
            except Exception as exc:  # noqa: BLE001 - closing must go on
                log.warning("could not finish W&B run %s: %s", run_id, exc)
        import shutil

        shutil.rmtree(self._staging, ignore_errors=True)
