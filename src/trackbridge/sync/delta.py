"""What must be sent to make a destination run equal to its source run.

One computation serves three cases, which is what makes resume safe:

* **create** (no destination run): everything;
* **resume** (destination run without the completion marker, left by a crash):
  everything not already there — every metric series is compared point by
  point, because a crash can stop a series anywhere;
* **update** (completed run whose source fingerprint changed): only the
  fields that differ; only series whose latest point differs are compared.

Params and tags are re-sent only when missing or different, so replaying a
delta is idempotent.  For a run already at the destination, user tags the
source no longer has are deleted and a changed run name is set (when the
destination's Features say it can).  Only the
planner's ``update``/``resume`` reach a run already there, so ``copy`` never
does this to a finished run.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trackbridge.backends.base import Features, Limits, Reader
from trackbridge.model import ArtifactInfo, DatasetInput, LoggedModel, MetricPoint, MetricSummary, RunRecord
from trackbridge.sync.fit import FittedRun, Target
from trackbridge.sync.models import pair_models
from trackbridge.sync.points import PointIndex, iter_points
from trackbridge.sync.provenance import RESERVED_TAGS
from trackbridge.sync.retry import Retry


@dataclass
class RunDelta:
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: str | None = None
    inputs: list[DatasetInput] = field(default_factory=list)
    #: source metric keys whose history must be streamed and compared/sent.
    metric_keys: list[str] = field(default_factory=list)
    #: of those, the keys that already have points at the destination.
    metric_keys_present: set[str] = field(default_factory=set)
    artifacts: list[ArtifactInfo] = field(default_factory=list)
    #: artifact path -> full value of a truncated param, not yet (or not fully) at the destination.
    param_files: dict[str, str] = field(default_factory=dict)
    models: list[LoggedModel] = field(default_factory=list)
    #: media key -> points of it the destination already holds (the rest is sent).
    media: dict[str, int] = field(default_factory=dict)
    #: artifact metadata to (re)write, whole; empty = the destination has it.
    artifact_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: destination tag keys to delete (user tags gone at the source).
    delete_tags: list[str] = field(default_factory=list)
    #: new run name (renamed at the source), ``None`` = unchanged.
    name: str | None = None
    finish: bool = False

    def describe(self) -> list[str]:
        """Short human phrases for plan output."""
        parts = []
        for label, n in (("params", len(self.params)), ("tags", len(self.tags)), ("labels", len(self.labels)),
                         ("summary values", len(self.summary)), ("inputs", len(self.inputs)),
                         ("metric keys", len(self.metric_keys)), ("artifacts", len(self.artifacts)),
                         ("full param values", len(self.param_files)),
                         ("models", len(self.models)), ("media series", len(self.media)),
                         ("artifact metadata entries", len(self.artifact_meta)),
                         ("tags to delete", len(self.delete_tags))):
            if n:
                parts.append(f"{n} {label}")
        if self.name is not None:
            parts.append("rename")
        if self.notes is not None:
            parts.append("notes")
        if self.finish:
            parts.append("status/end time")
        return parts


def model_prefixes(models: list[LoggedModel]) -> tuple[str, ...]:
    """Artifact folders that belong to logged models (copied as models, not files)."""
    return tuple(m.artifact_path.rstrip("/") + "/" for m in models if m.artifact_path)


def stale_tags(fitted: FittedRun, dst_tags: Mapping[str, str], system_prefixes: tuple[str, ...]) -> list[str]:
    """Destination user tags the fitted source run no longer has (labels count as tags).
    Tags under ``system_prefixes`` (the platforms' and trackbridge's own bookkeeping,
    :attr:`Target.system_tag_prefixes`) are never stale: their absence at the source
    does not mean a user removed them."""
    keep = set(fitted.tags) | set(fitted.labels)
    return sorted(k for k in dst_tags
                  if k not in keep and k not in RESERVED_TAGS and not k.startswith(system_prefixes))


def _summary_differs(src: MetricSummary | None, dst: MetricSummary | None) -> bool:
    if src is None or dst is None:
        return src is not dst
    as_point = lambda m: MetricPoint(m.step, m.value, m.timestamp)  # noqa: E731
    return as_point(src).key() != as_point(dst).key()


def compute_delta(
    src: RunRecord,
    fitted: FittedRun,
    src_artifacts: list[ArtifactInfo],
    dst: RunRecord | None = None,
    dst_artifacts: Mapping[str, ArtifactInfo] | None = None,
    complete: bool = False,
    target: Target | None = None,
) -> RunDelta:
    """The delta from ``dst`` (``None`` = not created yet) to ``src``.

    ``complete`` = the destination carries the completion marker, so series
    whose latest point is unchanged are trusted to be unchanged; ``target``'s
    features leave out what the destination cannot hold or do (tag deletions,
    renames, summary...: recorded by :func:`~trackbridge.sync.fit.fit_run`)."""
    target = target or Target(Features(), Limits())
    can = target.can
    delta = RunDelta()
    dst_params = dst.params if dst else {}
    dst_tags = dst.tags if dst else {}
    want, have = fitted.comparable(fitted.params), fitted.comparable(dst_params)
    delta.params = {k: fitted.params[k] for k in want if have.get(k) != want[k]}
    wanted_tags = {**fitted.tags, **fitted.kept}
    delta.tags = {k: v for k, v in wanted_tags.items() if dst_tags.get(k) != v}
    if dst is not None and can("tag_deletion"):
        delta.delete_tags = stale_tags(fitted, dst_tags, target.system_tag_prefixes)
    if dst is not None and src.name and dst.name != src.name and can("run_rename"):
        delta.name = src.name
    # a label may come back from a key/value platform as a tag with an empty value.
    have_labels = set(dst.labels if dst else []) | {k for k, v in dst_tags.items() if v == ""}
    delta.labels = [label for label in fitted.labels if label not in have_labels]
    dst_summary = dst.summary if dst else {}
    if can("summary"):
        delta.summary = {k: v for k, v in src.summary.items() if k not in dst_summary or dst_summary[k] != v}
    if src.notes and can("notes") and (dst is None or (dst.notes or "") != src.notes):
        delta.notes = src.notes
    have_inputs = {(i.name, i.digest) for i in (dst.inputs if dst else [])}
    if can("inputs"):
        delta.inputs = [i for i in src.inputs if (i.name, i.digest) not in have_inputs]

    dst_metrics = {**dst.metrics, **dst.system_metrics} if dst else {}
    src_metrics = {**src.metrics, **src.system_metrics}
    for key in src.all_metric_keys():
        dst_key = fitted.metric_keys.get(key)
        if dst_key is None:
            continue  # un-mappable key: reported by the planner as an error
        if dst_key in dst_metrics:
            if complete and not _summary_differs(src_metrics[key], dst_metrics[dst_key]):
                continue
            delta.metric_keys_present.add(key)
        delta.metric_keys.append(key)

    skip = model_prefixes(src.models)
    have_files = dst_artifacts or {}
    for info in src_artifacts:
        if info.path.startswith(skip):
            continue
        there = have_files.get(info.path)
        if there is None or (info.size is not None and there.size is not None and info.size != there.size):
            delta.artifacts.append(info)
    for path, text in fitted.param_files().items():
        there = have_files.get(path)
        if there is None or (there.size is not None and there.size != len(text.encode("utf-8"))):
            delta.param_files[path] = text
    pairs, _extra = pair_models(src.models, dst.models if dst else [])
    delta.models = [m for m, copy in pairs if copy is None]
    delta.finish = dst is None or dst.status != src.status or (
        can("settable_end_time") and dst.end_time != src.end_time)
    return delta


def missing_points(
    src_reader: Reader,
    src_run_id: str,
    key: str,
    dst_reader: Reader | None = None,
    dst_run_id: str | None = None,
    dst_key: str | None = None,
    page_size: int = 10_000,
    retry: Retry | None = None,
) -> Iterator[list[MetricPoint]]:
    """Pages of source points of ``key`` that the destination series lacks.

    Without a destination series, every source page passes through untouched.
    With one, the common case is a destination holding a *prefix* of the source
    stream (an interrupted copy, or a series that grew since): both streams are
    walked side by side, O(1) memory, and everything after the prefix is sent.
    If the streams disagree before the destination ends (other order, holes),
    the destination is indexed instead (8 bytes per point, :class:`PointIndex`)
    and the source is streamed again through it."""
    retry = retry or Retry()
    source = lambda: retry.iterate(lambda: src_reader.iter_metric_history(src_run_id, key, page_size))  # noqa: E731
    if dst_reader is None or dst_run_id is None:
        yield from source()
        return
    dest = lambda: retry.iterate(lambda: dst_reader.iter_metric_history(dst_run_id, dst_key or key, page_size))  # noqa: E731
    there = iter_points(dest())
    pages = source()
    for page in pages:
        for i, point in enumerate(page):
            other = next(there, None)
            if other is None:  # the destination ended: the rest of the source is missing
                yield page[i:]
                yield from pages
                return
            if other.key() != point.key():
                yield from _through_index(source(), dest())
                return


def _through_index(source: Iterator[list[MetricPoint]], dest: Iterator[list[MetricPoint]]) -> Iterator[list[MetricPoint]]:
    index = PointIndex(dest)
    for page in source:
        page = [p for p in page if p not in index]
        if page:
            yield page
