"""Comet joins the conformance suite twice:

* ``comet-offline``: archives in a tmp folder (``comet-offline:<path>``);
* ``comet-cloud``: the live writer (real comet_ml) and the cloud reader (real
  ``comet_ml.API``) against ``CloudStandIn`` on 127.0.0.1 (``tests/comet_helpers.py``),
  which keeps what the SDK writes and answers Comet's REST v2 read shapes from it.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cases import Case

import comet_helpers as h
from trackbridge.backends.base import Backend
from trackbridge.backends.comet.backend import CometBackend, CometOfflineBackend

API_KEY = "test-key-not-secret"


@pytest.fixture
def comet_cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[h.CloudStandIn]:
    stand_in = h.CloudStandIn().start()
    monkeypatch.setenv("COMET_URL_OVERRIDE", stand_in.url)
    monkeypatch.setenv("COMET_API_KEY", API_KEY)
    yield stand_in
    stand_in.stop()


def _make(tmp: Path, _fixtures: dict[str, Any]) -> Backend:
    return CometOfflineBackend({"path": str(tmp / "comet-archives")})


def _cli(backend: Backend) -> tuple[str, dict[str, str]]:
    return f"comet-offline:{backend.path}", {}


def _make_cloud(tmp: Path, fixtures: dict[str, Any]) -> Backend:
    return CometBackend({"workspace": h.CloudStandIn.WORKSPACE, "offline_directory": str(tmp / "fallback")})


def _cli_cloud(backend: Backend) -> tuple[str, dict[str, str]]:
    import os

    prefix = "TRACKBRIDGE_REMOTE_TB_COMET_"
    return "tb_comet", {f"{prefix}BACKEND": "comet", f"{prefix}WORKSPACE": h.CloudStandIn.WORKSPACE,
                        "COMET_URL_OVERRIDE": os.environ["COMET_URL_OVERRIDE"], "COMET_API_KEY": API_KEY}


CASES = [Case("comet-offline", _make, cli=_cli),
         Case("comet-cloud", _make_cloud, fixtures=("comet_cloud",), cli=_cli_cloud)]
