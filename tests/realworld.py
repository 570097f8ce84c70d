"""A source written by MLflow's own SDK the way teams write it (issue 14's corpus):
``mlflow.sklearn.autolog()`` on a ``GridSearchCV`` (a parent run, child runs per
candidate, the training set logged as a dataset input by every run), a second fit in
the same run (so two logged models named ``model``), the best model registered twice
with legacy stages, and the alias ``champion``.  Nothing here goes through trackbridge.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

MODEL = "grid-search-clf"


@dataclass
class RealWorld:
    tracking_uri: str
    experiment: str
    run_id: str
    model: str
    #: rows to predict on, and what the champion predicts for them at the source.
    rows: np.ndarray
    predictions: np.ndarray


def build_autolog_source(tracking_uri: str, experiment: str = "autolog grid") -> RealWorld:
    import mlflow
    from mlflow import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    x, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.autolog(max_tuning_runs=3, silent=True)
        try:
            with mlflow.start_run(run_name="grid") as run:
                GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0, 10.0]}, cv=2).fit(x, y)
                LogisticRegression(C=0.5, max_iter=300).fit(x, y)  # a second "model" in the same run
        finally:
            mlflow.sklearn.autolog(disable=True)
        client = MlflowClient(tracking_uri)
        models = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                             filter_string=f"source_run_id = '{run.info.run_id}'")
        plain = sorted((m for m in models if m.name == "model"), key=lambda m: m.creation_timestamp)
        assert len(plain) >= 2, [m.name for m in models]
        client.create_registered_model(MODEL, description="iris classifier")
        for stage, logged in zip(("Archived", "Production"), plain[:2]):
            version = client.create_model_version(MODEL, logged.model_uri, run_id=run.info.run_id,
                                                  description=f"fit {logged.model_id}")
            client.transition_model_version_stage(MODEL, version.version, stage)
        client.set_registered_model_alias(MODEL, "champion", version.version)
        champion = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    rows = x[::15]
    return RealWorld(tracking_uri, experiment, run.info.run_id, MODEL, rows, np.asarray(champion.predict(rows)))


def champion_predictions(tracking_uri: str, model: str, rows: np.ndarray) -> np.ndarray:
    """What ``models:/<model>@champion`` predicts, loaded by MLflow itself."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(mlflow.pyfunc.load_model(f"models:/{model}@champion").predict(rows))
