"""The records a report is made of, filled while ``check`` runs (:mod:`.collect`) and
turned into what the page shows (:mod:`.views`).

A :class:`RunData` lives only while its run is being checked: as soon as the checker is
done with a run it is reduced to a :class:`RunDigest` (a few counts and the run's
section as JSON text), so a 1,000-run check holds 1,000 short strings, not 1,000 run
records with their downsampled series.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from trackbridge.model import ArtifactInfo, MediaSeries, RegisteredModel, RunRecord
from trackbridge.report.downsample import Downsampler
from trackbridge.sync.check import Finding, SeriesDiff
from trackbridge.sync.fit import FittedRun


@dataclass
class SeriesData:
    """One metric key of one run: points for drawing and the true counts beside them."""

    key: str
    source: Downsampler = field(default_factory=Downsampler)
    destination: Downsampler = field(default_factory=Downsampler)
    diff: SeriesDiff | None = None


@dataclass
class RunData:
    """One checked run: its finding and everything the report shows of it."""

    finding: Finding
    src: RunRecord
    dst: RunRecord | None = None
    fitted: FittedRun | None = None
    #: kind ("param", "tag") -> (expected at the destination, found there).
    fields: dict[str, tuple[dict[str, str], dict[str, str]]] = field(default_factory=dict)
    series: dict[str, SeriesData] = field(default_factory=dict)
    src_files: list[ArtifactInfo] = field(default_factory=list)
    dst_files: list[ArtifactInfo] = field(default_factory=list)
    src_media: dict[str, MediaSeries] = field(default_factory=dict)
    dst_media: dict[str, MediaSeries] = field(default_factory=dict)


@dataclass
class ModelData:
    """One registered model: its finding, the source entry and the destination's."""

    finding: Finding
    src: RegisteredModel
    dst: RegisteredModel | None


@dataclass
class RunDigest:
    """What the report keeps of a checked run: its finding, its counts for the summary,
    and its section of the page as masked JSON (drawn when the run is opened)."""

    finding: Finding
    experiment: str
    #: (source, destination) counts.
    points: tuple[int, int] = (0, 0)
    params: tuple[int, int] = (0, 0)
    artifacts: tuple[int, int] = (0, 0)
    models: tuple[int, int] = (0, 0)
    declared: int = 0
    #: metric series not read (missing at the destination): their points are not counted.
    uncounted_series: int = 0
    view: str = "{}"
