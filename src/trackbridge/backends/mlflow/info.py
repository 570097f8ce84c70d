"""Registry entry of the MLflow backend (no import of mlflow)."""
from trackbridge.backends.base import BackendInfo

INFO = BackendInfo(
    name="mlflow",
    target="trackbridge.backends.mlflow.backend:MlflowBackend",
    extra="mlflow",
    sdk_distribution="mlflow",
    env_vars={
        "MLFLOW_TRACKING_URI": False,
        "MLFLOW_REGISTRY_URI": False,
        "MLFLOW_TRACKING_USERNAME": False,
        "MLFLOW_TRACKING_PASSWORD": True,
        "MLFLOW_TRACKING_TOKEN": True,
    },
    summary="MLflow: embedded sqlite store (default ./mlflow.db) or a tracking server",
)
