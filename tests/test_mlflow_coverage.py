"""The MLflow coverage table classifies every field and kind of the installed mlflow
(issue 14: a new MLflow must not add something that copies lose silently)."""
from __future__ import annotations

import inspect

import mlflow.entities
import mlflow.entities.model_registry

from trackbridge.backends.mlflow.coverage import COVERAGE, FIELD_ENTITIES

_MODULES = (mlflow.entities, mlflow.entities.model_registry)


def _installed() -> set[str]:
    """``Entity.field`` for the classes of :data:`FIELD_ENTITIES`, ``Kind`` for every
    other public class of ``mlflow.entities``."""
    found: set[str] = set()
    for module in _MODULES:
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if name.startswith("_"):
                continue
            if name in FIELD_ENTITIES:
                found |= {f"{name}.{field}" for field, member in inspect.getmembers(cls)
                          if isinstance(member, property) and not field.startswith("_")}
            else:
                found.add(name)
    return found


def test_every_installed_field_and_kind_is_classified() -> None:
    missing = sorted(_installed() - COVERAGE.keys())
    assert not missing, f"classify these in backends/mlflow/coverage.py: {missing}"


def test_every_row_names_something_installed_and_says_where_it_goes() -> None:
    stale = sorted(k for k in COVERAGE if "[" not in k and k not in _installed())
    assert not stale, f"not in the installed mlflow: {stale}"
    assert {k.partition("[")[0] for k in COVERAGE if "[" in k} <= _installed()
    odd = [k for k, v in COVERAGE.items() if not v.startswith(("-> ", "not carried: "))]
    assert not odd, odd
    mapped = sum(v.startswith("-> ") for v in COVERAGE.values())
    assert mapped and len(COVERAGE) - mapped  # both kinds exist: counts for the closing note
