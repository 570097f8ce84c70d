"""``check``: value-level verification of a destination against its source.

Every field is compared, not a summary: each param and tag, every metric
point (step, value, timestamp; NaN equals NaN), artifact contents (sha256,
downloading both sides when the platform keeps no digest), logged models,
dataset inputs, parent links, times, status, notes, user, and the registry
(versions, their runs, aliases).  The *expected* destination view is computed
with the same fitting rules the transfer used (:func:`fit_run`), so recorded
renames/truncations and trackbridge's own tags are not differences.  ``MLmodel``
files are compared with run/model ids masked, since a copy re-points them.

Per run the report uses rclone's symbols: ``=`` equal, ``+`` missing at the
destination, ``*`` differs (with details), ``!`` could not be checked.
"""
from __future__ import annotations

import hashlib
import itertools
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from trackbridge.backends.base import Reader
from trackbridge.errors import TrackbridgeError
from trackbridge.history import increasing_steps, merge_rows, series_from_rows
from trackbridge.mapping import MAPPING_FILE, TRUNCATE, MappingRecord
from trackbridge.model import (
    ArtifactInfo,
    DatasetInput,
    LoggedModel,
    MediaPoint,
    MediaSeries,
    MetricPoint,
    RegisteredModel,
    RunRecord,
    float_key,
)
from trackbridge.model_files import is_model_file, mask_ids
from trackbridge.sync.delta import model_prefixes
from trackbridge.sync.fit import KEPT_FIELDS, FittedRun, Target, fit_run
from trackbridge.sync.models import model_key, pair_models
from trackbridge.sync.plan import Planner, Selection
from trackbridge.sync.points import PointIndex, iter_points
from trackbridge.sync.provenance import RESERVED_TAGS, DestIndex, is_complete
from trackbridge.sync.registry import dest_aliases, dest_versions_by_source, user_version_tags
from trackbridge.sync.retry import Retry
from trackbridge.sync.rich import RichView, plain_files

EQUAL, MISSING, DIFFERS, ERROR = "=", "+", "*", "!"
#: how many example differences are listed per series/field.
EXAMPLES = 3
#: what :meth:`Checker._file_digest` gives instead of a digest for a file it cannot download.
_UNREADABLE = "cannot be read: "


@dataclass
class Finding:
    """One checked item (a run or a registered model) and what differs."""

    symbol: str
    kind: str  # run | model
    label: str
    src_id: str
    dst_id: str | None = None
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "kind": self.kind, "label": self.label, "src_id": self.src_id,
                "dst_id": self.dst_id, "details": self.details}


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)

    def count(self, symbol: str) -> int:
        return sum(1 for f in self.findings if f.symbol == symbol)

    @property
    def ok(self) -> bool:
        return all(f.symbol == EQUAL for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": {"equal": self.count(EQUAL), "missing": self.count(MISSING),
                       "differ": self.count(DIFFERS), "error": self.count(ERROR)},
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass
class SeriesDiff:
    src_count: int = 0
    dst_count: int = 0
    missing: int = 0
    examples: list[MetricPoint] = field(default_factory=list)

    @property
    def extra(self) -> int:
        return self.dst_count - (self.src_count - self.missing)

    @property
    def equal(self) -> bool:
        return self.missing == 0 and self.extra == 0


def compare_series(
    src_pages: Callable[[], Iterable[list[MetricPoint]]],
    dst_pages: Callable[[], Iterable[list[MetricPoint]]],
    keep: Callable[[MetricPoint], bool] = lambda p: True,
) -> SeriesDiff:
    """Point-level comparison in bounded memory.

    Fast path: both sides stream in the same order (true between series stores),
    compared pairwise with O(1) memory.  On the first mismatch, fall back to
    indexing the destination (8 bytes per point) and streaming the source."""
    diff = SeriesDiff()
    paired = itertools.zip_longest((p for p in iter_points(src_pages()) if keep(p)), iter_points(dst_pages()))
    for a, b in paired:
        if a is None or b is None or a.key() != b.key():
            break
        diff.src_count += 1
        diff.dst_count += 1
    else:
        return diff
    diff = SeriesDiff()
    index = PointIndex(dst_pages())
    diff.dst_count = len(index)
    for point in iter_points(src_pages()):
        if not keep(point):
            continue
        diff.src_count += 1
        if point not in index:
            diff.missing += 1
            if len(diff.examples) < EXAMPLES:
                diff.examples.append(point)
    return diff


def _sha256(path: Path, ids: dict[str, str]) -> str:
    """Content digest; model descriptor files with source/destination ids masked."""
    h = hashlib.sha256()
    if is_model_file(path):
        h.update(mask_ids(path.read_text(encoding="utf-8"), ids).encode("utf-8"))
        return h.hexdigest()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _input_key(item: DatasetInput) -> tuple[Any, ...]:
    return (item.name, item.digest, item.source_type, item.source, item.schema, item.profile, sorted(item.tags.items()))


def _differs(details: list[str], what: str, src: Any, dst: Any) -> None:
    if src != dst:
        show = lambda v: repr(v.value if isinstance(v, Enum) else v)  # noqa: E731
        details.append(f"{what}: source {show(src)} != destination {show(dst)}")


def _compare_model_meta(details: list[str], src: LoggedModel, dst: LoggedModel) -> None:
    """A logged model's own params, metrics, tags, type and status."""
    where = f"model {src.name!r} ({model_key(src)})"
    _differs(details, f"{where} params", src.params, dst.params)
    _differs(details, f"{where} metrics", {k: float_key(v) for k, v in src.metrics.items()},
             {k: float_key(v) for k, v in dst.metrics.items()})
    _differs(details, f"{where} tags", src.user_tags(), dst.user_tags())
    _differs(details, f"{where} type", src.model_type or None, dst.model_type or None)
    _differs(details, f"{where} status", src.status or None, dst.status or None)


def _timeless(pages: Iterable[list[MetricPoint]]) -> Iterator[list[MetricPoint]]:
    """Pages with timestamps blanked: compared where the destination keeps none."""
    for page in pages:
        yield [MetricPoint(p.step, p.value, 0) for p in page]


PageFactory = Callable[[], Iterable[list[MetricPoint]]]


class SeriesObserver(Protocol):
    def wrap(self, src: PageFactory, dst: PageFactory) -> tuple[PageFactory, PageFactory]: ...

    def done(self, diff: SeriesDiff) -> None: ...


class CheckCollector(Protocol):
    """What the checker hands, as it goes, to whoever builds a report of the check
    (``check --report``: :class:`trackbridge.report.collect.ReportCollector`), so the
    report needs no second read of the series.  Called from the checker's threads."""

    def fields(self, run_id: str, fitted: FittedRun,
               compared: dict[str, tuple[dict[str, str], dict[str, str]]]) -> None: ...

    def series(self, run_id: str, key: str) -> SeriesObserver: ...

    def files(self, run_id: str, src_listed: list[ArtifactInfo], dst_listed: list[ArtifactInfo]) -> None: ...

    def media(self, run_id: str, src_media: dict[str, MediaSeries], dst_media: dict[str, MediaSeries]) -> None: ...

    def run(self, finding: Finding, src: RunRecord, dst: RunRecord | None) -> None: ...

    def model(self, finding: Finding, src: RegisteredModel, dst: RegisteredModel | None) -> None: ...


class Checker:
    """Compares the selected source runs with their destination copies."""

    def __init__(self, src: Reader, dst: Reader, target: Target, *,
                 download: bool = True, workers: int = 4, long_values: str = TRUNCATE,
                 retry: Retry | None = None, collector: CheckCollector | None = None) -> None:
        self.src, self.dst, self.target = src, dst, target
        self.download, self.workers = download, max(1, workers)
        self.long_values = long_values
        self.retry = retry or Retry()
        #: ``None`` (the default) costs nothing: every hook below is behind one ``if``.
        self.collector = collector

    def check(self, selection: Selection) -> CheckReport:
        report = CheckReport()
        planner = Planner(self.src, self.dst, self.target, retry=self.retry)
        indexes: dict[str, DestIndex] = {}
        run_map: dict[str, str] = {}
        selected: list[RunRecord] = []
        with ThreadPoolExecutor(self.workers, thread_name_prefix="tb-check") as pool:
            for _dst_name, _tags, index, runs in planner.selected(selection, indexes):
                selected.extend(runs)
                report.findings.extend(pool.map(lambda r: self._guarded(r, index), runs))
                for run in runs:
                    best = index.best(run.run_id)
                    if best is not None:
                        run_map[run.run_id] = best.run_id
        if self.target.can("registry") and selection.shard is None:  # a shard copies no registry
            report.findings.extend(self._check_registry({r.run_id for r in selected}, run_map))
        return report

    # -- runs -----------------------------------------------------------------

    def _guarded(self, src: RunRecord, index: DestIndex) -> Finding:
        finding = self._checked(src, index)
        if self.collector is not None:
            self.collector.run(finding, src, index.best(src.run_id))
        self.src.release(src.run_id)
        if finding.dst_id:
            self.dst.release(finding.dst_id)
        return finding

    def _checked(self, src: RunRecord, index: DestIndex) -> Finding:
        label = f"{src.experiment}/{src.name or src.run_id}"
        dst = index.best(src.run_id)
        if dst is None:
            return Finding(MISSING, "run", label, src.run_id)
        finding = Finding(EQUAL, "run", label, src.run_id, dst.run_id)
        try:
            finding.details = self._compare_run(src, dst, index)
        except (TrackbridgeError, OSError) as exc:
            finding.symbol, finding.details = ERROR, [str(exc)]
            return finding
        if finding.details:
            finding.symbol = DIFFERS
        return finding

    def _compare_run(self, src: RunRecord, dst: RunRecord, index: DestIndex) -> list[str]:
        details: list[str] = []
        dups = index.duplicates(src.run_id)
        if dups:
            details.append(f"copied more than once: also {', '.join(d.run_id for d in dups)}")
        if not is_complete(dst):
            details.append("incomplete copy (no completion marker): re-run copy or sync to finish it")
        recorded = MappingRecord.from_tags(dst.tags)
        can = self.target.can
        fitted = fit_run(src, self.target, self.long_values)
        for what in ("name", "status"):
            _differs(details, what, getattr(src, what), getattr(dst, what))
        for feature, attr, tag in KEPT_FIELDS:
            if can(feature):
                continue
            expected = fitted.kept.get(tag)
            if dst.tags.get(tag) != expected:
                details.append(f"{attr}: source {expected!r} != destination tag {tag} {dst.tags.get(tag)!r}")
        for what in ("start_time", "end_time", "user"):
            if can(dict((a, f) for f, a, _t in KEPT_FIELDS)[what]):
                _differs(details, what, getattr(src, what), getattr(dst, what))
        if can("notes"):
            _differs(details, "notes", src.notes or "", dst.notes or "")
        parent = index.best(src.parent_run_id).run_id if src.parent_run_id and index.best(src.parent_run_id) else None
        if can("nested_runs") and "parent_run_id" not in recorded.dropped:
            _differs(details, "parent run", parent or src.parent_run_id, dst.parent_run_id)

        params = fitted.comparable(fitted.params), fitted.comparable(dst.params)
        self._compare_mapping(details, "param", *params)
        # tags the destination platform writes itself are not the user's, unless the source had them
        own = self.target.features.system_tag_prefixes
        dst_tags = {k: v for k, v in dst.tags.items()
                    if k not in RESERVED_TAGS and (k in fitted.tags or not k.startswith(own))}
        have_labels = set(dst.labels) | {k for k, v in dst_tags.items() if v == ""}
        for label in fitted.labels:
            if label not in have_labels:
                details.append(f"label {label!r} missing")
        expected_tags = dict(fitted.tags)
        expected_tags.update({k: "" for k in fitted.labels if k in dst_tags})
        self._compare_mapping(details, "tag", expected_tags, dst_tags)
        if self.collector is not None:
            self.collector.fields(src.run_id, fitted, {"param": params, "tag": (expected_tags, dst_tags)})
        if can("inputs"):
            _differs(details, "dataset inputs", sorted(map(_input_key, src.inputs)), sorted(map(_input_key, dst.inputs)))
        if can("summary"):
            _differs(details, "summary", src.summary, dst.summary)
        self._compare_metrics(details, src, dst, fitted.metric_keys)
        self._compare_files(details, src, dst, fitted.param_files())
        return details

    @staticmethod
    def _compare_mapping(details: list[str], kind: str, expected: dict[str, str], actual: dict[str, str]) -> None:
        for key in sorted(expected.keys() | actual.keys()):
            if key not in actual:
                details.append(f"{kind} {key!r} missing")
            elif key not in expected:
                details.append(f"{kind} {key!r} only at the destination")
            elif expected[key] != actual[key]:
                details.append(f"{kind} {key!r}: source {expected[key][:80]!r} != destination {actual[key][:80]!r}")

    def _compare_metrics(self, details: list[str], src: RunRecord, dst: RunRecord, keys: dict[str, str]) -> None:
        dst_keys = set(dst.metrics) | set(dst.system_metrics)
        for extra in sorted(dst_keys - set(keys.values())):
            details.append(f"metric {extra!r} only at the destination")
        keep = (lambda p: p.value == p.value) if not self.target.limits.allows_nan else (lambda p: True)
        view = _timeless if not self.target.can("timestamps") else (lambda pages: pages)
        for key, dst_key in keys.items():
            if dst_key not in dst_keys:
                details.append(f"metric {key!r} missing")
                continue
            pages: tuple[PageFactory, PageFactory] = (
                lambda: view(self._expected_history(src, key, keys)),
                lambda: view(self.retry.iterate(lambda: self.dst.iter_metric_history(dst.run_id, dst_key))))
            observer = self.collector.series(src.run_id, key) if self.collector is not None else None
            if observer is not None:
                pages = observer.wrap(*pages)
            diff = compare_series(*pages, keep)
            if observer is not None:
                observer.done(diff)
            if not diff.equal:
                examples = ", ".join(f"(step {p.step}, {p.value}, t={p.timestamp})" for p in diff.examples)
                details.append(f"metric {key!r}: {diff.src_count} points at source, {diff.dst_count} at destination, "
                               f"{diff.missing} missing, {diff.extra} extra"
                               + (f"; e.g. {examples}" if examples else ""))

    def _expected_history(self, src: RunRecord, key: str, keys: dict[str, str]) -> Iterable[list[MetricPoint]]:
        """``key``'s source points as the destination should hold them: all of them, or,
        where steps must strictly increase, those the transfer's row filter keeps (the
        rest is recorded as dropped)."""
        history = lambda k: self.retry.iterate(lambda: self.src.iter_metric_history(src.run_id, k))  # noqa: E731
        if not self.target.increasing_steps or key in src.system_metrics:
            return history(key)
        user = [k for k in keys if k not in src.system_metrics]
        rows = increasing_steps(merge_rows({k: history(k) for k in user}), Counter())
        return series_from_rows(rows, key)

    # -- files and models -----------------------------------------------------

    def _compare_files(self, details: list[str], src: RunRecord, dst: RunRecord, param_files: dict[str, str]) -> None:
        skip = model_prefixes(src.models)
        src_listed = self.retry.call(lambda: list(self.src.list_artifacts(src.run_id)))
        dst_listed = self.retry.call(lambda: list(self.dst.list_artifacts(dst.run_id)))
        if self.collector is not None:
            self.collector.files(src.run_id, src_listed, dst_listed)
        self._compare_rich(details, src, dst, src_listed, dst_listed)
        src_files = {a.path: a for a in plain_files(src_listed) if not a.path.startswith(skip)}
        dst_files = {a.path: a for a in plain_files(dst_listed) if not a.path.startswith(skip)}
        dst_files.pop(MAPPING_FILE, None)  # the mapping record, kept as a file where tags are short
        self._compare_param_files(details, dst.run_id, {p: t for p, t in param_files.items() if p not in src_files},
                                  dst_files)
        for path in sorted(src_files.keys() - dst_files.keys()):
            details.append(f"artifact {path!r} missing")
        for path in sorted(dst_files.keys() - src_files.keys()):
            details.append(f"artifact {path!r} only at the destination")
        pairs, extra = pair_models(src.models, dst.models)
        for model, copy in pairs:
            if copy is None:
                details.append(f"model {model.name!r} ({model_key(model)}) missing")
        for model in extra:
            details.append(f"model {model.name!r} ({model.model_id or model.artifact_path}) only at the destination")
        ids = {src.run_id: "<run>", dst.run_id: "<run>"}
        for model, copy in pairs:
            if copy is not None:
                ids.update({m.model_id: "<model>" for m in (model, copy) if m.model_id})
        for path in sorted(src_files.keys() & dst_files.keys()):
            a, b = src_files[path], dst_files[path]
            if a.size is not None and b.size is not None and a.size != b.size and not is_model_file(path):
                details.append(f"artifact {path!r}: {a.size} bytes at source, {b.size} at destination")
            elif a.digest and b.digest and a.digest.split(":")[0] == b.digest.split(":")[0]:
                if a.digest != b.digest:
                    details.append(f"artifact {path!r}: content differs ({a.digest} != {b.digest})")
            elif self.download and (digests := (self._file_digest(self.src, src.run_id, path, ids),
                                                self._file_digest(self.dst, dst.run_id, path, ids)))[0] != digests[1]:
                unread = [f"cannot be read at the {side} ({d.removeprefix(_UNREADABLE)})"
                          for side, d in zip(("source", "destination"), digests) if d.startswith(_UNREADABLE)]
                details.append(f"artifact {path!r}: {'; '.join(unread) or 'content differs (sha256)'}")
        for model, copy in pairs:
            if copy is None:
                continue
            if self.target.can("model_metadata"):
                _compare_model_meta(details, model, copy)
            if self.download:
                self._compare_model(details, src, dst, model, copy, ids)

    def _compare_rich(self, details: list[str], src: RunRecord, dst: RunRecord,
                      src_listed: list[ArtifactInfo], dst_listed: list[ArtifactInfo]) -> None:
        """Media series point by point (files by content) and artifact metadata, wherever
        each side keeps them (:mod:`trackbridge.sync.rich`)."""
        left, right = RichView(self.src, self.retry), RichView(self.dst, self.retry)
        _differs(details, "artifact metadata", left.artifact_meta(src, src_listed),
                 right.artifact_meta(dst, dst_listed))
        src_media, dst_media = left.media(src, src_listed), right.media(dst, dst_listed)
        if self.collector is not None:
            self.collector.media(src.run_id, src_media, dst_media)
        for key in sorted(dst_media.keys() - src_media.keys()):
            details.append(f"media {key!r} only at the destination")
        timed = self.target.can("timestamps")
        for key in sorted(src_media):
            if key not in dst_media:
                details.append(f"media {key!r} missing ({src_media[key].count} {src_media[key].kind} point(s))")
                continue
            a, b = left.points(src, key), right.points(dst, key)
            if len(a) != len(b):
                details.append(f"media {key!r}: {len(a)} points at source, {len(b)} at destination")
            shown = 0
            for n, (p, q) in enumerate(zip(a, b)):
                diffs = [what for what, x, y in (
                    ("step", p.step, q.step), ("timestamp", p.timestamp if timed else 0, q.timestamp if timed else 0),
                    ("kind", p.kind, q.kind), ("data", p.data, q.data), ("caption", p.caption, q.caption),
                    ("meta", p.meta, q.meta), ("file", bool(p.file), bool(q.file))) if x != y]
                if not diffs and p.file and self.download and self._media_digest(left, src, key, p) != \
                        self._media_digest(right, dst, key, q):
                    diffs.append("file content")
                if diffs and shown < EXAMPLES:
                    shown += 1
                    details.append(f"media {key!r} point {n} (step {p.step}): {', '.join(diffs)} differ")

    @staticmethod
    def _media_digest(view: RichView, run: RunRecord, key: str, point: MediaPoint) -> str:
        with tempfile.TemporaryDirectory(prefix="tb-check-") as tmp:
            return _sha256(view.fetch(run, key, point, Path(tmp)), {})

    def _compare_param_files(self, details: list[str], dst_run_id: str, expected: dict[str, str],
                             dst_files: dict[str, ArtifactInfo]) -> None:
        """Files keeping the full values of truncated params are a known transformation: each
        must hold the source value.  Removes them from ``dst_files``, so they are not extras."""
        for path, text in expected.items():
            info, data = dst_files.pop(path, None), text.encode("utf-8")
            if info is None:
                details.append(f"artifact {path!r} (full value of a truncated param) missing")
            elif info.size is not None and info.size != len(data):
                details.append(f"artifact {path!r}: {info.size} bytes, the full param value has {len(data)}")
            elif self.download and self._file_digest(self.dst, dst_run_id, path, {}) != hashlib.sha256(data).hexdigest():
                details.append(f"artifact {path!r}: content differs from the full param value")

    def _file_digest(self, reader: Reader, run_id: str, path: str, ids: dict[str, str]) -> str:
        """sha256 of one artifact, or :data:`_UNREADABLE` and why for a listed file that
        cannot be downloaded (deleted by hand at the destination): that is a difference
        of this artifact, not an error that hides the run's other differences."""
        with tempfile.TemporaryDirectory(prefix="tb-check-") as tmp:
            try:
                local = self.retry.call(reader.download_artifact, run_id, path, Path(tmp))
                return _sha256(local, ids)
            except (TrackbridgeError, OSError) as exc:
                return f"{_UNREADABLE}{getattr(exc, 'strerror', None) or exc}"

    def _model_digests(self, reader: Reader, run_id: str, model: Any, ids: dict[str, str]) -> dict[str, str]:
        with tempfile.TemporaryDirectory(prefix="tb-check-") as tmp:
            root = self.retry.call(reader.download_model, run_id, model, Path(tmp))
            return {p.relative_to(root).as_posix(): _sha256(p, ids) for p in root.rglob("*") if p.is_file()}

    def _compare_model(self, details: list[str], src: RunRecord, dst: RunRecord, a: LoggedModel, b: LoggedModel,
                       ids: dict[str, str]) -> None:
        left = self._model_digests(self.src, src.run_id, a, ids)
        right = self._model_digests(self.dst, dst.run_id, b, ids)
        for path in sorted(left.keys() | right.keys()):
            if left.get(path) != right.get(path):
                state = "missing" if path not in right else "only at the destination" if path not in left else "differs"
                details.append(f"model {a.name!r} ({model_key(a)}) file {path!r} {state}")

    # -- registry -------------------------------------------------------------

    def _check_registry(self, selected: set[str], run_map: dict[str, str]) -> list[Finding]:
        models = [m for m in self.retry.call(lambda: list(self.src.list_registered_models()))
                  if any(v.run_id in selected for v in m.versions)]
        if not models:
            return []
        existing = {m.name: m for m in self.retry.call(lambda: list(self.dst.list_registered_models()))}
        findings = []
        for src in models:
            dst = existing.get(src.name)
            label = f"model {src.name}"
            if dst is None:
                findings.append(Finding(MISSING, "model", label, src.name))
                if self.collector is not None:
                    self.collector.model(findings[-1], src, None)
                continue
            details: list[str] = []
            _differs(details, "description", src.description or "", dst.description or "")
            _differs(details, "tags", src.tags, dst.tags)
            copies = dest_versions_by_source(dst)
            for version in src.versions:
                if version.run_id not in run_map:
                    continue  # its run is not copied: the version cannot be
                copy = copies.get(version.version)
                if copy is None:
                    details.append(f"version {version.version} missing")
                    continue
                where = f"version {version.version} (destination {copy.version})"
                _differs(details, f"{where} run", run_map[version.run_id], copy.run_id)
                _differs(details, f"{where} description", version.description or "", copy.description or "")
                if self.target.can("stages"):
                    _differs(details, f"{where} stage", version.stage or None, copy.stage or None)
                _differs(details, f"{where} tags", user_version_tags(version.tags), user_version_tags(copy.tags))
            aliases = dest_aliases(dst)
            reserved = self.target.features.reserved_aliases
            for version in src.versions:
                copy = copies.get(version.version)
                for alias in version.aliases:
                    if alias in reserved:
                        continue  # managed by the destination itself (recorded by plan)
                    if copy is not None and aliases.get(alias) != copy.version:
                        details.append(f"alias {alias!r}: points to {aliases.get(alias)} at the destination, "
                                       f"expected {copy.version} (source version {version.version})")
            findings.append(Finding(DIFFERS if details else EQUAL, "model", label, src.name, dst.name, details))
            if self.collector is not None:
                self.collector.model(findings[-1], src, dst)
        return findings
