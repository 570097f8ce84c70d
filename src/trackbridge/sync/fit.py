"""What a source run looks like once fitted to a destination's :class:`Limits`.

One function used by the planner (to report renames/truncations/drops before
anything is written), by the transfer (to write exactly that), and by
``check`` (to know what to *expect* at the destination, so recorded
transformations are not reported as differences).  Keeping the three on one
code path is what makes "check passes after copy" meaningful.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from trackbridge.backends.base import Features, Limits
from trackbridge.errors import InvalidKeyError
from trackbridge.mapping import TRUNCATE, KeyMapper, MappingRecord, fit_value, flatten, param_to_str
from trackbridge.model import RunRecord
from trackbridge.sync.provenance import (
    DUPLICATE_OF,
    RESERVED_TAGS,
    SOURCE_END_TIME,
    SOURCE_PARENT,
    SOURCE_START_TIME,
    SOURCE_USER,
)


@dataclass
class FittedRun:
    """Destination-ready params, tags and metric keys of one source run."""

    #: strings for a flat-param destination; JSON values (nested dicts kept) otherwise.
    params: dict[str, Any] = field(default_factory=dict)
    #: the destination's ``limits.flat_params``: how its param values compare (:meth:`comparable`).
    flat_params: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    #: source metric key -> destination metric key
    metric_keys: dict[str, str] = field(default_factory=dict)
    record: MappingRecord = field(default_factory=MappingRecord)
    #: problems that make the run impossible to copy faithfully (key collisions).
    errors: list[str] = field(default_factory=list)
    #: destination key -> full value of each param truncated to fit (kept as a file, see :func:`param_file`).
    full_params: dict[str, str] = field(default_factory=dict)
    #: tags holding run fields the destination cannot set (:func:`kept_fields`).
    kept: dict[str, str] = field(default_factory=dict)
    #: user tags past the destination's ``max_tags_per_run``, kept in :data:`OVERFLOW_FILE`.
    overflow_tags: dict[str, str] = field(default_factory=dict)

    def param_files(self) -> dict[str, str]:
        """Artifact path -> content of the files trackbridge writes to keep what did not fit:
        truncated params' full values, and the user tags past the destination's tag limit."""
        files = {param_file(key): text for key, text in self.full_params.items()}
        if self.overflow_tags:
            files[OVERFLOW_FILE] = json.dumps(self.overflow_tags, sort_keys=True, ensure_ascii=False, indent=1)
        return files

    def comparable(self, params: Mapping[str, Any]) -> dict[str, str]:
        """``params`` (fitted, or read back from the destination) as strings equal exactly
        when the destination holds the same value: what a flat destination stores, or
        canonical JSON where values keep their type (so ``1`` and ``"1"`` differ there)."""
        if self.flat_params:
            return {k: param_to_str(k, v) for k, v in params.items()}
        return {k: json.dumps(v, sort_keys=True, allow_nan=True, ensure_ascii=False, default=str)
                for k, v in params.items()}


#: where the full value of a truncated param is kept, the same place the facade uses.
PARAM_FILES = "trackbridge/params"


def param_file(key: str) -> str:
    """Artifact path of the file holding param ``key``'s full value (a ``/`` in the key is a folder)."""
    return f"{PARAM_FILES}/{key}.txt"


def _map_keys(mapper: KeyMapper, items: dict[str, Any], fitted: FittedRun) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items.items():
        try:
            out[mapper.map(key)] = value
        except InvalidKeyError as exc:
            fitted.errors.append(str(exc))
    return out


#: What :meth:`Target.can` answers for: every :class:`Features` field.
FEATURE_NAMES = frozenset(f.name for f in fields(Features))


@dataclass(frozen=True)
class Target:
    """What one destination can hold: its backend's :class:`Features` and its
    writer's :class:`Limits`, the only two things the engine asks of a platform.

    ``same_store`` (copying between experiments of one store) also excludes the
    registry: it is shared, and copying it onto itself would add versions of
    copies to the very models being copied.  ``source_tag_prefixes`` are the tag
    prefixes the *source* platform writes itself (its bookkeeping, not user tags)."""

    features: Features
    limits: Limits
    same_store: bool = False
    source_tag_prefixes: tuple[str, ...] = ()

    @property
    def lacks(self) -> frozenset[str]:
        """Feature names the destination switches off (see :meth:`Features.lacks`)."""
        return self.features.lacks() | ({"registry"} if self.same_store else set())

    def can(self, feature: str) -> bool:
        """Whether the destination holds ``feature`` (a :class:`Features` field name).  A
        name that is no feature is an error: a misspelt name must not read as "can"."""
        if feature not in FEATURE_NAMES:
            raise ValueError(f"unknown feature {feature!r} (one of {', '.join(sorted(FEATURE_NAMES))})")
        return feature not in self.lacks

    @property
    def increasing_steps(self) -> bool:
        """Steps must strictly increase at the destination (declared by its features)."""
        return self.features.strictly_increasing_steps

    @property
    def rows(self) -> bool:
        """Send history as rows merged by step (:meth:`Writer.log_rows`)."""
        return self.features.history_rows or self.increasing_steps

    @property
    def system_tag_prefixes(self) -> tuple[str, ...]:
        """Tags neither side's user wrote: never deleted at the destination, never compared."""
        return tuple(dict.fromkeys(("trackbridge.", *self.features.system_tag_prefixes, *self.source_tag_prefixes)))


#: run fields a destination that cannot set them keeps as tags instead (feature -> field -> tag).
KEPT_FIELDS = (
    ("settable_start_time", "start_time", SOURCE_START_TIME),
    ("settable_end_time", "end_time", SOURCE_END_TIME),
    ("settable_user", "user", SOURCE_USER),
    ("nested_runs", "parent_run_id", SOURCE_PARENT),
)

#: the provenance tags every copied run carries, its creator's claim, the mapping record
#: and the marker (the kept fields are counted per run; a duplicate mark is never on a copy kept).
OWN_TAGS = len(RESERVED_TAGS - {SOURCE_START_TIME, SOURCE_END_TIME, SOURCE_USER, SOURCE_PARENT, DUPLICATE_OF})
#: where user tags past a destination's ``max_tags_per_run`` are kept, whole, as JSON.
OVERFLOW_FILE = "trackbridge/tags.json"


def field_tags(run: RunRecord, limits: Limits) -> int:
    """Tags the destination platform itself spends on ``run``'s fields (``limits.field_tags``)."""
    present = {
        "name": bool(run.name), "user": bool(run.user), "parent_run_id": bool(run.parent_run_id),
        "notes": bool(run.notes), "summary": bool(run.summary), "models": bool(run.models),
    }
    count = sum(1 for name in limits.field_tags if present.get(name))
    return count + (len(set(run.labels)) if "labels" in limits.field_tags else 0)


def kept_fields(run: RunRecord, target: Target) -> dict[str, str]:
    """Tags holding the run fields ``target`` cannot set (``trackbridge.source.start_time``...)."""
    out = {}
    for feature, attr, tag in KEPT_FIELDS:
        value = getattr(run, attr)
        if not target.can(feature) and value is not None and value != "":
            out[tag] = str(value)
    return out


def fit_run(run: RunRecord, target: Target, policy: str = TRUNCATE) -> FittedRun:
    """Params/tags/metric keys of ``run`` as ``target`` allows, with every change recorded."""
    limits = target.limits
    fitted = FittedRun(flat_params=limits.flat_params)
    record = fitted.record

    param_keys = KeyMapper(limits, "param", record)
    if limits.flat_params:
        params: dict[str, Any] = {}
        for key, value in run.params.items():
            flat = flatten({key: value}, limits.nested_separator)
            if len(flat) > 1 or key not in flat:  # a nested dict: each leaf names its source param
                record.renamed.update({f"param:{leaf}": key for leaf in flat})
            params.update(flat)
        as_str = {k: param_to_str(k, v) for k, v in params.items()}
        for key, text in _map_keys(param_keys, as_str, fitted).items():
            fitted.params[key] = fit_value(key, text, limits.max_param_value_length, policy, record, "param")
            if fitted.params[key] != text:
                fitted.full_params[key] = text
    else:
        # the destination keeps JSON values: pass them through (nested dicts too), only keys are mapped.
        fitted.params = _map_keys(param_keys, dict(run.params), fitted)

    tags = {k: v for k, v in run.tags.items() if k not in RESERVED_TAGS}
    for key, value in _map_keys(KeyMapper(limits, "tag", record), tags, fitted).items():
        fitted.tags[key] = fit_value(key, value, limits.max_tag_value_length, TRUNCATE, record, "tag")
    fitted.kept = kept_fields(run, target)
    for feature, attr, tag in KEPT_FIELDS:
        if tag in fitted.kept:
            record.kept[attr] = f"destination cannot set it ({feature}): kept in tag {tag}"
    fitted.labels = sorted(set(run.labels))
    if fitted.labels and not target.can("labels"):
        record.kept["labels"] = "destination has no labels: kept as tags with empty values"
    _fit_tag_count(run, target, fitted)

    for feature, count in (("summary", len(run.summary)), ("inputs", len(run.inputs)),
                           ("notes", 1 if run.notes else 0)):
        if count and not target.can(feature):
            record.dropped[feature] = f"{count} value(s): the destination does not store {feature}"
    for item, why in run.unread.items():
        record.dropped[f"source:{item}"] = why
    for item, how in run.carried.items():
        record.kept[f"source:{item}"] = how
    if run.system_metrics and not target.can("system_metrics"):
        record.kept["system_metrics"] = "destination keeps no system metrics apart: logged as ordinary metrics"
    if not target.can("timestamps") and (run.metrics or run.system_metrics):
        record.dropped["timestamps"] = "the destination keeps no metric timestamps"

    metric_mapper = KeyMapper(limits, "metric", record)
    for key in run.all_metric_keys():
        try:
            fitted.metric_keys[key] = metric_mapper.map(key)
        except InvalidKeyError as exc:
            fitted.errors.append(str(exc))
    return fitted


def _fit_tag_count(run: RunRecord, target: Target, fitted: FittedRun) -> None:
    """Enforce ``max_tags_per_run`` counting trackbridge's own tags and the tags the
    destination writer itself uses for this run's fields; the user tags past the
    limit are kept, whole, in the artifact :data:`OVERFLOW_FILE` (recorded)."""
    limit = target.limits.max_tags_per_run
    if limit is None:
        return
    own = OWN_TAGS + len(fitted.kept) + field_tags(run, target.limits)
    if own > limit:
        fitted.errors.append(f"the destination keeps at most {limit} tags per run, and trackbridge's own "
                             f"tags for this run need {own}: it cannot be copied there faithfully")
    room = max(0, limit - own)
    overflow = sorted(fitted.tags)[room:]
    if not overflow:
        return
    fitted.overflow_tags = {key: fitted.tags.pop(key) for key in overflow}
    fitted.record.kept["tags"] = (
        f"{len(overflow)} tag(s) past the destination's {limit} per run ({own} used by trackbridge and the "
        f"platform): kept in artifact {OVERFLOW_FILE}")
