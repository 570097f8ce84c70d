"""Test data in neptune-exporter's own format: its ``SCHEMA`` (``src/neptune_exporter/model.py``)
and its writer's file protocol (``storage/parquet_writer.py``: Snappy parts written as
``.parquet.tmp``, renamed when the run is finished, ``part_0`` last), copied from github
neptune-ai/neptune-exporter at commit 8d3f44a (Apache-2.0).  The exporter needs Python
>= 3.13 and Neptune's API, so its code cannot run here; its schema and protocol can."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from trackbridge.backends.neptune_export.layout import sanitize_path_part

SCHEMA = pa.schema(
    [
        ("project_id", pa.string()),
        ("run_id", pa.string()),
        ("attribute_path", pa.string()),
        ("attribute_type", pa.string()),
        ("step", pa.decimal128(18, 6)),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("int_value", pa.int64()),
        ("float_value", pa.float64()),
        ("string_value", pa.string()),
        ("bool_value", pa.bool_()),
        ("datetime_value", pa.timestamp("ms", tz="UTC")),
        ("string_set_value", pa.list_(pa.string())),
        ("file_value", pa.struct([("path", pa.string())])),
        ("histogram_value", pa.struct([("type", pa.string()), ("edges", pa.list_(pa.float64())),
                                       ("values", pa.list_(pa.float64()))])),
    ]
)
VALUE_COLUMN = {"int": "int_value", "float": "float_value", "string": "string_value", "bool": "bool_value",
                "datetime": "datetime_value", "string_set": "string_set_value", "float_series": "float_value",
                "string_series": "string_value", "file": "file_value", "file_set": "file_value",
                "file_series": "file_value", "histogram_series": "histogram_value"}


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def row(path: str, kind: str, value: Any, step: str | int | None = None, ms: int | None = None) -> dict[str, Any]:
    """One row of the schema: ``value`` in the column of ``kind``."""
    out: dict[str, Any] = {name: None for name in SCHEMA.names}
    out.update(attribute_path=path, attribute_type=kind, step=None if step is None else Decimal(str(step)),
               timestamp=None if ms is None else at(ms))
    out[VALUE_COLUMN[kind]] = value
    return out


def write_run(data: Path, project_id: str, run_id: str, rows: list[dict[str, Any]], parts: int = 1,
              finish: bool = True) -> list[Path]:
    """The run's rows in ``parts`` parts, as the exporter's ``ParquetWriter`` writes them;
    ``finish=False`` leaves them ``.tmp`` (an interrupted export)."""
    folder = data / sanitize_path_part(project_id)
    folder.mkdir(parents=True, exist_ok=True)
    for r in rows:
        r.update(project_id=project_id, run_id=run_id)
    size = -(-len(rows) // parts)
    temps = []
    for n in range(parts):
        path = folder / f"{sanitize_path_part(run_id)}_part_{n}.parquet.tmp"
        with pq.ParquetWriter(path, SCHEMA, compression="snappy") as writer:
            writer.write_table(pa.Table.from_pylist(rows[n * size:(n + 1) * size], schema=SCHEMA))
        temps.append(path)
    if finish:
        for path in reversed(temps):  # part_0 last: the run is complete
            path.rename(path.with_suffix(""))
    return temps
