"""Registered models: versions created in source order, re-pointed to copied runs.

A destination version is identified by the tag ``trackbridge.source.version``
(its source version number), not by its own number: a destination registry may
already hold versions of the same name, and a dropped version shifts numbers.
When both sides start empty, numbers match (version N → version N).

Scope: a registered model is copied when at least one of its versions comes
from a run in this copy.  A version whose run is neither copied now nor found
at the destination is *dropped* and reported (a version must point at a run).
Aliases are set after the versions, so they can point at versions created in
the same invocation; an alias that moved at the source is moved at the
destination.  Under ``sync``, an alias removed at the source is removed at the
destination when it points at a version trackbridge copied (one carrying
``trackbridge.source.version``): aliases set there by hand stay.  Not synced
(no Writer API; ``check`` reports them): description/tag edits of versions
after their creation.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from trackbridge.backends.base import Reader, Writer
from trackbridge.model import ModelVersion, RegisteredModel
from trackbridge.model_files import repoint_text
from trackbridge.sync.provenance import CLAIM, ORIGIN_VERSION, RESERVED_VERSION_TAGS, SOURCE_RUN_ID, SOURCE_VERSION
from trackbridge.sync.retry import Retry


@dataclass
class VersionPlan:
    src: ModelVersion
    action: str  # create | unchanged | dropped
    dst_version: str | None = None
    reason: str = ""


@dataclass
class ModelPlan:
    src: RegisteredModel
    dst: RegisteredModel | None
    versions: list[VersionPlan] = field(default_factory=list)
    #: alias -> source version it must point to (only aliases that differ at the destination).
    aliases: dict[str, str] = field(default_factory=dict)
    #: destination aliases of copied versions that the source no longer has.
    remove_aliases: list[str] = field(default_factory=list)
    #: source aliases the destination manages itself (W&B's ``latest``): not copied.
    reserved: list[str] = field(default_factory=list)
    #: source version -> stage (status) it must have where the destination's differs.
    stages: dict[str, str | None] = field(default_factory=dict)
    update_meta: bool = False

    @property
    def creates(self) -> int:
        return sum(1 for v in self.versions if v.action == "create")

    @property
    def writes(self) -> bool:
        return bool(self.update_meta or self.creates or self.aliases or self.remove_aliases or self.stages)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.src.name,
            "exists": self.dst is not None,
            "update_meta": self.update_meta,
            "versions": [{"src_version": v.src.version, "action": v.action, "dst_version": v.dst_version,
                          "reason": v.reason} for v in self.versions],
            "aliases": self.aliases,
            "remove_aliases": self.remove_aliases,
            "stages": self.stages,
        }


def user_version_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k not in RESERVED_VERSION_TAGS}


def dest_versions_by_source(model: RegisteredModel | None) -> dict[str, ModelVersion]:
    """Destination versions keyed by the source version they were copied from, and by
    the first version of their chain of copies (so a copy of a copy is recognised)."""
    if model is None:
        return {}
    found = {v.tags[SOURCE_VERSION]: v for v in model.versions if v.tags.get(SOURCE_VERSION)}
    for v in model.versions:
        if v.tags.get(ORIGIN_VERSION):
            found.setdefault(v.tags[ORIGIN_VERSION], v)
    return found


def origin_version(version: ModelVersion) -> str:
    """The first version of ``version``'s chain of copies (itself, when not a copy)."""
    return version.tags.get(ORIGIN_VERSION) or version.tags.get(SOURCE_VERSION) or version.version


def dest_aliases(model: RegisteredModel | None) -> dict[str, str]:
    if model is None:
        return {}
    return {alias: v.version for v in model.versions for alias in v.aliases}


def plan_registry(src: Reader, dst: Reader, in_scope: set[str], known: Mapping[str, str], retry: Retry,
                  remove_aliases: bool = False, reserved_aliases: frozenset[str] = frozenset()) -> list[ModelPlan]:
    """Model plans for the registered models with versions from the runs ``in_scope``
    (``known``: source -> destination ids of runs already copied; ``remove_aliases``:
    also plan removing aliases gone at the source, ``sync`` only; ``reserved_aliases``:
    aliases the destination sets itself, never copied or removed)."""
    if not in_scope:
        return []
    reachable = in_scope | set(known)
    models = [m for m in retry.call(lambda: list(src.list_registered_models()))
              if any(v.run_id in in_scope for v in m.versions)]
    if not models:
        return []
    existing = {m.name: m for m in retry.call(lambda: list(dst.list_registered_models()))}
    return [_plan_model(m, existing.get(m.name), reachable, remove_aliases, reserved_aliases) for m in models]


def _plan_model(src: RegisteredModel, dst: RegisteredModel | None, reachable: set[str],
                remove_aliases: bool = False, reserved_aliases: frozenset[str] = frozenset()) -> ModelPlan:
    mp = ModelPlan(src, dst)
    mp.reserved = sorted({a for v in src.versions for a in v.aliases if a in reserved_aliases})
    mp.update_meta = dst is None or (dst.description or "") != (src.description or "") or any(
        dst.tags.get(k) != v for k, v in src.tags.items())
    have = dest_versions_by_source(dst)
    for version in src.versions:
        if version.version in have:
            mp.versions.append(VersionPlan(version, "unchanged", have[version.version].version))
            if (have[version.version].stage or None) != (version.stage or None):
                mp.stages[version.version] = version.stage
        elif version.run_id and version.run_id in reachable:
            mp.versions.append(VersionPlan(version, "create"))
            if version.stage:
                mp.stages[version.version] = version.stage
        else:
            mp.versions.append(VersionPlan(version, "dropped", reason=(
                f"source run {version.run_id} is not part of this copy: include its experiment"
                if version.run_id else "the version has no source run")))
    current = dest_aliases(dst)
    for version in src.versions:
        for alias in version.aliases:
            if alias in reserved_aliases:
                continue
            planned = next((v for v in mp.versions if v.src.version == version.version), None)
            if planned is None or planned.action == "dropped":
                continue
            if planned.dst_version is None or current.get(alias) != planned.dst_version:
                mp.aliases[alias] = version.version
    if remove_aliases and dst is not None:
        copied = {v.version for v in dest_versions_by_source(dst).values()}
        at_source = {alias for v in src.versions for alias in v.aliases}
        mp.remove_aliases = sorted(a for a, v in current.items()
                                   if v in copied and a not in at_source and a not in reserved_aliases)
    return mp


def settle_version(dst: Reader, writer: Writer, made: ModelVersion, src_version: str, claim: str,
                   can_delete: bool, retry: Retry) -> str:
    """The destination version to keep for ``src_version`` once ``made`` exists: two
    invocations copying at once may each have created one; both keep the lowest
    number, and the other is deleted (where the destination can) by its creator."""
    model = retry.call(dst.get_registered_model, made.name)
    copies = [v for v in (model.versions if model else []) if v.tags.get(SOURCE_VERSION) == src_version]
    if not copies:
        return made.version
    keep = min(copies, key=lambda v: int(v.version) if v.version.isdigit() else v.version)
    if keep.version != made.version and can_delete:
        retry.call(writer.delete_model_version, made.name, made.version)
    for other in copies:  # our own leftovers (a retried create that had succeeded)
        if other.version not in (keep.version, made.version) and other.tags.get(CLAIM) == claim and can_delete:
            retry.call(writer.delete_model_version, made.name, other.version)
    return keep.version


def _creation_order(vp: VersionPlan) -> tuple[int, int, str]:
    """Source versions in the order they were made (by number), whatever order the
    source lists them in: a destination that numbers its own versions then gives
    version N to source version N."""
    number = vp.src.version
    return (0, int(number), "") if number.isdigit() else (1, vp.src.creation_time or 0, number)


def apply_registry(
    plans: list[ModelPlan],
    writer: Writer,
    run_map: Mapping[str, str],
    model_map: Mapping[str, str],
    retry: Retry,
    on_version: Callable[[str, str, str], None] = lambda name, src, dst: None,
    dst: Reader | None = None,
    claim: str = "",
    can_delete: bool = False,
    elsewhere: frozenset[str] = frozenset(),
) -> tuple[int, int, list[str]]:
    """Apply the plans; returns (versions created, aliases set or removed, errors).

    ``run_map``/``model_map`` map source run/logged-model ids to destination
    ones; a version whose run failed to copy is reported, not created.  With
    ``dst`` (the destination's reader), each new version is settled against one
    another invocation may have made at the same time (:func:`settle_version`).  A
    model with a version of a run another invocation is still copying (``elsewhere``)
    is left to it whole: the invocation that finishes last makes all of a model's
    versions, in source order, so version N stays the copy of source version N."""
    created = aliases = 0
    errors: list[str] = []
    for mp in plans:
        if not mp.writes:
            continue
        if any((vp.src.run_id or "") in elsewhere for vp in mp.versions if vp.action == "create"):
            continue
        if mp.update_meta:
            retry.call(writer.register_model, RegisteredModel(mp.src.name, mp.src.description, dict(mp.src.tags)))
        numbers = {v.src.version: v.dst_version for v in mp.versions if v.dst_version}
        for vp in sorted(mp.versions, key=_creation_order):
            if vp.action != "create":
                continue
            dst_run = run_map.get(vp.src.run_id or "")
            if dst_run is None:
                errors.append(f"model {mp.src.name!r} v{vp.src.version}: its run {vp.src.run_id} was not copied")
                continue
            ids = {vp.src.run_id or "": dst_run, **model_map}
            version = replace(
                vp.src,
                run_id=dst_run,
                model_id=model_map.get(vp.src.model_id or ""),
                source=repoint_text(vp.src.source, ids),
                tags={**user_version_tags(vp.src.tags), SOURCE_VERSION: vp.src.version,
                      ORIGIN_VERSION: origin_version(vp.src), SOURCE_RUN_ID: vp.src.run_id or "", **({CLAIM: claim} if claim else {})},
                aliases=[],
            )
            made = retry.call(writer.create_model_version, version, dst_run)
            kept = made.version
            if dst is not None:
                kept = settle_version(dst, writer, made, vp.src.version, claim, can_delete, retry)
            numbers[vp.src.version] = kept
            on_version(mp.src.name, vp.src.version, kept)
            created += 1
        for alias, src_version in mp.aliases.items():
            if src_version in numbers:
                retry.call(writer.set_model_alias, mp.src.name, alias, numbers[src_version])
                aliases += 1
        for alias in mp.remove_aliases:
            retry.call(writer.delete_model_alias, mp.src.name, alias)
            aliases += 1
        for src_version, stage in mp.stages.items():
            if src_version in numbers:
                retry.call(writer.set_version_stage, mp.src.name, numbers[src_version], stage)
    return created, aliases, errors
