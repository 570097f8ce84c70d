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

from sample import Sample, write_sample

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
    #: for a backend that cannot write (``info.read_only``): writes the canonical sample, as
    #: much of it as the platform holds, into the storage of the backend given (``tmp`` for
    #: scratch files) *with the vendor's own tool*, and returns what it wrote
    #: (a :class:`sample.Sample`).  Tests that need data call :func:`seed_sample`.
    seed: Callable[[Backend, Path], Sample] | None = None


def needs(backend: Backend, *features: str) -> None:
    """Skip the calling test when ``backend``'s Features switch off any of ``features``."""
    lacking = sorted(set(features) & backend.features.lacks())
    if lacking:
        pytest.skip(f"{backend.name} declares no {', '.join(lacking)} (Features)")


def held(backend: Backend, *features: str) -> None:
    """Skip the calling test when a read-only ``backend`` declares none of ``features``: a
    writer keeps what its platform lacks elsewhere (W&B's key/value tags in config), but a
    source only ever holds what its own features say."""
    if backend.info.read_only:
        needs(backend, *features)


def writable(backend: Backend) -> None:
    """Skip the calling test (one that writes into the backend) for a read-only backend,
    by its declaration (``BackendInfo.read_only``), never by hand."""
    if backend.info.read_only:
        pytest.skip(f"{backend.name} declares read_only (BackendInfo): nothing is written into it")


def seed_sample(case: Case, backend: Backend, tmp: Path, with_model: bool = True) -> Sample:
    """The canonical sample in ``backend``: through its writer, or for a read-only backend
    through the case's :attr:`Case.seed` (the vendor's own writer)."""
    if backend.info.read_only:
        assert case.seed is not None, f"{case.id}: a read-only backend's case must provide seed"
        return case.seed(backend, tmp)
    writer = backend.writer()
    sample = write_sample(writer, tmp, with_model=with_model)
    writer.close()
    return sample
