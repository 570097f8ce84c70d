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
from dataclasses import dataclass, field
from typing import Any

from trackbridge.backends.base import Limits, Writer
from trackbridge.errors import InvalidKeyError
from trackbridge.mapping import TRUNCATE, KeyMapper, MappingRecord, fit_value, flatten, param_to_str
from trackbridge.model import RunRecord
from trackbridge.sync.provenance import RESERVED_TAGS


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

    def param_files(self) -> dict[str, str]:
        """Artifact path -> content of the files keeping the truncated params' full values."""
        return {param_file(key): text for key, text in self.full_params.items()}

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


def unsupported_features(writer: Writer, same_store: bool = False) -> frozenset[str]:
    """Optional Writer features this destination leaves at the base class's default
    (a no-op, so what a run has there would be lost and must be reported; or an
    error, so ``sync`` must not plan that write).

    ``same_store`` (copying between experiments of one store) also excludes the
    registry: it is shared, and copying it onto itself would add versions of
    copies to the very models being copied."""
    hooks = {"summary": "log_summary", "inputs": "log_inputs", "registry": "create_model_version",
             "tag deletion": "delete_tags", "run rename": "set_run_name", "alias removal": "delete_model_alias"}
    found = {f for f, method in hooks.items() if getattr(type(writer), method) is getattr(Writer, method)}
    return frozenset(found | ({"registry"} if same_store else set()))


def fit_run(run: RunRecord, limits: Limits, policy: str = TRUNCATE,
            unsupported: frozenset[str] = frozenset()) -> FittedRun:
    """Params/tags/metric keys of ``run`` as ``limits`` allow, with every change recorded
    (``unsupported``: see :func:`unsupported_features`)."""
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
    if limits.max_tags_per_run is not None:
        # leave room for the provenance tags, which must always fit.
        room = max(0, limits.max_tags_per_run - len(RESERVED_TAGS))
        for key in sorted(fitted.tags)[room:]:
            record.dropped[f"tag:{key}"] = f"destination keeps at most {limits.max_tags_per_run} tags per run"
            del fitted.tags[key]

    fitted.labels = sorted(set(run.labels))
    for feature, count in (("summary", len(run.summary)), ("inputs", len(run.inputs))):
        if count and feature in unsupported:
            record.dropped[feature] = f"{count} value(s): the destination does not store {feature}"

    metric_mapper = KeyMapper(limits, "metric", record)
    for key in run.all_metric_keys():
        try:
            fitted.metric_keys[key] = metric_mapper.map(key)
        except InvalidKeyError as exc:
            fitted.errors.append(str(exc))
    return fitted
