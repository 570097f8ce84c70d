"""Collects every backend's ``case_*.py`` and parametrises the suite by them."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cases import Case  # noqa: E402

from trackbridge.backends.base import Backend  # noqa: E402

CASES: list[Case] = []
for _file in sorted(Path(__file__).parent.glob("case_*.py")):
    _module = importlib.import_module(_file.stem)
    CASES.extend(_module.CASES)
    # fixtures a case module imports or defines (a server it needs) become visible here
    for _name, _value in vars(_module).items():
        if hasattr(_value, "_fixture_function_marker") or hasattr(_value, "_pytestfixturefunction"):
            globals()[_name] = _value


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture
def backend(case: Case, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A fresh, empty instance of the backend under test."""
    fixtures: dict[str, Any] = {name: request.getfixturevalue(name) for name in case.fixtures}
    root = tmp_path / "under-test"
    root.mkdir()
    return case.make(root, fixtures)
