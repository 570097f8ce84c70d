"""The vendor-neutral archive joins the conformance suite."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cases import Case

from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.backends.base import Backend


def _make(tmp: Path, _fixtures: dict[str, Any]) -> Backend:
    return ArchiveBackend({"path": str(tmp / "archive")})


def _cli(backend: Backend) -> tuple[str, dict[str, str]]:
    return f"dir:{backend.path}", {}


CASES = [Case("dir", _make, cli=_cli)]
