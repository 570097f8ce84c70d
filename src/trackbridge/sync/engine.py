"""Orchestration of ``copy``/``sync``: plan, transfer runs in parallel, registry, deletions.

Runs are transferred by a thread pool (``transfers`` runs at a time, each with
its own reader thread for metric history).  Parents go before their children,
in waves by nesting depth, so a child is created with its destination parent
id.  A failed run does not stop the others; its children are not attempted
(they would lose their parent link).  Deletions (``sync --delete``) run last,
only if nothing failed in this invocation and only within ``max_delete``.
"""
from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from trackbridge.backends.base import Backend, Limits, Writer
from trackbridge.errors import TrackbridgeError
from trackbridge.mapping import TRUNCATE
from trackbridge.sync.fit import Target
from trackbridge.sync.ledger import Ledger
from trackbridge.sync.models import pair_models
from trackbridge.sync.provenance import COMPLETE
from trackbridge.sync.plan import Action, Plan, Planner, RunPlan, Selection
from trackbridge.sync.progress import NullReporter, Reporter, Stats
from trackbridge.sync.registry import apply_registry
from trackbridge.sync.retry import Retry
from trackbridge.sync.transfer import RunResult, RunTransfer


@dataclass
class Options:
    mode: str = "sync"  # copy | sync
    transfers: int = 4
    dry_run: bool = False
    delete: bool = False
    max_delete: int = 0
    exact_points: bool = False
    long_values: str = TRUNCATE
    page_size: int = 10_000


@dataclass
class Outcome:
    plan: Plan
    stats: Stats
    results: list[RunResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "stats": self.stats.as_dict(),
            "errors": self.errors,
            "deleted": self.deleted,
            "runs": [{"action": r.plan.action.value, "src_run_id": r.plan.src.run_id, "dst_run_id": r.dst_run_id,
                      "name": r.plan.src.name, "experiment": r.plan.src.experiment, "points": r.points,
                      "bytes": r.bytes, "error": r.error} for r in self.results],
        }


def waves(runs: Iterable[RunPlan]) -> list[list[RunPlan]]:
    """Runs grouped by nesting depth among the selected runs (parents first)."""
    runs = list(runs)
    by_id = {r.src.run_id: r for r in runs}
    depth: dict[str, int] = {}

    def depth_of(run: RunPlan, seen: frozenset[str] = frozenset()) -> int:
        rid = run.src.run_id
        if rid not in depth:
            parent = by_id.get(run.src.parent_run_id or "")
            depth[rid] = 0 if parent is None or rid in seen else depth_of(parent, seen | {rid}) + 1
        return depth[rid]

    groups: dict[int, list[RunPlan]] = {}
    for run in runs:
        groups.setdefault(depth_of(run), []).append(run)
    return [groups[d] for d in sorted(groups)]


def target_of(src: Backend, dst: Backend, limits: Limits | None = None) -> Target:
    """The :class:`Target` of a copy from ``src`` into ``dst``: its Features and its writer's
    limits (``dst.limits()`` unless given), with no writer opened."""
    return Target(dst.features, limits or dst.limits(), same_store=src.describe() == dst.describe(),
                  source_tag_prefixes=src.features.system_tag_prefixes)


class SyncEngine:
    """One copy/sync invocation between two opened backends."""

    def __init__(
        self,
        src: Backend,
        dst: Backend,
        options: Options,
        *,
        ledger: Ledger | None = None,
        reporter: Reporter | None = None,
        retry: Retry | None = None,
    ) -> None:
        self.src_backend, self.dst_backend = src, dst
        self.options = options
        self.ledger = ledger
        self.reporter = reporter or NullReporter()
        self.retry = retry or Retry()
        #: counters of this invocation, planning included (elapsed time, retries).
        self.stats = Stats()
        self.retry.on_retry = lambda error, delay: self.stats.add(retries=1)
        self.src = src.reader()
        self.dst = dst.reader()
        self._writer: Writer | None = None
        #: source run id -> destination run id, filled as runs complete.
        self.run_map: dict[str, str] = {}
        #: this invocation's id, on every run and model version it creates: concurrent
        #: invocations settle on one copy each (see ``RunTransfer._settle``).
        self.claim = uuid.uuid4().hex

    @property
    def writer(self) -> Writer:
        """The destination's writer, opened when something is written (a plan opens none)."""
        if self._writer is None:
            self._writer = self.dst_backend.writer()
        return self._writer

    @property
    def target(self) -> Target:
        """What the destination can hold, from its backend's Features and Limits."""
        return target_of(self.src_backend, self.dst_backend)

    def _planner(self) -> Planner:
        o = self.options
        return Planner(self.src, self.dst, self.target, mode=o.mode, workers=o.transfers,
                       exact_points=o.exact_points, delete=o.delete, long_values=o.long_values, retry=self.retry)

    def plan(self, selection: Selection) -> Plan:
        return self._planner().plan(selection)

    def run(self, selection: Selection, plan: Plan | None = None) -> Outcome:
        """Copy/sync the selection.  Without a ``plan`` given, each run is copied as
        soon as it is planned (:meth:`Planner.stream`); with one, its runs are."""
        runs: Iterable[RunPlan]
        if plan is None:
            plan = Plan(self.options.mode)
            runs = self._planner().stream(selection, plan)
        else:
            runs = plan.runs
        outcome = Outcome(plan, self.stats, dry_run=self.options.dry_run)
        if self.options.dry_run:
            for _run in runs:
                pass
            self._planned(outcome)
            return outcome
        src_key, dst_key = self.src_backend.describe(), self.dst_backend.describe()
        invocation = self.ledger.start_invocation(self.options.mode, src_key, dst_key) if self.ledger else 0
        try:
            self._transfer_all(runs, outcome)
            self._planned(outcome)
            self._registry(plan, outcome)
            self._delete(plan, outcome)
        finally:
            self.reporter.close()
            if self._writer is not None:  # nothing to write (an empty source) opens no writer
                self._writer.close()
            self.src.close()
            self.dst.close()
            if self.ledger:
                self._record(plan, outcome, src_key, dst_key)
                self.ledger.finish_invocation(invocation, outcome.to_json()["stats"])
        return outcome

    @staticmethod
    def _planned(outcome: Outcome) -> None:
        """What the complete plan says about the invocation: runs selected, runs the
        destination cannot take (their errors come first)."""
        plan = outcome.plan
        outcome.stats.runs_selected = len(plan.runs)
        outcome.errors[:0] = [f"{r.label}: {e}" for r in plan.runs for e in r.fitted.errors]

    # -- runs -----------------------------------------------------------------

    def _transfer_all(self, runs: Iterable[RunPlan], outcome: Outcome) -> None:
        """Transfer the runs that write, as they come: a run without a parent at once,
        nested runs after every other run (then in waves, parents first), so a child is
        created with its parent's destination id and a run whose parent is not selected
        has been recorded so by the complete plan (:meth:`Planner._orphans`)."""
        plan, stats = outcome.plan, outcome.stats
        self.reporter.start(0, None, None)
        experiment_ids: dict[str, str] = {}
        failed: set[str] = set()
        made: list[RunTransfer] = []

        def transfer() -> RunTransfer:
            """Made at the first run that writes: a source with nothing to copy opens no
            writer (an MLflow store would be created by it)."""
            if not made:
                made.append(RunTransfer(self.src, self.dst, self.writer, self.target, stats=stats,
                                        reporter=self.reporter, retry=self.retry,
                                        page_size=self.options.page_size, claim=self.claim))
            return made[0]

        nested: list[RunPlan] = []
        with ThreadPoolExecutor(max(1, self.options.transfers), thread_name_prefix="tb-run") as pool:
            # a few runs queued beyond those in flight, so the pool never waits for the planner
            # and a stop (Ctrl-C) leaves only those few to finish
            inflight: deque[Future[RunResult]] = deque()
            limit = 2 * max(1, self.options.transfers)
            try:
                for run in runs:
                    if not run.action.writes:
                        stats.add(runs_skipped=1)
                    elif run.fitted.errors:
                        stats.add(runs_failed=1)
                    elif run.src.parent_run_id:
                        nested.append(run)
                        self.reporter.more(1, run.points, run.bytes)
                    else:
                        self.reporter.more(1, run.points, run.bytes)
                        self._ensure_experiment(run, plan, experiment_ids)
                        inflight.append(pool.submit(self._one, transfer(), run, experiment_ids, failed))
                        while inflight and (inflight[0].done() or len(inflight) > limit):
                            self._done(inflight.popleft().result(), outcome, failed)
            finally:
                while inflight:
                    self._done(inflight.popleft().result(), outcome, failed)
            self.reporter.planned()
            self.run_map.update({k: v for k, v in plan.known.items() if k not in self.run_map})
            for wave in waves(nested):
                for run in wave:
                    self._ensure_experiment(run, plan, experiment_ids)
                current = transfer()
                for result in list(pool.map(lambda r: self._one(current, r, experiment_ids, failed), wave)):
                    self._done(result, outcome, failed)

    def _ensure_experiment(self, run: RunPlan, plan: Plan, experiment_ids: dict[str, str]) -> None:
        """The destination experiment of ``run``, created before its first run."""
        name = run.dst_experiment
        if name not in experiment_ids:
            experiment_ids[name] = self.retry.call(self.writer.ensure_experiment, name, plan.experiments[name])

    def _done(self, result: RunResult, outcome: Outcome, failed: set[str]) -> None:
        outcome.results.append(result)
        if result.ok and result.dst_run_id:
            self.run_map[result.plan.src.run_id] = result.dst_run_id
        else:
            failed.add(result.plan.src.run_id)
            outcome.errors.append(f"{result.plan.label}: {result.error}")

    def _one(self, transfer: RunTransfer, run: RunPlan, experiment_ids: dict[str, str], failed: set[str]) -> RunResult:
        parent = run.src.parent_run_id
        if parent and parent in failed:
            result = RunResult(run, error=f"not attempted: its parent run {parent} failed")
        else:
            try:
                result = transfer.transfer(run, experiment_ids[run.dst_experiment], self.run_map.get(parent or ""))
            except TrackbridgeError as exc:
                result = RunResult(run, error=str(exc))
            except Exception as exc:  # noqa: BLE001 - one run's bug must not abort the others
                result = RunResult(run, error=f"{type(exc).__name__}: {exc}")
            self.src.release(run.src.run_id)
            if result.dst_run_id:
                self.dst.release(result.dst_run_id)
        counter = {Action.CREATE: "runs_created", Action.RESUME: "runs_resumed", Action.UPDATE: "runs_updated"}
        if result.handed_over:
            transfer.stats.add(runs_skipped=1)
            self.reporter.run_done("skipped", run.label, f"copied at the same time by another invocation, "
                                                         f"as {result.dst_run_id}")
            return result
        transfer.stats.add(**{counter[run.action] if result.ok else "runs_failed": 1})
        self.reporter.run_done(run.action.value if result.ok else "failed", run.label,
                               result.error or f"{result.points:,} points, {result.bytes:,} bytes")
        return result

    # -- registry and deletions -----------------------------------------------

    def _model_map(self, plan: Plan, outcome: Outcome) -> dict[str, str]:
        """Source logged-model id -> destination one, for runs copied now or before."""
        found: dict[str, str] = {}
        for run in plan.runs:
            if run.dst is not None:
                pairs, _extra = pair_models(run.src.models, run.dst.models)
                for model, copy in pairs:
                    if model.model_id and copy is not None and copy.model_id:
                        found[model.model_id] = copy.model_id
        for result in outcome.results:
            found.update(result.models)
        return found

    def _handed_over(self, outcome: Outcome, models: dict[str, str]) -> frozenset[str]:
        """Source runs another invocation is still copying (their copy not complete yet).
        The models of those it has finished are added to ``models`` (source -> destination
        model id), so this invocation can register versions of them too."""
        pending = set()
        for result in outcome.results:
            if not result.handed_over or not result.dst_run_id:
                continue
            copy = self.retry.call(self.dst.get_run, result.dst_run_id)
            if not copy.tags.get(COMPLETE):
                pending.add(result.plan.src.run_id)
                continue
            pairs, _extra = pair_models(result.plan.src.models, copy.models)
            models.update({m.model_id: c.model_id for m, c in pairs if m.model_id and c is not None and c.model_id})
        return frozenset(pending)

    def _registry(self, plan: Plan, outcome: Outcome) -> None:
        if not any(m.writes for m in plan.registry):
            return
        src_key, dst_key = self.src_backend.describe(), self.dst_backend.describe()

        def on_version(name: str, src_version: str, dst_version: str) -> None:
            if self.ledger:
                self.ledger.record_version(src_key, name, src_version, dst_key, dst_version)

        try:
            models = self._model_map(plan, outcome)
            created, aliases, errors = apply_registry(
                plan.registry, self.writer, self.run_map, models, self.retry, on_version,
                dst=self.dst, claim=self.claim, can_delete=self.target.can("version_deletion"),
                elsewhere=self._handed_over(outcome, models))
        except TrackbridgeError as exc:
            outcome.errors.append(f"registry: {exc}")
            return
        outcome.stats.add(model_versions=created, aliases=aliases)
        outcome.errors.extend(f"registry: {e}" for e in errors)

    def _delete(self, plan: Plan, outcome: Outcome) -> None:
        if not plan.deletions:
            return
        n, limit = len(plan.deletions), self.options.max_delete
        if outcome.errors:
            outcome.errors.append(f"not deleting {n} destination run(s): this sync had errors; fix them and re-run")
            return
        if n > limit:
            outcome.errors.append(
                f"refusing to delete {n} destination run(s) whose source is gone: more than --max-delete {limit}. "
                f"Check with 'trackbridge plan --delete', then re-run with --max-delete {n}."
            )
            return
        for deletion in plan.deletions:
            self.retry.call(self.writer.delete_run, deletion.dst.run_id)
            outcome.deleted.append(deletion.dst.run_id)
            outcome.stats.add(runs_deleted=1)

    def _record(self, plan: Plan, outcome: Outcome, src_key: str, dst_key: str) -> None:
        assert self.ledger is not None
        done = {r.plan.src.run_id: r.dst_run_id for r in outcome.results if r.ok and r.dst_run_id}
        rows = []
        for run in plan.runs:
            dst_id = done.get(run.src.run_id)
            if dst_id is None and run.action == Action.UNCHANGED and run.dst is not None:
                dst_id = run.dst.run_id
            if dst_id:
                rows.append((run.src.run_id, dst_id, run.fingerprint))
        self.ledger.record_runs(src_key, dst_key, rows)
        self.ledger.forget_runs(src_key, dst_key, [d.source_run_id for d in plan.deletions
                                                   if d.dst.run_id in outcome.deleted])
