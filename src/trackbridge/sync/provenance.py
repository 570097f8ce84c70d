"""Identity of copied runs, kept in the destination itself.

Every destination run carries tags naming its source (written when the run is
created, so a half-written run is findable) and, written last, a completion
marker whose value is the source *fingerprint*.  The local ledger is only a
cache: deleting it and re-running must find the same destination runs, so
:func:`index_destination` rebuilds the source→destination map from these tags.

The fingerprint is a hash of everything a cheap run listing (plus one artifact
listing) shows: if it is unchanged, the run is unchanged for ``sync``.  What it
cannot see — a metric point inserted *before* the latest one of a series — is
what ``check`` is for.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from trackbridge.backends.base import Reader
from trackbridge.mapping import MAPPING_TAG, param_to_str
from trackbridge.model import MAPPING_VERSION, ArtifactInfo, MetricSummary, RunRecord, float_key
from trackbridge.provenance_tags import (  # re-exported: the engine's names for them
    CLAIM,
    COMPLETE,
    DUPLICATE_OF,
    MAPPING_VERSION_TAG,
    ORIGIN_PLATFORM,
    ORIGIN_RUN_ID,
    ORIGIN_VERSION,
    SOURCE_END_TIME,
    SOURCE_PARENT,
    SOURCE_PLATFORM,
    SOURCE_RUN_ID,
    SOURCE_START_TIME,
    SOURCE_URL,
    SOURCE_USER,
    SOURCE_VERSION,
)

# What they mean here: every copied run carries SOURCE_* and ORIGIN_* (written at create,
# so a half-written run is findable) and, written last, COMPLETE = the source fingerprint.
# CLAIM names the invocation that created a copy; two invocations copying one source run
# at once agree on one winner (:func:`winner`) and the loser is removed, or marked
# DUPLICATE_OF where the destination cannot delete runs.

#: tags trackbridge owns on a destination run; never copied from a source and
#: never compared by ``check`` (a copy of a copy gets *our* provenance).
RESERVED_TAGS = frozenset({SOURCE_PLATFORM, SOURCE_RUN_ID, SOURCE_URL, MAPPING_VERSION_TAG, COMPLETE, MAPPING_TAG,
                           ORIGIN_PLATFORM, ORIGIN_RUN_ID,
                           SOURCE_START_TIME, SOURCE_END_TIME, SOURCE_USER, SOURCE_PARENT, CLAIM, DUPLICATE_OF})
RESERVED_VERSION_TAGS = frozenset({SOURCE_VERSION, ORIGIN_VERSION, SOURCE_RUN_ID, SOURCE_PLATFORM, CLAIM})

FINGERPRINT_VERSION = "1"


def origin_of(run: RunRecord) -> tuple[str, str]:
    """(platform, run id) of the first run in ``run``'s chain of copies."""
    tags = run.tags
    if tags.get(ORIGIN_RUN_ID):
        return tags.get(ORIGIN_PLATFORM, ""), tags[ORIGIN_RUN_ID]
    if tags.get(SOURCE_RUN_ID):
        return tags.get(SOURCE_PLATFORM, ""), tags[SOURCE_RUN_ID]
    return run.platform, run.run_id


def provenance_tags(run: RunRecord) -> dict[str, str]:
    """The tags a destination run gets at creation time."""
    origin_platform, origin_id = origin_of(run)
    return {
        SOURCE_PLATFORM: run.platform,
        SOURCE_RUN_ID: run.run_id,
        SOURCE_URL: run.url or "",
        ORIGIN_PLATFORM: origin_platform,
        ORIGIN_RUN_ID: origin_id,
        MAPPING_VERSION_TAG: MAPPING_VERSION,
    }


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` without the ones trackbridge owns."""
    return {k: v for k, v in tags.items() if k not in RESERVED_TAGS}


def _summaries(metrics: Mapping[str, MetricSummary]) -> dict[str, list[object]]:
    return {k: [float_key(m.value), m.step, m.timestamp] for k, m in sorted(metrics.items())}


def fingerprint(run: RunRecord, artifacts: Iterable[ArtifactInfo]) -> str:
    """A short stable hash of the source run's observable state."""
    state = {
        "v": FINGERPRINT_VERSION,
        "name": run.name,
        "status": run.status.value,
        "start": run.start_time,
        "end": run.end_time,
        "user": run.user,
        "parent": run.parent_run_id,
        "notes": run.notes,
        "params": {k: param_to_str(k, v) for k, v in sorted(run.params.items())},
        "tags": dict(sorted(user_tags(run.tags).items())),
        "labels": sorted(run.labels),
        "metrics": _summaries(run.metrics),
        "system": _summaries(run.system_metrics),
        "inputs": sorted((i.name, i.digest, i.source_type, i.source) for i in run.inputs),
        "models": sorted((m.name, m.artifact_path, m.model_id or "") for m in run.models),
        "artifacts": sorted((a.path, a.size or 0, a.digest or "") for a in artifacts),
    }
    blob = json.dumps(state, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return f"fp{FINGERPRINT_VERSION}:" + hashlib.sha256(blob).hexdigest()[:32]


@dataclass
class DestIndex:
    """Destination runs of one experiment, keyed by the source run they came from
    (their direct source, and their origin when they are copies of copies)."""

    by_source: dict[str, list[RunRecord]] = field(default_factory=dict)

    def add(self, run: RunRecord, platform: str) -> None:
        """Index ``run`` under the ids it carries for source platform ``platform``
        (a copy that lost a race to another invocation's is left out)."""
        tags = run.tags
        if tags.get(DUPLICATE_OF):
            return
        keys = {tags[SOURCE_RUN_ID]} if tags.get(SOURCE_RUN_ID) and tags.get(SOURCE_PLATFORM) == platform else set()
        if tags.get(ORIGIN_RUN_ID) and tags.get(ORIGIN_PLATFORM) == platform:
            keys.add(tags[ORIGIN_RUN_ID])
        for key in keys:
            self.by_source.setdefault(key, []).append(run)

    def runs(self) -> list[RunRecord]:
        """Every indexed destination run once."""
        unique = {r.run_id: r for runs in self.by_source.values() for r in runs}
        return list(unique.values())

    def best(self, source_run_id: str) -> RunRecord | None:
        """The destination run for a source run: a completed one if any exists."""
        runs = self.by_source.get(source_run_id) or []
        complete = [r for r in runs if r.tags.get(COMPLETE)]
        return (complete or runs or [None])[0]

    def duplicates(self, source_run_id: str) -> list[RunRecord]:
        """Runs beyond :meth:`best` for the same source (should never exist)."""
        best = self.best(source_run_id)
        return [r for r in self.by_source.get(source_run_id, []) if best is not None and r.run_id != best.run_id]


def winner(copies: Iterable[RunRecord]) -> RunRecord | None:
    """The one copy that concurrent invocations all keep: a completed copy first, then
    the lowest run id.

    Each invocation settles after creating its copy and again just before completing
    it.  Two copies in progress are ordered by id, which does not depend on timing;
    a completed copy wins over one in progress, which covers an invocation that
    creates its copy after the other has already finished (and settled) its own."""
    live = [c for c in copies if not c.tags.get(DUPLICATE_OF)]
    return min(live, key=lambda r: (not r.tags.get(COMPLETE), r.run_id), default=None)


def copies_of(reader: Reader, experiment: str, source: RunRecord) -> list[RunRecord]:
    """Destination runs of ``experiment`` copied from ``source`` (by provenance tags)."""
    return reader.find_runs(experiment, {SOURCE_PLATFORM: source.platform, SOURCE_RUN_ID: source.run_id})


def index_destination(reader: Reader, experiment: str, source_platform: str) -> DestIndex:
    """List the destination experiment once and index runs by their source tags.

    Runs copied from another platform with a colliding id are ignored, and a
    missing experiment is simply empty."""
    index = DestIndex()
    if reader.get_experiment(experiment) is None:
        return index
    for run in reader.list_runs(experiment):
        index.add(run, source_platform)
    return index


def is_complete(dest: RunRecord | None) -> bool:
    """``dest`` carries a (non-blank) completion marker."""
    return dest is not None and bool(dest.tags.get(COMPLETE))
