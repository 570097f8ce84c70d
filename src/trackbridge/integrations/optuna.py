"""Optuna: a study as a parent run, each trial a nested run, through the facade.

Optuna calls any ``callback(study, frozen_trial)`` given to ``study.optimize(callbacks=[...])``
once a trial has ended (completed, pruned, or failed under ``catch=``).  Why ours rather
than Optuna's: optuna-integration 4.9 deprecates its MLflow and W&B callbacks in favour of
OptunaHub, each talks to one tracker, and neither survives a killed process; this one goes
through ``trackbridge.start_run``, so the tracker is ``TRACKBRIDGE_BACKEND`` (any backend,
or several), and a sweep killed mid-trial is finished by ``trackbridge replay``.

Per trial run: the sampled params, ``user_attrs.*`` params, the objective value(s) as
metrics, the intermediate values (``trial.report``) as a series by step, the duration,
and the trial's state as tag ``optuna.state`` (``COMPLETE``, ``PRUNED``, ``FAIL``) and as
the run's status (FINISHED, KILLED, FAILED).  Per study run: the direction(s), sampler and
pruner as params, and by trial number the series of each value and of the best value.
"""
from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

import trackbridge as tb
from trackbridge.facade.run import Run
from trackbridge.model import RunStatus

__all__ = ["TrackbridgeCallback", "STATUS_OF_STATE"]

log = logging.getLogger("trackbridge")

#: the run status each ended trial state gets (the exact state is also kept in tag ``optuna.state``).
STATUS_OF_STATE: Mapping[TrialState, RunStatus] = {
    TrialState.COMPLETE: RunStatus.FINISHED,
    TrialState.PRUNED: RunStatus.KILLED,
    TrialState.FAIL: RunStatus.FAILED,
}

_Objective = TypeVar("_Objective", bound=Callable[..., Any])


class TrackbridgeCallback:
    """``study.optimize(objective, callbacks=[TrackbridgeCallback()])``.

    ``metric_name``: the objective's name (one per objective for a multi-objective study;
    default ``value``, or ``values_0``, ``values_1``... ).  ``intermediate_name``: the series
    ``trial.report(value, step)`` goes to.  ``project``, ``backend`` and ``tags`` are passed
    to :func:`trackbridge.start_run` for the study run (trials inherit project and backend).

    The study run is started at the first trial that ends (or that :meth:`track_in_run`
    starts) and stays open until :meth:`finish` — use the callback as a context manager —
    or the process exits (the facade finishes open runs then).
    """

    def __init__(
        self,
        metric_name: str | Sequence[str] | None = None,
        *,
        project: str | None = None,
        backend: str | None = None,
        tags: Mapping[str, Any] | None = None,
        intermediate_name: str = "intermediate_value",
    ) -> None:
        self.metric_name = metric_name
        self.project = project
        self.backend = backend
        self.tags = dict(tags or {})
        self.intermediate_name = intermediate_name
        self.study_run: Run | None = None
        self._trials: dict[int, Run] = {}
        #: trial runs ended without waiting for their backends (flushed by :meth:`finish`).
        self._ended: list[Run] = []
        #: (trial number, params, metric name, value) of the best trial so far: the study's summary at the end.
        self._best: tuple[int, dict[str, Any], str, float] | None = None
        self._lock = threading.RLock()

    # -- Optuna's callback ----------------------------------------------------

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Log one ended trial as a nested run of the study's run, then finish that run."""
        params: dict[str, Any] = dict(trial.params)
        if trial.user_attrs:
            params["user_attrs"] = dict(trial.user_attrs)
        tags = {"optuna.state": trial.state.name}
        if trial.datetime_start is not None:
            tags["optuna.datetime_start"] = trial.datetime_start.isoformat()
        if trial.datetime_complete is not None:
            tags["optuna.datetime_complete"] = trial.datetime_complete.isoformat()
        with self._lock:
            run = self._trials.pop(trial.number, None)
            if run is None:  # created here, all at once: fewer operations for the backend
                run = self._start_trial(study, trial.number, params, tags)
                params, tags = {}, {}
        names = self._names(study)
        try:
            if params:
                run.log_params(params)
            if tags:
                run.set_tags(tags)
            for step, value in sorted(trial.intermediate_values.items()):
                run.log_metrics({self.intermediate_name: value}, step=step)
            values = dict(zip(names, trial.values)) if trial.values is not None else {}
            if trial.duration is not None:
                values["duration_s"] = trial.duration.total_seconds()
            if values:
                run.log_metrics(values, step=0)
        finally:
            # not waiting for the backend: the next trial starts at once, and finish() flushes
            run.finish(STATUS_OF_STATE.get(trial.state, RunStatus.FINISHED), wait=False)
            with self._lock:
                self._ended.append(run)
        self._log_study(study, trial, names)

    # -- logging from inside the objective --------------------------------------

    def track_in_run(self, objective: _Objective) -> _Objective:
        """Decorate the objective so that its trial's run is open while it runs: what it
        logs with ``tb.log_metrics(...)`` (or ``callback.run_for(trial)``, exact when
        ``n_jobs > 1`` runs trials in threads) lands in the trial's run, and the callback
        completes that run when the trial ends."""

        @functools.wraps(objective)
        def tracked(trial: Trial, *args: Any, **kwargs: Any) -> Any:
            self.run_for(trial)
            return objective(trial, *args, **kwargs)

        return tracked  # type: ignore[return-value]

    def run_for(self, trial: Trial | FrozenTrial) -> Run:
        """The run of a trial that has not ended yet, started on first use."""
        with self._lock:
            run = self._trials.get(trial.number)
            if run is None:
                study = getattr(trial, "study", None)
                if study is None:
                    raise ValueError("run_for needs a live optuna Trial (the one the objective receives)")
                run = self._trials[trial.number] = self._start_trial(study, trial.number)
            return run

    # -- lifecycle ------------------------------------------------------------

    def finish(self, status: RunStatus = RunStatus.FINISHED) -> None:
        """Wait until every trial run is at its backends, then finish the study run.  A trial run still open (its trial raised out of
        ``optimize``, so Optuna never called the callback for it) is finished FAILED."""
        with self._lock:
            leftovers, self._trials = list(self._trials.values()), {}
            ended, self._ended = self._ended, []
            study_run, self.study_run = self.study_run, None
        for run in leftovers:
            run.set_tags({"optuna.state": TrialState.FAIL.name})
            run.finish(RunStatus.FAILED, wait=False)
        for run in ended + leftovers:
            run.flush()
        if study_run is not None:
            best, self._best = self._best, None
            if best is not None:
                number, params, key, value = best
                study_run.log_summary({"best_trial": number, "best_params": params, key: value})
            study_run.finish(status)

    def __enter__(self) -> "TrackbridgeCallback":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.finish(RunStatus.KILLED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED)

    # -- internals --------------------------------------------------------------

    def _study_run(self, study: optuna.Study) -> Run:
        """The study's run, started on first use (call with the lock held)."""
        if self.study_run is None:
            directions = [d.name.lower() for d in study.directions]
            config = {
                "optuna": {
                    "direction": directions[0] if len(directions) == 1 else directions,
                    "sampler": type(study.sampler).__name__,
                    "pruner": type(study.pruner).__name__,
                }
            }
            tags = {"optuna.study_name": study.study_name, **self.tags}
            self.study_run = tb.start_run(project=self.project, name=study.study_name, config=config,
                                          backend=self.backend, tags=tags)
        return self.study_run

    def _start_trial(self, study: optuna.Study, number: int, params: Mapping[str, Any] | None = None,
                     tags: Mapping[str, str] | None = None) -> Run:
        """A nested run for trial ``number`` (call with the lock held).  ``parent`` is named,
        not taken from the active-run stack, so trials run in threads nest correctly."""
        parent = self._study_run(study)
        tags = {"optuna.study_name": study.study_name, "optuna.trial_number": str(number), **(tags or {})}
        return tb.start_run(name=f"trial-{number}", parent=parent, backend=self.backend, tags=tags,
                            config=params or None)

    def _names(self, study: optuna.Study) -> list[str]:
        """One metric name per objective."""
        count = len(study.directions)
        if self.metric_name is None:
            return ["value"] if count == 1 else [f"values_{i}" for i in range(count)]
        names = [self.metric_name] if isinstance(self.metric_name, str) else list(self.metric_name)
        if len(names) != count:
            raise ValueError(f"metric_name gives {len(names)} names for a study of {count} objectives")
        return names

    def _log_study(self, study: optuna.Study, trial: FrozenTrial, names: list[str]) -> None:
        """The study run's series by trial number: each value, and the best so far (one objective)."""
        with self._lock:
            run = self._study_run(study)
        points: dict[str, float] = {}
        if trial.values is not None:
            points.update(zip(names, trial.values))
        if len(names) == 1:
            try:
                best = study.best_trial
            except ValueError:  # no completed trial yet
                best = None
            if best is not None and best.value is not None:
                points[f"best_{names[0]}"] = best.value
                self._best = (best.number, best.params, f"best_{names[0]}", best.value)
        if points:
            run.log_metrics(points, step=trial.number)
