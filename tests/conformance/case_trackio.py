"""Trackio's project databases join the conformance suite (``trackio:PATH``).  Data that
trackio itself logged is read in ``tests/test_trackio.py``; here the sample goes through the
writer, whose databases trackio creates."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cases import Case

from trackbridge.backends.base import Backend
from trackbridge.backends.trackio.backend import TrackioBackend


def _make(tmp: Path, _fixtures: dict[str, Any]) -> Backend:
    return TrackioBackend({"path": str(tmp / "trackio")})


def _cli(backend: Backend) -> tuple[str, dict[str, str]]:
    return f"trackio:{backend.path}", {}


CASES = [Case("trackio", _make, cli=_cli)]
