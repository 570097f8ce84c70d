"""MLflow backend (embedded sqlite store or a tracking server), both directions.

Modules: ``backend`` (the :class:`MlflowBackend` entry point), ``connection``
(URIs, credentials, the shared client), ``reader``, ``writer``, ``convert``
(MLflow entities <-> canonical model) and ``errors`` (exception translation).
None of them imports mlflow at import time.
"""
from trackbridge.backends.mlflow.backend import MlflowBackend
from trackbridge.backends.mlflow.reader import MlflowReader
from trackbridge.backends.mlflow.writer import MlflowWriter

__all__ = ["MlflowBackend", "MlflowReader", "MlflowWriter"]
