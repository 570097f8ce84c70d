"""W&B offline run folders join the conformance suite (``wandb-offline:PATH``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cases import Case

from trackbridge.backends.base import Backend
from trackbridge.backends.wandb.backend import WandbOfflineBackend


def _make(tmp: Path, _fixtures: dict[str, Any]) -> Backend:
    return WandbOfflineBackend({"path": str(tmp / "wandb")})


def _cli(backend: Backend) -> tuple[str, dict[str, str]]:
    return f"wandb-offline:{backend.path}", {}


CASES = [Case("wandb-offline", _make, cli=_cli)]
