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
4. artifacts one file at a time (``MLmodel`` files re-pointed to the new run),
   and the full values of params truncated to fit, as ``trackbridge/params/<key>.txt``
   (where the facade keeps them too);
5. logged models (download, re-point, ``log_model``);
6. final status and end time;
7. the mapping record and the completion marker ``trackbridge.complete`` =
   source fingerprint, in one ``set_tags`` call with the marker *last* (writers
   keep the order when they split a call, MLflow writes one batch atomically).

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

import math
import os
import queue
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from trackbridge.backends.base import Reader, Writer
from trackbridge.model import MetricPoint
from trackbridge.sync.delta import missing_points
from trackbridge.sync.plan import Action, RunPlan
from trackbridge.sync.progress import Reporter, Stats
from trackbridge.sync.provenance import COMPLETE, provenance_tags
from trackbridge.sync.retry import Retry

CRASH_ENV = "TRACKBRIDGE_CRASH_AT"
MLMODEL = "MLmodel"
_DONE = object()


def crash_point(name: str) -> None:
    """Die like ``kill -9`` if the test hook names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(137)


def repoint_ids(path: Path, ids: Mapping[str, str]) -> None:
    """Rewrite source ids (``run_id: <src>``, ``runs:/<src>/...``) in every ``MLmodel``
    file under ``path`` so a copied model names the destination run."""
    files = [path] if path.is_file() else list(path.rglob(MLMODEL)) if path.is_dir() else []
    for file in files:
        if file.name != MLMODEL:
            continue
        text = file.read_text(encoding="utf-8")
        new = text
        for old, replacement in ids.items():
            if old and replacement:
                new = new.replace(old, replacement)
        if new != text:
            file.write_text(new, encoding="utf-8")


@dataclass
class Batch:
    """Metric points for one write call; ``system`` selects ``log_system_metrics``."""

    system: bool
    points: list[tuple[str, MetricPoint]] = field(default_factory=list)


@dataclass
class RunResult:
    plan: RunPlan
    dst_run_id: str | None = None
    error: str | None = None
    points: int = 0
    bytes: int = 0
    #: source logged-model id -> destination logged-model id
    models: dict[str, str] = field(default_factory=dict)

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
        *,
        stats: Stats,
        reporter: Reporter,
        retry: Retry,
        page_size: int = 10_000,
        queue_batches: int = 8,
    ) -> None:
        self.src, self.dst, self.writer = src, dst, writer
        self.stats, self.reporter, self.retry = stats, reporter, retry
        self.page_size, self.queue_batches = page_size, queue_batches

    def transfer(self, run: RunPlan, experiment_id: str, dst_parent: str | None) -> RunResult:
        result = RunResult(run)
        src, delta, fitted = run.src, run.delta, run.fitted
        tags = delta.tags
        if run.dst is None:
            result.dst_run_id = self.retry.call(
                self.writer.create_run, experiment_id, name=src.name, start_time=src.start_time, user=src.user,
                parent_run_id=dst_parent, tags={**provenance_tags(src), **tags},
            )
            tags = {}
            crash_point("after_create")
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
            self.retry.call(self.writer.set_labels, dst_id, delta.labels)
        if delta.summary:
            self.retry.call(self.writer.log_summary, dst_id, delta.summary)
        if delta.notes is not None:
            self.retry.call(self.writer.set_notes, dst_id, delta.notes)
        if delta.inputs:
            self.retry.call(self.writer.log_inputs, dst_id, delta.inputs)
        self.stats.add(params=len(delta.params), tags=len(delta.tags))

        result.points = self._send_metrics(run, dst_id)
        crash_point("after_metrics")
        result.bytes = self._send_artifacts(run, dst_id) + self._send_param_files(run, dst_id)
        result.models = self._send_models(run, dst_id)
        if delta.finish:
            self.retry.call(self.writer.finish_run, dst_id, src.status, src.end_time)
        crash_point("before_complete")
        self.retry.call(self.writer.set_tags, dst_id, {**fitted.record.to_tag(), COMPLETE: run.fingerprint})
        return result

    # -- metrics --------------------------------------------------------------

    def _points(self, run: RunPlan, dst_id: str, stop: threading.Event) -> Iterator[Batch]:
        """Batches of (destination key, point) still missing at the destination;
        a batch holds user or system metrics, never both."""
        size = max(1, self.writer.limits.max_metrics_per_batch)
        allows_nan = self.writer.limits.allows_nan
        batch = Batch(False)
        for key in run.delta.metric_keys:
            system = key in run.src.system_metrics
            if system != batch.system:
                if batch.points:
                    yield batch
                batch = Batch(system)
            dst_key = run.fitted.metric_keys[key]
            present = key in run.delta.metric_keys_present
            pages = missing_points(self.src, run.src.run_id, key, self.dst if present else None,
                                   dst_id if present else None, dst_key, self.page_size, self.retry)
            nan_dropped = 0
            for page in pages:
                for point in page:
                    if not allows_nan and math.isnan(point.value):
                        nan_dropped += 1
                        continue
                    batch.points.append((dst_key, point))
                    if len(batch.points) >= size:
                        yield batch
                        batch = Batch(system)
                if stop.is_set():
                    return
            if nan_dropped:
                run.fitted.record.dropped[f"metric:{dst_key}"] = (
                    f"{nan_dropped} NaN point(s): destination cannot store NaN")
        if batch.points:
            yield batch

    def _send_metrics(self, run: RunPlan, dst_id: str) -> int:
        """Pipeline: a reader thread fills a bounded queue, this thread writes."""
        if not run.delta.metric_keys:
            return 0
        q: queue.Queue[object] = queue.Queue(maxsize=self.queue_batches)
        stop = threading.Event()

        def put(item: object) -> None:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.2)
                    return
                except queue.Full:
                    continue

        def produce() -> None:
            try:
                for batch in self._points(run, dst_id, stop):
                    put(batch)
                put(_DONE)
            except BaseException as exc:  # noqa: BLE001 - handed to the writer thread
                put(exc)

        reader = threading.Thread(target=produce, name=f"tb-read-{run.src.run_id[:8]}", daemon=True)
        reader.start()
        written = 0
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, Batch)
                log = self.writer.log_system_metrics if item.system else self.writer.log_metrics
                self.retry.call(log, dst_id, item.points)
                written += len(item.points)
                self.stats.add(points=len(item.points))
                self.reporter.advance(points=len(item.points))
                crash_point("mid_metrics")
        finally:
            stop.set()
            reader.join(timeout=30)
        return written

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

    def _send_param_files(self, run: RunPlan, dst_id: str) -> int:
        sent = 0
        for path, text in run.delta.param_files.items():
            with tempfile.TemporaryDirectory(prefix="tb-param-") as tmp:
                local = Path(tmp) / PurePosixPath(path).name
                local.write_text(text, encoding="utf-8")
                self.retry.call(self.writer.log_artifact, dst_id, local, str(PurePosixPath(path).parent))
                size = local.stat().st_size
            sent += size
            self.stats.add(artifacts=1, bytes=size)
            self.reporter.advance(bytes_=size)
        return sent

    def _send_models(self, run: RunPlan, dst_id: str) -> dict[str, str]:
        made: dict[str, str] = {}
        for model in run.delta.models:
            with tempfile.TemporaryDirectory(prefix="tb-model-") as tmp:
                local = self.retry.call(self.src.download_model, run.src.run_id, model, Path(tmp))
                repoint_ids(local, {run.src.run_id: dst_id})
                logged = self.retry.call(self.writer.log_model, dst_id, local, model.name)
            if model.model_id and logged.model_id:
                made[model.model_id] = logged.model_id
            self.stats.add(models=1)
        return made
