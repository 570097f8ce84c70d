"""``comet`` as a destination: logging live to Comet through comet_ml, never stalling.

Used by the facade (``TRACKBRIDGE_BACKEND=comet``) and by copies into Comet.  Quiet
by default: no environment details (so no cloud-metadata probe), no code, git, stdout
capture or auto-logging, no summary print, and Comet's error reporting off
(``COMET_ERROR_TRACKING_ENABLE=false`` unless the user set it).

Why a probe and a fallback: with an unreachable server ``comet_ml`` spends ~33 s in
its handshake and then drops everything the experiment logs ("Your experiment will
not be logged").  Before starting an experiment this writer opens a TCP connection
to the server (``probe_timeout``, 2 s); if that fails, or the SDK's experiment is not
alive, the run is written to an offline archive instead (``offline_directory``,
default ``./comet-offline``) with every point's time, and a warning gives the exact
``comet upload`` command.  Everything after that goes to the archive: no call waits
on the network again.

Points keep their own timestamps: each is queued to the experiment's streamer as a
``MetricMessage(timestamp=...)`` (what cometx does), falling back to ``log_metric``
(time of the call) if that private path ever disappears.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from trackbridge.backends.base import Writer
from trackbridge.backends.comet import format as fmt
from trackbridge.backends.comet.offline_writer import COMET_CLOUD_LIMITS, CometOfflineWriter, semver
from trackbridge.backends.comet.points import CometPoint, RunPoints
from trackbridge.backends.comet.upload import upload_command
from trackbridge.errors import BackendError, MissingDependencyError, RunNotFound, TransientBackendError
from trackbridge.history import Row
from trackbridge.model import DatasetInput, LoggedModel, MetricPoint, ModelVersion, RegisteredModel, RunStatus

log = logging.getLogger("trackbridge")

DEFAULT_URL = "https://www.comet.com/clientlib/"
#: the engine's completion marker (``trackbridge.sync.provenance.COMPLETE``).
COMPLETE_TAG = "trackbridge.complete"
QUIET_CONFIG = dict(
    log_code=False, log_graph=False, parse_args=False, log_git_metadata=False, log_git_patch=False,
    log_env_details=False, log_env_gpu=False, log_env_host=False, log_env_cpu=False, log_env_network=False,
    log_env_disk=False, auto_output_logging=False, auto_param_logging=False, auto_metric_logging=False,
    auto_log_co2=False, display_summary_level=0,
)


def quiet_environment() -> None:
    """Comet's error reporting and auto-logging off unless the user asked for them."""
    os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")
    os.environ.setdefault("COMET_DISABLE_AUTO_LOGGING", "1")


def reachable(url: str, timeout: float) -> bool:
    """Can a TCP connection to the server of ``url`` be opened within ``timeout`` s?"""
    parts = urlparse(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class _Live:
    experiment: Any
    points: RunPoints = field(default_factory=RunPoints)
    #: experiment model names in use (a repeated logged-model name gets a numbered one).
    model_names: set[str] = field(default_factory=set)


class CometLiveWriter(Writer):
    """One comet_ml ``Experiment`` per run; runs Comet cannot be reached for go to an
    offline archive (:class:`CometOfflineWriter`) and are reported with their upload command."""

    limits = COMET_CLOUD_LIMITS

    def __init__(self, options: Mapping[str, Any], platform: str = "comet") -> None:
        self.platform = platform
        self.api_key = options.get("api_key") or os.environ.get("COMET_API_KEY")
        self.workspace = options.get("workspace") or os.environ.get("COMET_WORKSPACE")
        self.project = options.get("project_name") or os.environ.get("COMET_PROJECT_NAME")
        self.url = options.get("url") or os.environ.get("COMET_URL_OVERRIDE") or DEFAULT_URL
        self.probe_timeout = float(options.get("probe_timeout", 2.0))
        self.offline_dir = Path(str(options.get("offline_directory") or "comet-offline")).expanduser()
        self._lock = threading.Lock()
        self._live: dict[str, _Live] = {}
        self._offline: CometOfflineWriter | None = None
        self._offline_runs: set[str] = set()
        #: runs ended by finish_run: later metadata (the engine's completion marker) goes
        #: through the REST API (``APIExperiment``), key -> that object once made.
        self._ended: dict[str, Any] = {}
        self._unreachable = False
        #: registered model name -> (description, tags), sent with each version.
        self._model_info: dict[str, tuple[str, dict[str, str]]] = {}
        #: registered model name -> versions registered by this writer.
        self._versions: dict[str, list[str]] = {}

    # -- runs -------------------------------------------------------------------

    def ensure_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        """Comet creates projects on first use: the id is ``workspace/project``."""
        ws, project = fmt.split_experiment(name or self.project or fmt.DEFAULT_PROJECT, self.workspace)
        return fmt.experiment_id(ws, project)

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
        tags = dict(tags or {})
        key = fmt.new_experiment_key(tags)
        ws, project = fmt.split_experiment(experiment_id, self.workspace)
        experiment = None if self._unreachable else self._start(key, ws, project, name)
        if experiment is None:
            return self._fall_back(ws, project, name, start_time, parent_run_id, tags)
        with self._lock:
            self._live[key] = _Live(experiment)
        experiment.log_other(fmt.STATUS_OTHER, RunStatus.RUNNING.value)
        tags = fmt.with_parent(tags, parent_run_id)
        if tags:
            experiment.log_others(tags)
            # the provenance tags must be at Comet before anything else: from here a crashed
            # copy is found (and resumed) by them instead of being started again
            experiment.flush()
        return key

    def _quiet(self) -> None:
        quiet_environment()
        # when the SDK itself gives up sending mid-run it keeps an archive: next to ours
        os.environ.setdefault("COMET_OFFLINE_DIRECTORY", str(self.offline_dir.resolve()))

    def _start(self, key: str, workspace: str | None, project: str, name: str | None) -> Any:
        """A live experiment, or ``None`` when Comet cannot be reached."""
        self._quiet()
        try:
            import comet_ml
        except ImportError:
            raise MissingDependencyError("the comet backend needs comet_ml: pip install 'trackbridge[comet]'") from None
        if not self.api_key:
            # nothing is lost for want of a key: the archive uploads once one is set
            log.warning("no COMET_API_KEY: logging to offline archives in %s instead; set the key "
                        "(in .env or the environment) and upload them with `comet upload`", self.offline_dir)
            self._unreachable = True
            return None
        if not reachable(self.url, self.probe_timeout):
            log.warning("Comet at %s cannot be reached: logging to offline archives in %s instead",
                        urlparse(self.url).netloc, self.offline_dir)
            self._unreachable = True
            return None
        if self.url != DEFAULT_URL:  # comet_ml takes the server only from its config
            os.environ["COMET_URL_OVERRIDE"] = self.url
        experiment = comet_ml.Experiment(api_key=self.api_key, project_name=project, workspace=workspace,
                                         experiment_key=key, **QUIET_CONFIG)
        if not getattr(experiment, "alive", False):
            others = self._existing_others(key)
            if others is None:
                log.warning("Comet refused or dropped experiment %s: logging it to an offline archive instead", key)
                return None
            if others.get(COMPLETE_TAG):
                raise BackendError(
                    f"Comet already has experiment {key}, a complete copy of this source run: a second copy "
                    "is never made. `trackbridge check` compares it with the source; `sync` updates it.")
            # an earlier copy of this source run that stopped before its provenance tags
            # reached Comet (the key is derived from the source run): carry on in it
            log.warning("Comet already has experiment %s from an interrupted copy: continuing in it", key)
            return self._existing(key)
        if name:
            experiment.set_name(name)
        return experiment

    def _existing_others(self, key: str) -> dict[str, Any] | None:
        """The others of Comet's experiment ``key``, or ``None`` if it has none by that key
        (or cannot say)."""
        try:
            import comet_ml

            exp = comet_ml.API(api_key=self.api_key, cache=False).get_experiment_by_key(key)
            if exp is None:
                return None
            return {o["name"]: o.get("valueCurrent") for o in exp.get_others_summary() or []}
        except Exception:  # noqa: BLE001 - only the choice between two clear outcomes depends on it
            log.debug("could not look up Comet experiment %s", key, exc_info=True)
            return None

    def _existing(self, key: str) -> Any:
        """``ExistingExperiment`` on ``key`` (a run this process did not start: resuming a
        copy, adding to it); raises when Comet cannot be reached or refuses."""
        self._quiet()
        import comet_ml

        if not reachable(self.url, self.probe_timeout):
            raise TransientBackendError(f"Comet at {urlparse(self.url).netloc} cannot be reached; retry later")
        config = {k: v for k, v in QUIET_CONFIG.items() if k != "display_summary_level"}
        experiment = comet_ml.ExistingExperiment(api_key=self.api_key, previous_experiment=key,
                                                 display_summary_level=0, **config)
        if not getattr(experiment, "alive", False):
            raise BackendError(f"Comet refused to reopen experiment {key}")
        return experiment

    def _fall_back(self, workspace: str | None, project: str, name: str | None, start_time: int | None,
                   parent_run_id: str | None, tags: Mapping[str, str]) -> str:
        """The run in an offline archive instead (Comet cannot be reached), its parent kept."""
        with self._lock:
            if self._offline is None:
                self._offline = CometOfflineWriter(self.offline_dir, "comet-offline", workspace=workspace)
            offline = self._offline
        run_id = offline.create_run(project, name=name, start_time=start_time, parent_run_id=parent_run_id,
                                    tags=tags)
        with self._lock:
            self._offline_runs.add(run_id)
        return run_id

    def _run(self, run_id: str) -> _Live | None:
        """The live experiment of ``run_id``, or ``None`` for a run in the offline archive.

        A run this writer did not start (a copy resumed after a crash, a sync adding to
        an ended run) is reopened as an ``ExistingExperiment``."""
        with self._lock:
            live = self._live.get(run_id)
            if live is not None or run_id in self._offline_runs:
                return live
        experiment = self._existing(run_id)
        with self._lock:
            live = self._live.setdefault(run_id, _Live(experiment))
            self._ended.pop(run_id, None)
        return live

    def _ended_experiment(self, run_id: str) -> Any:
        """An ``APIExperiment`` for a run this writer has ended, else ``None``."""
        with self._lock:
            if run_id not in self._ended:
                return None
            api_exp = self._ended[run_id]
        if api_exp is None:
            import comet_ml

            api_exp = comet_ml.APIExperiment(api_key=self.api_key, previous_experiment=run_id)
            with self._lock:
                self._ended[run_id] = api_exp
        return api_exp

    def _late(self, run_id: str, others: Mapping[str, Any] | None = None, labels: Sequence[str] = (),
              name: str | None = None) -> bool:
        """Metadata for an ended run, through the REST API; ``False`` if the run is not ended."""
        api_exp = self._ended_experiment(run_id)
        if api_exp is None:
            return False
        for key, value in (others or {}).items():
            api_exp.log_other(key, value)
        if labels:
            api_exp.add_tags(list(labels))
        if name is not None:
            api_exp.set_name(name)
        return True

    def _off(self) -> CometOfflineWriter:
        assert self._offline is not None
        return self._offline

    def finish_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        live = self._run(run_id)
        final = RunStatus.parse(status)
        if live is None:
            self._off().finish_run(run_id, final, end_time)
            command = upload_command(self.offline_dir, 0)
            log.warning("Comet run %s is in the offline archive %s; upload it with: %s "
                        "(raise COMET_OFFLINE_SAMPLING_SIZE above the longest series if it has more "
                        "than 15,000 points)", run_id, self.offline_dir / f"{run_id}.zip", command)
            return
        live.experiment.log_other(fmt.STATUS_OTHER, final.value)
        if final is RunStatus.FAILED:
            try:
                live.experiment._report_experiment_error("run failed", has_crashed=True)  # noqa: SLF001
            except Exception:  # noqa: BLE001 - a status nicety, never worth failing the run for
                log.debug("could not mark the Comet experiment as crashed", exc_info=True)
        live.experiment.end()
        with self._lock:
            self._live.pop(run_id, None)
            self._ended[run_id] = None

    def set_run_name(self, run_id: str, name: str) -> None:
        if self._late(run_id, name=name):
            return
        live = self._run(run_id)
        if live is None:
            return self._off().set_run_name(run_id, name)
        live.experiment.set_name(name)

    # -- metadata ---------------------------------------------------------------

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Flat text, nested keys as ``a|b`` (``limits.flat_params``): what Comet shows and
        gives back.  A nested dict handed over anyway is flattened by the SDK the same way."""
        live = self._run(run_id)
        if live is None:
            return self._off().log_params(run_id, params)
        live.experiment.log_parameters(dict(params))

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Key/value tags are Comet "others"."""
        if self._late(run_id, {k: str(v) for k, v in tags.items()}):
            return
        live = self._run(run_id)
        if live is None:
            return self._off().set_tags(run_id, tags)
        live.experiment.log_others({k: str(v) for k, v in tags.items()})

    def set_labels(self, run_id: str, labels: Sequence[str]) -> None:
        if self._late(run_id, labels=labels):
            return
        live = self._run(run_id)
        if live is None:
            return self._off().set_labels(run_id, labels)
        live.experiment.add_tags(list(labels))

    def set_notes(self, run_id: str, notes: str) -> None:
        if self._late(run_id, {fmt.NOTES_OTHER: notes}):
            return
        live = self._run(run_id)
        if live is None:
            return self._off().set_notes(run_id, notes)
        live.experiment.log_other(fmt.NOTES_OTHER, notes)

    def log_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        if self._late(run_id, {fmt.SUMMARY_PREFIX + k: json.dumps(v, allow_nan=True) for k, v in summary.items()}):
            return
        live = self._run(run_id)
        if live is None:
            return self._off().log_summary(run_id, summary)
        live.experiment.log_others({fmt.SUMMARY_PREFIX + k: json.dumps(v, allow_nan=True) for k, v in summary.items()})

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        live = self._run(run_id)
        if live is None:
            return self._off().log_inputs(run_id, inputs)
        live.experiment.log_other(fmt.INPUTS_OTHER, json.dumps([asdict(i) for i in inputs], sort_keys=True))

    # -- metrics ------------------------------------------------------------------

    def log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        live = self._run(run_id)
        if live is None:
            return self._off().log_metrics(run_id, points)
        for point in live.points.metrics(points):
            self._send(live, point)

    def log_rows(self, run_id: str, rows: Sequence[Row]) -> None:
        live = self._run(run_id)
        if live is None:
            return self._off().log_rows(run_id, rows)
        for point in live.points.rows(rows):
            self._send(live, point)

    def log_system_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        live = self._run(run_id)
        if live is None:
            return self._off().log_system_metrics(run_id, points)
        for point, keys_other in live.points.system(points):
            if keys_other is not None:
                live.experiment.log_other(fmt.SYSTEM_KEYS_OTHER, keys_other)
            self._send(live, point)

    def _send(self, live: _Live, point: CometPoint) -> None:
        try:
            from comet_ml.messages import MetricMessage

            message = MetricMessage(timestamp=int(point.timestamp))
            message.set_metric(point.name, fmt.encode_float(point.value), step=int(point.step), epoch=point.epoch)
            live.experiment._enqueue_message(message)  # noqa: SLF001 - the only way to keep the point's time
        except (ImportError, AttributeError, TypeError):
            live.experiment.log_metric(point.name, point.value, step=point.step, epoch=point.epoch)

    # -- files and models -------------------------------------------------------------

    def log_artifact(self, run_id: str, local_path: Path, artifact_dir: str | None = None) -> None:
        live = self._run(run_id)
        if live is None:
            return self._off().log_artifact(run_id, local_path, artifact_dir)
        local_path = Path(local_path)
        prefix = (artifact_dir or "").strip("/")
        files = [local_path] if local_path.is_file() else sorted(p for p in local_path.rglob("*") if p.is_file())
        for f in files:
            rel = f.name if f == local_path else f.relative_to(local_path).as_posix()
            live.experiment.log_asset(str(f), file_name=f"{prefix}/{rel}" if prefix else rel)

    def log_model(self, run_id: str, local_dir: Path, source: LoggedModel) -> LoggedModel:
        name = source.name
        live = self._run(run_id)
        if live is None:
            return self._off().log_model(run_id, local_dir, source)
        local_dir = Path(local_dir)
        files = [local_dir] if local_dir.is_file() else sorted(p for p in local_dir.rglob("*") if p.is_file())
        grouping = fmt.experiment_model_name(name, live.model_names)
        metadata = fmt.model_metadata(source)
        for f in files:
            rel = f.name if f == local_dir else f.relative_to(local_dir).as_posix()
            live.experiment.log_model(grouping, str(f), file_name=rel, metadata=metadata)
        return replace(source, artifact_path=grouping, model_id=fmt.model_id(run_id, grouping),
                       params=dict(source.params), metrics=dict(source.metrics), tags=dict(source.tags),
                       flavors=list(source.flavors))

    def register_model(self, model: RegisteredModel) -> None:
        with self._lock:
            offline = self._offline
        if offline is not None:
            offline.register_model(model)
        self._model_info[model.name] = (model.description, dict(model.tags))

    def create_model_version(self, version: ModelVersion, run_id: str | None) -> ModelVersion:
        if run_id is None:
            raise BackendError(f"Comet registers versions from an experiment's model; {version.name} has no run")
        ended = self._ended_experiment(run_id)
        live = None if ended is not None else self._run(run_id)
        if ended is None and live is None:
            return self._off().create_model_version(version, run_id)
        number = semver(version.version) if version.version else self._next_version(version.name)
        description, model_tags = self._model_info.get(version.name, ("", {}))
        kwargs = dict(version=number, registry_name=version.name, description=description or None,
                      comment=version.description or None,
                      tags=fmt.encode_version_tags(version.tags, list(version.aliases), model_tags),
                      status=version.stage or None)
        # Comet registers an experiment's model by its name there (not the registry's)
        model = fmt.model_name_of(version.model_id, run_id) or version.artifact_path or version.name
        if ended is not None:  # the engine registers after the run ended: through the REST API
            ended.register_model(model, **kwargs)
        else:
            live.experiment.register_model(model, **kwargs)
        with self._lock:
            self._versions.setdefault(version.name, []).append(number)
        return ModelVersion(**{**{s: getattr(version, s) for s in version.__slots__}, "version": number})

    def _next_version(self, name: str) -> str:
        """One major above the versions this writer registered, or Comet's registry has."""
        from trackbridge.backends.comet.offline_reader import next_version

        with self._lock:
            known = list(self._versions.get(name, []))
        if not known:
            try:
                import comet_ml

                api = comet_ml.API(api_key=self.api_key)
                details = api.get_registry_model_details(self.workspace or api.get_default_workspace(), name) or {}
                known = [str(v.get("version")) for v in details.get("versions") or []]
            except Exception:  # noqa: BLE001 - no such model yet (or no registry): start at 1.0.0
                known = []
        return next_version(known)

    def set_model_alias(self, name: str, alias: str, version: str) -> None:
        """Comet has no aliases; kept as the version tag ``alias:<alias>`` (offline runs) or
        added to the version's tags through the API (live)."""
        with self._lock:
            offline = self._offline
        if offline is not None:
            try:
                return offline.set_model_alias(name, alias, version)
            except RunNotFound:
                pass
        import comet_ml

        api = comet_ml.API(api_key=self.api_key)
        model = api.get_model(self.workspace or api.get_default_workspace(), name)
        model.add_tag(semver(version), fmt.ALIAS_TAG_PREFIX + alias)

    def set_version_stage(self, name: str, version: str, stage: str | None) -> None:
        """The stage is the version's Comet status, set through the registry API (a version
        of a run that went to the offline archive: in the archive).  Comet cannot clear a
        status, so ``None`` leaves a version as it is."""
        with self._lock:
            offline = self._offline
        if offline is not None:
            try:
                return offline.set_version_stage(name, version, stage)
            except RunNotFound:
                pass
        if stage is None:
            return
        import comet_ml

        api = comet_ml.API(api_key=self.api_key)
        api.get_model(self.workspace or api.get_default_workspace(), name).set_status(semver(version), stage)

    # -- lifecycle ----------------------------------------------------------------------

    def flush(self) -> None:
        with self._lock:
            offline = self._offline
            live = list(self._live.values())
        for run in live:
            try:
                run.experiment.flush()
            except Exception:  # noqa: BLE001 - flushing a live experiment is best effort
                log.debug("Comet flush failed", exc_info=True)
        if offline is not None:
            offline.flush()

    def close(self) -> None:
        with self._lock:
            offline = self._offline
            live = list(self._live.items())
            self._live.clear()
        for _key, run in live:
            run.experiment.end()
        if offline is not None:
            offline.close()

    @property
    def offline_runs(self) -> set[str]:
        """Runs written to the offline archive because Comet could not be reached."""
        with self._lock:
            return set(self._offline_runs)
