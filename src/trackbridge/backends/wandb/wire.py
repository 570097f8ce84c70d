"""The usual shape of ``.wandb`` history and summary records, read from their bytes.

Why: a 1,000,000-row run is 3,000,000 records, and protobuf parsing plus one
attribute access per field costs microseconds each, most of a read.  W&B writers
(the Go core, trackbridge's) write a history or summary item as ``0x0A len`` (the
item), ``0x0A|0x12 len key`` (``key``, or a one-part ``nested_key``), then
``0x82 0x01 len value_json``, every length one byte.  Everything but the value is then
fixed by the item's first bytes, its *head*: a run has a few hundred distinct heads
(keys x value lengths), each checked once and looked up after that.  Any other shape
(typed values, multi-part keys, long values, fields after the item) is not read here:
callers parse that record with protobuf, so the result is the same either way.
"""
from __future__ import annotations

#: Record field tags of the kinds read here (field number << 3 | length-delimited).
HISTORY_TAG = 0x12
SUMMARY_TAG = 0x1A
#: heads kept per file at most (a run with endless distinct keys only loses the cache).
MAX_HEADS = 100_000


def varint(data: bytes, i: int) -> tuple[int, int]:
    """The varint at ``i`` and where it ends."""
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def parse_head(head: bytes) -> tuple[str, bool, int] | None:
    """A head's (key, given as ``nested_key``, item size), or ``None`` if it is not the
    usual shape."""
    if (len(head) < 7 or head[0] != 0x0A or head[2] not in (0x0A, 0x12) or head[-3:-1] != b"\x82\x01"
            or (head[1] | head[3] | head[-1]) & 0x80 or len(head) != 7 + head[3]
            or head[1] != 5 + head[3] + head[-1]):
        return None
    return head[4:-3].decode(), head[2] == 0x12, 2 + head[1]


class Heads:
    """The heads one read has met: head -> (key, nested, item size)."""

    def __init__(self) -> None:
        self.known: dict[bytes, tuple[str, bool, int] | None] = {}

    def get(self, head: bytes) -> tuple[str, bool, int] | None:
        found = self.known.get(head, False)
        if found is False:
            found = parse_head(head)
            if len(self.known) >= MAX_HEADS:
                self.known.clear()
            self.known[head] = found
        return found  # type: ignore[return-value]


def body(data: bytes, tag: int) -> tuple[int, int] | None:
    """Where the record's kind (field ``tag``) starts and ends, when the record is
    ``num`` and that field only; else ``None``."""
    if not data or data[0] != 0x08:
        return None
    _num, i = varint(data, 1)
    if i >= len(data) or data[i] != tag:
        return None
    size, i = varint(data, i + 1)
    return (i, i + size) if i + size == len(data) else None


def items(data: bytes, start: int, end: int, heads: Heads) -> tuple[list[tuple[str, bool, int, int]], int] | None:
    """The items from ``start`` on, as (key, nested, value start, item end), and where
    the first byte that is not an item's is; ``None`` if an item has another shape."""
    found = []
    i = start
    while i < end and data[i] == 0x0A:
        value_at = i + 7 + data[i + 3]
        shape = heads.get(data[i:value_at])
        if shape is None:
            return None
        key, nested, size = shape
        found.append((key, nested, value_at, i + size))
        i += size
    return found, i


def internal_only(data: bytes, start: int, end: int) -> bool:
    """Whether every item from ``start`` to ``end`` has a key (or first key part) that
    starts with ``_``: W&B's own bookkeeping (``_runtime``, ``_wandb.runtime``...), which
    the SDK writes as a summary record of its own after every row."""
    i = start
    while i < end:
        if data[i] != 0x0A or data[i + 1] & 0x80 or data[i + 2] not in (0x0A, 0x12) or data[i + 4] != 0x5F:
            return False
        i += 2 + data[i + 1]
    return i == end
