"""The planner: what ``copy``/``sync`` would do, computed without writing anything.

``plan``, ``--dry-run`` and the real transfer all start here, so what a dry
run prints is exactly what the transfer then does.  For each selected source
run the planner lists its artifacts (needed for the fingerprint), finds its
destination copy through provenance tags, and classifies it:

* ``create``    — no destination run;
* ``resume``    — a destination run without the completion marker (a crash);
* ``update``    — completed from an older fingerprint (``sync`` only);
* ``changed``   — same, under ``copy``: reported, not touched (``copy`` never
  rewrites finished runs; use ``sync``);
* ``unchanged`` — completion marker equals the source fingerprint.

Metric point counts are *estimates* unless ``exact_points`` is set: the
estimate is the last step + 1 of each series (exact for step = 0, 1, 2...),
because counting means streaming every series.
"""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from trackbridge.backends.base import Reader, RunFilter
from trackbridge.errors import RunNotFound
from trackbridge.mapping import TRUNCATE, MappingRecord
from trackbridge.model import ArtifactInfo, MediaSeries, RunRecord
from trackbridge.sync.ahead import ahead
from trackbridge.sync.delta import RunDelta, compute_delta, missing_points
from trackbridge.sync.fit import FittedRun, Target, fit_run
from trackbridge.sync.provenance import (
    COMPLETE,
    ORIGIN_RUN_ID,
    SOURCE_PLATFORM,
    SOURCE_RUN_ID,
    DestIndex,
    fingerprint,
    index_destination,
)
from trackbridge.sync.registry import ModelPlan, plan_registry
from trackbridge.sync.retry import Retry
from trackbridge.sync.rich import ARTIFACT_META_FILE, RichView, plain_files
from trackbridge.sync.shard import Shard


#: what ``sync`` does not bring up to date, said plainly wherever it skips unchanged runs.
SYNC_BLIND_SPOTS = (
    "sync: a run counts as unchanged when its fingerprint (what one run listing shows: fields, params, tags, "
    "the latest point of each series, files) is; points back-filled below a series' latest point, edits of "
    "model-version descriptions, tags and stages, and logged-model params/metrics/tags made after the copy are "
    "not mirrored; 'trackbridge check' reports the back-filled points and the version description/tag edits.")


class Action(str, Enum):
    CREATE = "create"
    RESUME = "resume"
    UPDATE = "update"
    CHANGED = "changed"
    UNCHANGED = "unchanged"

    @property
    def writes(self) -> bool:
        return self in (Action.CREATE, Action.RESUME, Action.UPDATE)


@dataclass
class Selection:
    """Which source runs and where they go (from the CLI's remotes and filters)."""

    #: source experiment names; ``None`` = every experiment of the source.
    experiments: list[str] | None = None
    run_filter: RunFilter | None = None
    #: source experiment name -> destination experiment name.
    rename: dict[str, str] = field(default_factory=dict)
    #: every selected source experiment goes into this one destination experiment.
    into: str | None = None
    #: only this part of the selected runs (``--shard i/n``, :mod:`.shard`).
    shard: Shard | None = None

    def destination_of(self, experiment: str) -> str:
        return self.into or self.rename.get(experiment, experiment)


@dataclass
class RunPlan:
    action: Action
    src: RunRecord
    dst_experiment: str
    fingerprint: str
    artifacts: list[ArtifactInfo]
    fitted: FittedRun
    dst: RunRecord | None = None
    delta: RunDelta = field(default_factory=RunDelta)
    #: destination runs that claim the same source (left by older tools or races).
    duplicates: list[str] = field(default_factory=list)
    points: int = 0
    points_exact: bool = False
    #: the source's media series and artifact metadata, native or kept as files (:mod:`.rich`).
    media: dict[str, MediaSeries] = field(default_factory=dict)
    artifact_meta: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.src.experiment}/{self.src.name or self.src.run_id}"

    @property
    def bytes(self) -> int:
        files = sum(len(text.encode("utf-8")) for text in self.delta.param_files.values())
        return files + sum(a.size or 0 for a in self.delta.artifacts)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "experiment": self.src.experiment,
            "dst_experiment": self.dst_experiment,
            "src_run_id": self.src.run_id,
            "dst_run_id": self.dst.run_id if self.dst else None,
            "name": self.src.name,
            "send": self.delta.describe() if self.action.writes else [],
            "points": self.points,
            "points_exact": self.points_exact,
            "artifact_bytes": self.bytes if self.action.writes else 0,
            "mapping": _mapping_json(self.fitted.record),
            "errors": self.fitted.errors,
            "duplicates": self.duplicates,
        }


@dataclass
class Deletion:
    dst: RunRecord
    dst_experiment: str
    source_run_id: str

    def to_json(self) -> dict[str, Any]:
        return {"dst_run_id": self.dst.run_id, "experiment": self.dst_experiment,
                "name": self.dst.name, "source_run_id": self.source_run_id}


@dataclass
class Plan:
    mode: str
    runs: list[RunPlan] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    registry: list[ModelPlan] = field(default_factory=list)
    #: destination experiment name -> source experiment tags (created when needed).
    experiments: dict[str, dict[str, str]] = field(default_factory=dict)
    #: source run id -> destination run id for runs already complete or in progress.
    known: dict[str, str] = field(default_factory=dict)
    #: what the destination cannot hold beyond single runs (the registry...), one phrase each.
    transformations: list[str] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for r in self.runs if r.action == action)

    def totals(self) -> dict[str, Any]:
        writing = [r for r in self.runs if r.action.writes]
        return {
            **{a.value: self.count(a) for a in Action},
            "delete": len(self.deletions),
            "points": sum(r.points for r in writing),
            "points_exact": all(r.points_exact for r in writing),
            "artifact_bytes": sum(r.bytes for r in writing),
            "artifacts": sum(len(r.delta.artifacts) for r in writing),
            "renamed": sum(len(r.fitted.record.renamed) for r in writing),
            "truncated": sum(len(r.fitted.record.truncated) for r in writing),
            "dropped": sum(len(r.fitted.record.dropped) for r in writing),
            "kept_elsewhere": sum(len(r.fitted.record.kept) for r in writing),
            "errors": sum(len(r.fitted.errors) for r in self.runs),
            "model_versions": sum(m.creates for m in self.registry),
            "aliases": sum(len(m.aliases) for m in self.registry),
            "tags_to_delete": sum(len(r.delta.delete_tags) for r in writing),
            "renames": sum(1 for r in writing if r.delta.name is not None),
            "aliases_to_remove": sum(len(m.remove_aliases) for m in self.registry),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "totals": self.totals(),
            "runs": [r.to_json() for r in self.runs],
            "deletions": [d.to_json() for d in self.deletions],
            "registry": [m.to_json() for m in self.registry],
            "transformations": self.transformations,
        }


def _mapping_json(record: MappingRecord) -> dict[str, Any]:
    return record.to_json()


class Planner:
    """Builds a :class:`Plan` from a source reader, a destination reader and limits."""

    def __init__(
        self,
        src: Reader,
        dst: Reader,
        target: Target,
        *,
        mode: str = "sync",
        workers: int = 4,
        exact_points: bool = False,
        delete: bool = False,
        long_values: str = TRUNCATE,
        retry: Retry | None = None,
    ) -> None:
        self.src, self.dst, self.target = src, dst, target
        self.mode, self.workers, self.exact_points = mode, max(1, workers), exact_points
        self.delete, self.long_values = delete, long_values
        self.retry = retry or Retry()

    def experiments(self, selection: Selection) -> Iterator[tuple[str, dict[str, str]]]:
        """(name, tags) of the selected source experiments, in source order, each as the
        source lists it: a source that finds its experiments by scanning its runs (a W&B
        folder) has the first experiment's runs copied while the scan goes on, not after.
        Named experiments are all looked up first, so a misspelt one stops the copy before
        it writes anything."""
        if selection.experiments is None:
            for exp in self.retry.iterate(lambda: iter(self.src.list_experiments())):
                yield exp.name, exp.tags
            return
        found = []
        for name in selection.experiments:
            exp = self.retry.call(self.src.get_experiment, name)
            if exp is None:
                raise RunNotFound(f"source experiment {name!r} does not exist. List them with: trackbridge ls SRC")
            found.append((exp.name, exp.tags))
        yield from found

    def listing(
        self, selection: Selection, indexes: dict[str, DestIndex]
    ) -> Iterator[tuple[str, dict[str, str], DestIndex, Iterator[RunRecord]]]:
        """Per selected source experiment: its destination name, its tags, the index of
        the destination experiment (built once per destination and kept in ``indexes``)
        and its selected runs, listed as the source yields them (a source that scans a
        file per run yields each run when it is scanned; a shard lists them all first:
        its part depends on every run's ancestors).  ``plan`` and ``check`` both walk
        the source through this, so they always look at the same runs against the same
        copies.  Consume each experiment's runs before the next experiment."""
        for name, tags in self.experiments(selection):
            dst_name = selection.destination_of(name)
            if dst_name not in indexes:
                indexes[dst_name] = self.retry.call(index_destination, self.dst, dst_name, self.src.platform)
            runs: Iterator[RunRecord] = self.retry.iterate(
                lambda name=name: iter(self.src.list_runs(name, selection.run_filter)))
            if selection.shard is not None:
                runs = iter(selection.shard.keep(list(runs)))
            yield dst_name, tags, indexes[dst_name], runs

    def selected(
        self, selection: Selection, indexes: dict[str, DestIndex]
    ) -> Iterator[tuple[str, dict[str, str], DestIndex, list[RunRecord]]]:
        """:meth:`listing` with each experiment's runs in a list."""
        for dst_name, tags, index, runs in self.listing(selection, indexes):
            yield dst_name, tags, index, list(runs)

    def plan(self, selection: Selection) -> Plan:
        """The whole plan, every run planned before it returns (``plan``, ``--dry-run``)."""
        plan = Plan(self.mode)
        for _run in self.stream(selection, plan):
            pass
        return plan

    def stream(self, selection: Selection, plan: Plan) -> Iterator[RunPlan]:
        """Plan the selected runs into ``plan``, yielding each run as soon as it is
        planned, in source order; when the iterator is exhausted ``plan`` is complete
        (deletions, parents not selected, registry, transformations).

        Why a stream: the engine starts copying the first run while the source's next
        runs are still being read (a W&B source is scanned file by file: 20 s for 4M
        points, during which a destination bound by its own writing, an MLflow store,
        sat idle).  Runs are planned ``workers`` at a time, a few ahead of the one
        yielded, while the listing goes on in a thread (:func:`.ahead.ahead`): a run is
        yielded when its plan is done, not when the source has listed the next one."""
        indexes: dict[str, DestIndex] = {}
        listed: dict[str, set[str]] = {}
        with ThreadPoolExecutor(self.workers, thread_name_prefix="tb-plan") as pool:
            for dst_name, tags, index, runs in self.listing(selection, indexes):
                seen = listed.setdefault(dst_name, set())

                def submit(record: RunRecord, dst_name: str = dst_name, index: DestIndex = index,
                           seen: set[str] = seen) -> Future[RunPlan]:
                    seen.add(record.run_id)
                    return pool.submit(self._plan_run, record, dst_name, index)

                for run in ahead(runs, submit, self.workers):
                    yield self._planned(plan, run, tags)
        self._finish(plan, selection, indexes, listed)

    @staticmethod
    def _planned(plan: Plan, run: RunPlan, tags: dict[str, str]) -> RunPlan:
        """Add ``run`` to ``plan``: its destination experiment is created when it writes."""
        plan.runs.append(run)
        if run.action.writes:
            plan.experiments.setdefault(run.dst_experiment, dict(tags))
        if run.dst is not None:
            plan.known[run.src.run_id] = run.dst.run_id
        return run

    def _finish(self, plan: Plan, selection: Selection, indexes: dict[str, DestIndex],
                listed: dict[str, set[str]]) -> None:
        """What needs every run planned: deletions, orphans, registry, transformations."""
        if self.delete:
            for dst_name, index in indexes.items():
                plan.deletions.extend(self._deletions(index, listed[dst_name], dst_name))
        self._orphans(plan, indexes)
        if selection.shard is not None:
            plan.transformations.append(
                f"registry: not copied by shard {selection.shard}; run the same command once without --shard "
                "after every shard has finished (its runs are then unchanged) to copy the registry in source order")
        else:
            self._registry(plan)
        if self.mode == "sync" and plan.count(Action.UNCHANGED):
            plan.transformations.append(SYNC_BLIND_SPOTS)
        plan.transformations.extend(self._uploader_warnings(plan))

    def _uploader_warnings(self, plan: Plan) -> list[str]:
        """Series longer than the destination's own uploader keeps by default: the copy
        keeps every point, but an upload with the uploader's defaults would sample them."""
        keep = self.target.limits.uploader_points_per_series
        if not keep:
            return []
        out = []
        for run in plan.runs:
            if not run.action.writes:
                continue
            metrics = {**run.src.metrics, **run.src.system_metrics}
            for key in run.delta.metric_keys:
                n = metrics[key].step + 1  # the planner's estimate (exact for steps 0, 1, 2...)
                if n > keep:
                    out.append(f"{run.label}: metric {key!r} has ~{n:,} points; the destination's uploader keeps "
                               f"{keep:,} per series by default: upload with the command copy prints, which "
                               "keeps them all")
        return out

    def _registry(self, plan: Plan) -> None:
        in_scope = {r.src.run_id for r in plan.runs}
        if not self.target.can("registry"):
            models = [m for m in self.retry.call(lambda: list(self.src.list_registered_models()))
                      if any(v.run_id in in_scope for v in m.versions)] if in_scope else []
            if models:
                why = ("source and destination are one store (its registry is shared)" if self.target.same_store
                       else "the destination has no model registry")
                plan.transformations.append(
                    f"registry: {len(models)} registered model(s) with {sum(len(m.versions) for m in models)} "
                    f"version(s) not copied: {why}")
            return
        plan.registry = plan_registry(self.src, self.dst, in_scope, plan.known, self.retry,
                                      remove_aliases=self.mode == "sync",
                                      reserved_aliases=self.target.features.reserved_aliases)
        reserved = sorted({a for m in plan.registry for a in m.reserved})
        if reserved:
            plan.transformations.append(
                f"registry: alias(es) {', '.join(reserved)} not copied: the destination manages them itself")
        if not self.target.can("stages"):
            staged = sorted(f"{m.src.name} v{v}: {s}" for m in plan.registry for v, s in m.stages.items() if s)
            for m in plan.registry:
                m.stages = {}
            if staged:
                plan.transformations.append(
                    f"registry: stage(s) not kept, the destination has no version stages: {', '.join(staged)}")
        if not self.target.can("alias_removal"):
            kept = sorted(f"{m.src.name}@{a}" for m in plan.registry for a in m.remove_aliases)
            for m in plan.registry:
                m.remove_aliases = []
            if kept:
                plan.transformations.append(
                    f"registry: alias(es) {', '.join(kept)} removed at the source stay at the destination: "
                    "it cannot remove aliases")

    def _plan_run(self, src: RunRecord, dst_experiment: str, index: DestIndex) -> RunPlan:
        artifacts = self.retry.call(lambda: list(self.src.list_artifacts(src.run_id)))
        fp = fingerprint(src, artifacts)
        dst = index.best(src.run_id)
        marker = dst.tags.get(COMPLETE) if dst else None
        if dst is None:
            action = Action.CREATE
        elif not marker:
            action = Action.RESUME
        elif marker == fp:
            action = Action.UNCHANGED
        else:
            action = Action.UPDATE if self.mode == "sync" else Action.CHANGED
        fitted = fit_run(src, self.target, self.long_values)
        run = RunPlan(action, src, dst_experiment, fp, artifacts, fitted, dst,
                      duplicates=[d.run_id for d in index.duplicates(src.run_id)])
        view = RichView(self.src, self.retry)
        run.media, run.artifact_meta = view.media(src, artifacts), view.artifact_meta(src, artifacts)
        self._record_rich(run)
        if action.writes:
            dst_files = None
            if dst is not None:
                dst_files = {a.path: a for a in self.retry.call(lambda: list(self.dst.list_artifacts(dst.run_id)))}
            run.delta = compute_delta(src, run.fitted, plain_files(artifacts), dst, dst_files, complete=bool(marker),
                                      target=self.target)
            self._rich_delta(run, dst, list((dst_files or {}).values()))
            run.points, run.points_exact = self._count_points(run)
        return run

    def _record_rich(self, run: RunPlan) -> None:
        """Declare where media, artifact metadata and model metadata go when the
        destination has no native place for them."""
        record, features = run.fitted.record, self.target.features
        for key, series in run.media.items():
            if series.kind not in features.media_kinds:
                record.kept[f"media:{key}"] = (f"{series.count} {series.kind} point(s) kept as files under "
                                               f"trackbridge/media/{key}/ (the destination has no native {series.kind})")
        if run.artifact_meta and not self.target.can("artifact_meta"):
            record.kept["artifact_meta"] = (f"metadata of {len(run.artifact_meta)} file(s)/folder(s) kept in "
                                            f"{ARTIFACT_META_FILE} (the destination keeps none per file)")
        meta = [m for m in run.src.models if m.params or m.metrics or m.user_tags() or m.model_type]
        if meta and not self.target.can("model_metadata"):
            record.dropped["models:metadata"] = (f"params/metrics/tags/type of {len(meta)} logged model(s): the "
                                                 "destination keeps no metadata per model")

    def _rich_delta(self, run: RunPlan, dst: RunRecord | None, dst_files: list[ArtifactInfo]) -> None:
        """Media points and artifact metadata the destination lacks."""
        have: dict[str, MediaSeries] = {}
        have_meta: dict[str, dict[str, Any]] = {}
        if dst is not None:
            view = RichView(self.dst, self.retry)
            have, have_meta = view.media(dst, dst_files), view.artifact_meta(dst, dst_files)
        for key, series in run.media.items():
            there = have.get(key)
            count = there.count if there is not None else 0
            if count < series.count:
                run.delta.media[key] = count
        if run.artifact_meta and run.artifact_meta != have_meta:
            run.delta.artifact_meta = run.artifact_meta

    def _orphans(self, plan: Plan, indexes: dict[str, DestIndex]) -> None:
        """A new run whose parent is neither selected nor already copied loses its
        parent link: record it, so plan shows it and the run's mapping tag keeps it."""
        selected = {r.src.run_id for r in plan.runs}
        for run in plan.runs:
            parent = run.src.parent_run_id
            if run.action != Action.CREATE or not parent or parent in selected:
                continue
            if not self.target.can("nested_runs"):
                continue  # the parent is kept as a tag (fit_run), not linked
            if indexes[run.dst_experiment].best(parent) is None:
                run.fitted.record.dropped["parent_run_id"] = f"parent run {parent} is not copied: select it too"
            else:
                plan.known.setdefault(parent, indexes[run.dst_experiment].best(parent).run_id)

    def _count_points(self, run: RunPlan) -> tuple[int, bool]:
        metrics = {**run.src.metrics, **run.src.system_metrics}
        if not self.exact_points:
            present = run.delta.metric_keys_present
            # a series already at the destination sends an unknown delta: estimate 0 for it.
            return sum(max(1, metrics[k].step + 1) for k in run.delta.metric_keys if k not in present), False
        total = 0
        for key in run.delta.metric_keys:
            dst_run = run.dst.run_id if run.dst is not None and key in run.delta.metric_keys_present else None
            pages = missing_points(self.src, run.src.run_id, key, self.dst, dst_run, run.fitted.metric_keys[key],
                                   retry=self.retry)
            total += sum(len(p) for p in pages)
        return total, True

    def _deletions(self, index: DestIndex, listed: set[str], dst_experiment: str) -> Iterator[Deletion]:
        """Destination copies whose *direct* source run is gone (not merely filtered
        out: each candidate is confirmed with ``get_run``)."""
        for dst in index.runs():
            tags = dst.tags
            source_id = tags.get(SOURCE_RUN_ID, "")
            if tags.get(SOURCE_PLATFORM) != self.src.platform or {source_id, tags.get(ORIGIN_RUN_ID)} & listed:
                continue
            try:
                self.retry.call(self.src.get_run, source_id)
                continue
            except RunNotFound:
                yield Deletion(dst, dst_experiment, source_id)
