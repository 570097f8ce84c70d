"""W&B's model registry as trackbridge writes and reads it.

W&B registers a model by *linking* a run's ``model`` artifact into a registry
collection (``wandb-registry-model/<collection>``); the collection numbers its
versions v0, v1, ... in link order and keeps each alias on one version (``latest`` is
its own).  The writers send those links (a ``LinkArtifactRequest`` record that ``wandb
sync`` replays, or ``run.link_artifact`` live).  What a link cannot say back (a
version's description and tags, trackbridge's provenance among them; the registered
model's description and tags; which version an alias was set on last) is kept in
the config key ``trackbridge.registry`` of the run that logged the model::

    {"<model name>": {"collection": "<W&B collection>",
                      "description": "...", "tags": {...}, "meta_time": <ms>,
                      "versions": [{"artifact": "<artifact name>", "client_id": "...",
                                    "created": <ms>, "seq": <n>, "description": "...",
                                    "tags": {...}, "aliases": {"<alias>": <ms>},
                                    "stage": "<MLflow stage / Comet status>"}]}}

Why per run: a run holds only the versions made from it, so registering or moving an
alias never edits another run (a finished W&B run cannot be reopened offline).  The
registry is assembled from every run's entries: versions ordered by (``created``,
``seq``) and numbered from 1 (W&B's v0 is version 1, the recorded rule), each alias
on the version that set it last, the model's description and tags from the latest
``meta_time``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from trackbridge.backends.wandb.ids import stable_id
from trackbridge.errors import BackendError, InvalidValueError
from trackbridge.model import ModelVersion, RegisteredModel, now_ms

#: the registry trackbridge links models into unless told otherwise (W&B's "Models").
DEFAULT_REGISTRY = "model"
#: metadata key of a ``model`` artifact made of run files for a registry version (the
#: version's path in the run's files): readers keep such artifacts out of the run's models.
REGISTRY_FILES_METADATA = "trackbridge.registry_files"
#: W&B collection names: letters, digits, ``-``, ``_``, ``.``; at most 128 characters.
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9._-]")
MAX_COLLECTION = 128


def collection_name(model: str) -> str:
    """The W&B collection a registered model's name maps to (other characters become
    ``-``); the model's own name stays in the run's config."""
    return (_NOT_ALLOWED.sub("-", model) or "model")[:MAX_COLLECTION]


def registry_project(registry: str) -> str:
    """The project W&B's registry ``registry`` lives in (``wandb-registry-<name>``)."""
    return registry if registry.startswith("wandb-registry-") else f"wandb-registry-{registry}"


def artifact_client_id(run_id: str, name: str, digest: str) -> str:
    """A model artifact's client id, fixed by its run, name and content: a link names
    the artifact by it before the server has given it an id."""
    return stable_id(f"trackbridge:{run_id}:{name}:{digest}", 26)


@dataclass
class Located:
    """A version as assembled, and where its entry lives (run id, the entry itself)."""

    version: ModelVersion
    run_id: str
    entry: dict[str, Any]
    collection: str


@dataclass
class Registry:
    """Every registered model of a set of runs, assembled from their entries."""

    models: dict[str, RegisteredModel] = field(default_factory=dict)
    located: dict[tuple[str, str], Located] = field(default_factory=dict)
    #: the latest time used by an entry (new entries take later ones: order is time)
    clock: int = 0

    def tick(self) -> int:
        """A time in ms later than every one the entries hold."""
        self.clock = max(now_ms(), self.clock + 1)
        return self.clock

    def locate(self, name: str, version: str) -> Located:
        found = self.located.get((name, str(version)))
        if found is None:
            raise BackendError(f"registered model {name!r} has no version {version!r} here")
        return found

    def next_number(self, name: str) -> int:
        model = self.models.get(name)
        return len(model.versions) + 1 if model else 1


def assemble(runs: Iterable[tuple[str, Mapping[str, Any]]]) -> Registry:
    """The registry held by ``runs``: (run id, its ``trackbridge.registry`` config)."""
    registry = Registry()
    collected: dict[str, list[tuple[int, int, str, dict[str, Any], str]]] = {}
    meta: dict[str, tuple[int, str, dict[str, str]]] = {}
    for run_id, models in runs:
        if not isinstance(models, Mapping):
            continue
        for name, model in models.items():
            if not isinstance(model, Mapping):
                continue
            stamp = _int(model.get("meta_time"))
            registry.clock = max(registry.clock, stamp)
            if name not in meta or stamp >= meta[name][0]:
                meta[name] = (stamp, str(model.get("description") or ""), _strs(model.get("tags")))
            collection = str(model.get("collection") or collection_name(name))
            for entry in model.get("versions") or []:
                if isinstance(entry, dict):
                    created = _int(entry.get("created"))
                    registry.clock = max(registry.clock, created, *map(_int, (entry.get("aliases") or {}).values()))
                    collected.setdefault(name, []).append((created, _int(entry.get("seq")), run_id, entry, collection))
    for name, entries in collected.items():
        entries.sort(key=lambda e: (e[0], e[1], e[2]))
        _, description, tags = meta.get(name, (0, "", {}))
        model = RegisteredModel(name=name, description=description, tags=tags)
        holder: dict[str, tuple[int, ModelVersion]] = {}
        for number, (created, _seq, run_id, entry, collection) in enumerate(entries, start=1):
            version = ModelVersion(name=name, version=str(number), source=f"{collection}:v{number - 1}",
                                   run_id=run_id, model_id=str(entry.get("client_id") or "") or None,
                                   artifact_path=str(entry.get("path") or entry.get("artifact") or ""),
                                   description=str(entry.get("description") or ""), tags=_strs(entry.get("tags")),
                                   stage=str(entry.get("stage") or "") or None, creation_time=created or None)
            model.versions.append(version)
            registry.located[(name, version.version)] = Located(version, run_id, entry, collection)
            for alias, when in (entry.get("aliases") or {}).items():
                if alias not in holder or _int(when) >= holder[alias][0]:
                    holder[alias] = (_int(when), version)
        for alias, (_when, version) in sorted(holder.items()):
            version.aliases.append(alias)
        registry.models[name] = model
    return registry


@dataclass(frozen=True)
class LinkedVersion:
    """One version of a registry collection as W&B's API gives it (made in W&B itself)."""

    collection: str
    index: int
    run_id: str | None
    #: the run's artifact the version links (name without ``:vN``)
    artifact: str
    description: str = ""
    labels: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    created: int | None = None


def linked_models(versions: Iterable[LinkedVersion], skip: set[str]) -> list[RegisteredModel]:
    """Registered models linked in W&B without trackbridge (collections in ``skip`` are
    the ones its entries describe): one per collection, named as it; version N+1 for
    W&B's vN, from the run that logged the artifact; W&B's tags (labels) as tags with
    empty values; the aliases but W&B's own ``latest``, which is only its newest."""
    models: dict[str, RegisteredModel] = {}
    for v in sorted(versions, key=lambda v: (v.collection, v.index)):
        if v.collection in skip:
            continue
        model = models.setdefault(v.collection, RegisteredModel(name=v.collection))
        model.versions.append(ModelVersion(
            name=v.collection, version=str(v.index + 1), source=f"{v.collection}:v{v.index}", run_id=v.run_id,
            artifact_path=v.artifact, description=v.description, tags={label: "" for label in v.labels},
            aliases=[a for a in v.aliases if a != "latest"], creation_time=v.created))
    return list(models.values())


def links(held: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """The links a run's entries make, in the order they were made: (artifact client
    id, collection, aliases), one per version (no alias) and one per alias set."""
    events: list[tuple[int, int, str, str, list[str]]] = []
    for name, model in held.items():
        if not isinstance(model, Mapping):
            continue
        collection = str(model.get("collection") or collection_name(name))
        for entry in model.get("versions") or []:
            if not isinstance(entry, Mapping) or not entry.get("client_id"):
                continue
            events.append((_int(entry.get("created")), 0, entry["client_id"], collection, []))
            for alias, when in (entry.get("aliases") or {}).items():
                events.append((_int(when), 1, entry["client_id"], collection, [alias]))
    return [(client_id, collection, aliases) for _t, _k, client_id, collection, aliases in sorted(events)]


def new_entry(artifact: str, client_id: str, created: int, seq: int, version: ModelVersion,
              path: str | None = None) -> dict[str, Any]:
    """The config entry of a version just registered from ``artifact`` (made of the run's
    files at ``path``, when the version is a folder of files rather than a model)."""
    entry = {"artifact": artifact, "client_id": client_id, "created": created, "seq": seq,
             "description": version.description or "", "tags": dict(version.tags), "aliases": {}}
    if path:
        entry["path"] = path
    return entry


def model_entry(held: dict[str, Any], name: str, collection: str,
                meta: tuple[str, dict[str, str], int] | None) -> dict[str, Any]:
    """The run's entry for model ``name`` (created when missing), with the model's
    description and tags when ``meta`` (description, tags, time) is newer."""
    model = held.setdefault(name, {"collection": collection, "description": "", "tags": {}, "meta_time": 0,
                                   "versions": []})
    if meta is not None and meta[2] >= _int(model.get("meta_time")):
        model["description"], model["tags"], model["meta_time"] = meta[0], dict(meta[1]), meta[2]
    return model


def model_artifact(models: Mapping[str, str], version: ModelVersion, run_id: str) -> str:
    """The name of the run's model artifact a version is made from (``models``: name ->
    client id, which is the logged model's ``model_id``): the one of the version's
    ``model_id``, else the one named as its model path (or its last part); with neither,
    the run's only one."""
    if version.model_id:
        for name, client_id in models.items():
            if client_id == version.model_id:
                return name
    path = version.artifact_path or ""
    for name in (path, PurePosixPath(path).name if path else ""):
        if name and name in models:
            return name
    if not path and not version.model_id and len(models) == 1:
        return next(iter(models))
    raise InvalidValueError(
        f"version of {version.name!r}: run {run_id} has no model artifact {path!r} "
        f"(its models: {sorted(models) or 'none'}); log the model with the run first")


def files_artifact_name(path: str) -> str:
    """The name of the ``model`` artifact a writer makes of the run's files under
    ``path`` (MLflow registers any folder of a run's files; W&B links artifacts)."""
    return collection_name("files-" + path.strip("/"))


def version_artifact(models: Mapping[str, str], version: ModelVersion, run_id: str) -> tuple[str, str | None]:
    """(artifact name, files path) of the artifact a version links: the run's model
    artifact (:func:`model_artifact`, path ``None``), or for a version made of a folder
    of the run's files, the artifact of those files, which the writer makes if missing."""
    try:
        return model_artifact(models, version, run_id), None
    except InvalidValueError:
        if not version.artifact_path:
            raise
        return files_artifact_name(version.artifact_path), version.artifact_path


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _strs(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}
