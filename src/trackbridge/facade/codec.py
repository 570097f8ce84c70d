"""One journal line per op, and back.

Why a packed form for metric batches: every point is journaled before it is sent,
and ``json.dumps`` of a ``[key, step, value, timestamp]`` list per point costs
about 1 µs a point (the float ``repr`` mostly), a tenth of what the whole facade
spends per point.  A metric op is therefore written with its columns as
little-endian machine arrays in base64 (``array`` + ``base64`` run in C; NaN and
±inf are kept bit for bit)::

    {"op":"metrics","pack":1,"keys":["loss","acc"],"ki":"<uint32 key index per point>",
     "s":"<int64 steps>","v":"<float64 values>","t":"<int64 timestamps>"}

``ki`` is empty when the batch has one key.  Every other op, and a metric op
that does not fit the arrays (a step beyond int64), is plain JSON; :func:`decode`
reads both, and journals written before the packed form existed.
"""
from __future__ import annotations

import base64
import json
import sys
from array import array
from typing import Any

_LITTLE = sys.byteorder == "little"


def encode(op: dict[str, Any]) -> bytes:
    """The journal line (with its newline) for ``op``."""
    if op.get("op") == "metrics" and op.get("points"):
        try:
            return _pack(op["points"])
        except (OverflowError, TypeError, ValueError):
            pass  # not array-shaped: plain JSON below
    return (json.dumps(op, allow_nan=True, separators=(",", ":")) + "\n").encode("utf-8")


def decode(raw: bytes) -> dict[str, Any]:
    """The op of one journal line: packed metric ops come back as ``points`` lists."""
    op = json.loads(raw)
    if op.get("pack") == 1:
        return {"op": "metrics", "points": _unpack(op)}
    return op


def _pack(points: list[Any]) -> bytes:
    keys, steps, values, times = zip(*points)
    names = list(dict.fromkeys(keys))
    if len(names) == 1:
        index = ""
    else:
        position = {name: i for i, name in enumerate(names)}
        index = _b64("I", [position[key] for key in keys])
    body = {"op": "metrics", "pack": 1, "keys": names, "ki": index,
            "s": _b64("q", steps), "v": _b64("d", values), "t": _b64("q", times)}
    return (json.dumps(body, separators=(",", ":")) + "\n").encode("utf-8")


def _unpack(op: dict[str, Any]) -> list[list[Any]]:
    steps, values, times = _array("q", op["s"]), _array("d", op["v"]), _array("q", op["t"])
    names = op["keys"]
    keys = [names[i] for i in _array("I", op["ki"])] if op["ki"] else [names[0]] * len(steps)
    return [[k, s, v, t] for k, s, v, t in zip(keys, steps, values, times)]


def _b64(code: str, items: Any) -> str:
    data = array(code, items)
    if not _LITTLE:
        data.byteswap()
    return base64.b64encode(data.tobytes()).decode("ascii")


def _array(code: str, text: str) -> array:
    data = array(code)
    data.frombytes(base64.b64decode(text))
    if not _LITTLE:
        data.byteswap()
    return data
