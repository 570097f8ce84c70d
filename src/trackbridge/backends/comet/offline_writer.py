"""``comet-offline:PATH`` as a destination: Comet offline archives written directly.

Why not through comet_ml's ``OfflineExperiment``: it stamps every point with the
time of the call (the SDK writes ~17,000 points/s), sets start/stop times to the
copy's own, and picks random experiment keys.  This writer keeps each point's
original timestamp, the run's start and stop times, and derives the experiment key
from the source run (``sha1("trackbridge:<platform>:<run id>")``, what
``comet_ml.get_experiment_key`` gives for that text), so a second copy rewrites the
same ``<key>.zip`` and ``comet upload`` of it never makes a second experiment
(``resume_strategy="create"`` with a user key: Comet refuses a key it already has).

Memory: messages are appended to a staging file on disk
(``PATH/.trackbridge-staging/<key>/messages.json``) as they come, files are copied
next to it, and the zip is built at ``finish_run`` (and again at ``flush`` when the
run changed after).  A run's memory is its small ``experiment.json`` state.

A crash mid-run leaves only the staging folder: the committed ``<key>.zip`` (if any)
is untouched (archives are written to a temporary name and renamed).  The next
``create_run`` of the same source run rewrites the archive from scratch, and a later
write to a run whose staging this process does not know starts from the committed zip.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import IO, Any

from trackbridge.backends.base import UNLIMITED, Limits, Writer
from trackbridge.backends.comet import format as fmt
from trackbridge.backends.comet.media import histogram_to_comet, image_meta
from trackbridge.backends.comet.offline_reader import STAGING_DIR, archives_of
from trackbridge.backends.comet.points import CometPoint, RunPoints
from trackbridge.backends.comet.scan import EXPERIMENT_FILE, MESSAGES_FILE, TEXT_SERIES, read_meta
from trackbridge.backends.comet.upload import DEFAULT_SAMPLING_SIZE
from trackbridge.backends.comet.zipsource import ArchiveFiles
from trackbridge.errors import BackendError, InvalidValueError, RunNotFound
from trackbridge.history import Row
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

#: What Comet takes (docs and the SDK's validators): keys <= 100 characters, a
#: parameter value <= 1,000 characters once stringified.  Params are JSON values with
#: nesting kept (``flat_params=False``): the writer flattens nested dicts as Comet
#: shows them (``a|b``) and the reader nests them again, so they round-trip.
COMET_LIMITS = Limits(
    max_metrics_per_batch=10_000,
    max_params_per_batch=10_000,
    max_tags_per_batch=10_000,
    max_key_length=100,
    max_param_value_length=1_000,
    max_tag_value_length=UNLIMITED,
    key_pattern=None,
    flat_params=False,
    nested_separator=fmt.NESTED_SEPARATOR,
    allows_nan=True,
    max_tags_per_run=None,
    uploader_points_per_series=DEFAULT_SAMPLING_SIZE,
)

#: Comet's cloud keeps parameters as flat text (nested ones as ``a|b``): callers hand
#: them over flattened and stringified, and they read back as the same text.
COMET_CLOUD_LIMITS = replace(COMET_LIMITS, flat_params=True)

def semver(version: str) -> str:
    """Comet's registry wants semver: an integer version ``N`` becomes ``N.0.0``."""
    return f"{int(version)}.0.0" if version.strip().isdigit() else version


@dataclass
class _Run:
    key: str
    dir: Path
    meta: dict[str, Any]
    lock: threading.RLock = field(default_factory=threading.RLock)
    out: IO[str] | None = None
    next_id: int = 1
    files: int = 0
    points: RunPoints = field(default_factory=RunPoints)
    nested_flag: bool = False
    inputs: list[dict[str, Any]] = field(default_factory=list)
    #: (registry name, version) -> register_model payload, written when zipping.
    registrations: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: experiment model names in use (a repeated logged-model name gets a numbered one).
    model_names: set[str] = field(default_factory=set)
    #: asset file names logged so far (where set_artifact_meta can put metadata).
    assets: set[str] = field(default_factory=set)
    #: path -> artifact_meta entry, put into the assets' upload messages when zipping
    #: (the engine sets it after the files are logged).
    asset_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: artifact_meta entries of paths with no asset: kept in the other ARTIFACT_META_KEY.
    loose_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: images logged so far (comet_ml numbers them: figCounter).
    figures: int = 0
    dirty: bool = True
    #: finish_run has zipped it: later changes (the engine's final tags) are zipped at once.
    finished: bool = False


class CometOfflineWriter(Writer):
    """Writes one ``<key>.zip`` per run into a folder that ``comet upload`` accepts."""

    limits = COMET_LIMITS

    def __init__(self, root: Path, platform: str = "comet-offline", workspace: str | None = None) -> None:
        self.root = root
        self.platform = platform
        self.workspace = workspace
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        #: registered model name -> (description, tags): Comet keeps them with each registration.
        self._models: dict[str, tuple[str, dict[str, str]]] = {}

    # -- experiments and runs ---------------------------------------------------

    def ensure_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        """Comet projects need no creation (``comet upload`` creates them): the id is the name."""
        return name

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
        with self._lock:
            old = self._runs.pop(key, None)
        if old is not None and old.out is not None:
            old.out.close()
        run_dir = self._staging(key)
        shutil.rmtree(run_dir, ignore_errors=True)  # a crashed or repeated copy is rewritten
        (run_dir / "files").mkdir(parents=True)
        meta = {
            "offline_id": key, "project_name": experiment_id or None, "workspace": self.workspace,
            "start_time": int(start_time if start_time is not None else now_ms()), "stop_time": None,
            "tags": [], "resume_strategy": "create", "customer_error_reported": False,
            "customer_error_message": None, "user_provided_experiment_key": True, "comet_start_sourced": True,
        }
        run = _Run(key, run_dir, meta)
        run.out = open(run_dir / MESSAGES_FILE, "a", encoding="utf-8")
        with self._lock:
            self._runs[key] = run
        with run.lock:
            # until finish_run says otherwise the run is running (and has no end time)
            self._other(run, fmt.STATUS_OTHER, RunStatus.RUNNING.value)
            if name is not None:
                self._other(run, "Name", name)
            for k, v in fmt.with_parent(tags, parent_run_id).items():
                self._other(run, k, v)
        return key

    def finish_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        run = self._open(run_id)
        with run.lock:
            final = RunStatus.parse(status)
            still_open = final in (RunStatus.RUNNING, RunStatus.SCHEDULED)
            run.meta["stop_time"] = end_time if end_time is not None else None if still_open else now_ms()
            self._other(run, fmt.STATUS_OTHER, final.value)
            self._commit(run)
            run.finished = True

    def set_run_name(self, run_id: str, name: str) -> None:
        run = self._open(run_id)
        with run.lock:
            self._other(run, "Name", name)
        self._settle(run)

    def delete_run(self, run_id: str) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is not None and run.out is not None:
            run.out.close()
        shutil.rmtree(self._staging(run_id), ignore_errors=True)
        for path in archives_of(self.root, run_id):
            path.unlink()

    # -- metadata ------------------------------------------------------------------

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        run = self._open(run_id)
        flat = fmt.flatten_params(params)
        with run.lock:
            if len(flat) != len(params) or any(fmt.NESTED_SEPARATOR in k for k in flat):
                if not run.nested_flag:
                    self._other(run, "hasNestedParams", True)
                    run.nested_flag = True
            ts = now_ms()
            for key, value in flat.items():
                try:
                    json.dumps(value, allow_nan=False)
                except (TypeError, ValueError):
                    raise InvalidValueError(f"param {key!r}: {value!r} is not a JSON value Comet can hold") from None
                form = "params" if isinstance(value, list) else "param"
                self._write(run, "parameter_msg", {"local_timestamp": ts, form: {
                    "paramName": key, "paramValue": value, "source": "manual", "step": None}})

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Key/value tags are Comet "others" (Comet tags are labels)."""
        run = self._open(run_id)
        with run.lock:
            for key, value in tags.items():
                self._other(run, key, str(value))
        self._settle(run)

    def set_labels(self, run_id: str, labels: Sequence[str]) -> None:
        run = self._open(run_id)
        with run.lock:
            run.meta["tags"] += [t for t in dict.fromkeys(labels) if t not in run.meta["tags"]]
            run.dirty = True
        self._settle(run)

    def set_notes(self, run_id: str, notes: str) -> None:
        run = self._open(run_id)
        with run.lock:
            self._other(run, fmt.NOTES_OTHER, notes)
        self._settle(run)

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        """Comet has no dataset inputs: kept as the other ``trackbridge.inputs`` (JSON),
        new ones added to those already recorded."""
        run = self._open(run_id)
        with run.lock:
            merged = run.inputs + [i for i in map(asdict, inputs) if i not in run.inputs]
            if merged != run.inputs:
                run.inputs = merged
                self._other(run, fmt.INPUTS_OTHER, json.dumps(merged, sort_keys=True))
        self._settle(run)

    def log_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        run = self._open(run_id)
        with run.lock:
            for key, value in summary.items():
                self._other(run, fmt.SUMMARY_PREFIX + key, json.dumps(value, allow_nan=True))
        self._settle(run)

    # -- metrics ---------------------------------------------------------------------

    def log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        run = self._open(run_id)
        with run.lock:
            for point in run.points.metrics(points):
                self._metric(run, point)

    def log_rows(self, run_id: str, rows: Sequence[Row]) -> None:
        run = self._open(run_id)
        with run.lock:
            for point in run.points.rows(rows):
                self._metric(run, point)

    def log_system_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        """Kept apart as Comet keeps them: names ``sys.<key>`` (the reader maps them back)."""
        run = self._open(run_id)
        with run.lock:
            for point, keys_other in run.points.system(points):
                if keys_other is not None:
                    self._other(run, fmt.SYSTEM_KEYS_OTHER, keys_other)
                self._metric(run, point)

    def _metric(self, run: _Run, point: CometPoint) -> None:
        self._write(run, "metric_msg", {"local_timestamp": int(point.timestamp), "metric": {
            "metricName": point.name, "metricValue": fmt.encode_float(point.value), "step": int(point.step),
            "epoch": point.epoch}})

    # -- files -------------------------------------------------------------------------

    def log_artifact(self, run_id: str, local_path: Path, artifact_dir: str | None = None) -> None:
        local_path = Path(local_path)
        run = self._open(run_id)
        with run.lock:
            for src, rel in _files_under(local_path, artifact_dir):
                self._upload(run, src, "asset", {"fileName": rel})
                run.assets.add(rel)

    def set_artifact_meta(self, run_id: str, meta: Mapping[str, Mapping[str, Any]]) -> None:
        """Comet keeps metadata per asset, in its upload message: each path's entry goes
        into the uploads of the files at or under it when the archive is zipped (the
        files came first); a path with no file is kept in the other ARTIFACT_META_KEY."""
        run = self._open(run_id)
        with run.lock:
            for path, entry in meta.items():
                path = path.strip("/")
                if any(a == path or a.startswith(path + "/") for a in run.assets):
                    run.asset_meta[path] = dict(entry)
                else:
                    run.loose_meta[path] = dict(entry)
            if run.loose_meta:
                self._other(run, fmt.ARTIFACT_META_KEY, json.dumps(run.loose_meta, sort_keys=True))
            run.dirty = True
        self._settle(run)

    def log_model(self, run_id: str, local_dir: Path, source: LoggedModel) -> LoggedModel:
        """Model files are ``model-element`` uploads grouped by an experiment model name:
        the model's name, numbered (``model-2``...) where the run already has one of that
        name, since Comet merges the files of one name into one model.  Every file's
        metadata holds the model's params (Comet shows them) and, under MODEL_META_KEY,
        its own name, metrics, tags, type, status and flavors."""
        local_dir = Path(local_dir)
        run = self._open(run_id)
        with run.lock:
            grouping = fmt.experiment_model_name(source.name, run.model_names)
            metadata = fmt.model_metadata(source)
            for src, rel in _files_under(local_dir, None):
                self._upload(run, src, "model-element", {"fileName": rel, "groupingName": grouping,
                                                         "type": "model-element"}, metadata)
        return replace(source, artifact_path=grouping, model_id=fmt.model_id(run.key, grouping),
                       params=dict(source.params), metrics=dict(source.metrics), tags=dict(source.tags),
                       flavors=list(source.flavors))

    # -- media ------------------------------------------------------------------------------

    def log_media(self, run_id: str, key: str, points: Sequence[tuple[MediaPoint, Path | None]]) -> None:
        """Each point as the upload comet_ml makes for it (``log_histogram_3d``,
        ``log_image``, ``log_text``, ``log_audio``, ``log_video``) at its step and time;
        what Comet's upload has no field for (a caption, the series key of a text, meta
        an image's header does not give, a histogram's exact bins where Comet's differ)
        goes under MEDIA_META_KEY in its metadata."""
        run = self._open(run_id)
        with run.lock:
            for point, local in points:
                self._media(run, key, point, local)

    def _media(self, run: _Run, key: str, point: MediaPoint, local: Path | None) -> None:
        kept: dict[str, Any] = {} if point.caption is None else {"caption": point.caption}
        metadata: dict[str, Any] = dict(point.meta)
        extra: dict[str, Any] = {"step": int(point.step)}
        base = key.rsplit("/", 1)[-1]
        if point.kind == "histogram":
            doc, exact = histogram_to_comet(point.data or {})
            if not exact:
                kept["data"] = point.data
            local = self._scratch(run, json.dumps(doc).encode())
            upload_type = "histogram3d"
            extra.update(fileName=key, epoch=None, type=upload_type, extension=None)
        elif point.kind == "text":
            if key != TEXT_SERIES:
                kept["key"] = key
            if local is None:
                local = self._scratch(run, str(point.data if point.data is not None else "").encode("utf-8"))
            upload_type = "text-sample"
            extra.update(fileName="auto-generated-in-the-backend", epoch=None, type=upload_type, extension=None)
        elif point.kind in ("image", "audio", "video") and local is not None:
            if point.file and point.file != base:
                kept["file"] = point.file
            if point.kind == "image":
                run.figures += 1
                upload_type = "visualization"
                extra.update(figName=key, figCounter=run.figures, imageId=uuid.uuid4().hex)
                with open(local, "rb") as fh:
                    head = fh.read(32)
                derived = image_meta(head, PurePosixPath(point.file or base).suffix.lstrip(".") or None)
                if derived != point.meta:
                    kept["meta"] = point.meta
                metadata = {}
            else:
                upload_type = point.kind
                extra.update(fileName=key, epoch=None, type=upload_type)
        else:
            raise BackendError(f"comet-offline: media {key!r} of kind {point.kind!r} "
                               f"{'has no file' if local is None else 'is not one Comet holds'}")
        if kept:
            metadata[fmt.MEDIA_META_KEY] = kept
        self._upload(run, Path(local), upload_type, extra, metadata, int(point.timestamp))
        if Path(local).parent == run.dir:  # a scratch file, copied into the archive's files
            Path(local).unlink()

    def _scratch(self, run: _Run, data: bytes) -> Path:
        """A file holding ``data`` in the run's staging folder (a histogram's JSON, a text),
        removed once uploaded."""
        path = run.dir / f"scratch-{uuid.uuid4().hex}"
        path.write_bytes(data)
        return path

    def _upload(self, run: _Run, src: Path, upload_type: str, extra: dict[str, Any],
                metadata: Mapping[str, Any] | None = None, timestamp: int | None = None) -> None:
        run.files += 1
        member = f"file-{run.files:06d}"
        shutil.copyfile(src, run.dir / "files" / member)
        params = {"assetId": uuid.uuid4().hex, "context": None, "extension": src.suffix.lstrip(".") or None,
                  "overwrite": False, "runId": None, "step": None, **extra}
        self._write(run, "file_upload", {
            "additional_params": params, "clean": True, "file_path": member,
            "local_timestamp": now_ms() if timestamp is None else timestamp, "metadata": fmt.json_safe(dict(metadata or {})),
            "upload_type": upload_type})

    # -- registry ----------------------------------------------------------------------

    def register_model(self, model: RegisteredModel) -> None:
        """Comet creates a registry entry with its first version: the description and the
        model's tags (as ``model:k=v`` version tags) go with every version registered here."""
        with self._lock:
            self._models[model.name] = (model.description, dict(model.tags))

    def _next_version(self, name: str) -> str:
        """The version Comet would give next, knowing the archives and the open runs."""
        from trackbridge.backends.comet.offline_reader import CometOfflineReader, next_version

        known = [v.version for m in CometOfflineReader(self.root, self.platform, recover=True)
                 .list_registered_models() if m.name == name for v in m.versions]
        for run in self._all_open():
            known += [r["version"] for r in run.registrations.values() if r["registry_name"] == name]
        return next_version(known)

    def create_model_version(self, version: ModelVersion, run_id: str | None) -> ModelVersion:
        if run_id is None:
            raise BackendError(f"Comet registers versions from an experiment's model; {version.name} "
                               f"version {version.version} has no run to register it from")
        run = self._open(run_id)
        with self._lock:
            description, model_tags = self._models.get(version.name, ("", {}))
        number = semver(version.version) if version.version else self._next_version(version.name)
        tags = fmt.encode_version_tags(version.tags, list(version.aliases), model_tags)
        with run.lock:
            run.registrations[f"{version.name}\0{number}"] = {
                "comment": version.description or None, "description": description or None,
                "experiment_id": run.key,
                "metadata": None, "model_name": _experiment_model(run, version), "public": False,
                "registry_name": version.name, "stages": None, "status": version.stage,
                "status_configuration": None, "tags": tags, "version": number,
                # the uploader validates a string here and then uses its own workspace
                "workspace": self.workspace or "",
            }
            run.dirty = True
        self._settle(run)
        return ModelVersion(**{**_fields(version), "version": number})

    def set_model_alias(self, name: str, alias: str, version: str) -> None:
        """Comet has no aliases: kept as the version's tag ``alias:<name>``."""
        run, reg = self._registration(name, version)
        with run.lock:
            if fmt.ALIAS_TAG_PREFIX + alias not in reg["tags"]:
                reg["tags"].append(fmt.ALIAS_TAG_PREFIX + alias)
                run.dirty = True
        self._settle(run)

    def set_version_stage(self, name: str, version: str, stage: str | None) -> None:
        """The stage is the version's Comet ``status`` (Production, Staging...)."""
        run, reg = self._registration(name, version)
        with run.lock:
            if reg.get("status") != stage:
                reg["status"] = stage
                run.dirty = True
        self._settle(run)

    def _registration(self, name: str, version: str) -> tuple[_Run, dict[str, Any]]:
        """The run holding version ``version`` of ``name`` and its register_model payload:
        among the runs open here, else in the archive that registered it (reopened)."""
        from trackbridge.backends.comet.offline_reader import CometOfflineReader

        number = semver(version)
        slot = f"{name}\0{number}"
        for run in self._all_open():
            with run.lock:
                if slot in run.registrations:
                    return run, run.registrations[slot]
        for model in CometOfflineReader(self.root, self.platform, recover=True).list_registered_models():
            for found in model.versions:
                if model.name == name and found.version == number and found.run_id:
                    run = self._open(found.run_id)
                    with run.lock:
                        if slot in run.registrations:
                            return run, run.registrations[slot]
        raise RunNotFound(f"model {name} version {number} is in no archive of {self.root}")

    # -- committing ---------------------------------------------------------------------

    def flush(self) -> None:
        """Zip every run changed since its last zip."""
        for run in self._all_open():
            with run.lock:
                if run.dirty:
                    self._commit(run)

    def close(self) -> None:
        self.flush()
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        for run in runs:
            with run.lock:
                if run.out is not None:
                    run.out.close()
                    run.out = None
                shutil.rmtree(run.dir, ignore_errors=True)
        try:
            (self.root / STAGING_DIR).rmdir()
        except OSError:
            pass

    def _settle(self, run: _Run) -> None:
        """Metadata changed after finish_run (the engine's completion marker, say): zip now,
        so the archive on disk is never behind even if nobody calls flush."""
        with run.lock:
            if run.finished and run.dirty:
                self._commit(run)

    def _commit(self, run: _Run) -> None:
        """Write ``<key>.zip`` atomically: experiment.json first (so a truncated copy still
        says what it is), then messages.json, then the files."""
        assert run.out is not None
        run.out.flush()
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / f"{run.key}.zip"
        tmp = self.root / f".{run.key}.zip.tmp"
        meta = dict(run.meta)
        if meta["stop_time"] is None:
            meta["stop_time"] = now_ms()  # comet upload needs one; a running copy ends now there
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(EXPERIMENT_FILE, json.dumps(meta))
            with zf.open(MESSAGES_FILE, "w", force_zip64=True) as dst:
                with open(run.dir / MESSAGES_FILE, "rb") as src:
                    if run.asset_meta:
                        for raw in src:
                            dst.write(_with_asset_meta(raw, run.asset_meta))
                    else:
                        shutil.copyfileobj(src, dst, 1 << 20)
                next_id = run.next_id
                for payload in run.registrations.values():
                    line = {"payload": {**payload, "message_id": next_id}, "type": "register_model"}
                    dst.write((json.dumps(line) + "\n").encode())
                    next_id += 1
            for member in sorted(os.listdir(run.dir / "files")):
                zf.write(run.dir / "files" / member, member)
        for old in archives_of(self.root, run.key):
            if old != target:
                old.unlink()
        os.replace(tmp, target)
        run.dirty = False

    # -- plumbing -----------------------------------------------------------------------

    def _staging(self, key: str) -> Path:
        return self.root / STAGING_DIR / key

    def _all_open(self) -> list[_Run]:
        with self._lock:
            return list(self._runs.values())

    def _open(self, run_id: str) -> _Run:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                run = self._runs[run_id] = self._reopen(run_id)
            return run

    def _reopen(self, key: str) -> _Run:
        """A run written earlier (this process closed it, or another wrote it): its staging
        is rebuilt from the committed archive, which stays in place until the next zip."""
        found = [p for p in archives_of(self.root, key) if _key_of(p) == key]
        if not found:
            raise RunNotFound(f"no Comet offline archive for experiment key {key!r} in {self.root}")
        run_dir = self._staging(key)
        shutil.rmtree(run_dir, ignore_errors=True)
        (run_dir / "files").mkdir(parents=True)
        files = ArchiveFiles(found[0])
        try:
            meta = read_meta(files)
            run = _Run(key, run_dir, meta, dirty=False, finished=True)
            with files.open(MESSAGES_FILE) as src, open(run_dir / MESSAGES_FILE, "wb") as dst:
                for raw in src:
                    msg = json.loads(raw)
                    if msg.get("type") == "register_model":
                        p = msg["payload"]
                        run.registrations[f"{p['registry_name']}\0{p['version']}"] = {
                            k: v for k, v in p.items() if k != "message_id"}
                        continue
                    dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
                    run.next_id = max(run.next_id, int(msg["payload"].get("message_id") or 0) + 1)
                    _restore_state(run, msg)
            for name in files.names():
                if name not in (EXPERIMENT_FILE, MESSAGES_FILE):
                    with files.open(name) as src, open(run_dir / "files" / name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    run.files += 1
        finally:
            files.close()
        run.out = open(run_dir / MESSAGES_FILE, "a", encoding="utf-8")
        return run

    def _other(self, run: _Run, key: str, value: Any) -> None:
        self._write(run, "log_other", {"key": key, "value": value})

    def _write(self, run: _Run, kind: str, payload: dict[str, Any]) -> None:
        assert run.out is not None
        payload["message_id"] = run.next_id
        run.next_id += 1
        run.out.write(json.dumps({"payload": payload, "type": kind}, allow_nan=False) + "\n")
        run.dirty = True


def _key_of(path: Path) -> str | None:
    files = ArchiveFiles(path)
    try:
        return str(read_meta(files).get("offline_id"))
    except ValueError:
        return None
    finally:
        files.close()


def _restore_state(run: _Run, msg: dict[str, Any]) -> None:
    """What the writer tracks per run, from a message read back (reopening an archive)."""
    payload = msg["payload"]
    if msg.get("type") == "log_other":
        if payload.get("key") == "hasNestedParams":
            run.nested_flag = True
        elif payload.get("key") == fmt.SYSTEM_KEYS_OTHER:
            run.points.system_keys = json.loads(payload["value"])
        elif payload.get("key") == fmt.INPUTS_OTHER:
            run.inputs = json.loads(payload["value"])
    elif msg.get("type") == "metric_msg":
        epoch = (payload.get("metric") or {}).get("epoch")
        if epoch is not None:
            run.points.epoch = epoch
    elif msg.get("type") == "file_upload":
        extra = payload.get("additional_params") or {}
        if payload.get("upload_type") == "model-element":
            run.model_names.add(str(extra.get("groupingName")))
        elif payload.get("upload_type") == "asset":
            run.assets.add(str(extra.get("fileName")))
        elif payload.get("upload_type") == "visualization":
            run.figures += 1


def _experiment_model(run: _Run, version: ModelVersion) -> str:
    """The experiment model a version registers (Comet registers an experiment's model by
    its name there, which is not the registry's name): the model the version's id names,
    else the one at its artifact path, else the run's only model."""
    named = fmt.model_name_of(version.model_id, run.key)
    if named is not None:
        return named
    if version.artifact_path in run.model_names:
        return version.artifact_path
    if len(run.model_names) == 1:
        return next(iter(run.model_names))
    return version.artifact_path or version.name


def _with_asset_meta(raw: bytes, meta: Mapping[str, dict[str, Any]]) -> bytes:
    """A messages.json line, with the asset metadata of its file when it is an asset
    upload at or under a path of ``meta`` (the deepest such path wins)."""
    if b'"file_upload"' not in raw:
        return raw
    msg = json.loads(raw)
    payload = msg.get("payload") or {}
    name = str((payload.get("additional_params") or {}).get("fileName") or "")
    if msg.get("type") != "file_upload" or payload.get("upload_type") != "asset":
        return raw
    paths = [p for p in meta if name == p or name.startswith(p + "/")]
    if not paths:
        return raw
    path = max(paths, key=len)
    payload["metadata"] = fmt.json_safe(fmt.asset_metadata(name, path, meta[path]))
    return (json.dumps(msg, allow_nan=False) + "\n").encode()


def _files_under(path: Path, artifact_dir: str | None) -> list[tuple[Path, str]]:
    """(file, relative name) of a file or a folder, under ``artifact_dir``."""
    prefix = (artifact_dir or "").strip("/")
    if path.is_file():
        rel = path.name
        return [(path, f"{prefix}/{rel}" if prefix else rel)]
    if not path.is_dir():
        raise BackendError(f"{path} is neither a file nor a folder")
    out = []
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        out.append((f, f"{prefix}/{rel}" if prefix else rel))
    return out


def _fields(version: ModelVersion) -> dict[str, Any]:
    return {name: getattr(version, name) for name in version.__slots__}
