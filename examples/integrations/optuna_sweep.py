"""The course's Optuna sweep, logged through trackbridge: one env var picks the tracker.

    python examples/integrations/optuna_sweep.py                                          # embedded MLflow ./mlflow.db
    TRACKBRIDGE_BACKEND=wandb python examples/integrations/optuna_sweep.py                # W&B offline runs in ./wandb
    TRACKBRIDGE_BACKEND=comet-offline:./comet-offline python examples/integrations/optuna_sweep.py   # Comet archives

Each trial trains scikit-learn's SGDClassifier on the wine data (ships with scikit-learn)
epoch by epoch, reports the validation loss to Optuna (a median pruner stops bad trials)
and logs its per-epoch metrics and its model into its own run; the study is the parent
run. W&B runs offline here (``WANDB_MODE=offline`` unless set), so no account is needed:
``wandb sync wandb/offline-run-*`` uploads them, ``comet upload comet-offline/*.zip``
the Comet ones, or ``trackbridge copy`` moves them anywhere.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import optuna
from sklearn.datasets import load_wine
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from trackbridge.facade.run import Run
from trackbridge.integrations.optuna import TrackbridgeCallback

os.environ.setdefault("WANDB_MODE", "offline")  # W&B without an account: `wandb sync` later
TRIALS = int(os.environ.get("TRIALS", "12"))
EPOCHS = 20

x, y = load_wine(return_X_y=True)
x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
scaler = StandardScaler().fit(x_train)
x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
classes = np.unique(y)

callback = TrackbridgeCallback(metric_name="val_loss", project="wine-sweep")
models: dict[int, SGDClassifier] = {}


@callback.track_in_run
def objective(trial: optuna.Trial) -> float:
    eta0 = trial.suggest_float("eta0", 1e-4, 1e-1, log=True)
    alpha = trial.suggest_float("alpha", 1e-5, 1e-2, log=True)
    run = callback.run_for(trial)
    model = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=eta0, alpha=alpha, random_state=0)
    val_loss = float("inf")
    for epoch in range(EPOCHS):
        model.partial_fit(x_train, y_train, classes=classes)
        val_loss = log_loss(y_val, model.predict_proba(x_val), labels=classes)
        run.log_metrics({"train_loss": log_loss(y_train, model.predict_proba(x_train), labels=classes),
                         "val_loss": val_loss,
                         "val_accuracy": accuracy_score(y_val, model.predict(x_val))}, step=epoch)
        trial.report(val_loss, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    log_model(run, model)
    models[trial.number] = model
    return val_loss


def log_model(run: Run, model: SGDClassifier) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pkl"
        path.write_bytes(pickle.dumps(model))
        run.log_model(path, name="model")  # a copy is taken: the folder may go


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="wine-sgd", direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner(n_warmup_steps=5))
    with callback:
        study.optimize(objective, n_trials=TRIALS, callbacks=[callback])
        best = study.best_trial
        # the best model into the study's run (still open: W&B registers only from an open run)
        assert callback.study_run is not None
        log_model(callback.study_run, models[best.number])
        callback.study_run.register_model("wine-sgd", aliases=["champion"])
    pruned = sum(t.state is optuna.trial.TrialState.PRUNED for t in study.trials)
    print(f"best trial {best.number}: val_loss {best.value:.4f} {best.params}; {pruned} of {TRIALS} pruned")
    print(f"logged to {os.environ.get('TRACKBRIDGE_BACKEND', 'mlflow')}")
