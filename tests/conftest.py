"""Suite-wide isolation: no network, private HOME and vendor dirs, telemetry off.

Non-loopback connections are refused by pytest-socket (``--allow-hosts`` in
pyproject's addopts); ``test_isolation.py`` proves it.  Every test gets a fresh
HOME, working directory and vendor directories so nothing leaks between tests
or into the developer's machine.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from servers import MlflowServer, Postgres  # noqa: E402

# Set before anything imports mlflow/wandb/comet, for the whole session.
_QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_DISABLE_CODE": "true",
    "COMET_ERROR_TRACKING_ENABLE": "false",
    "COMET_DISABLE_AUTO_LOGGING": "1",
    "GIT_PYTHON_REFRESH": "quiet",
}
os.environ.update(_QUIET_ENV)

# Variables a developer's shell may carry that would change what tests resolve.
_CLEARED = [
    k for k in os.environ
    if k.startswith(("TRACKBRIDGE_", "MLFLOW_TRACKING_", "WANDB_API", "COMET_API", "AZURE_", "AZUREML_"))
]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Fresh HOME, cwd and vendor dirs for every test."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    for key in _CLEARED:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    monkeypatch.setenv("TRACKBRIDGE_HOME", str(work / ".trackbridge"))
    monkeypatch.chdir(work)
    yield work


@pytest.fixture(autouse=True)
def reset_mlflow_globals() -> Iterator[None]:
    """Undo MLflow's process-global fluent state after each test.

    Tests that use the plain fluent API (``mlflow.set_tracking_uri``,
    ``set_experiment``, ``start_run``) would otherwise point every later test
    at their deleted temp store.  trackbridge itself never touches this state.
    """
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return
    while mlflow.active_run() is not None:
        mlflow.end_run()
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    tracking_utils._tracking_uri = None
    registry_utils._registry_uri = None
    fluent._active_experiment_id = None
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        os.environ.pop(var, None)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real ``mlflow server`` for the session (shared, tests use fresh experiment names)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_server_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A second, independent server: the destination of MLflow → MLflow copies."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server-b")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One real PostgreSQL for the session (the distribution's server; databases per use)."""
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_server_pg(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` whose store is PostgreSQL, as team servers run."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server-pg"), backend_uri=postgres.uri("mlflow")).start()
    yield server
    server.stop()


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    """A fresh embedded MLflow store (no server)."""
    return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
