"""MLflow joins the conformance suite embedded (sqlite), as a real server, and as a real
server on PostgreSQL (the distribution's server, as team servers run)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cases import Case

from trackbridge.backends.base import Backend
from trackbridge.backends.mlflow.backend import MlflowBackend


def _sqlite(tmp: Path, _fixtures: dict[str, Any]) -> Backend:
    (tmp / "store").mkdir()
    return MlflowBackend({"tracking_uri": f"sqlite:///{tmp / 'store' / 'mlflow.db'}"})


def _server(tmp: Path, fixtures: dict[str, Any]) -> Backend:
    return MlflowBackend({"tracking_uri": fixtures["mlflow_server"].url})


def _server_pg(tmp: Path, fixtures: dict[str, Any]) -> Backend:
    return MlflowBackend({"tracking_uri": fixtures["mlflow_server_pg"].url})


def _cli(backend: Backend) -> tuple[str, dict[str, str]]:
    return "tb_dst", {"TRACKBRIDGE_REMOTE_TB_DST_BACKEND": "mlflow",
                      "TRACKBRIDGE_REMOTE_TB_DST_TRACKING_URI": backend.tracking_uri}


CASES = [
    Case("mlflow-sqlite", _sqlite, cli=_cli),
    Case("mlflow-server", _server, fixtures=("mlflow_server",), cli=_cli),
    Case("mlflow-postgres", _server_pg, fixtures=("mlflow_server_pg",), cli=_cli),
]
