"""Keras 3 (on the PyTorch backend, CPU: the dev extra's torch) through the callback: a
tiny real model, read back from embedded MLflow (params, epoch and batch series, the
saved model loading again and predicting the same) and from W&B offline runs; and a
training process killed with SIGKILL mid-epoch, finished by ``trackbridge replay``."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before Keras is imported: its backend is fixed then
keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")

from click.testing import CliRunner  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from facade_helpers import stop_facade_workers  # noqa: E402,F401  (autouse fixture)
from wandb_helpers import sdk_sockets  # noqa: E402,F401  (fixture)

import trackbridge as tb  # noqa: E402
from trackbridge.backends import get_backend  # noqa: E402
from trackbridge.cli import main  # noqa: E402
from trackbridge.integrations.keras import TrackbridgeCallback  # noqa: E402

EPOCHS, BATCHES = 3, 4


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((BATCHES * 8, 4), dtype=np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype=np.float32))


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)],
                             name="tiny")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    return model


def test_fit_arrives_in_embedded_mlflow(isolated_env: Path, tmp_path: Path) -> None:
    x, y = _data()
    model = _model()
    callback = TrackbridgeCallback(project="keras", name="tiny")
    history = model.fit(x, y, epochs=EPOCHS, batch_size=8, verbose=0, callbacks=[callback])
    run = callback.run
    assert run.finished, "a run the callback started is finished at on_train_end"

    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    found = client.get_run(run.remote_ids["mlflow"])
    assert found.info.status == "FINISHED"
    params = found.data.params
    assert params["epochs"] == str(EPOCHS) and params["steps"] == str(BATCHES)
    assert params["optimizer.class"] == "Adam" and float(params["optimizer.learning_rate"]) == pytest.approx(0.01)
    assert params["model.params"] == str(model.count_params())
    loss = client.get_metric_history(found.info.run_id, "loss")
    assert [m.step for m in loss] == list(range(EPOCHS))
    assert [m.value for m in loss] == pytest.approx(history.history["loss"])
    batches = client.get_metric_history(found.info.run_id, "batch/loss")
    assert sorted(m.step for m in batches) == list(range(EPOCHS * BATCHES))

    [logged] = client.search_logged_models([found.info.experiment_id])
    assert logged.source_run_id == found.info.run_id and logged.name == "model"
    import mlflow.artifacts

    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=logged.artifact_location,
                                                      dst_path=str(tmp_path / "model"),
                                                      tracking_uri=client.tracking_uri))
    [saved] = list(folder.rglob("*.keras"))
    again = keras.saving.load_model(saved)
    assert np.allclose(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_fit_inside_an_active_run_arrives_in_wandb_offline(isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                           sdk_sockets: None) -> None:  # noqa: F811
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "wandb")
    x, y = _data()
    with tb.start_run(project="keras", name="outer", config={"seed": 0}) as run:
        model = _model()
        history = model.fit(x, y, epochs=EPOCHS, batch_size=8, verbose=0,
                            callbacks=[TrackbridgeCallback(log_every_n_batches=2, log_model=False)])
        assert not run.finished, "the active run is the caller's to finish"
    reader = get_backend("wandb-offline", {"path": str(Path(os.environ["WANDB_DIR"]) / "wandb")}).reader()
    [record] = list(reader.list_runs("keras"))
    assert record.params["seed"] == 0 and record.params["epochs"] == EPOCHS
    assert record.params["optimizer"]["class"] == "Adam"
    loss = [p for page in reader.iter_metric_history(record.run_id, "loss") for p in page]
    assert [p.step for p in loss] == list(range(EPOCHS))
    assert [p.value for p in loss] == pytest.approx(history.history["loss"])
    batches = [p for page in reader.iter_metric_history(record.run_id, "batch/loss") for p in page]
    assert [p.step for p in batches] == list(range(0, EPOCHS * BATCHES, 2))
    assert record.status.value == "FINISHED"


TRAIN = textwrap.dedent(
    """
    import os, sys, time
    os.environ["KERAS_BACKEND"] = "torch"
    import keras, numpy as np
    from trackbridge.integrations.keras import TrackbridgeCallback

    class Slow(keras.callbacks.Callback):
        '''A batch every 20 ms, and a line saying how far training got.'''
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.02)
            print("batch", self.model._tb_step, flush=True)
            self.model._tb_step += 1

    x = np.random.default_rng(0).random((50 * 4, 4), dtype=np.float32)
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model._tb_step = 0
    callback = TrackbridgeCallback(project="keras-kill", name="victim")
    model.fit(x, y, epochs=1000, batch_size=4, verbose=0, callbacks=[callback, Slow()])
    """
)


@pytest.mark.slow
def test_killed_mid_epoch_then_replayed(isolated_env: Path, tmp_path: Path) -> None:
    """50 batches an epoch; killed at batch 75 (mid-epoch 2): replay sends every batch point
    the journal kept, once, and the first epoch's metrics, and marks the run KILLED."""
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    # the store exists already (as a team's does): a kill during MLflow's own first-time
    # schema creation would leave a half-made database that no replay can use
    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    client.search_experiments()
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=isolated_env, env=dict(os.environ, OMP_NUM_THREADS="1"))
    last = -1
    try:
        deadline = time.monotonic() + 180
        while last < 75 and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            if line.startswith("batch "):
                last = int(line.split()[1])
        time.sleep(0.5)  # well beyond the journal interval (50 ms), on a loaded machine too: logged = on disk
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert last >= 75, f"training did not get to batch 75: {err[-2000:]}"
    assert proc.returncode == -signal.SIGKILL

    result = CliRunner().invoke(main, ["replay"])
    assert result.exit_code == 0, result.output
    assert "marked KILLED" in result.output, result.output

    experiment = client.get_experiment_by_name("keras-kill")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "KILLED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "batch/loss")]
    assert len(steps) == len(set(steps)), "replay sent points twice"
    assert sorted(steps) == list(range(len(steps))) and len(steps) >= last, (len(steps), last)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0]  # epoch 0 ended
    assert run.data.params["epochs"] == "1000"
    again = CliRunner().invoke(main, ["replay"])
    assert again.exit_code == 0 and "Nothing to replay" in again.output
