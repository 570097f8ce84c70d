"""What each trackbridge integration costs per logged step, against the framework's own
MLflow callback driven through the same loop.  One command, not a test::

    .venv/bin/python benchmarks/integration_overhead.py            # 5,000 steps per framework, 200 trials
    .venv/bin/python benchmarks/integration_overhead.py --small    # 300 steps, 20 trials (seconds)

Both sides write to one embedded MLflow store (sqlite, in a temporary folder), and the
hooks are called exactly as the framework calls them, with the same logs (3 metrics a
step), so the figure is the integration alone, not training:

* Keras: ``on_train_batch_end`` + ``on_epoch_end`` every 50 batches, against
  ``mlflow.keras.MlflowCallback(log_every_n_steps=1)`` (ours: ``log_model=False``, as
  theirs logs no model);
* Lightning: ``Logger.log_metrics``, against ``lightning.pytorch.loggers.MLFlowLogger``;
* Hugging Face: ``TrainerCallback.on_log``, against ``transformers.integrations.MLflowCallback``;
* Optuna: the callback per ended trial (a nested run each), against
  ``optuna_integration.MLflowCallback`` (one run each; ``pip install optuna-integration``:
  skipped when it is missing).

Per framework and side: the wall time from the first hook to the end of the run (ours
includes the facade's final flush, so everything is in the store), divided by the steps,
and the median time one hook call blocks the training loop.  Target (issue 18): ours no
slower per step.  Prints a table and writes ``benchmarks/results/integration_overhead-<time>.json``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _results import save, show  # noqa: E402

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("KERAS_BACKEND", "torch")


def _logs(i: int) -> dict[str, float]:
    return {"loss": 1.0 / (i + 1), "accuracy": i / (i + 1), "learning_rate": 1e-3}


def _timed(steps: int, begin: Callable[[], Any], step: Callable[[int], Any], end: Callable[[], Any]) -> dict[str, float]:
    """Wall time from ``begin`` to the end of ``end`` per step, and the median blocking of ``step``."""
    blocking = []
    start = time.perf_counter()
    begin()
    for i in range(steps):
        t0 = time.perf_counter()
        step(i)
        blocking.append(time.perf_counter() - t0)
    end()
    wall = time.perf_counter() - start
    return {"us_per_step": round(wall / steps * 1e6, 1), "median_block_us": round(statistics.median(blocking) * 1e6, 1)}


def keras_pair(steps: int) -> dict[str, dict[str, float]]:
    import keras
    import mlflow
    import mlflow.keras

    from trackbridge.integrations.keras import TrackbridgeCallback

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)], name="tiny")
    model.compile(optimizer="adam", loss="mse")

    def drive(callback: keras.callbacks.Callback, end: Callable[[], None] = lambda: None) -> dict[str, float]:
        callback.set_model(model)
        callback.set_params({"epochs": steps // 50 + 1, "steps": 50, "verbose": 0})

        def step(i: int) -> None:
            callback.on_train_batch_end(i % 50, _logs(i))
            if i % 50 == 49:
                callback.on_epoch_end(i // 50, _logs(i))

        def finish() -> None:
            callback.on_train_end({})
            end()

        return _timed(steps, lambda: callback.on_train_begin({}), step, finish)

    ours = drive(TrackbridgeCallback(project="bench-keras", log_model=False))
    mlflow.set_experiment("bench-keras-mlflow")
    mlflow.start_run()
    theirs = drive(mlflow.keras.MlflowCallback(log_every_n_steps=1), mlflow.end_run)
    return {"ours": ours, "mlflow": theirs}


def lightning_pair(steps: int, uri: str) -> dict[str, dict[str, float]]:
    from lightning.pytorch.loggers import MLFlowLogger

    from trackbridge.integrations.lightning import TrackbridgeLogger

    def drive(logger: Any) -> dict[str, float]:
        return _timed(steps, lambda: logger.log_hyperparams({"lr": 0.1, "hidden": 8}),
                      lambda i: logger.log_metrics(_logs(i), step=i), lambda: logger.finalize("success"))

    return {"ours": drive(TrackbridgeLogger(project="bench-lightning", log_model=False)),
            "mlflow": drive(MLFlowLogger(experiment_name="bench-lightning-mlflow", tracking_uri=uri))}


def huggingface_pair(steps: int, folder: Path) -> dict[str, dict[str, float]]:
    import transformers
    from transformers.integrations import MLflowCallback

    from trackbridge.integrations.huggingface import TrackbridgeCallback

    config = transformers.BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=16, max_position_embeddings=16)
    model = transformers.BertForSequenceClassification(config)
    args = transformers.TrainingArguments(output_dir=str(folder / "hf"), report_to=[], use_cpu=True)

    def drive(callback: Any) -> dict[str, float]:
        state, control = transformers.TrainerState(), transformers.TrainerControl()

        def step(i: int) -> None:
            state.global_step = i + 1
            callback.on_log(args, state, control, logs=_logs(i), model=model)

        return _timed(steps, lambda: callback.on_train_begin(args, state, control, model=model), step,
                      lambda: callback.on_train_end(args, state, control, model=model))

    os.environ["MLFLOW_EXPERIMENT_NAME"] = "bench-hf-mlflow"
    try:
        return {"ours": drive(TrackbridgeCallback(project="bench-hf")), "mlflow": drive(MLflowCallback())}
    finally:
        del os.environ["MLFLOW_EXPERIMENT_NAME"]


def optuna_pair(trials: int, uri: str) -> dict[str, dict[str, float]]:
    import optuna

    from trackbridge.integrations.optuna import TrackbridgeCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {"x": optuna.distributions.FloatDistribution(-10, 10)}
    frozen = [optuna.trial.create_trial(params={"x": i / trials}, distributions=distributions, value=i / trials,
                                        intermediate_values={s: i / (s + 1) for s in range(5)})
              for i in range(trials)]
    for number, trial in enumerate(frozen):
        trial.number = number

    def drive(callback: Callable[[optuna.Study, Any], None], end: Callable[[], None]) -> dict[str, float]:
        study = optuna.create_study(study_name=f"bench-{type(callback).__module__}")
        return _timed(trials, lambda: None, lambda i: callback(study, frozen[i]), end)

    ours = TrackbridgeCallback(project="bench-optuna")
    result = {"ours": drive(ours, ours.finish)}
    try:
        import warnings

        from optuna_integration.mlflow import MLflowCallback
    except ImportError:
        result["mlflow"] = {"skipped": "optuna-integration is not installed"}  # type: ignore[dict-item]
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its own deprecation notice (OptunaHub)
        theirs = MLflowCallback(tracking_uri=uri, metric_name="value")
        result["mlflow"] = drive(theirs, lambda: None)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="logged steps per framework")
    parser.add_argument("--trials", type=int, default=200, help="Optuna trials")
    parser.add_argument("--small", action="store_true", help="300 steps, 20 trials: a quick check")
    parser.add_argument("--only", choices=["keras", "lightning", "huggingface", "optuna"], action="append")
    ns = parser.parse_args()
    steps, trials = (300, 20) if ns.small else (ns.steps, ns.trials)
    only = set(ns.only or ["keras", "lightning", "huggingface", "optuna"])
    folder = Path(tempfile.mkdtemp(prefix="tb-integration-bench-"))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["TRACKBRIDGE_HOME"] = str(folder / ".trackbridge")
    os.environ["TRACKBRIDGE_BACKEND"] = "mlflow"
    os.chdir(folder)
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.search_experiments()  # create the store's tables now, not inside the first side's clock
    result: dict[str, Any] = {"steps": steps, "trials": trials, "store": "embedded MLflow (sqlite)"}
    pairs: dict[str, Callable[[], dict[str, dict[str, float]]]] = {
        "keras": lambda: keras_pair(steps),
        "lightning": lambda: lightning_pair(steps, uri),
        "huggingface": lambda: huggingface_pair(steps, folder),
        "optuna": lambda: optuna_pair(trials, uri),
    }
    for name, run in pairs.items():
        if name not in only:
            continue
        figures = run()
        for side, values in figures.items():
            for key, value in values.items():
                result[f"{name}.{side}.{key}"] = value
        ours, theirs = figures["ours"].get("us_per_step"), figures["mlflow"].get("us_per_step")
        if isinstance(ours, float) and isinstance(theirs, float):
            result[f"{name}.speedup"] = round(theirs / ours, 1)
            result[f"{name}.no_slower"] = ours <= theirs
    show(result)
    save("integration_overhead", result, small=ns.small)


if __name__ == "__main__":
    main()
