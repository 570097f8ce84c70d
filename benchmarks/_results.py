"""Where a benchmark's figures go: a table on stdout and ``results/<name>-<time>.json``.

One place for it, so every benchmark's results file has the same name and shape and
can be compared run with run.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def show(result: dict[str, Any]) -> None:
    """The figures as a two-column table, keys aligned."""
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


def save(name: str, result: dict[str, Any], small: bool = False, out: Path | None = None) -> Path:
    """Write ``result`` to ``out`` or ``results/<name>-<time>[-small].json``; its path."""
    path = out or RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}{'-small' if small else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {path}")
    return path
