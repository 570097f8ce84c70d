"""neptune-exporter's output joins the conformance suite (``neptune-export:PATH``, read-only):
the canonical sample, as much of it as a Neptune run holds, written in the exporter's own
schema and file protocol (``neptune_export_helpers``), in two parts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cases import Case
from neptune_export_helpers import at, row, write_run
from sample import T0, Sample, series

from trackbridge.backends.base import Backend
from trackbridge.backends.neptune_export.backend import NeptuneExportBackend
from trackbridge.backends.neptune_export.layout import sanitize_path_part

PROJECT = "ws/conformance"
#: the sample's params as Neptune keeps them: attribute paths, typed values.
PARAMS = {"lr": 0.01, "layers": 3, "optimizer/name": "adam", "optimizer/beta": 0.9, "note": "ü"}
KIND = {float: "float", int: "int", str: "string"}


def _make(tmp: Path, _fixtures: dict[str, Any]) -> Backend:
    return NeptuneExportBackend({"path": str(tmp / "exports")})


def _cli(backend: Backend) -> tuple[str, dict[str, str]]:
    return f"neptune-export:{backend.path}", {}


def _sys(name: str, end: int, failed: bool, **extra: Any) -> list[dict[str, Any]]:
    rows = [row("sys/name", "string", name), row("sys/creation_time", "datetime", at(T0)),
            row("sys/modification_time", "datetime", at(end)), row("sys/owner", "string", "ada"),
            row("sys/failed", "bool", failed)]
    return rows + [row(k, "string" if isinstance(v, str) else "string_set", v) for k, v in extra.items()]


def seed(backend: Backend, tmp: Path) -> Sample:
    """A parent (fields, params, every series, a file and a file set) and a failed fork of it."""
    root: Path = backend.path  # type: ignore[attr-defined]
    files = root / "files" / sanitize_path_part(PROJECT)
    (files / "sub").mkdir(parents=True)
    (files / "report.txt").write_text("report ✓\n", encoding="utf-8")
    (files / "sub" / "data.bin").write_bytes(bytes(range(256)) * 4)
    sample = Sample(PROJECT, parent="RUN-1", child="RUN-2", series=series(), params=PARAMS,
                    files={"report/report.txt", "sub/data.bin"})
    parent = _sys("parent ✓", T0 + 60_000, False, **{"sys/tags": ["baseline", "gpu"],
                                                      "sys/description": "the parent run\nsecond line"})
    parent += [row(k, KIND[type(v)], v) for k, v in PARAMS.items()]
    parent += [row("report", "file", {"path": "report.txt"}), row("sub", "file_set", {"path": "sub"})]
    parent += [row(key, "float_series", p.value, step=p.step, ms=p.timestamp)
               for key, points in sample.series.items() for p in points]
    write_run(root / "data", PROJECT, "RUN-1", parent, parts=2)
    child = _sys("child", T0 + 30_000, True, **{"sys/forking/parent": "RUN-1"})
    child += [row("loss", "float_series", 1.0 / (i + 1), step=i, ms=T0 + 20 + i) for i in range(10)]
    write_run(root / "data", PROJECT, "RUN-2", child)
    return sample


CASES = [Case("neptune-export", _make, cli=_cli, seed=seed)]
