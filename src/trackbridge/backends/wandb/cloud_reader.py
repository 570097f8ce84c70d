"""Reading the W&B cloud or a W&B server through ``wandb.Api``.

Why these calls: ``run.scan_history()`` *without* keys is the only complete read of a
run's history (a key filter drops every row lacking any listed key; ``history()``
samples), so every read of a run's series goes through one unfiltered scan, split
once into per-key spill files (:class:`.rows.SpillCache`) so reading all keys
costs one scan.  Mapping as the offline reader's (the same conventions both ways):
config without ``_wandb`` / ``trackbridge.*`` keys -> params; ``trackbridge.tags`` ->
tags; group / job type -> ``wandb.group`` / ``wandb.job_type``; W&B tags -> labels;
the user's step is ``trackbridge/step`` when present, else ``_step``; summary values
that are not the last value of a history key -> summary; run files (not wandb's own)
-> artifacts; logged ``model`` artifacts -> models, other logged artifacts -> files
``wandb-artifacts/<name>/<path>``.

Run ids are W&B run ids; the project is the experiment.  The entity comes from option
``entity`` / ``WANDB_ENTITY`` (else the API key's default entity).
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from trackbridge.backends.base import Reader, RunFilter
from trackbridge.backends.wandb.artifacts import ARTIFACTS_PREFIX, TABLE_TYPE, logged_model, meta_of, model_paths
from trackbridge.backends.wandb.media import kind_of
from trackbridge.backends.wandb.metrics import DEFINE_METRIC_TAG, SUMMARY_FIELDS, StepRules, carried, encode_tag
from trackbridge.backends.wandb.scan import custom_steps
from trackbridge.backends.wandb.reach import reachable
from trackbridge.backends.wandb.rows import SpillCache, row_points
from trackbridge.backends.wandb.registry import (
    DEFAULT_REGISTRY,
    REGISTRY_FILES_METADATA,
    LinkedVersion,
    assemble,
    linked_models,
)
from trackbridge.backends.wandb.values import (
    ARTIFACT_META_CONFIG_KEY,
    BOOKKEEPING_CONFIG_KEYS,
    EXPERIMENT_CONFIG_KEY,
    GROUP_TAG,
    INPUTS_CONFIG_KEY,
    JOB_TYPE_TAG,
    REGISTRY_CONFIG_KEY,
    SOURCE_END_TIME_TAG,
    SOURCE_START_TIME_TAG,
    SOURCE_USER_TAG,
    STEP_KEY,
    TAGS_CONFIG_KEY,
    UNFINISHED_TAG,
    WANDB_CONFIG_KEY,
    as_number,
    flat_str,
    project_name,
    used_artifact_input,
)
from trackbridge.errors import BackendError, MissingDependencyError, RunNotFound, TransientBackendError
from trackbridge.history import Row
from trackbridge.model import (
    ArtifactInfo,
    DatasetInput,
    Experiment,
    LoggedModel,
    MetricPoint,
    MetricSummary,
    RegisteredModel,
    RunRecord,
    RunStatus,
)

#: files wandb writes into every run itself (not the user's artifacts).
WANDB_OWN_FILES = frozenset({
    "config.yaml", "wandb-summary.json", "wandb-metadata.json", "requirements.txt", "output.log",
    "diff.patch", "wandb-history.jsonl", "wandb-events.jsonl", "conda-environment.yaml",
})
#: the tag the facade marks its runs with (and looks them up by after a lost answer).
LOCAL_ID_TAG = "trackbridge.local_run_id"
RUN_FILES_TYPE = "run-files"
INTERNAL_KEYS = frozenset({"_step", "_timestamp", "_runtime", STEP_KEY})
STATES = {"finished": RunStatus.FINISHED, "running": RunStatus.RUNNING, "failed": RunStatus.FAILED,
          "crashed": RunStatus.FAILED, "killed": RunStatus.KILLED, "preempted": RunStatus.KILLED,
          "pending": RunStatus.SCHEDULED}


log = logging.getLogger("trackbridge")  # the logger whose records are masked (redact.MaskingFilter)


def _iso_ms(value: str | None) -> int | None:
    """W&B's ISO times (UTC, often without an offset) as ms."""
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def row_of(row: Mapping[str, Any]) -> Row | None:
    """A scanned history row as a :class:`Row` of its numbers (``None`` if it has none)."""
    step = row.get(STEP_KEY, row.get("_step"))
    ts = row.get("_timestamp")
    values = {}
    for key, value in row.items():
        if key in INTERNAL_KEYS:
            continue
        number = as_number(value)
        if number is not None:
            values[key] = number
    if not values or not isinstance(step, (int, float)):
        return None
    return Row(int(step), int(round(ts * 1000)) if isinstance(ts, (int, float)) else 0, values)


def rows_of(row: Mapping[str, Any], rules: StepRules | None, last_steps: dict[str, float]) -> list[Row]:
    """:func:`row_of`, split in one row per step where ``define_metric`` step metrics give
    keys of the row their own step (:mod:`.metrics`; never in rows a trackbridge writer
    made, which carry ``trackbridge/step``)."""
    found = row_of(row)
    if found is None or not rules or STEP_KEY in row:
        return [found] if found is not None else []
    steps = custom_steps(rules, list(found.values), found.values, last_steps)
    if not steps:
        return [found]
    split: dict[int, dict[str, float]] = {}
    for key, value in found.values.items():
        split.setdefault(steps.get(key, found.step), {})[key] = value
    return [Row(at, found.timestamp, part) for at, part in split.items()]


#: ``MetricRecord`` field numbers W&B keeps a run's definitions by (config ``_wandb.m``).
_M_NAME, _M_GLOB, _M_STEP, _M_STEP_INDEX, _M_OPTIONS, _M_SUMMARY, _M_GOAL = "1", "2", "4", "5", "6", "7", "8"


def definitions_of(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run's ``define_metric`` definitions as :mod:`.metrics` holds them, from W&B's
    config ``_wandb.m`` (each a MetricRecord by field number; ``step_metric`` by its
    1-based index in that list); trackbridge's own ``trackbridge/step`` apart."""
    wandb_config = config.get(WANDB_CONFIG_KEY)
    m = wandb_config.get("m") if isinstance(wandb_config, Mapping) else None
    if not isinstance(m, list):
        return []
    out = []
    for entry in m:
        if not isinstance(entry, Mapping):
            continue
        spec: dict[str, Any] = {}
        if entry.get(_M_NAME):
            spec["name"] = str(entry[_M_NAME])
        elif entry.get(_M_GLOB):
            spec["glob"] = str(entry[_M_GLOB])
        else:
            continue
        step = entry.get(_M_STEP)
        index = entry.get(_M_STEP_INDEX)
        if not step and isinstance(index, int) and 1 <= index <= len(m) and isinstance(m[index - 1], Mapping):
            step = m[index - 1].get(_M_NAME)
        if step:
            spec["step_metric"] = str(step)
        summary = [SUMMARY_FIELDS[n - 1] for n in entry.get(_M_SUMMARY) or [] if isinstance(n, int) and 1 <= n <= 8]
        if summary:
            spec["summary"] = summary
        goal = {1: "minimize", 2: "maximize"}.get(entry.get(_M_GOAL))  # type: ignore[arg-type]
        if goal:
            spec["goal"] = goal
        if 2 in (entry.get(_M_OPTIONS) or []):
            spec["hidden"] = True
        if spec.get("name") != STEP_KEY and spec.get("step_metric") != STEP_KEY:
            out.append(spec)
    return out


class WandbCloudReader(Reader):
    rows_in_one_pass = True

    def __init__(self, platform: str = "wandb", options: Mapping[str, Any] | None = None) -> None:
        self.platform = platform
        self.options = dict(options or {})
        self._api: Any = None
        self._projects: dict[str, str] = {}  # run id -> project, learnt from listings
        self._spills = SpillCache()

    # -- connection ---------------------------------------------------------------

    def _opt(self, name: str, env: str) -> str | None:
        return self.options.get(name) or os.environ.get(env) or None

    @property
    def base_url(self) -> str:
        return str(self._opt("base_url", "WANDB_BASE_URL") or "https://api.wandb.ai").rstrip("/")

    def _check_reachable(self) -> None:
        """Fail in seconds, not after wandb's own retries, when W&B cannot be reached."""
        if self._api is None:
            reason = reachable(self.base_url, float(self.options.get("probe_timeout", 3)))
            if reason is not None:
                raise TransientBackendError(f"W&B at {self.base_url} cannot be reached ({reason})")

    @property
    def api(self) -> Any:
        if self._api is None:
            self._check_reachable()
            try:
                import wandb
            except ImportError as exc:
                raise MissingDependencyError("the wandb backend needs the wandb SDK: pip install 'trackbridge[wandb]'") from exc
            overrides = {k: v for k, v in (("base_url", self._opt("base_url", "WANDB_BASE_URL")),
                                           ("entity", self._opt("entity", "WANDB_ENTITY"))) if v}
            try:
                self._api = wandb.Api(api_key=self._opt("api_key", "WANDB_API_KEY"), overrides=overrides,
                                      timeout=int(self.options.get("timeout", 30)))
            except Exception as exc:  # noqa: BLE001 - wandb raises its own kinds
                raise _error(exc, "connect to W&B") from exc
        return self._api

    @property
    def entity(self) -> str:
        entity = self._opt("entity", "WANDB_ENTITY") or self.api.default_entity
        if not entity:
            raise BackendError("no W&B entity: set WANDB_ENTITY or the remote's entity option")
        return entity

    def api_run(self, run_id: str, project: str | None = None) -> Any:
        """The ``wandb.Api`` run of id ``run_id``, in ``project``, the remote's, or any project."""
        project = project or self._projects.get(run_id) or self._opt("project", "WANDB_PROJECT")
        if project is None:
            for exp in self.list_experiments():
                for run in self.api.runs(f"{self.entity}/{exp.id}", filters={"name": run_id}):
                    if run.id == run_id:  # a server that ignores the filter answers every run
                        self._projects[run_id] = exp.id
                        return run
            raise RunNotFound(f"no W&B run {run_id!r} in any project of {self.entity}")
        try:
            return self.api.run(f"{self.entity}/{project}/{run_id}")
        except Exception as exc:  # noqa: BLE001
            if "not find run" in str(exc).lower():
                raise RunNotFound(f"no W&B run {self.entity}/{project}/{run_id}") from exc
            raise _error(exc, f"read W&B run {run_id}") from exc

    def _offline(self) -> Reader:
        from trackbridge.backends.wandb.offline_reader import WandbOfflineReader

        root = Path(str(self.options.get("dir") or os.environ.get("WANDB_DIR") or ".")) / "wandb"
        return WandbOfflineReader(root, self.platform)

    # -- Reader -------------------------------------------------------------------

    def list_experiments(self) -> Iterator[Experiment]:
        try:
            for project in self.api.projects(self.entity):
                yield Experiment(id=project.name, name=project.name)
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, "list W&B projects") from exc

    def get_experiment(self, name: str) -> Experiment | None:
        wanted = {name, project_name(name)}
        return next((e for e in self.list_experiments() if e.name in wanted), None)

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        project = project_name(experiment)
        if run_filter is not None and LOCAL_ID_TAG in run_filter.tags and self._api is None:
            # the facade looking for a run it may have created: with W&B unreachable, a
            # run it created fell back to offline mode, so look for it there
            try:
                self._check_reachable()
            except TransientBackendError:
                yield from self._offline().list_runs(experiment, run_filter)
                return
        try:
            runs = list(self.api.runs(f"{self.entity}/{project}", per_page=100))
        except Exception as exc:  # noqa: BLE001
            if "could not find project" in str(exc).lower():
                return
            raise _error(exc, f"list runs of W&B project {project}") from exc
        for run in runs:
            self._projects[run.id] = project
            if run_filter is not None and run_filter.run_ids is not None and run.id not in run_filter.run_ids:
                continue
            record = self.to_record(run, project)
            if run_filter is None or run_filter.matches(record):
                yield record

    def get_run(self, run_id: str) -> RunRecord:
        run = self.api_run(run_id)
        return self.to_record(run, run.project)

    def list_registered_models(self) -> Iterator[RegisteredModel]:
        """The registered models: those trackbridge registered, from the
        ``trackbridge.registry`` config of the runs of the remote's project (every project
        when it names none), assembled as offline (:mod:`.registry`); then the collections
        of the W&B registry (option ``registry``, default ``model``) linked in W&B itself,
        through ``wandb.Api().registries(...).versions()``."""
        ours = assemble(self.registry_entries().items())
        skip = {loc.collection for loc in ours.located.values()}
        return iter([*ours.models.values(), *linked_models(self._linked(skip), skip)])

    def _linked(self, skip: set[str]) -> Iterator[LinkedVersion]:
        """The registry's versions but those of the collections in ``skip``."""
        registry = str(self.options.get("registry") or DEFAULT_REGISTRY)
        registry = registry.removeprefix("wandb-registry-")
        try:
            versions = self.api.registries(organization=self._opt("organization", "WANDB_ORGANIZATION"),
                                           filter={"name": registry}).versions()
        except RuntimeError as exc:  # an older W&B server: no registry search
            log.warning("W&B at %s cannot search its registry (%s): only the registered models trackbridge "
                        "made are read", self.base_url, exc)
            return
        try:
            for art in versions:
                if art.name.split(":")[0] in skip:
                    continue
                run = art.logged_by()
                yield LinkedVersion(
                    collection=art.name.split(":")[0], index=int(str(art.version).lstrip("v") or 0),
                    run_id=run.id if run is not None else None, artifact=str(art.source_name).split(":")[0],
                    description=art.description or "", labels=tuple(art.tags or ()), aliases=tuple(art.aliases or ()),
                    created=_iso_ms(art.created_at))
        except Exception as exc:  # noqa: BLE001 - the SDK raises several kinds
            raise _error(exc, f"list the versions of the W&B registry {registry!r}") from exc

    def registry_entries(self) -> dict[str, Any]:
        """Run id -> the registry entries its config holds, for the runs described above."""
        project = self._opt("project", "WANDB_PROJECT")
        projects = [project] if project else [e.id for e in self.list_experiments()]
        held: dict[str, Any] = {}
        for name in projects:
            try:
                for run in self.api.runs(f"{self.entity}/{name}", per_page=100):
                    entries = run.config.get(REGISTRY_CONFIG_KEY)
                    if isinstance(entries, dict) and entries:
                        held[run.id] = entries
            except Exception as exc:  # noqa: BLE001
                raise _error(exc, f"list runs of W&B project {name}") from exc
        return held

    def to_record(self, run: Any, project: str) -> RunRecord:
        config = dict(run.config)
        kv = config.get(TAGS_CONFIG_KEY) if isinstance(config.get(TAGS_CONFIG_KEY), dict) else {}
        tags = flat_str(kv)
        unfinished = bool(tags.pop(UNFINISHED_TAG, None))
        if run.group:
            tags[GROUP_TAG] = run.group
        if run.job_type:
            tags[JOB_TYPE_TAG] = run.job_type
        definitions = definitions_of(_raw_config(run))
        if definitions and DEFINE_METRIC_TAG not in tags:
            tags[DEFINE_METRIC_TAG] = encode_tag(definitions)
        params = {k: v for k, v in config.items()
                  if k not in BOOKKEEPING_CONFIG_KEYS}
        summary_all = dict(getattr(run.summary, "_json_dict", {}) or {})
        history_types = (run._attrs.get("historyKeys") or {}).get("keys") or {}
        history_keys = set(history_types)
        summary = {k: v for k, v in summary_all.items()
                   if not k.startswith("_") and k != STEP_KEY and k not in history_keys}
        last_step = _int(summary_all.get(STEP_KEY, summary_all.get("_step"))) or 0
        last_ts = summary_all.get("_timestamp")
        last_ms = int(round(last_ts * 1000)) if isinstance(last_ts, (int, float)) else 0
        metrics = {}
        for key in history_keys - INTERNAL_KEYS:
            number = as_number(summary_all.get(key))
            if number is None:
                number = _defined_summary(summary_all.get(key), (history_types.get(key) or {}).get("typeCounts"))
            if number is not None:
                metrics[key] = MetricSummary(key, number, last_step, last_ms)
        status = RunStatus.RUNNING if unfinished else STATES.get(str(run.state).lower(), RunStatus.FAILED)
        end = _int(tags.get(SOURCE_END_TIME_TAG))
        if end is None and status not in (RunStatus.RUNNING, RunStatus.SCHEDULED):
            end = _iso_ms(run._attrs.get("heartbeatAt"))
        user = tags.get(SOURCE_USER_TAG) or (getattr(getattr(run, "user", None), "username", None) or None)
        inputs = [DatasetInput(**{k: v for k, v in i.items() if k in DatasetInput.__slots__})
                  for i in config.get(INPUTS_CONFIG_KEY) or [] if isinstance(i, dict)]
        inputs += [used_artifact_input(a.name, a.type, str(a.id or "")) for a in self._used(run)]
        experiment = config.get(EXPERIMENT_CONFIG_KEY) if isinstance(config.get(EXPERIMENT_CONFIG_KEY), str) else project
        models = self._models(run)
        artifact_meta = {str(k): dict(v) for k, v in (config.get(ARTIFACT_META_CONFIG_KEY) or {}).items()
                         if isinstance(v, dict)}
        for path, art in models:
            meta = meta_of(art.type, art.description or "", art.metadata or {}, art.aliases or (), art.tags or (),
                           model=True)
            if meta:
                artifact_meta[path] = meta
        for art in self._artifacts(run):
            if art.type not in ("model", RUN_FILES_TYPE, TABLE_TYPE):
                meta = meta_of(art.type, art.description or "", art.metadata or {}, art.aliases or (), art.tags or ())
                if meta:
                    artifact_meta[f"{ARTIFACTS_PREFIX}/{art.name.split(':')[0]}"] = meta
        # media: typed in the run's history keys, and the summary holds each one's last value;
        # this reader does not fetch them
        media = {key for key, info in history_types.items()
                 if any(kind_of({"_type": t.get("type")}) for t in (info or {}).get("typeCounts") or [])}
        media |= {key for key, value in summary_all.items() if kind_of(value)}
        unread = {f"media {key!r}": "W&B cloud media are not read by the wandb reader: copy the run's offline "
                                    "folder (wandb-offline:) to keep them" for key in sorted(media)}
        if run._attrs.get("systemMetrics") not in (None, "", "{}", {}):
            unread["system metrics"] = ("W&B cloud system metrics are not read by the wandb reader: copy the run's "
                                        "offline folder (wandb-offline:) to keep them")
        return RunRecord(
            platform=self.platform, run_id=run.id, experiment=experiment, experiment_id=project,
            name=run.name or None, status=status,
            start_time=_int(tags.get(SOURCE_START_TIME_TAG)) or _iso_ms(run._attrs.get("createdAt")), end_time=end,
            user=user, url=getattr(run, "url", None), params=params, tags=tags, labels=list(run.tags or []),
            notes=run.notes or None, metrics=metrics, summary=summary, inputs=inputs,
            models=[logged_model(a.name.split(":")[0], path, None, a.metadata or {}, True)
                    for path, a in models],
            artifact_meta=artifact_meta, unread=unread, carried=carried(definitions or []),
        )

    def _models(self, run: Any) -> list[tuple[str, Any]]:
        """(artifact path, artifact) of the run's logged models (:mod:`.artifacts`)."""
        found = [a for a in self._artifacts(run) if a.type == "model" and REGISTRY_FILES_METADATA not in (a.metadata or {})]
        return list(zip(model_paths(a.name.split(":")[0] for a in found), found))

    # -- history ------------------------------------------------------------------

    def _scan(self, run_id: str) -> Iterator[Row]:
        run = self.api_run(run_id)
        rules = StepRules(definitions_of(_raw_config(run)), ignore=STEP_KEY)
        last_steps: dict[str, float] = {}
        try:
            for raw in run.scan_history(page_size=int(self.options.get("page_size", 1000))):
                yield from rows_of(raw, rules, last_steps)
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, f"scan the history of W&B run {run_id}") from exc

    def iter_rows(self, run_id: str, keys: Sequence[str], page_size: int = 10_000) -> Iterator[Row]:
        """One unfiltered ``scan_history`` (a key filter would drop rows)."""
        wanted = set(keys)
        for row in self._scan(run_id):
            values = {k: v for k, v in row.values.items() if k in wanted}
            if values:
                yield Row(row.step, row.timestamp, values)

    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        return self._spills.pages(run_id, run_id, lambda: row_points(self._scan(run_id)), key, page_size)

    def release(self, run_id: str) -> None:
        self._spills.release(run_id)

    def close(self) -> None:
        self._spills.close()

    # -- files ----------------------------------------------------------------------

    def _artifacts(self, run: Any) -> list[Any]:
        try:
            return list(run.logged_artifacts())
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, f"list the artifacts of W&B run {run.id}") from exc

    def _used(self, run: Any) -> list[Any]:
        try:
            return list(run.used_artifacts())
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, f"list the artifacts W&B run {run.id} used") from exc

    def _files(self, run: Any) -> dict[str, tuple[Any, Any, int | None]]:
        out: dict[str, tuple[Any, Any, int | None]] = {}
        for f in run.files():
            if f.name in WANDB_OWN_FILES or f.name.startswith(("media/", "code/")):
                continue
            out[f.name] = ("file", f, f.size)
        for art in self._artifacts(run):
            if art.type in ("model", TABLE_TYPE):
                continue
            name = art.name.split(":")[0]
            prefix = "" if art.type == RUN_FILES_TYPE else f"{ARTIFACTS_PREFIX}/{name}/"
            for path, entry in art.manifest.entries.items():
                out[prefix + path] = ("entry", (art, path), entry.size)
        return out

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        for path, (_kind, _obj, size) in sorted(self._files(self.api_run(run_id)).items()):
            yield ArtifactInfo(path=path, size=size)

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        run = self.api_run(run_id)
        found = self._files(run).get(path)
        if found is None:
            raise BackendError(f"W&B run {run_id!r} has no file {path!r}")
        kind, obj, _size = found
        target = dst_dir.joinpath(*PurePosixPath(path).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if kind == "file":
                obj.download(root=str(dst_dir), replace=True)
            else:
                art, entry_path = obj
                # the entry lands at ``root/<its path in the artifact>``, which is not
                # its path in the run for artifacts other than the run's files
                with tempfile.TemporaryDirectory(dir=dst_dir) as tmp:
                    got = Path(art.get_entry(entry_path).download(root=tmp))
                    got.replace(target)
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, f"download {path} of W&B run {run_id}") from exc
        return target

    def download_model(self, run_id: str, model: LoggedModel, dst_dir: Path) -> Path:
        run = self.api_run(run_id)
        root = dst_dir.joinpath(*PurePosixPath(model.artifact_path).parts)
        for path, art in self._models(run):
            if path == model.artifact_path:
                try:
                    art.download(root=str(root))
                except Exception as exc:  # noqa: BLE001
                    raise _error(exc, f"download model {model.name} of W&B run {run_id}") from exc
                return root
        raise BackendError(f"W&B run {run_id!r} has no model artifact {model.name!r}")


def _raw_config(run: Any) -> Mapping[str, Any]:
    """The run's config with W&B's own ``_wandb`` key (``wandb.Api`` keeps it apart)."""
    raw = getattr(run, "rawconfig", None)
    return raw if isinstance(raw, Mapping) else {}


def _defined_summary(value: Any, type_counts: Any) -> float | None:
    """A number for a series whose summary ``define_metric(summary=...)`` made a dict
    (``{"min": ...}``): its ``last`` if kept, else another of its values.  Only an
    estimate of the latest point (the reader's listing does not scan the history; a
    difference only makes ``sync`` compare the series' points), but the series is listed."""
    if not isinstance(value, dict) or not any(isinstance(t, dict) and t.get("type") == "number"
                                              for t in type_counts or []):
        return None
    for name in ("last", "max", "min", "mean", "first", "best"):
        number = as_number(value.get(name))
        if number is not None:
            return number
    return None


def _error(exc: Exception, doing: str) -> BackendError:
    """A trackbridge error for a wandb one: network trouble is transient, the rest not."""
    text = str(exc)
    transient = any(w in text.lower() for w in ("timed out", "timeout", "connection", "429", "502", "503", "504"))
    cls = TransientBackendError if transient else BackendError
    return cls(f"could not {doing}: {type(exc).__name__}: {text[:500]}")
