"""What a backend supplies to join the conformance suite: one :class:`Case` per way of
opening it (rclone's ``fstests``, fsspec's ``tests/abstract``).

A backend adds a module ``case_<name>.py`` next to this file defining ``CASES``, a
list of :class:`Case`, and importing (or defining) the pytest fixtures its cases
name in :attr:`Case.fixtures` (a server...): the suite's conftest picks them up.  Nothing else: every test in ``test_*.py`` here runs for every
case, and a canonical field the backend's ``Features`` cannot hold is skipped by
those features (:func:`needs`), never by hand.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trackbridge.backends.base import Backend


@dataclass(frozen=True)
class Case:
    #: the test id, naming the backend (``mlflow-sqlite``, ``dir``...).
    id: str
    #: a fresh, empty backend rooted under ``tmp``; ``fixtures`` holds the values of
    #: :attr:`fixtures` (e.g. a running server).
    make: Callable[[Path, dict[str, Any]], Backend]
    #: pytest fixtures the case needs (requested by name, e.g. ``"mlflow_server"``).
    fixtures: tuple[str, ...] = ()
    #: the same remote as :attr:`make`, as CLI arguments (``["dir:/x"]`` or env vars);
    #: ``None`` when the backend cannot be reached from a child process.
    cli: Callable[[Backend], tuple[str, dict[str, str]]] | None = None


def needs(backend: Backend, *features: str) -> None:
    """Skip the calling test when ``backend``'s Features switch off any of ``features``."""
    lacking = sorted(set(features) & backend.features.lacks())
    if lacking:
        pytest.skip(f"{backend.name} declares no {', '.join(lacking)} (Features)")
