"""Comet offline archives join the conformance suite (``comet-offline:PATH``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cases import Case

from trackbridge.backends.base import Backend
from trackbridge.backends.comet.backend import CometOfflineBackend


def _make(tmp: Path, _fixtures: dict[str, Any]) -> Backend:
    return CometOfflineBackend({"path": str(tmp / "comet-archives")})


def _cli(backend: Backend) -> tuple[str, dict[str, str]]:
    return f"comet-offline:{backend.path}", {}


CASES = [Case("comet-offline", _make, cli=_cli)]
