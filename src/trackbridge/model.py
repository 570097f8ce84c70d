"""The canonical run model: the one neutral description of a run.

Every reader produces these objects and every writer consumes them; nothing
else crosses the layers.  Metric *history* is deliberately not a field of
:class:`RunRecord`: a run can hold millions of points, so readers stream them
in pages (``Reader.iter_metric_history``) and writers take them in batches.
A record only carries the latest value per key (:class:`MetricSummary`),
which every platform returns cheaply with a run listing.

Times are integer milliseconds since the Unix epoch, UTC, everywhere.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# On a copied logged model (its tags, or wherever its platform keeps them): the id of the
# model it was copied from, and of the first model of its chain of copies (A -> dir: -> B).
# Models are paired by these ids, never by name: autolog logs a model called ``model`` on
# every fit, so one run can hold several of one name.
from trackbridge.provenance_tags import ORIGIN_MODEL_ID, SOURCE_MODEL_ID

#: Bumped whenever the mapping rules between platforms change, recorded on every
#: copied run so that a later ``check`` knows which rules produced it.
MAPPING_VERSION = "1"


def now_ms() -> int:
    """The current time in the model's unit: integer UTC milliseconds."""
    return time.time_ns() // 1_000_000


class RunStatus(str, Enum):
    """Run states common to all trackers (the names of the most common one; others map onto them)."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @classmethod
    def parse(cls, value: str | None) -> "RunStatus":
        if not value:
            return cls.RUNNING
        try:
            return cls(value.upper())
        except ValueError:
            aliases = {"CRASHED": cls.FAILED, "COMPLETED": cls.FINISHED, "CANCELED": cls.KILLED}
            return aliases.get(value.upper(), cls.FAILED)


@dataclass(slots=True, unsafe_hash=True)
class MetricPoint:
    """One point of a metric series: value at a step, at a wall-clock time (ms).

    Never changed once made, but not ``frozen``: a frozen dataclass's ``__init__`` sets
    each field through ``object.__setattr__`` and cost 0.36 µs against 0.11 µs, and a
    copy makes every point of every series (a 4M-point copy: a second of its time)."""

    step: int
    value: float
    timestamp: int

    def key(self) -> tuple[int, int, str]:
        """Identity used to compare and de-duplicate points; NaN equals NaN."""
        return (self.step, self.timestamp, float_key(self.value))


def float_key(value: float) -> str:
    """A string that is equal for equal floats and for NaN vs NaN (unlike ``==``)."""
    if math.isnan(value):
        return "nan"
    return repr(float(value))


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """The latest point of one metric key, as a run listing reports it."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """A file of a run.  ``digest`` is ``"<algo>:<hex>"`` when the platform knows it."""

    path: str
    size: int | None = None
    digest: str | None = None


@dataclass(slots=True)
class DatasetInput:
    """A dataset a run consumed (a logged input, a dataset artifact)."""

    name: str
    digest: str
    source_type: str = ""
    source: str = ""
    schema: str | None = None
    profile: str | None = None
    tags: dict[str, str] = field(default_factory=dict)




@dataclass(slots=True)
class LoggedModel:
    """A model logged by a run: its files (``artifact_path``, relative to the run, unique
    within it), flavors, and the metadata MLflow 3 keeps per logged model.

    ``model_id`` is the identity; ``name`` may repeat within a run."""

    name: str
    artifact_path: str
    flavors: list[str] = field(default_factory=list)
    model_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    #: key -> latest value of the metrics logged against this model.
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    model_type: str | None = None
    #: READY / PENDING / FAILED where the platform has a model status.
    status: str | None = None

    def source_id(self) -> str | None:
        """The id of the model this one was copied from, ``None`` for an original."""
        return self.tags.get(SOURCE_MODEL_ID)

    def origin_id(self) -> str | None:
        """The id of the first model of this one's chain of copies, ``None`` for an original."""
        return self.tags.get(ORIGIN_MODEL_ID) or self.source_id()

    def user_tags(self) -> dict[str, str]:
        """Tags without trackbridge's bookkeeping (what ``check`` compares)."""
        return {k: v for k, v in self.tags.items() if not k.startswith("trackbridge.")}


#: kinds of rich values a media series can hold (W&B's ``_type`` names, lower case).
MEDIA_KINDS = ("histogram", "image", "table", "audio", "video", "html", "plotly", "object3d", "molecule", "text")


@dataclass(frozen=True, slots=True)
class MediaPoint:
    """One rich value of a series (a histogram, an image...) at a step and time.

    ``data`` holds the value where it is data (a histogram's bins and counts, a
    table's columns and rows: plain JSON); ``file`` names its bytes where it is a file
    (an image), fetched with :meth:`~trackbridge.backends.base.Reader.download_media`.
    ``meta`` is what the platform stores beside it (size, format, ...), JSON."""

    step: int
    timestamp: int
    kind: str
    data: Any = None
    file: str | None = None
    caption: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MediaSeries:
    """What a run listing says of one media key: its kind and number of points."""

    kind: str
    count: int


@dataclass(slots=True)
class ModelVersion:
    """One version of a registered model, pointing at the run that produced it."""

    name: str
    version: str
    source: str = ""
    run_id: str | None = None
    #: Path of the model inside the source run's artifacts, when it lives there.
    artifact_path: str | None = None
    #: The logged model this version was made from (a registry source ``models:/<id>``).
    model_id: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    #: MLflow's legacy stage (``Staging``, ``Production``, ``Archived``; ``None`` for
    #: MLflow's ``None``), Comet's version status: one field, since both say where a
    #: version stands in its release process.
    stage: str | None = None
    creation_time: int | None = None


@dataclass(slots=True)
class RegisteredModel:
    """A registry entry with its versions in creation order."""

    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    versions: list[ModelVersion] = field(default_factory=list)


@dataclass(slots=True)
class Experiment:
    """An experiment, or a project on platforms that call it so."""

    id: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class RunRecord:
    """Everything about a run except its (streamed) metric history and file bytes."""

    platform: str
    run_id: str
    experiment: str
    experiment_id: str | None = None
    name: str | None = None
    status: RunStatus = RunStatus.RUNNING
    start_time: int | None = None
    end_time: int | None = None
    user: str | None = None
    parent_run_id: str | None = None
    url: str | None = None
    #: name -> JSON value; nested dicts are kept nested where the source had them.
    params: dict[str, Any] = field(default_factory=dict)
    #: key -> string; platform bookkeeping tags that map to fields above are removed.
    tags: dict[str, str] = field(default_factory=dict)
    #: value-less tags (W&B tags, Comet tags).
    labels: list[str] = field(default_factory=list)
    notes: str | None = None
    #: latest point per user metric key; full history through the reader.
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    #: latest point per system metric key (cpu, gpu, memory...), kept apart.
    system_metrics: dict[str, MetricSummary] = field(default_factory=dict)
    #: final values that are not series (W&B summary, Comet "others").
    summary: dict[str, Any] = field(default_factory=dict)
    inputs: list[DatasetInput] = field(default_factory=list)
    models: list[LoggedModel] = field(default_factory=list)
    #: media key -> kind and count; points through ``Reader.iter_media``.
    media: dict[str, MediaSeries] = field(default_factory=dict)
    #: file or folder path -> what the platform stores about it beyond its bytes
    #: (a W&B artifact's type, description, metadata and aliases; a Comet asset's
    #: metadata), JSON.
    artifact_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what the source holds that its reader cannot carry into this model (item -> why):
    #: every copy records it as dropped, so nothing is lost silently.
    unread: dict[str, str] = field(default_factory=dict)
    #: what the reader carried in another shape than the source keeps it (item -> how, e.g.
    #: W&B's custom x-axes as the series' steps): every copy records it as kept elsewhere.
    carried: dict[str, str] = field(default_factory=dict)

    def all_metric_keys(self) -> list[str]:
        """User and system metric keys, user keys first, each sorted."""
        return sorted(self.metrics) + sorted(self.system_metrics)
