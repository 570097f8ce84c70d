"""The model registry of an archive: ``registry/<model>/model.json`` + ``versions/<version>.json``.

Versions keep the version string they had at the source (an archive is a
neutral copy, so MLflow's ``3`` and Comet's ``1.2.0`` both survive); only a
version without a name, or one whose name is taken by a *different* version,
gets the next free integer.  Re-creating an identical version returns the
existing one, so a resumed copy does not duplicate it.  Aliases live in
``model.json`` (one alias points at one version, as in MLflow).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from trackbridge.backends.archive.files import read_json, safe_segment, write_json
from trackbridge.backends.archive.layout import Layout
from trackbridge.backends.archive.runs import from_json
from trackbridge.errors import BackendError
from trackbridge.model import ModelVersion, RegisteredModel, now_ms

MODEL_FILE = "model.json"
#: fields that identify what a version *is*; equal ones mean "already registered".
_IDENTITY = ("source", "run_id", "artifact_path", "model_id")


class Registry:
    """Registry reads and writes.  One lock serialises writers of this process."""

    def __init__(self, layout: Layout, lock: threading.Lock | None = None) -> None:
        self.layout = layout
        self._lock = lock or threading.Lock()

    # -- reading -------------------------------------------------------------

    def list(self) -> Iterator[RegisteredModel]:
        root = self.layout.registry
        if not root.is_dir():
            return
        for folder in sorted(root.iterdir()):
            if (folder / MODEL_FILE).is_file():
                yield self._load(folder)

    def _load(self, folder: Path) -> RegisteredModel:
        data = read_json(folder / MODEL_FILE)
        aliases: dict[str, str] = data.get("aliases", {})
        versions = []
        for raw in sorted(self._version_files(folder), key=lambda v: v["order"]):
            version = from_json(ModelVersion, raw)
            version.aliases = sorted(a for a, v in aliases.items() if v == version.version)
            versions.append(version)
        return RegisteredModel(
            name=data["name"], description=data.get("description", ""),
            tags=data.get("tags", {}), versions=versions,
        )

    @staticmethod
    def _version_files(folder: Path) -> list[dict[str, Any]]:
        versions = folder / "versions"
        if not versions.is_dir():
            return []
        return [read_json(p) for p in versions.iterdir() if p.name.endswith(".json")]

    # -- writing -------------------------------------------------------------

    def register(self, model: RegisteredModel) -> None:
        """Create ``model`` if missing; otherwise set its description and merge its tags."""
        with self._lock:
            folder = self.layout.registered_model_dir(model.name)
            data = self._model_json(folder, model.name)
            data["description"] = model.description or data["description"]
            data["tags"] = {**data["tags"], **model.tags}
            write_json(folder / MODEL_FILE, data)

    def create_version(self, version: ModelVersion, run_id: str | None) -> ModelVersion:
        with self._lock:
            folder = self.layout.registered_model_dir(version.name)
            data = self._model_json(folder, version.name)
            if not (folder / MODEL_FILE).is_file():
                write_json(folder / MODEL_FILE, data)
            new = replace(version, run_id=run_id, aliases=[],
                          creation_time=version.creation_time or now_ms())
            existing = {v["version"]: v for v in self._version_files(folder)}
            same = existing.get(new.version)
            if same is not None and all(same.get(f) == getattr(new, f) for f in _IDENTITY):
                return next(v for v in self._load(folder).versions if v.version == new.version)
            if not new.version or same is not None:
                numbers = [int(v) for v in existing if v.isdigit()]
                new.version = str(max(numbers, default=0) + 1)
            record = {**asdict(new), "order": len(existing)}
            del record["aliases"]
            write_json(folder / "versions" / f"{safe_segment(new.version)}.json", record)
            for alias in version.aliases:
                self._set_alias(folder, alias, new.version)
            new.aliases = list(version.aliases)
            return new

    def set_alias(self, name: str, alias: str, version: str) -> None:
        with self._lock:
            folder = self.layout.registered_model_dir(name)
            if not (folder / "versions" / f"{safe_segment(version)}.json").is_file():
                raise BackendError(f"model {name!r} has no version {version!r} to point alias {alias!r} at")
            self._set_alias(folder, alias, version)

    def set_stage(self, name: str, version: str, stage: str | None) -> None:
        with self._lock:
            path = self.layout.registered_model_dir(name) / "versions" / f"{safe_segment(version)}.json"
            if not path.is_file():
                raise BackendError(f"model {name!r} has no version {version!r} to move to stage {stage!r}")
            data = read_json(path)
            data["stage"] = stage
            write_json(path, data)

    def delete_alias(self, name: str, alias: str) -> None:
        """Removing an alias that is not there is a no-op (a retried call)."""
        with self._lock:
            folder = self.layout.registered_model_dir(name)
            if not (folder / MODEL_FILE).is_file():
                return
            data = read_json(folder / MODEL_FILE)
            data.get("aliases", {}).pop(alias, None)
            write_json(folder / MODEL_FILE, data)

    def _set_alias(self, folder: Path, alias: str, version: str) -> None:
        data = read_json(folder / MODEL_FILE)
        data["aliases"] = {**data.get("aliases", {}), alias: version}
        write_json(folder / MODEL_FILE, data)

    @staticmethod
    def _model_json(folder: Path, name: str) -> dict[str, Any]:
        if (folder / MODEL_FILE).is_file():
            return read_json(folder / MODEL_FILE)
        return {"name": name, "description": "", "tags": {}, "aliases": {}, "creation_time": now_ms()}
