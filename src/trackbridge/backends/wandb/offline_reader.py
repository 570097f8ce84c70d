"""Reading W&B offline runs (``wandb-offline:PATH``) into the canonical model.

``PATH`` is a folder of ``offline-run-*`` / ``run-*`` dirs (the SDK's ``wandb/``
folder, or a folder holding one), one run dir, or one ``.wandb`` file.  Projects are
experiments; the W&B run id is the run id.

Mapping (what the writer in :mod:`.offline_writer` writes, read back exactly):

* config -> params (nested kept), without wandb's ``_wandb`` key; config key
  ``trackbridge.tags`` -> key/value tags; W&B group / job type -> tags
  ``wandb.group`` / ``wandb.job_type``; W&B tags -> labels (the last run record
  wins: tags edited after ``init`` are read);
* history -> metric series: step = ``trackbridge/step`` when the row has it, else the
  value of the key's ``define_metric`` step metric (:mod:`.metrics`), else ``_step``;
  timestamp = ``_timestamp`` in ms; the definitions -> tag ``wandb.define_metric``;
  media values (``_type`` dicts) -> media series (:mod:`.media`), their files kept out
  of the plain files; other non-numeric values (text, lists) -> ``unread``;
  ``stats`` records -> system metrics ``system/<key>``;
* summary -> summary: the values the user set (W&B's copies of the last history
  values are left out), last update wins;
* config ``trackbridge.registry`` of every run -> registered models (:mod:`.registry`);
* exit code 0 -> FINISHED, 255 -> KILLED, other -> FAILED; no exit record -> RUNNING;
* used artifacts (``use_artifact``) -> dataset inputs (``source_type`` ``wandb-artifact``);
* run files (but wandb's own, e.g. ``requirements.txt``) -> artifacts at their path;
  logged W&B artifacts -> artifacts ``wandb-artifacts/<name>/<path>``, their files
  read from the staged copies the log points at, their type, description, metadata
  and aliases -> ``artifact_meta``; ``model`` artifacts -> logged models with their
  metadata (:mod:`.artifacts`).

A damaged file (truncated, bad CRC) gives every record before the damage; with
``strict`` the reader raises the :class:`~.txlog.TxlogError` (it names the byte
offset), otherwise it logs it as a warning once per file.
"""
from __future__ import annotations

import base64
import logging
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from trackbridge.backends.base import Reader, RunFilter
from trackbridge.backends.wandb import media as wmedia
from trackbridge.backends.wandb import rows as rowio
from trackbridge.backends.wandb.artifacts import ARTIFACTS_PREFIX, TABLE_TYPE, logged_model, meta_of, model_paths
from trackbridge.backends.wandb.metrics import DEFINE_METRIC_TAG, carried, encode_tag
from trackbridge.backends.wandb.scan import Artifact, ScannedRun, history_row, parse_record, scan
from trackbridge.backends.wandb.ids import derived_run_id
from trackbridge.backends.wandb.registry import REGISTRY_FILES_METADATA, assemble
from trackbridge.backends.wandb.values import (
    ARTIFACT_META_CONFIG_KEY,
    ARTIFACT_PATHS_CONFIG_KEY,
    GROUP_TAG,
    INPUTS_CONFIG_KEY,
    JOB_TYPE_TAG,
    REGISTRY_CONFIG_KEY,
    SOURCE_END_TIME_TAG,
    SOURCE_PARENT_TAG,
    SOURCE_PLATFORM_TAG,
    SOURCE_START_TIME_TAG,
    SOURCE_USER_TAG,
    TAGS_CONFIG_KEY,
    UNFINISHED_TAG,
    flat_str,
    project_name,
    used_artifact_input,
)
from trackbridge.errors import BackendError, RunNotFound
from trackbridge.history import Row
from trackbridge.model import (
    ArtifactInfo,
    DatasetInput,
    Experiment,
    LoggedModel,
    MediaPoint,
    MediaSeries,
    MetricPoint,
    RegisteredModel,
    RunRecord,
    RunStatus,
)

log = logging.getLogger("trackbridge")  # the logger whose records are masked (redact.MaskingFilter)

#: the Artifact type the SDK writer keeps a run's files in (read back at their own paths).
RUN_FILES_TYPE = "run-files"
#: FilesItem.type WANDB: files the SDK writes itself, not the user's.
WANDB_FILE_TYPE = 1
DEFAULT_PROJECT = "uncategorized"


def find_run_files(root: Path) -> list[Path]:
    """Every ``.wandb`` file under ``root`` as the module doc describes it."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    own = sorted(root.glob("run-*.wandb"))
    if own:
        return own
    found = _in_run_dirs(root)
    if not found and (root / "wandb").is_dir():
        found = _in_run_dirs(root / "wandb")
    return found


def _in_run_dirs(folder: Path) -> list[Path]:
    """``run-*.wandb`` of the run dirs of ``folder``; the SDK's ``latest-run`` symlink
    is skipped so a run is never listed twice."""
    return sorted(p for p in folder.glob("*/run-*.wandb") if not p.parent.is_symlink())


def status_of(run: ScannedRun) -> RunStatus:
    if run.exit_code is None or (run.config.get(TAGS_CONFIG_KEY) or {}).get(UNFINISHED_TAG):
        return RunStatus.RUNNING
    if run.exit_code == 0:
        return RunStatus.FINISHED
    return RunStatus.KILLED if run.exit_code == 255 else RunStatus.FAILED


class WandbOfflineReader(Reader):
    rows_in_one_pass = True

    def __init__(self, root: Path, platform: str = "wandb-offline", strict: bool = False) -> None:
        self.root = root
        self.platform = platform
        self.strict = strict
        self._lock = threading.Lock()
        self._scans: dict[Path, tuple[tuple[int, int], ScannedRun]] = {}
        self._warned: set[tuple[Path, int]] = set()
        self.series = rowio.SpillCache()
        #: run id -> its file, as last listed (a look-up per run must not list every run dir:
        #: check reads each of 1,000 runs several times)
        self._paths: dict[str, Path] = {}

    # -- files ------------------------------------------------------------------

    def _scan(self, path: Path) -> ScannedRun:
        stat = path.stat()
        ident = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._scans.get(path)
        if cached is not None and cached[0] == ident:
            run = cached[1]
        else:
            run = scan(path)
            with self._lock:
                self._scans[path] = (ident, run)
        if run.damage is not None:
            if self.strict:
                raise run.damage
            key = (path, run.damage.offset)
            if key not in self._warned:
                self._warned.add(key)
                log.warning("%s", run.damage)
        return run

    def _runs(self) -> Iterator[ScannedRun]:
        seen: dict[str, Path] = {}
        for path in find_run_files(self.root):
            try:
                run = self._scan(path)
            except FileNotFoundError:
                continue
            if not run.run_id:
                continue
            if run.run_id in seen:
                log.warning("W&B run %s is in both %s and %s: reading the first only",
                            run.run_id, seen[run.run_id], path)
                continue
            seen[run.run_id] = path
            yield run

    def _path_of(self, run_id: str) -> Path | None:
        """The file named for ``run_id``, listing the run dirs again only when it is not
        known (a new run) or gone (a run dir replaced)."""
        path = self._paths.get(run_id)
        if path is None or not path.is_file():
            self._paths = {p.name[len("run-"):-len(".wandb")]: p for p in find_run_files(self.root)}
            path = self._paths.get(run_id)
        return path

    def _find(self, run_id: str) -> ScannedRun:
        path = self._path_of(run_id)
        if path is not None:
            run = self._scan(path)
            if run.run_id == run_id:
                return run
        for run in self._runs():
            if run.run_id == run_id:
                return run
        raise RunNotFound(f"no W&B offline run {run_id!r} under {self.root}")

    # -- Reader -----------------------------------------------------------------

    def list_experiments(self) -> Iterator[Experiment]:
        seen: set[str] = set()
        for run in self._runs():
            name = run.experiment
            if name not in seen:
                seen.add(name)
                yield Experiment(id=run.project or DEFAULT_PROJECT, name=name)

    def get_experiment(self, name: str) -> Experiment | None:
        """By name, or by the project a W&B writer made of that name (``a/b`` -> ``a-b``)."""
        found = {e.name: e for e in self.list_experiments()}
        return found.get(name) or found.get(project_name(name))

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        for run in self._runs():
            if run.experiment != experiment and (run.project or DEFAULT_PROJECT) not in (experiment, project_name(experiment)):
                continue
            record = self.to_record(run)
            if run_filter is None or run_filter.matches(record):
                yield record

    def get_run(self, run_id: str) -> RunRecord:
        return self.to_record(self._find(run_id))

    def to_record(self, run: ScannedRun) -> RunRecord:
        tags = flat_str(run.config.get(TAGS_CONFIG_KEY) or {})
        tags.pop(UNFINISHED_TAG, None)
        if run.group:
            tags[GROUP_TAG] = run.group
        if run.job_type:
            tags[JOB_TYPE_TAG] = run.job_type
        if run.definitions and DEFINE_METRIC_TAG not in tags:
            tags[DEFINE_METRIC_TAG] = encode_tag(run.definitions)
        end = None
        if run.exit_code is not None and run.start_time is not None:
            # the exit record's runtime is whole seconds, cut down: never before the last row
            end = max(run.start_time + run.runtime * 1000, run.last_timestamp or 0) if run.runtime \
                else run.last_timestamp
            # the exit record holds whole seconds; a copy keeps the exact time in a tag
            kept = _int(tags.get(SOURCE_END_TIME_TAG))
            if kept is not None:
                end = kept
        # what W&B runs cannot hold, kept in tags by the engine, is the run's again when read
        # (the tags stay too, so a re-run finds its copies): the user, and the parent, whose
        # copy has the id derived from it
        parent = None
        if tags.get(SOURCE_PARENT_TAG) and tags.get(SOURCE_PLATFORM_TAG):
            candidate = derived_run_id(tags[SOURCE_PLATFORM_TAG], tags[SOURCE_PARENT_TAG])
            if any(p.name == f"run-{candidate}.wandb" for p in find_run_files(self.root)):
                parent = candidate
        inputs = [DatasetInput(**{k: v for k, v in i.items() if k in DatasetInput.__slots__})
                  for i in run.config.get(INPUTS_CONFIG_KEY) or [] if isinstance(i, dict)]
        inputs += [used_artifact_input(a.name, a.type, a.server_id) for a in run.artifacts if a.used]
        models = [logged_model(a.name, path, a.client_id, a.metadata, a.committed) for path, a in self._models(run)]
        return RunRecord(
            platform=self.platform,
            run_id=run.run_id,
            experiment=run.experiment,
            experiment_id=run.project or DEFAULT_PROJECT,
            name=run.display_name or None,
            status=status_of(run),
            start_time=_int(tags.get(SOURCE_START_TIME_TAG)) or run.start_time,
            end_time=end,
            user=tags.get(SOURCE_USER_TAG) or None,
            parent_run_id=parent,
            url=run.path.resolve().as_uri(),
            params=run.params(),
            tags=tags,
            labels=list(run.labels),
            notes=run.notes or None,
            metrics=dict(run.metrics),
            system_metrics=dict(run.system_metrics),
            summary=run.user_summary(),
            inputs=inputs,
            models=models,
            media={k: MediaSeries(kind, count) for k, (kind, count) in run.media.items()},
            artifact_meta=self._artifact_meta(run),
            unread=_unread(run),
            carried=carried(run.definitions or []),
        )

    def _artifact_meta(self, run: ScannedRun) -> dict[str, dict]:
        """Path -> type, description, metadata and aliases of the run's logged artifacts
        (:mod:`.artifacts`), and what a writer kept in config for paths without one."""
        out: dict[str, dict] = {}
        kept = run.config.get(ARTIFACT_META_CONFIG_KEY)
        if isinstance(kept, dict):
            out.update({str(k): dict(v) for k, v in kept.items() if isinstance(v, dict)})
        for path, art in self._models(run):
            meta = meta_of(art.type, art.description, art.metadata, art.aliases, art.tags, model=True)
            if meta:
                out[path] = meta
        for art in self._plain_artifacts(run):
            meta = meta_of(art.type, art.description, art.metadata, art.aliases, art.tags)
            if meta:
                out[_artifact_path(run, art)] = meta
        return out
    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        run = self._find(run_id)
        system = key in run.system_metrics and key not in run.metrics
        stat = run.path.stat()
        ident = (str(run.path), stat.st_mtime_ns, stat.st_size, system)
        if system:  # split apart: the history needs no pass when only system metrics are read
            split = lambda: rowio.stats_points(run.path, run.stats_offsets, run.system_key)  # noqa: E731
        else:
            split = lambda: rowio.row_points(  # noqa: E731
                rowio.iter_rows(run.path, None, run.start_time, run.history_offsets, rules=run.rules()))
        return self.series.pages(ident, run_id, split, key, page_size)

    def release(self, run_id: str) -> None:
        self.series.release(run_id)

    def iter_rows(self, run_id: str, keys: Sequence[str], page_size: int = 10_000) -> Iterator[Row]:
        """W&B's own rows, one pass over the file (not one per key)."""
        run = self._find(run_id)
        return rowio.iter_rows(run.path, keys, run.start_time, run.history_offsets, rules=run.rules())

    def iter_media(self, run_id: str, key: str) -> Iterator[MediaPoint]:
        """The points of one media series (:mod:`.media`), from the rows that hold it."""
        run = self._find(run_id)
        offsets = run.media_offsets.get(key)
        if not offsets:
            return
        rules, files_dir = run.rules(), run.path.parent / "files"
        last_ts = run.start_time or 0
        for _offset, data in rowio._records(run.path, offsets):
            row = history_row(parse_record(data).history, rules)
            value = row.media.get(key)
            last_ts = row.timestamp if row.timestamp is not None else last_ts
            if value is None or wmedia.kind_of(value) is None:
                continue
            for point in wmedia.points(value, row.step_of(key), last_ts):
                yield wmedia.with_data(point, files_dir)

    def download_media(self, run_id: str, key: str, point: MediaPoint, dst_dir: Path) -> Path:
        """The point's file, from the run's ``files`` folder where the SDK put it."""
        if not point.file:
            raise BackendError(f"media {key!r} of run {run_id!r}: a {point.kind} point has no file")
        run = self._find(run_id)
        local = run.path.parent / "files" / PurePosixPath(point.file)
        return _copy(local, dst_dir / PurePosixPath(point.file).name, point.file)

    # -- registry (:mod:`.registry`) ----------------------------------------------

    def registry_entries(self) -> dict[str, object]:
        """Run id -> the registry entries its config holds, for every run here."""
        return {run.run_id: run.config.get(REGISTRY_CONFIG_KEY) or {} for run in self._runs()}

    def list_registered_models(self) -> Iterator[RegisteredModel]:
        """The models trackbridge registered from these runs (runs the SDK wrote
        offline hold no registry links: wandb 0.31 cannot link offline)."""
        return iter(list(assemble(self.registry_entries().items()).models.values()))

    # -- files ------------------------------------------------------------------

    @staticmethod
    def _models(run: ScannedRun) -> list[tuple[str, Artifact]]:
        """(artifact path, artifact) of the run's logged models, in log order."""
        found = [a for a in run.artifacts if a.type == "model" and not a.used and REGISTRY_FILES_METADATA not in a.metadata]
        return list(zip(model_paths(a.name for a in found), found))

    @staticmethod
    def _plain_artifacts(run: ScannedRun) -> list[Artifact]:
        """Logged artifacts whose files are the run's (not models, tables or run files)."""
        return [a for a in run.artifacts if not a.used and a.type not in ("model", RUN_FILES_TYPE, TABLE_TYPE)]

    def _files(self, run: ScannedRun) -> dict[str, tuple[Path | None, int | None, str | None]]:
        """Canonical artifact path -> (local file, size, digest) of the run's files."""
        out: dict[str, tuple[Path | None, int | None, str | None]] = {}
        files_dir = run.path.parent / "files"
        for rel, kind in run.files:
            if kind == WANDB_FILE_TYPE or rel in run.media_files:
                continue
            local = files_dir.joinpath(*PurePosixPath(rel).parts)
            out[rel] = (local, local.stat().st_size if local.is_file() else None, None)
        for art in run.artifacts:
            if art.used or art.type in ("model", TABLE_TYPE):  # models (and run files made a version), tables
                continue
            # the files of a run written through the SDK are one Artifact of type run-files
            where = "" if art.type == RUN_FILES_TYPE else _artifact_where(run, art)
            for path, digest, size, local_path in art.entries:
                name = where if where and not where.endswith("/") else where + path  # one file, or a folder's
                out[name] = (Path(local_path) if local_path else None, size, _md5_digest(digest))
        return out

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        for path, (_local, size, digest) in sorted(self._files(self._find(run_id)).items()):
            yield ArtifactInfo(path=path, size=size, digest=digest)

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        run = self._find(run_id)
        entry = self._files(run).get(path)
        if entry is None:
            raise BackendError(f"run {run_id!r} has no file {path!r}")
        return _copy(entry[0], dst_dir / path, path)

    def download_model(self, run_id: str, model: LoggedModel, dst_dir: Path) -> Path:
        """The files of the model artifact of ``model.model_id`` (else of its path)."""
        run = self._find(run_id)
        models = self._models(run)
        art = next((a for _p, a in models if model.model_id and a.client_id == model.model_id), None) or \
            next((a for p, a in models if p == model.artifact_path), None)
        if art is None:
            raise BackendError(f"run {run_id!r} has no model artifact {model.artifact_path!r}")
        root = dst_dir.joinpath(*PurePosixPath(model.artifact_path).parts)
        for path, _digest, _size, local_path in art.entries:
            _copy(Path(local_path) if local_path else None, root.joinpath(*PurePosixPath(path).parts), path)
        root.mkdir(parents=True, exist_ok=True)
        return root

    def close(self) -> None:
        self.series.close()


def _artifact_where(run: ScannedRun, art: Artifact) -> str:
    """Where a logged artifact's files are in the run's listing (:mod:`.artifacts`): a
    folder (ending with ``/``) or, for an artifact a writer made of one run file, that file."""
    named = run.config.get(ARTIFACT_PATHS_CONFIG_KEY)
    if isinstance(named, dict) and isinstance(named.get(art.name), str):
        return named[art.name]
    return f"{ARTIFACTS_PREFIX}/{art.name}/"


def _artifact_path(run: ScannedRun, art: Artifact) -> str:
    """The path a logged artifact's ``artifact_meta`` is keyed by."""
    return _artifact_where(run, art).rstrip("/")


def _unread(run: ScannedRun) -> dict[str, str]:
    """What the run holds that the canonical model does not (``RunRecord.unread``)."""
    return {f"history {key!r}": f"{why}: not carried" for key, why in sorted(run.other_values.items())}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _md5_digest(b64: str) -> str | None:
    try:
        return "md5:" + base64.b64decode(b64, validate=True).hex() if b64 else None
    except ValueError:
        return None


def _copy(local: Path | None, dst: Path, name: str) -> Path:
    if local is None or not local.is_file():
        raise BackendError(
            f"the file {name!r} is not on this machine any more ({local}): W&B stages logged "
            "artifact files under WANDB_DATA_DIR and removes them once synced; copy the run "
            "before cleaning that folder, or read it from the W&B cloud instead")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(local, dst)
    return dst
