"""Fit one run's names and values to one destination, synchronously.

Why synchronously: a bad key or value is a bug in the caller's code, so it must
raise at the line that logged it, not minutes later in a background thread.
Why per destination: limits differ (MLflow keys vs Azure's 50-tag cap), so in a
fan-out each backend gets its own :class:`Sanitiser` and its own
:class:`~trackbridge.mapping.MappingRecord`, stored on that backend's run.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from trackbridge.backends.base import Limits
from trackbridge.errors import InvalidKeyError, InvalidValueError
from trackbridge.mapping import TRUNCATE, KeyMapper, MappingRecord, fit_value, flatten, param_to_str, plain_value


class Sanitiser:
    """Key mapping, flattening, truncation and non-finite handling for one run at one backend."""

    def __init__(self, limits: Limits, long_params: str = TRUNCATE) -> None:
        self.limits = limits
        self.long_params = long_params
        self.record = MappingRecord()
        self._param_keys = KeyMapper(limits, "param", self.record)
        self._metric_keys = KeyMapper(limits, "metric", self.record)
        self._tag_keys = KeyMapper(limits, "tag", self.record)
        self._sent_record = ""

    def params(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """``(fitted params, full values of the truncated ones)``; raises before changing anything
        the caller could observe, so a bad call logs nothing.  Strings for a flat destination
        (``limits.flat_params``); JSON values, nested dicts kept, for the others (W&B config)."""
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict, not {type(params).__name__}")
        if self.limits.flat_params:
            params = flatten(params, self.limits.nested_separator)
        values = {str(key): plain_value(value, str(key)) for key, value in params.items()}
        fitted: dict[str, Any] = {}
        full: dict[str, str] = {}
        for key, value in values.items():
            new_key = self._param_keys.map(key)
            text = param_to_str(new_key, value)
            cut = fit_value(new_key, text, self.limits.max_param_value_length, self.long_params, self.record)
            if cut != text:
                full[new_key] = text
            fitted[new_key] = value if cut == text and not self.limits.flat_params else cut
        return fitted, full

    def tags(self, tags: Mapping[str, Any]) -> dict[str, str]:
        """Tags as strings; over-long values are always truncated (and recorded): a tag is a label,
        not data worth failing a run for."""
        if not isinstance(tags, Mapping):
            raise TypeError(f"tags must be a dict, not {type(tags).__name__}")
        out = {}
        for key, value in tags.items():
            new_key = self._tag_keys.map(key)
            text = param_to_str(new_key, value)
            out[new_key] = fit_value(new_key, text, self.limits.max_tag_value_length, TRUNCATE, self.record, "tag")
        return out

    def labels(self, labels: Iterable[str] | str) -> list[str]:
        """Value-less tags, de-duplicated in order.  A label lives in the tag namespace
        where the platform keeps labels as empty-valued tags (MLflow), so it is fitted
        with the tag key rules and a label and a tag of the same name are one key there."""
        if isinstance(labels, str):
            labels = [labels]
        if isinstance(labels, Mapping) or not isinstance(labels, Iterable):
            raise TypeError(f"labels must be a list of strings, not {type(labels).__name__}")
        out: dict[str, None] = {}
        for label in labels:
            if not isinstance(label, str):
                raise InvalidKeyError(f"label {label!r} must be a string, not {type(label).__name__}")
            if not label.strip():
                raise InvalidKeyError("a label must not be empty or blank")
            out[self._tag_keys.map(label)] = None
        return list(out)

    def summary(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Summary values as plain JSON (numpy scalars/arrays converted; NaN/±inf kept,
        as metrics keep them); anything JSON cannot hold raises here, naming the key."""
        if not isinstance(values, Mapping):
            raise TypeError(f"summary values must be a dict, not {type(values).__name__}")
        out: dict[str, Any] = {}
        for key, value in values.items():
            if not isinstance(key, str) or not key:
                raise InvalidKeyError(f"summary key {key!r} must be a non-empty string")
            try:
                plain = plain_value(value, key)
                json.dumps(plain, allow_nan=True)
            except (InvalidValueError, TypeError, ValueError):
                raise InvalidValueError(
                    f"summary {key!r}: a value of type {type(value).__name__} cannot be kept as a summary "
                    "value. Use a number, str, bool, None, or a list/dict of those; log files with log_artifact."
                ) from None
            out[key] = plain
        return out

    def notes(self, text: str) -> str:
        """The run's description; cut to the platform's tag length where notes are a tag
        (recorded in the mapping tag, as over-long tags are)."""
        if not isinstance(text, str):
            raise TypeError(f"notes must be a str, not {type(text).__name__}")
        return fit_value("notes", text, self.limits.max_tag_value_length, TRUNCATE, self.record, "notes")

    def metric_key(self, key: str) -> str:
        """The destination name of metric ``key`` (cached by the caller's hot path)."""
        return self._metric_keys.map(key)

    def drop_non_finite(self, key: str, value: float) -> None:
        """Record that a NaN/±inf point of ``key`` could not be kept at this destination."""
        self.record.dropped.setdefault(f"metric:{key}", f"non-finite values ({value!r}) are not supported here")

    def record_update(self) -> dict[str, str] | None:
        """The mapping tag if it changed since last asked, else ``None``."""
        tag = self.record.to_tag()
        text = json.dumps(tag, sort_keys=True)
        if not tag or text == self._sent_record:
            return None
        self._sent_record = text
        return tag
