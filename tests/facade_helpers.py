"""Shared fixture for the facade tests: stop the facade's worker threads after each test,
so a worker still retrying a dead test server cannot slow down later tests or the exit."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from trackbridge.facade import registry


@pytest.fixture(autouse=True)
def stop_facade_workers() -> Iterator[None]:
    yield
    registry.shutdown(timeout=5)
