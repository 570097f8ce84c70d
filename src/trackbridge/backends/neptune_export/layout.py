"""Where neptune-exporter puts things (github neptune-ai/neptune-exporter, read at commit
8d3f44a: ``storage/parquet_writer.py``, ``storage/parquet_reader.py``, ``utils.py``).

* ``<data>/<sanitized project>/<sanitized run>_part_<n>.parquet``: one run per file set,
  ~50 MB parts, Snappy; each part is written as ``.parquet.tmp`` and renamed when the run
  is finished, ``part_0`` last: **a run is complete exactly when its part_0 is there**
  (the exporter's own reader lists runs the same way).
* Names are sanitised with a blake2b suffix (``org/proj`` -> ``org_proj-<16 hex>``), so
  project and run ids come from the ``project_id`` / ``run_id`` columns, never from names.
* Files (``file_value.path``) are relative to ``<files>/<sanitized project>/``.
* ``--data-path`` and ``--files-path`` default to ``./exports/data`` and ``./exports/files``:
  ``PATH`` is that ``exports`` folder, or the data folder itself with ``files`` beside it.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

_PART = re.compile(r"^(?P<prefix>.+)_part_(?P<n>\d+)\.parquet$")


def sanitize_path_part(part: str) -> str:
    """neptune-exporter's ``utils.sanitize_path_part``: the folder or file name of ``part``."""
    safe = "".join(c if c.isalnum() or c in ("_", "-") else "_" for c in part)
    return safe + "-" + hashlib.blake2b(part.encode("utf-8"), digest_size=8).hexdigest()


@dataclass(frozen=True)
class RunFiles:
    """The parts of one complete run, in part order."""

    project_dir: Path
    prefix: str
    parts: tuple[Path, ...]


def roots(path: Path) -> tuple[Path, Path]:
    """``(data, files)`` folders for ``PATH``."""
    if (path / "data").is_dir():
        return path / "data", path / "files"
    return path, path.parent / "files"


def complete_runs(data: Path) -> list[RunFiles]:
    """Every complete run under ``data`` (its ``part_0`` renamed into place), parts in order."""
    found = []
    for project_dir in sorted(p for p in data.iterdir() if p.is_dir()) if data.is_dir() else ():
        parts: dict[str, dict[int, Path]] = {}
        for file in project_dir.glob("*_part_*.parquet"):
            match = _PART.match(file.name)
            if match:
                parts.setdefault(match["prefix"], {})[int(match["n"])] = file
        for prefix, numbered in sorted(parts.items()):
            if 0 in numbered:
                found.append(RunFiles(project_dir, prefix, tuple(numbered[n] for n in sorted(numbered))))
    return found
