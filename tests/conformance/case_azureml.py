"""Azure ML joins the conformance suite: the real azureml-mlflow plugin against a real
``mlflow server`` under Azure's workspace URL prefix, behind the proxy that enforces
Azure ML's limits (``tests/azureml_helpers.py``).

The fixture ``azureml_workspace`` (and the server and proxy it uses) lives in
``tests/azureml_helpers.py``; importing it here is enough: the conformance conftest
picks up the fixtures a case module imports.
Like the ``mlflow-server`` case, the server is shared by the session: tests use
fresh experiment names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from azureml_helpers import RG, SUB, TOKEN, TOKEN_ENV, WS  # noqa: F401 (fixtures below are picked up)
from azureml_helpers import azureml_proxy, azureml_server, azureml_workspace  # noqa: F401
from cases import Case

from trackbridge.backends.base import Backend


def _make(_tmp: Path, fixtures: dict[str, Any]) -> Backend:
    return fixtures["azureml_workspace"].backend()


def _cli(backend: Backend) -> tuple[str, dict[str, str]]:
    opts = backend.connection.azure  # type: ignore[attr-defined]
    prefix = "TRACKBRIDGE_REMOTE_TB_DST_"
    return "tb_dst", {
        f"{prefix}BACKEND": "azureml", f"{prefix}SUBSCRIPTION_ID": SUB, f"{prefix}RESOURCE_GROUP": RG,
        f"{prefix}WORKSPACE": WS, f"{prefix}ENDPOINT": str(opts.endpoint), f"{prefix}TOKEN_ENV": TOKEN_ENV,
        f"{prefix}HTTP_RETRIES": "1", TOKEN_ENV: TOKEN,
    }


CASES = [Case("azureml", _make, fixtures=("azureml_workspace",), cli=_cli)]
