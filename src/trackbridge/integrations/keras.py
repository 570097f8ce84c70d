"""Keras 3: a ``keras.callbacks.Callback`` that logs training through the facade.

``model.fit(..., callbacks=[TrackbridgeCallback()])`` logs, whatever the Keras backend
(JAX, PyTorch, TensorFlow):

* at ``on_train_begin``: params ``epochs``, ``steps`` (batches per epoch), ``batch_size``
  when Keras knows it, the optimizer's class and config (``optimizer.learning_rate``...),
  and the model's parameter count;
* every ``log_every_n_batches`` training batches: the batch logs as ``batch/<name>``
  (``batch/loss``...) at the global batch number;
* at each epoch end: the epoch logs (``loss``, ``val_loss``, metrics) at the epoch number;
* at ``on_train_end``: the trained model, saved in Keras' own ``.keras`` format, as the
  run's logged model ``model_name`` (``log_model=False`` to skip it).

Why Keras' own format: it is what ``keras.saving.load_model`` reads back on any backend.
The run is the one given, else the active run, else one the callback starts at
``on_train_begin`` and finishes at ``on_train_end``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import keras

from trackbridge.facade.run import Run
from trackbridge.integrations._runs import RunHolder, numeric

__all__ = ["TrackbridgeCallback"]


class TrackbridgeCallback(keras.callbacks.Callback):
    """Log a Keras ``fit`` through trackbridge (see the module docstring)."""

    def __init__(
        self,
        run: Run | None = None,
        *,
        project: str | None = None,
        name: str | None = None,
        backend: str | None = None,
        log_every_n_batches: int = 1,
        log_model: bool = True,
        model_name: str = "model",
    ) -> None:
        super().__init__()
        if log_every_n_batches < 0:
            raise ValueError("log_every_n_batches must be >= 0 (0: no batch metrics)")
        self._holder = RunHolder(run, project=project, name=name, backend=backend)
        self.log_every_n_batches = log_every_n_batches
        self.log_model = log_model
        self.model_name = model_name
        self._batch = 0  # global training batch number, across epochs

    @property
    def run(self) -> Run:
        """The run this callback logs to."""
        return self._holder.run

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        run = self._holder.begin()
        params: dict[str, Any] = {key: value for key, value in (self.params or {}).items()
                                  if key in ("epochs", "steps", "batch_size") and value is not None}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            config = {key: value for key, value in optimizer.get_config().items()
                      if isinstance(value, (int, float, str, bool)) and key != "name"}
            params["optimizer"] = {"class": type(optimizer).__name__, **config}
        params["model"] = {"name": self.model.name, "params": int(self.model.count_params())}
        run.log_params(params)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = self._batch
        self._batch += 1
        if self.log_every_n_batches and step % self.log_every_n_batches == 0:
            values = numeric(logs)
            if values:
                self._holder.run.log_metrics({f"batch/{key}": value for key, value in values.items()}, step=step)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = numeric(logs)
        if values:
            self._holder.run.log_metrics(values, step=epoch)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.log_model:
            with tempfile.TemporaryDirectory(prefix="trackbridge-keras-") as folder:
                path = Path(folder) / self.model_name
                path.mkdir()
                self.model.save(path / f"{self.model.name}.keras")
                self._holder.run.log_model(path, name=self.model_name)  # copied before it returns
        self._holder.end()
