"""Hugging Face ``Trainer``: a ``TrainerCallback`` that logs through the facade.

``report_to=`` takes only the integrations transformers ships, so a third-party tracker
is a callback: ``Trainer(..., report_to=[], callbacks=[TrackbridgeCallback()])``.  It logs:

* ``on_train_begin``: the ``TrainingArguments`` as params ``args.*`` and the model's
  config as ``model_config.*`` (both as their own ``to_json_string`` gives them, so every
  value is one JSON can hold);
* ``on_log``: the numbers of each log dict at ``state.global_step``;
* ``on_save``: the checkpoint folder ``checkpoint-<step>`` as artifacts under
  ``checkpoints/checkpoint-<step>/``;
* ``on_train_end``: the run finished (when the callback started it).

Only the world process zero logs.  The run is the one given, else the active run, else one
the callback starts at ``on_train_begin``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from trackbridge.facade.run import Run
from trackbridge.integrations._runs import RunHolder, numeric

__all__ = ["TrackbridgeCallback"]

#: transformers' folder name for a checkpoint (``transformers.trainer_utils.PREFIX_CHECKPOINT_DIR``).
CHECKPOINT_PREFIX = "checkpoint"


class TrackbridgeCallback(TrainerCallback):
    """Log a ``Trainer`` run through trackbridge (see the module docstring)."""

    def __init__(
        self,
        run: Run | None = None,
        *,
        project: str | None = None,
        name: str | None = None,
        backend: str | None = None,
        log_checkpoints: bool = True,
    ) -> None:
        self._holder = RunHolder(run, project=project, name=name, backend=backend)
        self.log_checkpoints = log_checkpoints

    @property
    def run(self) -> Run:
        """The run this callback logs to."""
        return self._holder.run

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        params: dict[str, Any] = {"args": json.loads(args.to_json_string())}
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "to_json_string"):
            params["model_config"] = json.loads(config.to_json_string(use_diff=False))
        self._holder.begin().log_params(params)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        values = numeric(logs)
        if values:
            self._holder.begin().log_metrics(values, step=state.global_step)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not (state.is_world_process_zero and self.log_checkpoints):
            return
        name = f"{CHECKPOINT_PREFIX}-{state.global_step}"
        folder = Path(args.output_dir) / name
        if folder.is_dir():
            self._holder.begin().log_artifact(folder, artifact_dir=f"checkpoints/{name}")

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self._holder.end()
