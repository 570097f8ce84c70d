"""Comet's media files <-> canonical media payloads, without comet_ml.

Histograms: ``log_histogram_3d`` writes one JSON file per step holding a
``comet_ml.Histogram`` (version 2): counts over a fixed, exponentially spaced set of
bin edges (``start``, ``stop``, ``step``, ``offset``), sparse as ``[index, count]``.
The canonical shape (W&B's) is contiguous edges and counts, so a Comet histogram reads
as the edges from its first to its last non-empty bin, exactly.  The other way is exact
only when the edges are a run of Comet's own (a histogram that came from Comet) and the
counts whole numbers (the SDK keeps counts as integers); any other histogram is written
re-binned for Comet's panel, and its exact bins and counts go with it in the upload's
metadata, from which the readers take them.

Images: Comet stores no size or format with ``log_image``; a PNG's size is in its
header, which is where the readers take ``meta`` from when trackbridge did not store it.
"""
from __future__ import annotations

import functools
import math
import struct
from collections.abc import Sequence
from typing import Any

#: comet_ml.Histogram's defaults (its only supported values since 3.x).
DEFAULT_GRID = (1e-12, 1e20, 1.1, 0.0)


@functools.lru_cache(maxsize=8)
def bin_edges(start: float = 1e-12, stop: float = 1e20, step: float = 1.1, offset: float = 0.0) -> tuple[float, ...]:
    """``comet_ml.Histogram.create_bin_values``, the same float arithmetic, so the edges
    are bit-for-bit the SDK's: ``[-inf, ..., offset - start, offset, offset + start, ..., inf]``."""
    values = [-math.inf, offset, math.inf]
    value = start
    while offset + value <= stop:
        values.insert(1, offset - value)
        values.insert(-1, offset + value)
        value *= step
    return tuple(values)


@functools.lru_cache(maxsize=8)
def _edge_index(grid: tuple[float, float, float, float]) -> dict[float, int]:
    return {v: i for i, v in enumerate(bin_edges(*grid))}


def _grid(doc: dict[str, Any]) -> tuple[float, float, float, float]:
    return (float(doc.get("start", 1e-12)), float(doc.get("stop", 1e20)), float(doc.get("step", 1.1)),
            float(doc.get("offset", 0.0)))


def histogram_from_comet(doc: dict[str, Any]) -> dict[str, list[float]]:
    """A ``Histogram.to_json()`` document as ``{"bins": edges, "values": counts}``: the
    edges of its first to last non-empty bin (empty -> no bins)."""
    edges = bin_edges(*_grid(doc))
    counts: dict[int, Any] = {}
    if doc.get("index_values") is not None:
        counts = {int(i): c for i, c in doc["index_values"]}
    elif doc.get("values") is not None:  # a dense list (older documents)
        counts = {i: c for i, c in enumerate(doc["values"]) if c}
    nonzero = [i for i, c in counts.items() if c]
    if not nonzero:
        return {"bins": [], "values": []}
    lo, hi = min(nonzero), min(max(nonzero), len(edges) - 2)
    return {"bins": list(edges[lo:hi + 2]), "values": [counts.get(i, 0) for i in range(lo, hi + 1)]}


def histogram_to_comet(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A canonical histogram as a ``Histogram.to_json()`` document, and whether that
    document reads back as exactly ``data`` (see the module doc)."""
    bins: Sequence[float] = [float(b) for b in data.get("bins") or []]
    values: Sequence[Any] = list(data.get("values") or [])
    doc: dict[str, Any] = {"version": 2, "index_values": [], "values": None, "offset": DEFAULT_GRID[3],
                           "start": DEFAULT_GRID[0], "stop": DEFAULT_GRID[1], "step": DEFAULT_GRID[2]}
    if not values:
        return doc, not bins
    index = _edge_index(DEFAULT_GRID)
    lo = index.get(bins[0]) if bins else None
    whole = all(isinstance(v, (int, float)) and math.isfinite(v) and float(v).is_integer() for v in values)
    exact = (lo is not None and len(bins) == len(values) + 1 and whole
             and all(index.get(b) == lo + n for n, b in enumerate(bins))
             and bool(values[0]) and bool(values[-1]))
    if exact:
        doc["index_values"] = [[lo + n, int(v)] for n, v in enumerate(values) if v]
        return doc, True
    # re-binned for Comet's panel: each bin's count at the Comet bin of its middle
    edges = bin_edges(*DEFAULT_GRID)
    dense: dict[int, float] = {}
    for n, v in enumerate(values):
        if n + 1 >= len(bins) or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        middle = (bins[n] + bins[n + 1]) / 2
        i = _bin_of(middle, edges)
        dense[i] = dense.get(i, 0) + v
    doc["index_values"] = [[i, int(round(c))] for i, c in sorted(dense.items()) if round(c)]
    return doc, False


def _bin_of(value: float, edges: Sequence[float]) -> int:
    """The index ``i`` with ``edges[i] <= value < edges[i + 1]`` (clamped)."""
    import bisect

    return max(0, min(len(edges) - 2, bisect.bisect_right(edges, value) - 1))


def image_meta(head: bytes, fallback_format: str | None) -> dict[str, Any]:
    """``{"format", "width", "height"}`` from a PNG's header (what Comet stores of an
    image is the file alone); other formats give their format only."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return {"format": "png", "width": width, "height": height}
    if head[:3] == b"\xff\xd8\xff":
        return {"format": "jpeg"}
    if head[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", head[6:10])
        return {"format": "gif", "width": width, "height": height}
    return {"format": fallback_format} if fallback_format else {}
