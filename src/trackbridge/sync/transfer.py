"""Copy one run: create it, resume it after a crash, or send its delta.

Order of writes, chosen so that a crash at any point leaves a run the next
invocation can finish (see :mod:`trackbridge.sync.delta` for how the delta of
a half-written run is computed):

1. ``create_run`` with the provenance tags (first, so they fit its one request)
   and the user's tags — from here the run is findable;
2. params, tags, notes, dataset inputs (re-sent only if missing/different);
   tags gone at the source are deleted and a renamed run is renamed;
3. metric points: a reader thread streams source pages (skipping points the
   destination already has) into a bounded queue, this thread writes batches
   of ``limits.max_metrics_per_batch`` — reading and writing overlap and
   memory stays at a few batches whatever the series length;
4. artifacts one file at a time (model descriptor files re-pointed to the new run),
   and the full values of params truncated to fit, as ``trackbridge/params/<key>.txt``
   (where the facade keeps them too);
5. logged models (download, re-point, ``log_model``);
6. final status and end time;
7. the mapping record and the completion marker ``trackbridge.complete`` =
   source fingerprint, in one ``set_tags`` call with the marker *last* (writers
   keep the order when they split a call; a store that writes one call atomically writes it whole).

Each request the destination serves costs its server CPU, which bounds a copy
between two servers: tags ride in ``create_run`` and the marker with the
mapping, so a new run costs no request beyond its data.

An update first blanks the marker, so a crash during an update is resumed
with a full comparison instead of being mistaken for a finished run.

``TRACKBRIDGE_CRASH_AT=<point>`` makes the process exit abruptly (status 137,
like ``kill -9``) at a named point, so tests can prove resumability
deterministically: ``after_create``, ``mid_metrics``, ``after_metrics``,
``mid_artifacts``, ``before_complete``.
"""
from __future__ import annotations

import json
import math
import os
import queue
from collections import Counter
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import repeat
from pathlib import Path, PurePosixPath

from trackbridge import media_layout
from trackbridge.backends.base import Reader, Writer
from trackbridge.history import Row, increasing_steps, merge_rows
from trackbridge.model import MediaPoint, MetricPoint
from trackbridge.mapping import MAPPING_FILE, MAPPING_TAG
from trackbridge.model_files import repoint_ids
from trackbridge.sync.delta import missing_points
from trackbridge.sync.fit import Target
from trackbridge.sync.models import as_copy
from trackbridge.sync.plan import Action, RunPlan
from trackbridge.sync.progress import Reporter, Stats
from trackbridge.sync.provenance import CLAIM, COMPLETE, DUPLICATE_OF, copies_of, provenance_tags, winner
from trackbridge.sync.retry import Retry
from trackbridge.sync.rich import ARTIFACT_META_FILE, RichView

CRASH_ENV = "TRACKBRIDGE_CRASH_AT"
_DONE = object()


def crash_point(name: str) -> None:
    """Die like ``kill -9`` if the test hook names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(137)


@dataclass
class Batch:
    """Metric points for one write call; ``system`` selects ``log_system_metrics``,
    ``rows`` (when not ``None``) ``log_rows``."""

    system: bool
    points: list[tuple[str, MetricPoint]] = field(default_factory=list)
    rows: list[Row] | None = None

    def __len__(self) -> int:
        return sum(len(r.values) for r in self.rows) if self.rows is not None else len(self.points)


@dataclass
class RunResult:
    plan: RunPlan
    dst_run_id: str | None = None
    error: str | None = None
    points: int = 0
    bytes: int = 0
    #: source logged-model id -> destination logged-model id
    models: dict[str, str] = field(default_factory=dict)
    #: another invocation copies this run at the same time; its copy is the one kept.
    handed_over: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class RunTransfer:
    """Executes :class:`RunPlan` objects against one destination writer (thread-safe:
    each call works on its own run)."""

    def __init__(
        self,
        src: Reader,
        dst: Reader,
        writer: Writer,
        target: Target,
        *,
        stats: Stats,
        reporter: Reporter,
        retry: Retry,
        page_size: int = 10_000,
        queue_batches: int = 8,
        claim: str = "",
    ) -> None:
        self.src, self.dst, self.writer, self.target = src, dst, writer, target
        self.stats, self.reporter, self.retry = stats, reporter, retry
        self.page_size, self.queue_batches = page_size, queue_batches
        #: this invocation's id, on every run it creates (see :meth:`_settle`).
        self.claim = claim or uuid.uuid4().hex

    def transfer(self, run: RunPlan, experiment_id: str, dst_parent: str | None) -> RunResult:
        result = RunResult(run)
        src, delta, fitted = run.src, run.delta, run.fitted
        tags = delta.tags
        can = self.target.can
        if run.dst is None:
            result.dst_run_id = self.retry.call(
                self.writer.create_run, experiment_id, name=src.name,
                start_time=src.start_time if can("settable_start_time") else None,
                user=src.user if can("settable_user") else None,
                parent_run_id=dst_parent if can("nested_runs") else None,
                tags={**provenance_tags(src), CLAIM: self.claim, **tags},
            )
            tags = {}
            crash_point("after_create")
            if self._settle(run, result):
                return result
        else:
            result.dst_run_id = run.dst.run_id
            if run.action == Action.UPDATE:
                self.retry.call(self.writer.set_tags, result.dst_run_id, {COMPLETE: ""})
        dst_id = result.dst_run_id

        if delta.params:
            self.retry.call(self.writer.log_params, dst_id, delta.params)
        if tags:
            self.retry.call(self.writer.set_tags, dst_id, tags)
        if delta.delete_tags:
            self.retry.call(self.writer.delete_tags, dst_id, delta.delete_tags)
        if delta.name is not None:
            self.retry.call(self.writer.set_run_name, dst_id, delta.name)
        if delta.labels:
            if can("labels"):
                self.retry.call(self.writer.set_labels, dst_id, delta.labels)
            else:
                self.retry.call(self.writer.set_tags, dst_id, {label: "" for label in delta.labels})
        if delta.summary and can("summary"):
            self.retry.call(self.writer.log_summary, dst_id, delta.summary)
        if delta.notes is not None and can("notes"):
            self.retry.call(self.writer.set_notes, dst_id, delta.notes)
        if delta.inputs and can("inputs"):
            self.retry.call(self.writer.log_inputs, dst_id, delta.inputs)
        self.stats.add(params=len(delta.params), tags=len(delta.tags))

        result.points = self._send_metrics(run, dst_id)
        crash_point("after_metrics")
        result.bytes = self._send_artifacts(run, dst_id) + self._send_param_files(run, dst_id)
        result.bytes += self._send_media(run, dst_id) + self._send_artifact_meta(run, dst_id)
        result.models = self._send_models(run, dst_id)
        if delta.finish:
            end = src.end_time if can("settable_end_time") else None
            self.retry.call(self.writer.finish_run, dst_id, src.status, end)
        crash_point("before_complete")
        if run.dst is None and self._settle(run, result):
            return result
        tag = fitted.record.to_tag(self.writer.limits.max_tag_value_length)
        if fitted.record and tag[MAPPING_TAG] != fitted.record.to_text():
            self._send_text(dst_id, MAPPING_FILE, fitted.record.to_text())
        self.retry.call(self.writer.set_tags, dst_id, {**tag, COMPLETE: run.fingerprint})
        if run.dst is None:
            self._settle(run, result, completed=True)
        return result

    # -- concurrent invocations -------------------------------------------------

    def _settle(self, run: RunPlan, result: RunResult, completed: bool = False) -> bool:
        """After creating a copy, before completing it and once more after: if another
        copy of the same source run exists, keep the :func:`winner` only.  Returns
        ``True`` when this invocation's copy lost (removed; ``result`` then names the
        winner).  After completing, only completed copies compete: one still being
        written yields to ours when it settles before completing.

        A copy carrying this invocation's own claim is one a retried ``create_run``
        left behind (the server timed out after creating it): it is adopted."""
        if self.target.features.idempotent_create:
            return False  # one source run, one destination id: nothing to settle
        mine = result.dst_run_id
        copies = self.retry.call(copies_of, self.dst, run.dst_experiment, run.src)
        if completed:
            copies = [c for c in copies if c.run_id == mine or c.tags.get(COMPLETE)]
        best = winner(copies)
        if best is None or best.run_id == mine:
            for extra in copies:  # our own orphans (a retried create_run) go
                if extra.run_id != mine and extra.tags.get(CLAIM) == self.claim:
                    self._remove(extra.run_id, mine or "")
            return False
        self._remove(mine or "", best.run_id)
        result.dst_run_id = best.run_id
        if best.tags.get(CLAIM) == self.claim:
            return False  # adopt our own orphan and go on writing into it
        result.handed_over = True
        result.models = {}  # logged in the copy just removed: the winner has its own
        return True

    def _remove(self, loser: str, winner_id: str) -> None:
        if self.target.can("run_deletion"):
            self.retry.call(self.writer.delete_run, loser)
        else:
            self.retry.call(self.writer.set_tags, loser, {DUPLICATE_OF: winner_id})

    # -- metrics --------------------------------------------------------------

    def _missing(self, run: RunPlan, dst_id: str, key: str, page_size: int) -> Iterator[list[MetricPoint]]:
        """Pages of ``key``'s source points the destination lacks (NaN left out, and
        counted, where the destination cannot store it)."""
        dst_key = run.fitted.metric_keys[key]
        present = key in run.delta.metric_keys_present
        pages = missing_points(self.src, run.src.run_id, key, self.dst if present else None,
                               dst_id if present else None, dst_key, page_size, self.retry)
        if self.writer.limits.allows_nan:
            yield from pages
            return
        nan_dropped = 0
        for page in pages:
            kept = [p for p in page if not math.isnan(p.value)]
            nan_dropped += len(page) - len(kept)
            if kept:
                yield kept
        if nan_dropped:
            run.fitted.record.dropped[f"metric:{dst_key}"] = f"{nan_dropped} NaN point(s): destination cannot store NaN"

    def _points(self, run: RunPlan, dst_id: str, stop: threading.Event) -> Iterator[Batch]:
        """Batches still missing at the destination; a batch holds user or system
        metrics, never both; user metrics go as rows where the destination stores rows."""
        keys = run.delta.metric_keys
        user = [k for k in keys if k not in run.src.system_metrics]
        streamed = self.src.rows_in_one_pass and not run.delta.metric_keys_present.intersection(user)
        if self.target.rows or streamed:
            yield from self._rows(run, dst_id, user, stop, streamed)
            keys = [k for k in keys if k in run.src.system_metrics]
        yield from self._series(run, dst_id, keys, stop)

    def _rows(self, run: RunPlan, dst_id: str, keys: list[str], stop: threading.Event,
              streamed: bool) -> Iterator[Batch]:
        """User metrics as rows by step: read in one pass where the source reads its rows
        so and the destination holds none of them yet (``streamed``), else merged from
        what each key's series lacks (memory: one page per key).  Sent as rows where the
        destination stores rows, else as the rows' points: a W&B run's file was split
        into per-key files before the first point was written, and the split's parsing
        and the destination's writing took turns instead of overlapping."""
        if not keys:
            return
        size = max(1, self.writer.limits.max_metrics_per_batch)
        page = max(500, self.page_size // len(keys))
        names = run.fitted.metric_keys
        if streamed:
            rows = self._source_rows(run, keys, page)
        else:
            rows = merge_rows({names[k]: self._missing(run, dst_id, k, page) for k in keys})
        dropped: Counter[str] = Counter()
        if self.target.increasing_steps:
            rows = increasing_steps(rows, dropped)
        as_rows = self.target.rows
        batch = Batch(False, rows=[] if as_rows else None)
        count = 0
        for row in rows:
            if as_rows:
                batch.rows.append(row)  # type: ignore[union-attr]
            else:
                step, timestamp = row.step, row.timestamp
                batch.points.extend([(key, MetricPoint(step, value, timestamp)) for key, value in row.values.items()])
            count += len(row.values)
            if count >= size:
                yield batch
                batch, count = Batch(False, rows=[] if as_rows else None), 0
                if stop.is_set():
                    return
        if len(batch):
            yield batch
        for key, n in dropped.items():
            run.fitted.record.dropped[f"metric:{key}"] = (
                f"{n} point(s) at a step not above the previous one: the destination's steps must increase")

    def _source_rows(self, run: RunPlan, keys: list[str], page: int) -> Iterator[Row]:
        """The source's rows of ``keys``, keys as the destination names them (NaN left out,
        and counted, where the destination cannot store it)."""
        names = run.fitted.metric_keys
        allows_nan = self.writer.limits.allows_nan
        nan: Counter[str] = Counter()
        for row in self.retry.iterate(lambda: self.src.iter_rows(run.src.run_id, keys, page)):
            if allows_nan:
                yield Row(row.step, row.timestamp, {names[k]: v for k, v in row.values.items()})
                continue
            values = {}
            for key, value in row.values.items():
                if math.isnan(value):
                    nan[names[key]] += 1
                else:
                    values[names[key]] = value
            if values:
                yield Row(row.step, row.timestamp, values)
        for key, n in nan.items():
            run.fitted.record.dropped[f"metric:{key}"] = f"{n} NaN point(s): destination cannot store NaN"

    def _series(self, run: RunPlan, dst_id: str, keys: list[str], stop: threading.Event) -> Iterator[Batch]:
        """(destination key, point) batches, one key after the other."""
        size = max(1, self.writer.limits.max_metrics_per_batch)
        batch = Batch(False)
        for key in keys:
            system = key in run.src.system_metrics
            if system != batch.system:
                if batch.points:
                    yield batch
                batch = Batch(system)
            dst_key = run.fitted.metric_keys[key]
            for page in self._missing(run, dst_id, key, self.page_size):
                start = 0
                while start < len(page):  # by slices: a Python step per point was a tenth of a copy's CPU
                    room = size - len(batch.points)
                    batch.points.extend(zip(repeat(dst_key), page[start:start + room]))
                    start += room
                    if len(batch.points) >= size:
                        yield batch
                        batch = Batch(system)
                if stop.is_set():
                    return
        if batch.points:
            yield batch

    def _send_metrics(self, run: RunPlan, dst_id: str) -> int:
        """Pipeline: a reader thread fills a bounded queue, this thread writes.  A run
        whose points fit in one batch is read here, with no thread (starting one per run
        was a twentieth of a small run's copy)."""
        if not run.delta.metric_keys:
            return 0
        stop = threading.Event()
        batches = self._points(run, dst_id, stop)
        first = next(batches, None)
        second = next(batches, None) if first is not None else None
        if second is None:
            return self._write_batch(dst_id, first) if first is not None else 0
        q: queue.Queue[object] = queue.Queue(maxsize=self.queue_batches)

        def put(item: object) -> None:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.2)
                    return
                except queue.Full:
                    continue

        def produce() -> None:
            try:
                put(second)
                for batch in batches:
                    put(batch)
                put(_DONE)
            except BaseException as exc:  # noqa: BLE001 - handed to the writer thread
                put(exc)

        reader = threading.Thread(target=produce, name=f"tb-read-{run.src.run_id[:8]}", daemon=True)
        reader.start()
        try:
            written = self._write_batch(dst_id, first)
            while True:
                item = q.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, Batch)
                written += self._write_batch(dst_id, item)
        finally:
            stop.set()
            reader.join(timeout=30)
        return written

    def _write_batch(self, dst_id: str, batch: Batch) -> int:
        if batch.rows is not None:
            self.retry.call(self.writer.log_rows, dst_id, batch.rows)
        else:
            log = self.writer.log_system_metrics if batch.system else self.writer.log_metrics
            self.retry.call(log, dst_id, batch.points)
        self.stats.add(points=len(batch))
        self.reporter.advance(points=len(batch))
        crash_point("mid_metrics")
        return len(batch)

    # -- files ----------------------------------------------------------------

    def _send_artifacts(self, run: RunPlan, dst_id: str) -> int:
        sent = 0
        ids = {run.src.run_id: dst_id}
        for info in run.delta.artifacts:
            with tempfile.TemporaryDirectory(prefix="tb-art-") as tmp:
                local = self.retry.call(self.src.download_artifact, run.src.run_id, info.path, Path(tmp))
                repoint_ids(local, ids)
                folder = str(PurePosixPath(info.path).parent)
                self.retry.call(self.writer.log_artifact, dst_id, local, None if folder == "." else folder)
                size = local.stat().st_size
            sent += size
            self.stats.add(artifacts=1, bytes=size)
            self.reporter.advance(bytes_=size)
            crash_point("mid_artifacts")
        return sent

    def _send_text(self, dst_id: str, path: str, text: str) -> int:
        """One file of trackbridge's own (full param values, overflow tags, the mapping)."""
        with tempfile.TemporaryDirectory(prefix="tb-param-") as tmp:
            local = Path(tmp) / PurePosixPath(path).name
            local.write_text(text, encoding="utf-8")
            self.retry.call(self.writer.log_artifact, dst_id, local, str(PurePosixPath(path).parent))
            return local.stat().st_size

    def _send_param_files(self, run: RunPlan, dst_id: str) -> int:
        sent = 0
        for path, text in run.delta.param_files.items():
            size = self._send_text(dst_id, path, text)
            sent += size
            self.stats.add(artifacts=1, bytes=size)
            self.reporter.advance(bytes_=size)
        return sent

    def _send_media(self, run: RunPlan, dst_id: str) -> int:
        """Media points the destination lacks: natively where it has the kind, else the
        whole series as files in :mod:`trackbridge.media_layout` (its index rewritten,
        the files it already has not sent again)."""
        view, sent = RichView(self.src, self.retry), 0
        for key, have in run.delta.media.items():
            points = view.points(run.src, key)
            native = run.media[key].kind in self.target.features.media_kinds
            with tempfile.TemporaryDirectory(prefix="tb-media-") as tmp:
                batch: list[tuple[MediaPoint, Path | None]] = []
                kept: list[MediaPoint] = []
                for number, point in enumerate(points):
                    local = None
                    if point.file and number >= have:
                        local = view.fetch(run.src, key, point, Path(tmp) / str(number))
                        sent += local.stat().st_size
                    if native:
                        if number >= have:
                            batch.append((point, local))
                        continue
                    path = media_layout.file_path(key, number, point.file) if point.file else None
                    if local is not None and path is not None:
                        folder = str(PurePosixPath(path).parent)
                        renamed = local.with_name(PurePosixPath(path).name)
                        local.rename(renamed)
                        self.retry.call(self.writer.log_artifact, dst_id, renamed, folder)
                    kept.append(replace(point, file=path))
                if native:
                    self.retry.call(self.writer.log_media, dst_id, key, batch)
                else:
                    sent += self._send_text(dst_id, media_layout.index_path(key), media_layout.encode(kept))
            self.stats.add(media=len(points) - have)
        return sent

    def _send_artifact_meta(self, run: RunPlan, dst_id: str) -> int:
        meta = run.delta.artifact_meta
        if not meta:
            return 0
        if self.target.can("artifact_meta"):
            self.retry.call(self.writer.set_artifact_meta, dst_id, meta)
            return 0
        return self._send_text(dst_id, ARTIFACT_META_FILE, json.dumps(meta, sort_keys=True, ensure_ascii=False,
                                                                      indent=1))

    def _send_models(self, run: RunPlan, dst_id: str) -> dict[str, str]:
        made: dict[str, str] = {}
        for model in run.delta.models:
            with tempfile.TemporaryDirectory(prefix="tb-model-") as tmp:
                local = self.retry.call(self.src.download_model, run.src.run_id, model, Path(tmp))
                repoint_ids(local, {run.src.run_id: dst_id})
                logged = self.retry.call(self.writer.log_model, dst_id, local, as_copy(model))
            if model.model_id and logged.model_id:
                made[model.model_id] = logged.model_id
            self.stats.add(models=1)
        return made
