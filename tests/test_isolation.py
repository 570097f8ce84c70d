"""The suite's guard rails hold: no network beyond loopback, isolated HOME."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from pytest_socket import SocketConnectBlockedError


def test_non_loopback_connection_is_refused() -> None:
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("93.184.216.34", 80), timeout=1)


def test_loopback_is_allowed(mlflow_server) -> None:
    with urllib.request.urlopen(f"{mlflow_server.url}/health", timeout=5) as resp:
        assert resp.status == 200


def test_home_and_vendor_dirs_are_isolated(isolated_env: Path) -> None:
    assert Path(os.environ["HOME"]).is_relative_to(isolated_env.parent)
    assert Path(os.environ["WANDB_DIR"]).is_relative_to(isolated_env.parent)
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_importing_trackbridge_imports_no_vendor_sdk() -> None:
    code = (
        "import sys, trackbridge, trackbridge.cli;"
        "bad=[m for m in ('mlflow','wandb','comet_ml','azure.ai.ml') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
