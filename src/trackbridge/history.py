"""Metric history by step: per-key series merged into rows, and rows split back.

Why here, once: row-oriented platforms (W&B's history rows, Comet's steps) take
and give *rows* (one step, one timestamp, several keys) while the canonical model
and the series-oriented platforms (MLflow, the archive) stream one key at a time.
Both directions stream: :func:`merge_rows` is a heap merge over per-key page
iterators, so memory is one page per key whatever the length of the run.

A row groups points that share step *and* timestamp, so merging loses nothing:
rows split back give exactly the points that went in.  A key repeated at the
same step and time (a source that logged it twice) opens a new row.
"""
from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice

from trackbridge.model import MetricPoint


@dataclass(slots=True)
class Row:
    """Values of several keys logged at one step and one time (ms)."""

    step: int
    timestamp: int
    values: dict[str, float] = field(default_factory=dict)


def _points(key: str, order: int, pages: Iterable[list[MetricPoint]]) -> Iterator[tuple[int, int, int, str, float]]:
    for page in pages:
        for p in page:
            yield p.step, p.timestamp, order, key, p.value


def merge_rows(series: Mapping[str, Iterable[list[MetricPoint]]]) -> Iterator[Row]:
    """Rows by (step, timestamp) from per-key page streams, in bounded memory.

    Each stream should be in (step, timestamp) order, as readers give them; an
    unordered stream still comes out whole, only in more rows."""
    streams = [_points(key, i, pages) for i, (key, pages) in enumerate(series.items())]
    row: Row | None = None
    for step, ts, _order, key, value in heapq.merge(*streams, key=lambda t: (t[0], t[1], t[2])):
        if row is None or row.step != step or row.timestamp != ts or key in row.values:
            if row is not None:
                yield row
            row = Row(step, ts)
        row.values[key] = value
    if row is not None:
        yield row


def rows_to_points(rows: Iterable[Row]) -> Iterator[tuple[str, MetricPoint]]:
    """Every (key, point) held by ``rows``, in row order."""
    for row in rows:
        for key, value in row.values.items():
            yield key, MetricPoint(row.step, value, row.timestamp)


def points_to_rows(points: Iterable[tuple[str, MetricPoint]]) -> list[Row]:
    """Points as rows, in their order: consecutive points of one step and time share a
    row, and a key seen again starts a new one (so no point is merged away).  How a row
    platform takes a batch of points logged one key at a time."""
    rows: list[Row] = []
    for key, p in points:
        last = rows[-1] if rows else None
        if last is None or last.step != p.step or last.timestamp != p.timestamp or key in last.values:
            last = Row(p.step, p.timestamp)
            rows.append(last)
        last.values[key] = p.value
    return rows


def pages(points: Iterable[MetricPoint], page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
    """``points`` in pages of ``page_size``: how every reader hands out a series, so a
    reader only says how it finds the points (``islice`` does the cutting in C)."""
    it = iter(points)
    while page := list(islice(it, page_size)):
        yield page


def series_from_rows(rows: Iterable[Row], key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
    """Pages of one key's points from a stream of rows (for readers of row platforms)."""
    return pages((MetricPoint(row.step, row.values[key], row.timestamp) for row in rows if key in row.values),
                 page_size)


def increasing_steps(rows: Iterable[Row], dropped: Counter[str], last_step: int | None = None) -> Iterator[Row]:
    """Rows whose step is above every earlier row's, for destinations whose steps must
    strictly increase.  Rows sharing a step with the previous one are merged into it
    when their keys do not clash; every point that still cannot be kept is counted in
    ``dropped`` by key (the caller records it: nothing is dropped silently)."""
    pending: Row | None = None
    for row in rows:
        if pending is not None and row.step == pending.step and not (row.values.keys() & pending.values.keys()):
            pending.values.update(row.values)
            continue
        if last_step is not None and row.step <= last_step or pending is not None and row.step <= pending.step:
            dropped.update(row.values.keys())
            continue
        if pending is not None:
            yield pending
            last_step = pending.step
        pending = Row(row.step, row.timestamp, dict(row.values))
    if pending is not None:
        yield pending
