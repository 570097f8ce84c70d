"""The short interface every platform implements: a Reader, a Writer, a Backend.

Why two halves: the facade only ever writes, ``check``/``ls`` only ever read,
and ``copy``/``sync`` read one platform and write another.  A backend class
usually implements both on one connection.  Nothing here imports a vendor SDK:
backends import theirs lazily, inside their own package.

Contract shared by all methods:

* identifiers are the platform's own strings (MLflow run ids, W&B run paths...);
* times are UTC milliseconds, metric points keep their step and timestamp;
* a writer splits what it is given to its platform's limits (:class:`Limits`)
  itself, so callers can hand over any amount;
* errors are raised as :class:`trackbridge.errors.BackendError` subclasses with
  a message that says what to do; secrets never appear in messages.
"""
from __future__ import annotations

import abc
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

from trackbridge.errors import ReadOnlyBackendError
from trackbridge.history import Row, merge_rows, rows_to_points
from trackbridge.model import (
    MEDIA_KINDS,
    ArtifactInfo,
    DatasetInput,
    Experiment,
    LoggedModel,
    MediaPoint,
    MetricPoint,
    ModelVersion,
    RegisteredModel,
    RunRecord,
    RunStatus,
)


#: "no limit" for the numeric fields of :class:`Limits`.
UNLIMITED = sys.maxsize


@dataclass(frozen=True)
class Limits:
    """What a destination can hold, declared by each writer.  Used by the facade and
    the planner to sanitise, truncate and batch *before* sending, and to report what
    changed.  The defaults mean "no limit" (never another platform's numbers), so a
    writer that forgets one is permissive, not silently shaped like MLflow."""

    max_metrics_per_batch: int = 10_000
    max_params_per_batch: int = 10_000
    max_tags_per_batch: int = 10_000
    max_key_length: int = UNLIMITED
    max_param_value_length: int = UNLIMITED
    max_tag_value_length: int = UNLIMITED
    #: regex a metric/param/tag key must match in full; ``None`` = anything goes.
    key_pattern: str | None = None
    #: ``True`` when the platform keeps params as flat strings (nested dicts flattened).
    flat_params: bool = False
    nested_separator: str = "."
    allows_nan: bool = True
    #: tags per run, trackbridge's own tags included.
    max_tags_per_run: int | None = None
    #: points per series the platform's own uploader keeps by default (Comet's ``comet
    #: upload`` samples to 15,000): ``plan`` warns for every longer series, and the
    #: backend's :meth:`Backend.next_steps` gives the upload command that keeps them all.
    uploader_points_per_series: int | None = None
    #: run fields this platform stores as tags that count against ``max_tags_per_run``
    #: (of ``name``, ``user``, ``parent_run_id``, ``notes``, ``summary``, ``models``;
    #: ``labels`` counts one tag per label).
    field_tags: frozenset[str] = frozenset()

    def key_ok(self, key: str) -> bool:
        if not key or len(key) > self.max_key_length:
            return False
        return self.key_pattern is None or re.fullmatch(self.key_pattern, key) is not None


class Timestamps(str, Enum):
    """How finely a platform keeps metric timestamps."""

    POINT = "point"  # every point its own (MLflow, Comet, the archive)
    ROW = "row"  # one per row of values logged together (W&B ``_timestamp``)
    NONE = "none"  # not kept


class RegistryScheme(str, Enum):
    """How a platform numbers registered model versions."""

    INTEGER = "integer"  # 1, 2, 3... with aliases (MLflow, W&B)
    SEMVER = "semver"  # 1.0.0... (Comet)
    NONE = "none"  # no registry


@dataclass(frozen=True)
class Features:
    """What a platform can hold and do, declared as data by its backend class
    (rclone's ``fs.Features``), readable without a connection.

    The planner, the transfer and ``check`` read only these (and :class:`Limits`):
    whatever is ``False`` here becomes a recorded transformation that ``plan`` lists
    and ``check`` accepts, instead of a silent loss or a special case for a platform.
    The defaults are the most capable platform; a backend switches off what it lacks
    with :meth:`disable`, as a subclass does for a platform built on another."""

    nested_runs: bool = True
    settable_start_time: bool = True
    settable_end_time: bool = True
    settable_user: bool = True
    #: ``False``: tags are value-less labels only (W&B, Comet); key/value tags go elsewhere.
    key_value_tags: bool = True
    labels: bool = True
    summary: bool = True
    notes: bool = True
    inputs: bool = True
    #: system metrics stored apart from user metrics (else as ordinary metrics).
    system_metrics: bool = True
    #: a run's status (finished, failed, killed) is kept; TensorBoard's event files have none.
    run_status: bool = True
    #: a run's files (artifacts) are kept; a source that holds none (Trackio's databases as
    #: read today) declares so, and the conformance suite does not look for them.
    artifacts: bool = True
    #: steps of a run must strictly increase (W&B's ``_step``): the engine sends rows in
    #: step order and records the points of a step not above the last one as dropped.
    #: Declared here only (not in :class:`Limits`): one source of truth.
    strictly_increasing_steps: bool = False
    #: history is stored as rows (W&B history, Comet steps): the engine sends
    #: :meth:`Writer.log_rows`, a run's series merged by step, instead of one key at a time.
    history_rows: bool = False
    timestamps: Timestamps = Timestamps.POINT
    registry: RegistryScheme = RegistryScheme.INTEGER
    #: aliases the platform manages itself (W&B's ``latest``): never copied or removed.
    reserved_aliases: frozenset[str] = frozenset()
    tag_deletion: bool = True
    run_rename: bool = True
    alias_removal: bool = True
    run_deletion: bool = True
    version_deletion: bool = True
    #: tag prefixes the platform writes itself (``mlflow.``): bookkeeping, not user tags.
    system_tag_prefixes: tuple[str, ...] = ()
    #: logged models keep their own params, metrics, tags, type and status (MLflow 3).
    model_metadata: bool = True
    #: registry versions keep a stage / status (MLflow's legacy stages, Comet's status).
    stages: bool = True
    #: files and folders keep metadata beside their bytes (W&B artifact type, description,
    #: metadata, aliases; Comet asset metadata): :meth:`Writer.set_artifact_meta`.
    artifact_meta: bool = True
    #: media kinds (:data:`~trackbridge.model.MEDIA_KINDS`) the platform holds natively
    #: (:meth:`Writer.log_media`); the others are written as files in the layout of
    #: :mod:`trackbridge.media_layout`, a recorded transformation.
    media_kinds: frozenset[str] = frozenset(MEDIA_KINDS)
    #: ``create_run`` of the same source run always gives the same run (its id derived
    #: from the source, as W&B and Comet let clients choose): two invocations copying at
    #: once cannot make two copies, so the engine skips settling between copies.
    idempotent_create: bool = False

    def disable(self, *names: str) -> "Features":
        """A copy with the named features switched off (``registry`` becomes ``NONE``,
        ``timestamps`` becomes ``NONE``); unknown names are an error, not a no-op."""
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for name in names:
            if name not in known or name in ("reserved_aliases", "system_tag_prefixes", "idempotent_create"):
                raise ValueError(f"unknown feature {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, name)
            if isinstance(current, frozenset):
                changes[name] = frozenset()
            else:
                changes[name] = type(current)("none") if isinstance(current, Enum) else False
        return replace(self, **changes)

    def lacks(self) -> frozenset[str]:
        """Names of the switched-off features, for plan output and ``check``."""
        out = {f.name for f in fields(self) if getattr(self, f.name) is False}
        if self.registry is RegistryScheme.NONE:
            out.add("registry")
        if self.timestamps is Timestamps.NONE:
            out.add("timestamps")
        if not self.media_kinds:
            out.add("media_kinds")
        return frozenset(out - {"strictly_increasing_steps", "history_rows", "idempotent_create"})


@dataclass(frozen=True)
class BackendInfo:
    """One backend's entry in the registry, readable without importing its SDK:
    feeds the backend registry, ``doctor`` and ``.env.example``."""

    name: str
    #: ``"module:Class"`` of the :class:`Backend` subclass.
    target: str
    #: ``pip install 'trackbridge[<extra>]'`` installs the SDK.
    extra: str | None = None
    #: the vendor distribution whose version ``doctor`` shows.
    sdk_distribution: str | None = None
    #: environment variables the backend reads -> ``True`` for secrets (masked everywhere).
    env_vars: Mapping[str, bool] = field(default_factory=dict)
    #: ``True``: remotes are written ``<name>:PATH`` and the rest is a path (``dir:./backup``).
    path_remote: bool = False
    #: with :attr:`path_remote`: the bare name is a remote too, at the place the vendor's
    #: tool uses by default (``trackio``: ``$TRACKIO_DIR``), as the facade's backend name.
    default_path: bool = False
    #: one line for ``doctor`` and ``--help``.
    summary: str = ""
    #: ``True``: a source only (a format written by the vendor's own tools, such as
    #: TensorBoard event files): the class is a :class:`ReadOnlyBackend`, it opens no
    #: writer, and the CLI refuses it as a destination.
    read_only: bool = False

    def sdk_version(self) -> str | None:
        """Installed version of :attr:`sdk_distribution` (read from package metadata,
        never imported), or ``None`` when it is not installed."""
        if not self.sdk_distribution:
            return None
        try:
            return version(self.sdk_distribution)
        except PackageNotFoundError:
            return None


@dataclass
class RunFilter:
    """Which runs a reader lists.  Every field is optional; all given must hold."""

    run_ids: list[str] | None = None
    since: int | None = None  # start_time >= since (ms)
    until: int | None = None  # start_time < until (ms)
    statuses: list[RunStatus] | None = None
    #: ``key=value`` equality on tags / params (the CLI parses expressions into these).
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def matches(self, run: RunRecord) -> bool:
        """Client-side check, for platforms that cannot filter server-side."""
        if self.run_ids is not None and run.run_id not in self.run_ids:
            return False
        start = run.start_time or 0
        if self.since is not None and start < self.since:
            return False
        if self.until is not None and start >= self.until:
            return False
        if self.statuses is not None and run.status not in self.statuses:
            return False
        if any(run.tags.get(k) != v for k, v in self.tags.items()):
            return False
        return not any(str(run.params.get(k)) != v for k, v in self.params.items())


class Reader(abc.ABC):
    """Read side of a platform: listing, metric streaming, artifacts, registry.

    ``platform`` is the name of the backend that opened the reader (set by it), so a
    backend built on another (Azure ML on MLflow) reads runs as its own platform."""

    platform: str
    #: :meth:`iter_rows` reads a run's whole history in one pass (W&B's and Comet's files):
    #: the engine then streams a new run's points from it instead of reading key by key.
    rows_in_one_pass: bool = False

    @abc.abstractmethod
    def list_experiments(self) -> Iterator[Experiment]:
        """Every experiment/project visible with these credentials."""

    @abc.abstractmethod
    def get_experiment(self, name: str) -> Experiment | None:
        """The experiment called ``name``, or ``None`` if it does not exist."""

    @abc.abstractmethod
    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        """Runs of the experiment named ``experiment``, parents before children
        is *not* promised (the sync engine orders them)."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """One run; raises ``RunNotFound`` if it is gone."""

    @abc.abstractmethod
    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        """Every point of one series, in pages, oldest first.  Never sampled."""

    @abc.abstractmethod
    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        """Every file of the run (recursively), without downloading it."""

    @abc.abstractmethod
    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        """Fetch one file into ``dst_dir`` (keeping its relative path); return it."""

    def find_runs(self, experiment: str, tags: Mapping[str, str]) -> list[RunRecord]:
        """Runs of ``experiment`` carrying all of ``tags``, with at least their ids and tags
        (the engine finds a run's copies this way several times per copied run, so a
        platform that can answer it in one cheap request overrides it).  Default: a
        filtered :meth:`list_runs`."""
        return list(self.list_runs(experiment, RunFilter(tags=dict(tags))))

    def release(self, run_id: str) -> None:
        """The caller is done reading ``run_id`` (the sync engine and ``check`` say so after
        each run): a reader holding something per run (split series on disk) drops it.
        Without it such a reader can only bound what it holds by count, and a bound below
        the runs read at once meant splitting a run again for each key."""

    def close(self) -> None:
        """Done with this reader: drop what it holds on disk (spill files)."""

    def iter_rows(self, run_id: str, keys: Sequence[str], page_size: int = 10_000) -> Iterator[Row]:
        """The run's points of ``keys`` as rows by step and time, in bounded memory.

        Default: a merge of the per-key series.  Readers of row platforms may
        override it to read their rows once instead of once per key."""
        return merge_rows({key: self.iter_metric_history(run_id, key, page_size) for key in keys})

    def download_model(self, run_id: str, model: LoggedModel, dst_dir: Path) -> Path:
        """Fetch a logged model's files into ``dst_dir``; return that folder.

        Default: the model is the run's artifact folder ``model.artifact_path``.
        Platforms that keep models outside the run (MLflow 3 logged models)
        override this."""
        prefix = model.artifact_path.rstrip("/") + "/"
        for info in self.list_artifacts(run_id):
            if info.path.startswith(prefix):
                self.download_artifact(run_id, info.path, dst_dir)
        return dst_dir / model.artifact_path

    def iter_media(self, run_id: str, key: str) -> Iterator[MediaPoint]:
        """Every point of one media series (``RunRecord.media``), oldest first.
        Default: none (platforms without native media keep them as files, which the
        engine reads through :mod:`trackbridge.media_layout`)."""
        return iter(())

    def download_media(self, run_id: str, key: str, point: MediaPoint, dst_dir: Path) -> Path:
        """Fetch the file of a file-backed media point (``point.file``) into ``dst_dir``."""
        raise NotImplementedError(f"{self.platform} reader has no media files")

    def list_registered_models(self) -> Iterator[RegisteredModel]:
        """Registry entries with all their versions.  Platforms without a registry
        return nothing."""
        return iter(())

    def get_registered_model(self, name: str) -> RegisteredModel | None:
        """One registry entry with its versions, or ``None``.  Default: a scan of
        :meth:`list_registered_models`; platforms that can look one up override it."""
        return next((m for m in self.list_registered_models() if m.name == name), None)


class Writer(abc.ABC):
    """Write side of a platform.  Used live by the facade and by copy/sync.

    Every writer declares its own :attr:`limits` (there is no default)."""

    platform: str
    limits: Limits

    @abc.abstractmethod
    def ensure_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        """Create the experiment if missing; return its id."""

    @abc.abstractmethod
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
        """Create a run (status RUNNING) keeping the original start time; return its id."""

    @abc.abstractmethod
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Params already sanitised/truncated to :attr:`limits`: strings for flat
        destinations (``limits.flat_params``), JSON values (nested dicts kept) otherwise."""

    @abc.abstractmethod
    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Key/value tags (a label is a tag with an empty value where needed)."""

    @abc.abstractmethod
    def log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        """Any number of points; the writer batches them to its limits."""

    def log_rows(self, run_id: str, rows: Sequence[Row]) -> None:
        """Points as rows (step, timestamp, values), for destinations that store rows;
        the engine sends rows when the destination's steps must strictly increase.
        Default: the rows' points through :meth:`log_metrics`."""
        self.log_metrics(run_id, list(rows_to_points(rows)))

    @abc.abstractmethod
    def log_artifact(self, run_id: str, local_path: Path, artifact_dir: str | None = None) -> None:
        """Upload a file or a whole directory under ``artifact_dir`` of the run."""

    @abc.abstractmethod
    def finish_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        """Set the final status and original end time."""

    def set_notes(self, run_id: str, notes: str) -> None:
        """Free-text description of the run."""
        self.set_tags(run_id, {"trackbridge.notes": notes})

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        """Dataset inputs; platforms without them record nothing (the planner reports it)."""

    def set_labels(self, run_id: str, labels: Sequence[str]) -> None:
        """Value-less tags (W&B/Comet tags).  Default: tags with an empty value."""
        self.set_tags(run_id, {label: "" for label in labels})

    def log_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        """Final non-series values (W&B summary, Comet "others").  Default: nothing is
        recorded (the planner reports it); platforms that hold them override this."""

    def log_system_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        """System metrics (cpu, gpu...), kept apart from user metrics where the platform
        can.  Default: logged as ordinary metrics under the same keys."""
        self.log_metrics(run_id, points)

    def log_model(self, run_id: str, local_dir: Path, model: LoggedModel) -> LoggedModel:
        """Log a model folder (or file) as a new logged model of the run, named
        ``model.name`` with ``model``'s metadata (params, metrics, tags incl.
        :data:`~trackbridge.model.SOURCE_MODEL_ID`, type, status) where the platform
        keeps them.  Names may repeat in a run: each call is a new model, stored where
        it does not overwrite another.  Return it as the platform holds it.
        Default: artifacts under the model's name."""
        self.log_artifact(run_id, local_dir, model.name)
        return LoggedModel(name=model.name, artifact_path=model.name)

    def log_media(self, run_id: str, key: str, points: Sequence[tuple[MediaPoint, Path | None]]) -> None:
        """Media points of series ``key`` (each with its local file, for file-backed
        kinds), for the kinds in ``Features.media_kinds``."""
        raise NotImplementedError(f"{self.platform} writer has no native media")

    def set_artifact_meta(self, run_id: str, meta: Mapping[str, Mapping[str, Any]]) -> None:
        """Metadata of already-logged files or folders (``RunRecord.artifact_meta``),
        where ``Features.artifact_meta`` is on."""
        raise NotImplementedError(f"{self.platform} writer keeps no artifact metadata")

    def set_version_stage(self, name: str, version: str, stage: str | None) -> None:
        """Move a registered version to ``stage`` (``Features.stages``)."""
        raise NotImplementedError(f"{self.platform} has no registry stages")

    def register_model(self, model: RegisteredModel) -> None:
        """Create the registered model if missing and update description/tags."""
        raise NotImplementedError(f"{self.platform} has no model registry")

    def create_model_version(self, version: ModelVersion, run_id: str | None) -> ModelVersion:
        """Register a new version of ``version.name`` from ``run_id``'s ``artifact_path``
        (or ``version.source``); return it with the version the platform assigned."""
        raise NotImplementedError(f"{self.platform} has no model registry")

    def set_model_alias(self, name: str, alias: str, version: str) -> None:
        raise NotImplementedError(f"{self.platform} has no model registry")

    # Optional: what ``sync`` needs to mirror removals and renames at the source.
    # A backend whose Features switch these off is never asked (``sync`` plans none).

    def delete_tags(self, run_id: str, keys: Sequence[str]) -> None:
        """Remove tags ``keys`` from the run (tags deleted at the source)."""
        raise NotImplementedError(f"{self.platform} writer cannot delete tags")

    def set_run_name(self, run_id: str, name: str) -> None:
        """Rename an existing run (renamed at the source)."""
        raise NotImplementedError(f"{self.platform} writer cannot rename runs")

    def delete_model_alias(self, name: str, alias: str) -> None:
        """Remove alias ``alias`` of registered model ``name`` (removed at the source)."""
        raise NotImplementedError(f"{self.platform} writer cannot remove model aliases")

    def delete_run(self, run_id: str) -> None:
        raise NotImplementedError(f"{self.platform} cannot delete runs")

    def delete_model_version(self, name: str, version: str) -> None:
        """Remove one version (a duplicate left by two invocations copying at once)."""
        raise NotImplementedError(f"{self.platform} cannot delete model versions")

    def flush(self) -> None:
        """Push anything buffered.  Offline writers finalise their files here."""

    def close(self) -> None:
        """Release connections; called once at the end."""
        self.flush()


class Backend(abc.ABC):
    """A platform at one location with one set of credentials (a *remote*).

    Subclasses declare :attr:`info` (name, extra, SDK, env vars) and
    :attr:`features` as class attributes, so both are known without connecting."""

    info: ClassVar[BackendInfo]
    features: ClassVar[Features]
    #: the platform name (``info.name``), as provenance tags and ``RunRecord.platform`` carry it.
    name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        info = cls.__dict__.get("info")
        if info is not None:
            cls.name = info.name
            # one source of truth: the info says read-only exactly when the class cannot write
            if info.read_only != issubclass(cls, ReadOnlyBackend):
                raise TypeError(f"{cls.__name__}: info.read_only={info.read_only} but the class "
                                f"{'is not' if info.read_only else 'is'} a ReadOnlyBackend")

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})

    @abc.abstractmethod
    def reader(self) -> Reader:
        ...

    @abc.abstractmethod
    def writer(self) -> Writer:
        ...

    def limits(self) -> Limits:
        """What this remote's writer takes, known without opening one: ``plan`` and ``check``
        open no writer (an offline folder is not created by looking at it).  Backends
        override it with the limits their writer declares; the default opens the writer."""
        return self.writer().limits

    def describe(self) -> str:
        """Where this remote points, with secrets masked (for logs and ``doctor``)."""
        return self.name

    def experiment_name(self, name: str) -> str:
        """The name experiment ``name`` gets here, when the platform's naming rules change
        it (W&B project names cannot hold ``/``): ``plan`` lists the difference as a rename.
        Readers find the experiment again by either name.  Default: unchanged."""
        return name

    def diagnose(self) -> list[str]:
        """One-line facts for ``trackbridge doctor`` (which credential would be used,
        where the remote resolves to, an install problem and its repair), without a
        network call and never a secret.  Default: nothing to add."""
        return []

    def next_steps(self) -> list[str]:
        """What the user runs after a copy into this remote, one command or hint each
        (an offline folder's uploader, with the settings it needs); ``copy`` and ``sync``
        print them.  Default: nothing to do."""
        return []

    @classmethod
    def sdk_version(cls) -> str | None:
        """Installed version of the vendor SDK, or ``None`` if it is not installed."""
        return cls.info.sdk_version()


class ReadOnlyBackend(Backend):
    """A backend that only reads (``BackendInfo.read_only``): a source for ``copy``,
    ``sync`` and ``check``, never a destination, and no facade backend."""

    def writer(self) -> Writer:
        """Refused with one line that names the backend (the CLI refuses earlier, naming the
        backends that can be written: :func:`trackbridge.backends.read_only_message`)."""
        raise ReadOnlyBackendError(f"{self.name}: is a read-only source; copy from it into a backend that can "
                                   "be written ('trackbridge doctor' lists them)")
