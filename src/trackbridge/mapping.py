"""Fitting names and values to a destination's limits, and recording what changed.

Shared by the facade (live logging) and the sync planner (copies), so a key is
sanitised the same way whichever path wrote it, and ``check`` can undo the
recorded renames when comparing.  Rules (DESIGN.md, "Mapping"):

* nested dict params flatten with ``limits.nested_separator`` where the
  destination is flat;
* keys a destination cannot take are sanitised once; two different keys that
  end up equal is an error, never an overwrite;
* a value longer than the destination allows follows a policy: ``truncate``
  (the caller keeps the full value elsewhere, e.g. as an artifact) or ``raise``;
* every rename and truncation lands in a :class:`MappingRecord`, which is
  written to the destination run as tags.
"""
from __future__ import annotations

import hashlib
import json
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trackbridge.backends.base import Limits
from trackbridge.errors import InvalidKeyError, InvalidValueError, ValueTooLongError

#: tag holding the JSON of a run's MappingRecord.
MAPPING_TAG = "trackbridge.mapping"
#: where the record is kept when it is longer than the destination's tag values.
MAPPING_FILE = "trackbridge/mapping.json"
TRUNCATE = "truncate"
RAISE = "raise"


def flatten(params: Mapping[str, Any], sep: str = ".", prefix: str = "") -> dict[str, Any]:
    """``{"opt": {"lr": 1}}`` → ``{"opt.lr": 1}``; lists and scalars are leaves."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        full = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, sep, full))
        else:
            out[full] = value
    return out


def plain_value(value: Any, key: str) -> Any:
    """``value`` as plain JSON types (numpy scalars/arrays, paths converted); a clear
    error for anything else, naming param ``key``."""
    return _plain(value, key)


def _plain(value: Any, key: str) -> Any:
    """Numpy scalars/arrays and paths to plain JSON types; anything else unknown raises."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, key) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return value.item()
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    if hasattr(value, "__fspath__"):
        return str(value)
    raise InvalidValueError(
        f"param {key!r}: a value of type {type(value).__name__} cannot be logged. "
        "Convert it to str, a number, a list or a dict first."
    )


def param_to_str(key: str, value: Any) -> str:
    """The string a flat-param platform stores: MLflow's ``str()`` for scalars, JSON otherwise."""
    value = _plain(value, key)
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, allow_nan=True)
    return str(value)


def check_metric_value(key: str, value: Any) -> float:
    """A float for any real number (NaN/±inf included); a clear error otherwise.

    ``bool`` (1.0/0.0, as MLflow and W&B chart it) and ``Decimal``/``Fraction`` are
    numbers a user means as such: converted.  ``None`` and text are not: refused,
    never guessed (``"0.5"`` could be a label as well as a number)."""
    try:
        if hasattr(value, "item") and callable(value.item):
            value = value.item()
        if isinstance(value, (str, bytes, complex)) or not isinstance(value, numbers.Number):
            raise TypeError
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidValueError(
            f"metric {key!r}: {type(value).__name__} is not a number. Log a float or int."
        ) from None


@dataclass
class MappingRecord:
    """What was changed to fit a destination; stored on the run as one JSON tag."""

    renamed: dict[str, str] = field(default_factory=dict)
    #: key -> original length (the full value is kept elsewhere by the caller).
    truncated: dict[str, int] = field(default_factory=dict)
    #: things the destination could not hold at all, with the reason.
    dropped: dict[str, str] = field(default_factory=dict)
    #: things the destination holds elsewhere than the source did (a tag, a file), with where.
    kept: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.renamed or self.truncated or self.dropped or self.kept)

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {"renamed": self.renamed, "truncated": self.truncated, "dropped": self.dropped, "kept": self.kept}

    def to_text(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False)

    def to_tag(self, max_length: int | None = None) -> dict[str, str]:
        """The record as its tag; where the destination's tag values are shorter than
        the record, the tag names :data:`MAPPING_FILE` instead, where the caller keeps
        the whole record (:meth:`to_text`)."""
        if not self:
            return {}
        text = self.to_text()
        if max_length is not None and len(text) > max_length:
            text = json.dumps({"file": MAPPING_FILE, "size": len(text)})
        return {MAPPING_TAG: text}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> "MappingRecord":
        raw = tags.get(MAPPING_TAG)
        if not raw:
            return cls()
        data = json.loads(raw)
        if "file" in data:  # kept whole in MAPPING_FILE (too long for a tag there)
            return cls(kept={"mapping": f"recorded in artifact {data['file']}"})
        return cls(data.get("renamed", {}), data.get("truncated", {}), data.get("dropped", {}), data.get("kept", {}))


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


class KeyMapper:
    """Sanitises keys for one destination run and detects collisions.

    One mapper per run and per kind of key (params, metrics, tags) so that a
    rename is stable for the life of the run and recorded once.
    """

    def __init__(self, limits: Limits, kind: str, record: MappingRecord | None = None) -> None:
        self.limits = limits
        self.kind = kind
        self.record = record if record is not None else MappingRecord()
        self._by_new: dict[str, str] = {}
        self._cache: dict[str, str] = {}

    def _sanitise(self, key: str) -> str:
        new = key
        if self.limits.key_pattern is not None and not re.fullmatch(self.limits.key_pattern, new):
            new = "".join(c if re.fullmatch(self.limits.key_pattern, c) else "_" for c in new)
        if not new:
            raise InvalidKeyError(f"{self.kind} key must not be empty")
        if len(new) > self.limits.max_key_length:
            suffix = "~" + _short_hash(key)
            new = new[: self.limits.max_key_length - len(suffix)] + suffix
        return new

    def map(self, key: str) -> str:
        """The destination key for ``key``; records renames; raises on collisions."""
        if not isinstance(key, str):
            raise InvalidKeyError(f"{self.kind} key {key!r} must be a string, not {type(key).__name__}")
        if key in self._cache:
            return self._cache[key]
        new = self._sanitise(key)
        owner = self._by_new.get(new)
        if owner is not None and owner != key:
            raise InvalidKeyError(
                f"{self.kind} keys {owner!r} and {key!r} both become {new!r} at this destination. "
                "Rename one of them."
            )
        self._by_new[new] = key
        self._cache[key] = new
        if new != key:
            self.record.renamed[f"{self.kind}:{new}"] = key
        return new

    def map_all(self, items: Mapping[str, Any]) -> dict[str, Any]:
        """Map every key of ``items``, checking collisions inside the batch too."""
        return {self.map(k): v for k, v in items.items()}


def fit_value(key: str, value: str, max_len: int, policy: str, record: MappingRecord, kind: str = "param") -> str:
    """``value`` cut to ``max_len`` under policy ``truncate`` (recorded) or an error under ``raise``."""
    if len(value) <= max_len:
        return value
    if policy == RAISE:
        raise ValueTooLongError(
            f"{kind} {key!r} is {len(value)} characters; this destination keeps at most {max_len}. "
            "Shorten it, log it as an artifact, or set TRACKBRIDGE_LONG_PARAMS=truncate "
            "(the full value is then kept as an artifact)."
        )
    if policy != TRUNCATE:
        raise InvalidValueError(f"unknown long-value policy {policy!r}: use 'truncate' or 'raise'")
    record.truncated[f"{kind}:{key}"] = len(value)
    return value[:max_len]
