"""``comet`` as a source: Comet's cloud (or a self-hosted Comet) through ``comet_ml.API``.

Experiments are Comet projects, named by the project (``workspace/project`` is
accepted too, and is the experiment id); runs are Comet experiments, by key.  The
mapping is the offline reader's (:mod:`~trackbridge.backends.comet.format`): others
are key/value tags, SDK others are bookkeeping, trackbridge's own others give back
notes, status, summary and inputs, ``sys.*`` metrics are system metrics.

What the REST API gives differently from an archive, and how it is read:

* parameter and other values come back as **strings** (Comet stores them so), and
  parameters are given back flat as Comet holds them (``a|b``), which is what the
  cloud writer declares (``flat_params``) so a copy checks equal;
* a metric's full history is ``experiment/metrics/get-metric`` (every point, with
  step, epoch and timestamp), read once per series and paged here;
* assets of type ``asset`` are artifacts, ``model-element`` files are models.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from trackbridge.backends.base import Reader, RunFilter
from trackbridge.backends.comet import format as fmt
from trackbridge.backends.comet.live_writer import DEFAULT_URL, quiet_environment, reachable
from trackbridge.backends.comet.offline_reader import CometOfflineReader, semver_key
from trackbridge.errors import BackendError, MissingDependencyError, RunNotFound, TransientBackendError
from trackbridge.model import (
    ArtifactInfo,
    DatasetInput,
    Experiment,
    LoggedModel,
    MetricPoint,
    MetricSummary,
    ModelVersion,
    RegisteredModel,
    RunRecord,
    RunStatus,
)

#: asset types that are files of the user's (the rest are Comet's own panels and code).
ARTIFACT_TYPES = frozenset({"asset", "image", "audio", "video", "text-sample", "notebook", "dataframe",
                            "confusion-matrix", "histogram_combined_3d", "curve", "embeddings"})




#: the key of a model file's asset metadata that names its experiment model.
GROUPING = "groupingName"


def _metadata(asset: Mapping[str, Any]) -> dict[str, Any]:
    """An asset's metadata (Comet gives it as JSON text or an object)."""
    value = asset.get("metadata")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, dict) else {}


def _float(value: Any) -> float:
    return fmt.decode_float(value) if value is not None else float("nan")


def _system_keys(others: Mapping[str, Any]) -> dict[str, str]:
    """Comet name -> key of system metrics written as ``sys.<key>`` (the other
    ``trackbridge.system_keys``)."""
    try:
        value = json.loads(str(others.get(fmt.SYSTEM_KEYS_OTHER) or "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class CometCloudReader(Reader):
    """Reads through one ``comet_ml.API`` (created on first use)."""

    def __init__(self, options: Mapping[str, Any], platform: str = "comet") -> None:
        self.platform = platform
        self.api_key = options.get("api_key") or os.environ.get("COMET_API_KEY")
        self.workspace = options.get("workspace") or os.environ.get("COMET_WORKSPACE")
        self.url = options.get("url") or os.environ.get("COMET_URL_OVERRIDE")
        self.probe_timeout = float(options.get("probe_timeout", 2.0))
        #: where the writer puts runs when Comet cannot be reached (see live_writer).
        self.offline_dir = Path(str(options.get("offline_directory") or "comet-offline")).expanduser()
        self._api: Any = None
        self._lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------

    @property
    def api(self) -> Any:
        with self._lock:
            if self._api is None:
                quiet_environment()
                if self.url:
                    # comet_ml takes the server only from its config: the remote's url wins
                    os.environ["COMET_URL_OVERRIDE"] = str(self.url)
                try:
                    import comet_ml
                except ImportError:
                    raise MissingDependencyError("the comet backend needs comet_ml: "
                                                 "pip install 'trackbridge[comet]'") from None
                if not self.api_key:
                    raise BackendError("reading Comet needs an API key: set COMET_API_KEY (in .env or the environment)")
                if not reachable(str(self.url or DEFAULT_URL), self.probe_timeout):
                    # comet_ml.API would retry for half a minute before failing
                    raise TransientBackendError(f"Comet at {self.url or DEFAULT_URL} cannot be reached; retry later")
                # no cache: a copy reads what it has just written (the engine checks its own copies)
                self._api = comet_ml.API(api_key=self.api_key, cache=False)
            return self._api

    def _call(self, what: str, fn, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001
        try:
            return fn(*args, **kwargs)
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise TransientBackendError(f"Comet: {what} failed ({type(exc).__name__}); retry later") from None
        except Exception as exc:  # comet_ml raises its own classes, with the server's message
            name = type(exc).__name__
            if "NotFound" in name or "does not exist" in str(exc).lower():
                raise RunNotFound(f"Comet: {what}: not found") from None
            raise BackendError(f"Comet: {what} failed: {name}: {exc}") from None

    def _workspace(self) -> str:
        if self.workspace:
            return str(self.workspace)
        ws = self._call("finding the default workspace", self.api.get_default_workspace)
        self.workspace = ws
        return str(ws)

    def _experiment(self, run_id: str) -> Any:
        exp = self._call(f"reading experiment {run_id}", self.api.get_experiment_by_key, run_id)
        if exp is None:
            raise RunNotFound(f"Comet has no experiment with key {run_id!r} (or this API key cannot see it)")
        return exp

    # -- Reader --------------------------------------------------------------------

    def list_experiments(self) -> Iterator[Experiment]:
        ws = self._workspace()
        for name in self._call("listing projects", self.api.get_projects, ws) or []:
            yield Experiment(id=f"{ws}/{name}", name=name)

    def get_experiment(self, name: str) -> Experiment | None:
        ws, project = fmt.split_experiment(name, None)
        ws = ws or self._workspace()
        names = self._call("listing projects", self.api.get_projects, ws) or []
        return Experiment(id=f"{ws}/{project}", name=project) if project in names else None

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        """When Comet cannot be reached, the runs the writer put in its offline folder
        instead (so the facade finds a run it created while Comet was down)."""
        try:
            self.api  # noqa: B018 - connect (or find Comet unreachable) before listing
        except TransientBackendError:
            _ws, project = fmt.split_experiment(experiment, None)
            yield from CometOfflineReader(self.offline_dir, self.platform).list_runs(project, run_filter)
            return
        ws, project = fmt.split_experiment(experiment, None)
        ws = ws or self._workspace()
        if run_filter is not None and run_filter.run_ids is not None:
            exps = [self._experiment(k) for k in run_filter.run_ids]
        else:
            exps = self._call(f"listing experiments of {ws}/{project}", self.api.get_experiments, ws, project) or []
        for exp in exps:
            record = self.to_record(exp, ws, project)
            if run_filter is None or run_filter.matches(record):
                yield record

    def get_run(self, run_id: str) -> RunRecord:
        exp = self._experiment(run_id)
        meta = self._call("reading metadata", exp.get_metadata) or {}
        return self.to_record(exp, meta.get("workspaceName") or self._workspace(), meta.get("projectName") or "",
                              meta)

    def to_record(self, exp: Any, workspace: str, project: str, meta: dict[str, Any] | None = None) -> RunRecord:
        key = exp.id
        meta = meta if meta is not None else (self._call("reading metadata", exp.get_metadata) or {})
        others = {o["name"]: o.get("valueCurrent") for o in self._call("reading others", exp.get_others_summary) or []}
        raw_params = {p["name"]: p.get("valueCurrent")
                      for p in self._call("reading parameters", exp.get_parameters_summary) or []
                      if p.get("name") not in fmt.SDK_PARAMS}
        tags: dict[str, str] = {}
        summary: dict[str, Any] = {}
        notes = None
        status = None
        inputs: list[DatasetInput] = []
        for name, value in others.items():
            if name in fmt.SDK_OTHERS:
                continue
            if name == fmt.NOTES_OTHER:
                notes = str(value)
            elif name == fmt.STATUS_OTHER:
                status = RunStatus.parse(str(value))
            elif name == fmt.INPUTS_OTHER:
                inputs = [DatasetInput(**i) for i in json.loads(str(value))]
            elif name.startswith(fmt.SUMMARY_PREFIX):
                try:
                    summary[name[len(fmt.SUMMARY_PREFIX):]] = json.loads(str(value))
                except ValueError:
                    summary[name[len(fmt.SUMMARY_PREFIX):]] = value
            elif name not in (fmt.SYSTEM_KEYS_OTHER, fmt.ARTIFACT_META_KEY):
                tags[name] = fmt.other_as_tag(value)
        if status is None:
            status = (RunStatus.RUNNING if meta.get("running") else
                      RunStatus.FAILED if meta.get("hasCrashed") else RunStatus.FINISHED)
        metrics: dict[str, MetricSummary] = {}
        system: dict[str, MetricSummary] = {}
        back = _system_keys(others)
        for m in self._call("reading metric summaries", exp.get_metrics_summary) or []:
            if m["name"] in fmt.SDK_METRICS:
                continue  # the SDK's own bookkeeping (see format.SDK_METRICS)
            name = back.get(m["name"], m["name"])
            point = MetricSummary(name, _float(m.get("valueCurrent")), int(m.get("stepCurrent") or 0),
                                  int(m.get("timestampCurrent") or 0))
            (system if fmt.is_system_metric(m["name"]) else metrics)[name] = point
        parent = fmt.parent_key(tags)
        models = self._models(key, self._call("reading models", exp.get_model_names) or [])
        assets = [(a["fileName"], _metadata(a)) for a in self._assets(key) if a.get("type", "asset") == "asset"]
        loose = others.get(fmt.ARTIFACT_META_KEY)
        return RunRecord(
            platform=self.platform, run_id=key, experiment=project or meta.get("projectName") or "",
            experiment_id=f"{workspace}/{project}", name=meta.get("experimentName") or others.get("Name"),
            status=status, start_time=meta.get("startTimeMillis"),
            end_time=None if status is RunStatus.RUNNING else meta.get("endTimeMillis"),
            user=tags.get(fmt.SOURCE_USER_TAG), parent_run_id=parent, url=getattr(exp, "url", None),
            params=raw_params, tags=tags,
            labels=list(self._call("reading tags", exp.get_tags) or []), notes=notes, metrics=metrics,
            system_metrics=system, summary=summary, inputs=inputs, models=models,
            artifact_meta=fmt.artifact_meta([(n, m) for n, m in assets if m],
                                            json.loads(str(loose)) if loose else {}),
        )

    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        """Every point (``get-metric`` is not sampled), in the server's order, paged here."""
        exp = self._experiment(run_id)
        others = {o["name"]: o.get("valueCurrent") for o in self._call("reading others", exp.get_others_summary) or []}
        name = {v: k for k, v in _system_keys(others).items()}.get(key, key)
        values = self._call(f"reading metric {key}", exp.get_metrics, name) or []
        page: list[MetricPoint] = []
        for v in values:
            page.append(MetricPoint(int(v.get("step") or 0), _float(v.get("metricValue")), int(v.get("timestamp") or 0)))
            if len(page) >= page_size:
                yield page
                page = []
        if page:
            yield page

    def _assets(self, run_id: str) -> list[dict[str, Any]]:
        exp = self._experiment(run_id)
        return self._call("listing assets", exp.get_asset_list, asset_type="all") or []

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        for a in self._assets(run_id):
            if a.get("type", "asset") in ARTIFACT_TYPES and not a.get("remote"):
                path = a["fileName"] if a.get("type", "asset") == "asset" else f"{a['type']}/{a['fileName']}"
                yield ArtifactInfo(path=path, size=a.get("fileSize"))

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        for a in self._assets(run_id):
            name = a["fileName"] if a.get("type", "asset") == "asset" else f"{a.get('type')}/{a['fileName']}"
            if name == path:
                exp = self._experiment(run_id)
                data = self._call(f"downloading {path}", exp.get_asset, a["assetId"], return_type="binary")
                out = dst_dir.joinpath(*path.split("/"))
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
                return out
        raise RunNotFound(f"Comet experiment {run_id} has no asset {path!r}")

    def _models(self, key: str, names: list[str]) -> list[LoggedModel]:
        """The experiment's models, each with the metadata of its first file (where the
        writers keep a logged model's params and the rest, see ``format.model_metadata``)."""
        first: dict[str, dict[str, Any]] = {}
        for a in self._assets(key):
            if a.get("type") == "model-element":
                meta = _metadata(a)
                first.setdefault(str(meta.pop(GROUPING, "")), meta)
        return [fmt.logged_model(key, n, first.get(n, {})) for n in names]

    def download_model(self, run_id: str, model: LoggedModel, dst_dir: Path) -> Path:
        target = dst_dir.joinpath(*model.artifact_path.split("/"))
        target.mkdir(parents=True, exist_ok=True)
        exp = self._experiment(run_id)
        for a in self._assets(run_id):
            if a.get("type") == "model-element" and _metadata(a).get(GROUPING) == model.artifact_path:
                data = self._call(f"downloading model file {a['fileName']}", exp.get_asset, a["assetId"],
                                  return_type="binary")
                out = target.joinpath(*a["fileName"].split("/"))
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
        return target

    def list_registered_models(self) -> Iterator[RegisteredModel]:
        ws = self._workspace()
        for name in self._call("listing the registry", self.api.get_registry_model_names, ws) or []:
            details = self._call(f"reading registry model {name}", self.api.get_registry_model_details,
                                 ws, name) or {}
            reg = RegisteredModel(name=name, description=details.get("description") or "")
            versions = []
            for v in details.get("versions") or []:
                tags, aliases, model_tags = fmt.decode_version_tags(list(v.get("tags") or []))
                reg.tags.update(model_tags)
                source = v.get("experimentModel") if isinstance(v.get("experimentModel"), dict) else {}
                versions.append(ModelVersion(
                    name=name, version=str(v.get("version")), run_id=v.get("experimentKey") or source.get("experimentKey"),
                    artifact_path=source.get("experimentModelName"),
                    description=v.get("comment") or "", tags=tags, aliases=aliases,
                    stage=v.get("status") or next(iter(v.get("stages") or []), None),
                    creation_time=v.get("createdAt"),
                ))
            reg.versions = sorted(versions, key=lambda v: semver_key(v.version))
            yield reg
