"""Lightning: a ``Logger`` that logs through the facade.

``Trainer(logger=TrackbridgeLogger(project="mnist"))`` (or beside other loggers) logs:

* ``log_hyperparams`` (``save_hyperparameters()``, the datamodule's) -> params, nested
  dicts kept (flattened with ``.`` where the tracker is flat); values JSON cannot hold
  (a class, a tensor) as their text;
* ``log_metrics`` -> metrics at Lightning's step (``trainer.global_step``);
* ``after_save_checkpoint`` -> each new checkpoint file of the ``ModelCheckpoint`` (best,
  top-k) as an artifact under ``checkpoints/`` as it appears, and the rolling
  ``last.ckpt`` at ``finalize`` (``log_checkpoints=False`` to skip); at
  ``finalize("success")`` the best checkpoint (else the last) as the run's logged model
  ``model`` (``log_model=False`` to skip);
* ``finalize(status)`` -> the run's status: ``success``/``finished`` FINISHED, ``failed``
  FAILED (Lightning calls it at the end of each ``fit``/``validate``/``test``).

Everything runs on global rank zero only (``rank_zero_only``): other ranks neither start
a run nor log.  The run is the one given, else the run active when logging begins, else
one the logger starts and finishes at ``finalize``; a later ``trainer.test()`` with the same
logger then starts a new run (open a run around both to keep them in one).
"""
from __future__ import annotations

import json
from argparse import Namespace
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from trackbridge.facade.run import Run
from trackbridge.integrations._runs import RunHolder, numeric
from trackbridge.model import RunStatus

__all__ = ["TrackbridgeLogger"]

#: ``finalize`` status -> run status.
_STATUS = {"success": RunStatus.FINISHED, "finished": RunStatus.FINISHED, "failed": RunStatus.FAILED}


class TrackbridgeLogger(Logger):
    """A Lightning logger writing through trackbridge (see the module docstring)."""

    def __init__(
        self,
        run: Run | None = None,
        *,
        project: str | None = None,
        name: str | None = None,
        backend: str | None = None,
        tags: Mapping[str, Any] | None = None,
        log_checkpoints: bool = True,
        log_model: bool = True,
    ) -> None:
        super().__init__()
        self._project = project
        self._holder = RunHolder(run, project=project, name=name, backend=backend, tags=tags)
        self.log_checkpoints = log_checkpoints
        self.log_model = log_model
        #: checkpoint files logged so far (each goes once: see ``_log_checkpoints``).
        self._logged: set[str] = set()
        self._checkpoints: ModelCheckpoint | None = None

    @property
    def name(self) -> str:
        """The project (experiment) the run is in."""
        return self._project or (self._holder.run.project if self._holder.chosen else "Default")

    @property
    def version(self) -> str:
        """trackbridge's id of the run (the same on every backend it logs to)."""
        return self._holder.run.id if self._holder.chosen else ""

    @property
    @rank_zero_experiment
    def experiment(self) -> Run:
        """The trackbridge run itself, for logging what the hooks do not (``logger.experiment.log_artifact``)."""
        return self._holder.begin()

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params)
        if values:
            self._holder.begin().log_params({str(key): _jsonable(value) for key, value in values.items()})

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = numeric(metrics)
        if values:
            self._holder.begin().log_metrics(values, step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        self._checkpoints = checkpoint_callback
        if self.log_checkpoints:
            last = getattr(checkpoint_callback, "last_model_path", "")
            paths = {getattr(checkpoint_callback, "best_model_path", ""),
                     *getattr(checkpoint_callback, "best_k_models", {}).keys()}
            self._log_checkpoints(p for p in paths if p != last)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if not self._holder.chosen:
            return
        run_status = _STATUS.get(status, RunStatus.FAILED)
        callback, self._checkpoints = self._checkpoints, None
        if callback is not None and not self._holder.run.finished:
            if self.log_checkpoints:
                self._log_checkpoints([getattr(callback, "last_model_path", "")])
            best = getattr(callback, "best_model_path", "") or getattr(callback, "last_model_path", "")
            if self.log_model and run_status is RunStatus.FINISHED and best and Path(best).is_file():
                self._holder.run.log_model(best, name="model")
        self._holder.end(run_status)

    def _log_checkpoints(self, paths: Iterable[str]) -> None:
        """Each checkpoint file once, when it first exists.  Why once: the rolling
        ``last.ckpt`` is rewritten every save, and some trackers refuse a path logged
        twice in a run (W&B), so it is logged at ``finalize``, with its final content."""
        run = self._holder.begin()
        for path in sorted(p for p in paths if p and p not in self._logged and Path(p).is_file()):
            run.log_artifact(path, artifact_dir="checkpoints")
            self._logged.add(path)

    @property
    def save_dir(self) -> str | None:
        """None: checkpoints go under the trainer's ``default_root_dir`` (nothing is kept locally by us)."""
        return None


def _jsonable(value: Any) -> Any:
    """A hyper-parameter as a param value: JSON values as they are (dicts walked), others as text."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return str(value)
    return value
