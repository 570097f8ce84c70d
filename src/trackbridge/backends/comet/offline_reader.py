"""``comet-offline:PATH`` as a source: the canonical runs of Comet offline archives.

PATH is one ``.zip`` or a folder of them, as ``comet_ml.start(online=False)`` writes
them (and as :mod:`~trackbridge.backends.comet.offline_writer` does).  Each archive is
one run, its id the archive's experiment key (``offline_id``); its experiment is the
archive's ``project_name`` (Comet's ``general`` when it has none).  How each message
type maps is the table in :mod:`~trackbridge.backends.comet.format`.

A damaged archive raises :class:`DamagedArchiveError` naming the file and the place;
with the backend option ``recover=true`` the reader returns instead everything
before the damage (and logs a warning), so a partial run can still be copied.
"""
from __future__ import annotations

import glob
import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from trackbridge.backends.base import Reader, RunFilter
from trackbridge.backends.comet import coverage as cov
from trackbridge.backends.comet import format as fmt
from trackbridge.backends.comet.media import histogram_from_comet, image_meta
from trackbridge.backends.comet.scan import MediaEntry, ScannedRun, iter_points, scan
from trackbridge.backends.comet.zipsource import ArchiveFiles
from trackbridge.errors import BackendError, ConfigError, RunNotFound
from trackbridge.history import Row
from trackbridge.model import (
    ArtifactInfo,
    DatasetInput,
    Experiment,
    LoggedModel,
    MediaPoint,
    MediaSeries,
    MetricPoint,
    MetricSummary,
    ModelVersion,
    RegisteredModel,
    RunRecord,
    RunStatus,
)

log = logging.getLogger("trackbridge")  # the logger whose records are masked (redact.MaskingFilter)

#: the writer's work folder inside a destination folder (never read as archives).
STAGING_DIR = ".trackbridge-staging"


class DamagedArchiveError(BackendError):
    """An archive that cannot be read whole (cut short, a bad line, a missing file)."""


def archive_paths(root: Path) -> list[Path]:
    """The archives at ``root``: the file itself, or the ``*.zip`` files of the folder."""
    if root.is_file():
        return [root]
    if not root.exists():
        return []
    if not root.is_dir():
        raise ConfigError(f"comet-offline: {root} is neither a .zip archive nor a folder")
    return sorted(p for p in root.glob("*.zip") if p.is_file() and not p.name.startswith("."))


def archives_of(root: Path, key: str) -> list[Path]:
    """The archives at ``root`` whose file name starts with experiment key ``key``.

    Archives are named by their key (``<key>.zip``), so this finds a run's archive
    without opening every one; it is a guess by name, and the archive's own
    ``offline_id`` confirms it where that matters.  Only the matching names are looked
    at (a stat per archive of the folder, per look-up, was quadratic in a copy)."""
    if root.is_file():
        return [root] if root.name.startswith(key) else []
    if not root.is_dir():
        return archive_paths(root)
    return sorted(p for p in root.glob(f"{glob.escape(key)}*.zip") if not p.name.startswith(".") and p.is_file())


def project_of(meta: dict[str, Any]) -> str:
    return str(meta.get("project_name") or fmt.DEFAULT_PROJECT)


def experiment_id_of(meta: dict[str, Any]) -> str:
    """``workspace/project`` (or the project alone): the archive keeps both."""
    return fmt.experiment_id(meta.get("workspace"), project_of(meta))


def semver_key(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("-")[0].split("."):
        parts.append(int(piece) if piece.isdigit() else 0)
    return tuple(parts)


def next_version(known: Iterable[str]) -> str:
    """The version Comet gives a model's next registration: one major above the highest
    of the ``known`` versions (``1.0.0`` for the first)."""
    major = max((semver_key(v)[0] for v in known if semver_key(v)), default=0)
    return f"{major + 1}.0.0"


class CometOfflineReader(Reader):
    """Reads archives; every call sees the files as they are now (scans are cached
    by file size and modification time)."""

    rows_in_one_pass = True

    def __init__(self, root: Path, platform: str = "comet-offline", recover: bool = False) -> None:
        self.root = root
        self.platform = platform
        self.recover = recover
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple[int, int], ScannedRun]] = {}

    # -- archives ------------------------------------------------------------

    def _scan(self, path: Path) -> ScannedRun:
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        files = ArchiveFiles(path)
        try:
            try:
                run = scan(path, files)
            except ValueError as exc:
                raise DamagedArchiveError(
                    f"comet-offline archive {path}: {exc}; it cannot be read (nothing to recover "
                    "without experiment.json). Re-create it or remove it from the folder."
                ) from None
        finally:
            files.close()
        if run.damage and not self.recover:
            raise DamagedArchiveError(
                f"comet-offline archive {path} is damaged: {run.damage}. The {run.messages} messages "
                "before the damage are readable: to copy them, use a remote with the option recover=true "
                "(e.g. TRACKBRIDGE_REMOTE_ARCH_BACKEND=comet-offline TRACKBRIDGE_REMOTE_ARCH_PATH=<folder> "
                "TRACKBRIDGE_REMOTE_ARCH_RECOVER=true, then `trackbridge copy arch ...`), "
                "or remove the archive from the folder."
            )
        if run.damage:
            log.warning("comet-offline archive %s is damaged (%s): reading the %d messages before it",
                        path, run.damage, run.messages)
        with self._lock:
            self._cache[path] = (stamp, run)
        return run

    def _runs(self) -> Iterator[ScannedRun]:
        for path in archive_paths(self.root):
            yield self._scan(path)

    def _find(self, run_id: str) -> ScannedRun:
        for path in archives_of(self.root, run_id):  # a cheap first try
            run = self._scan(path)
            if run.key == run_id:
                return run
        for run in self._runs():
            if run.key == run_id:
                return run
        raise RunNotFound(f"no Comet offline archive with experiment key {run_id!r} in {self.root}")

    # -- Reader --------------------------------------------------------------

    def list_experiments(self) -> Iterator[Experiment]:
        seen: dict[str, Experiment] = {}
        for run in self._runs():
            name = project_of(run.meta)
            if name not in seen:
                seen[name] = Experiment(id=experiment_id_of(run.meta), name=name)
        return iter(sorted(seen.values(), key=lambda e: e.name))

    def get_experiment(self, name: str) -> Experiment | None:
        return next((e for e in self.list_experiments() if e.name == name), None)

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        for run in self._runs():
            if project_of(run.meta) != experiment:
                continue
            record = self.to_record(run)
            if run_filter is None or run_filter.matches(record):
                yield record

    def get_run(self, run_id: str) -> RunRecord:
        return self.to_record(self._find(run_id))

    def to_record(self, run: ScannedRun) -> RunRecord:
        tags: dict[str, str] = {}
        summary: dict[str, Any] = {}
        notes: str | None = None
        status: RunStatus | None = None
        system_keys: dict[str, str] = {}
        inputs: list[DatasetInput] = []
        for key, value in run.others.items():
            if key == fmt.INPUTS_OTHER:
                inputs = [DatasetInput(**i) for i in json.loads(str(value))]
            elif key == fmt.SYSTEM_KEYS_OTHER:
                system_keys = _json_or_text(value) if isinstance(_json_or_text(value), dict) else {}
            elif key == fmt.ARTIFACT_META_KEY:
                continue  # artifact metadata of paths with no file: read below
            elif key == fmt.NOTES_OTHER:
                notes = fmt.other_as_tag(value)
            elif key == fmt.STATUS_OTHER:
                status = RunStatus.parse(str(value))
            elif key.startswith(fmt.SUMMARY_PREFIX):
                summary[key[len(fmt.SUMMARY_PREFIX):]] = _json_or_text(value)
            else:
                tags[key] = fmt.other_as_tag(value)
        if status is None:
            status = RunStatus.FAILED if run.meta.get("customer_error_reported") else RunStatus.FINISHED
        params = fmt.nest_params(run.params) if run.nested_params else dict(run.params)
        end_time = _int_or_none(run.meta.get("stop_time"))
        if status in (RunStatus.RUNNING, RunStatus.SCHEDULED):
            end_time = None  # comet upload needs a stop_time: the writer put "now" there
        # what Comet cannot hold, kept in tags by the engine, is the run's again when read
        # (the tags stay too, so a re-run finds its copies): the user, and the parent,
        # whose copy has the key derived from it in the same folder
        user = tags.get(fmt.SOURCE_USER_TAG)
        parent = fmt.parent_key(tags)
        if parent is not None and not archives_of(run.path.parent, parent):
            parent = None
        models = [fmt.logged_model(run.key, n, run.model_meta.get(n, {})) for n in run.models]
        models += [LoggedModel(name=n, artifact_path=n, model_id=fmt.model_id(run.key, n))
                   for n in run.remote_models if n not in run.models]
        return RunRecord(
            platform=self.platform,
            run_id=run.key,
            experiment=project_of(run.meta),
            experiment_id=experiment_id_of(run.meta),
            name=run.name,
            status=status,
            start_time=_int_or_none(run.meta.get("start_time")),
            end_time=end_time,
            user=user,
            parent_run_id=parent,
            url=run.path.resolve().as_uri(),
            params=params,
            tags=tags,
            labels=[str(t) for t in run.meta.get("tags") or []],
            notes=notes,
            metrics=dict(run.metrics),
            system_metrics={system_keys.get(k, k): MetricSummary(system_keys.get(k, k), m.value, m.step, m.timestamp)
                            for k, m in run.system_metrics.items()},
            summary=summary,
            models=models,
            inputs=inputs,
            media={key: MediaSeries(entries[-1].kind, len(entries)) for key, entries in run.media.items()},
            artifact_meta=fmt.artifact_meta(run.artifact_meta.items(),
                                            _json_or_text(run.others.get(fmt.ARTIFACT_META_KEY, "{}"))),
            unread=_unread(run),
        )

    def _comet_names(self, run: ScannedRun, keys: Sequence[str]) -> dict[str, str]:
        """Comet metric name -> canonical key (system metrics written as ``sys.<key>``)."""
        back = _json_or_text(run.others.get(fmt.SYSTEM_KEYS_OTHER, "{}"))
        forward = {v: k for k, v in back.items()} if isinstance(back, dict) else {}
        return {forward.get(key, key): key for key in keys}

    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        run = self._find(run_id)
        files = ArchiveFiles(run.path)
        try:
            page: list[MetricPoint] = []
            for _key, point in iter_points(files, set(self._comet_names(run, [key])), run.derived_epoch,
                                            run.good_lines):
                page.append(point)
                if len(page) >= page_size:
                    yield page
                    page = []
            if page:
                yield page
        finally:
            files.close()

    def iter_rows(self, run_id: str, keys: Sequence[str], page_size: int = 10_000) -> Iterator[Row]:
        """One pass over the archive: consecutive points sharing step and time are a row."""
        run = self._find(run_id)
        files = ArchiveFiles(run.path)
        try:
            names = self._comet_names(run, keys)
            row: Row | None = None
            for name, p in iter_points(files, set(names), run.derived_epoch, run.good_lines):
                key = names[name]
                if row is None or row.step != p.step or row.timestamp != p.timestamp or key in row.values:
                    if row is not None:
                        yield row
                    row = Row(p.step, p.timestamp)
                row.values[key] = p.value
            if row is not None:
                yield row
        finally:
            files.close()

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        run = self._find(run_id)
        return iter([ArtifactInfo(path=e.path, size=e.size) for e in run.artifacts.values()])

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        run = self._find(run_id)
        entry = run.artifacts.get(path)
        if entry is None:
            raise RunNotFound(f"run {run_id} has no artifact {path!r}")
        return _extract(run.path, entry.member, dst_dir, path)

    def download_model(self, run_id: str, model: LoggedModel, dst_dir: Path) -> Path:
        """Model files live apart from artifacts (``model-element`` uploads)."""
        run = self._find(run_id)
        target = dst_dir.joinpath(*_safe_parts(model.artifact_path))
        target.mkdir(parents=True, exist_ok=True)
        for entry in run.models.get(model.artifact_path, []):  # the experiment model's name
            _extract(run.path, entry.member, target, entry.path)
        return target

    def iter_media(self, run_id: str, key: str) -> Iterator[MediaPoint]:
        run = self._find(run_id)
        for _entry, point in _media_points(run, key):
            yield point

    def download_media(self, run_id: str, key: str, point: MediaPoint, dst_dir: Path) -> Path:
        """The file of the first point of series ``key`` equal to ``point``."""
        run = self._find(run_id)
        for entry, found in _media_points(run, key, lambda e: e.step == point.step and e.member is not None):
            if found == point and entry.member is not None and found.file:
                return _extract(run.path, entry.member, dst_dir, found.file)
        raise RunNotFound(f"run {run_id} has no media point {point.file!r} at step {point.step} in {key!r}")

    def list_registered_models(self) -> Iterator[RegisteredModel]:
        models: dict[str, RegisteredModel] = {}
        for run in self._runs():
            for reg in run.registrations:
                model = models.setdefault(reg.registry_name, RegisteredModel(name=reg.registry_name))
                model.description = reg.model_description or model.description
                tags, aliases, model_tags = fmt.decode_version_tags(reg.tags)
                model.tags.update(model_tags)
                model.versions = [v for v in model.versions if v.version != reg.version]
                model.versions.append(ModelVersion(
                    name=reg.registry_name, version=reg.version, run_id=run.key,
                    artifact_path=reg.model_name, model_id=fmt.model_id(run.key, reg.model_name),
                    description=reg.description,
                    tags=tags, aliases=aliases, stage=reg.status,
                ))
        for model in models.values():
            model.versions.sort(key=lambda v: semver_key(v.version))
        return iter(sorted(models.values(), key=lambda m: m.name))

    def not_carried(self, run_id: str) -> dict[str, int]:
        """Message types of the run that are not copied, with counts (for ``plan``)."""
        return dict(self._find(run_id).not_carried)


def _unread(run: ScannedRun) -> dict[str, str]:
    """What the archive holds and the canonical run does not (each with why), for ``plan``."""
    out: dict[str, str] = {}
    for kind, count in sorted(run.not_carried.items()):
        base, _, sub = kind.partition(":")
        if base == "file_upload":
            reason = cov.reason(cov.UPLOADS, sub, "the file is not in the archive")
        elif base == "metric":
            reason = fmt.SDK_METRICS.get(sub, "SDK bookkeeping")
        elif "." in base:
            reason = cov.reason(cov.FIELDS, base, "a field this version of trackbridge does not know")
        else:
            reason = cov.reason(cov.MESSAGES, base, "a message type this version of trackbridge does not know")
        out[f"comet:{kind}"] = f"{count} message(s): {reason}"
    if run.damage:
        out["comet:damaged-archive"] = f"read up to the damage only: {run.damage}"
    return out


def _media_points(run: ScannedRun, key: str, only: Callable[[MediaEntry], bool] | None = None,
                  ) -> Iterator[tuple[MediaEntry, MediaPoint]]:
    """The points of series ``key`` with their entries, oldest first (the archive's order);
    ``only``: the entries worth reading (a download looks at its step's alone)."""
    entries = run.media.get(key)
    if entries is None:
        raise RunNotFound(f"run {run.key} has no media series {key!r}")
    files = ArchiveFiles(run.path)
    try:
        for entry in entries:
            if only is not None and not only(entry):
                continue
            try:
                point = _media_point(files, entry)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise DamagedArchiveError(f"comet-offline archive {run.path}: media {key!r} at step {entry.step} "
                                          f"({entry.member}) cannot be read ({exc})") from None
            yield entry, point
    finally:
        files.close()


def _media_point(files: ArchiveFiles, entry: MediaEntry) -> MediaPoint:
    """One point: the value from its file (histogram, text) or the file itself, its meta
    from Comet's metadata (an image's from its header), what trackbridge kept winning."""
    kept = entry.kept
    data: Any = entry.data
    meta: dict[str, Any] = dict(entry.metadata)
    if entry.kind == "histogram":
        data = kept["data"] if "data" in kept else histogram_from_comet(json.loads(files.read(str(entry.member))))
    elif entry.kind == "text":
        data = files.read(str(entry.member)).decode("utf-8", errors="replace")
    elif entry.kind == "image" and entry.member is not None:
        with files.open(entry.member) as fh:
            head = fh.read(32)
        meta = {**image_meta(head, PurePosixPath(entry.file or "").suffix.lstrip(".") or None), **meta}
    if "meta" in kept and isinstance(kept["meta"], dict):
        meta = dict(kept["meta"])
    caption = kept.get("caption")
    return MediaPoint(entry.step, entry.timestamp, entry.kind, data=data, file=entry.file,
                      caption=None if caption is None else str(caption), meta=meta)


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


def _safe_parts(path: str) -> list[str]:
    parts = [p for p in PurePosixPath(path.replace("\\", "/")).parts if p not in ("", ".", "/")]
    if not parts or ".." in parts:
        raise BackendError(f"unsafe file name in archive: {path!r}")
    return parts


def _extract(archive: Path, member: str, dst_dir: Path, rel_path: str) -> Path:
    out = dst_dir.joinpath(*_safe_parts(rel_path))
    out.parent.mkdir(parents=True, exist_ok=True)
    files = ArchiveFiles(archive)
    try:
        with files.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    finally:
        files.close()
    return out


__all__ = ["CometOfflineReader", "DamagedArchiveError", "archive_paths", "STAGING_DIR"]
