"""Model folders that name their run: finding, reading and re-pointing those ids.

A model logged by a run (an MLflow ``MLmodel`` file, and the version sources of a
registry: ``runs:/<run id>/model``, ``models:/<model id>``) carries the ids of the
run and logged model it came from.  A copy gets new ids, so every such reference
is re-pointed to the copy, and ``check`` masks the ids when it compares contents.
This is the one module that knows the file's name and layout: the engine's
transfer, registry and check and the backends' writers all use it.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

#: the descriptor file of a model folder; it names the run (``run_id:``) that logged it.
MODEL_FILE = "MLmodel"


def is_model_file(path: str | Path) -> bool:
    """``path`` (a local path or an artifact path) is a model descriptor file."""
    return str(path).replace("\\", "/").rsplit("/", 1)[-1] == MODEL_FILE


def repoint_text(text: str, ids: Mapping[str, str]) -> str:
    """``text`` with every source id in ``ids`` replaced by its destination id."""
    for old, new in ids.items():
        if old and new:
            text = text.replace(old, new)
    return text


def repoint_ids(path: Path, ids: Mapping[str, str]) -> None:
    """Rewrite source ids (``run_id: <src>``, ``runs:/<src>/...``) in every model file
    under ``path`` (a file or a folder) so a copied model names the destination run."""
    files = [path] if path.is_file() else list(path.rglob(MODEL_FILE)) if path.is_dir() else []
    for file in files:
        if file.name != MODEL_FILE:
            continue
        text = file.read_text(encoding="utf-8")
        new = repoint_text(text, ids)
        if new != text:
            file.write_text(new, encoding="utf-8")


def mask_ids(text: str, ids: Mapping[str, str]) -> str:
    """``text`` with run/model ids replaced by placeholders, to compare two copies."""
    for old, placeholder in ids.items():
        if old:
            text = text.replace(old, placeholder)
    return text


_FLAVOR = re.compile(r"^  ([^\s:#][^:]*):")


def flavors_from_text(text: str) -> list[str]:
    """Flavor names of a model descriptor (the keys under its top-level ``flavors:``),
    sorted.  A line scan rather than a YAML parser: the layout is fixed by the
    library that writes it, and the core package does not depend on PyYAML."""
    flavors: list[str] = []
    inside = False
    for line in text.splitlines():
        if line and not line[0].isspace():
            inside = line.rstrip() == "flavors:"
        elif inside and (match := _FLAVOR.match(line)):
            flavors.append(match.group(1).strip())
    return sorted(flavors)


def model_flavors(model_dir: Path) -> list[str]:
    """Flavor names of the model folder ``model_dir``; ``[]`` when it has no descriptor."""
    descriptor = model_dir / MODEL_FILE if model_dir.is_dir() else None
    if descriptor is None or not descriptor.is_file():
        return []
    return flavors_from_text(descriptor.read_text(encoding="utf-8"))
