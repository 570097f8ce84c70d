"""History by step: per-key series merged into rows and split back, in bounded memory."""
from __future__ import annotations

import math
import random
import tracemalloc
from collections import Counter
from collections.abc import Iterator

from trackbridge.history import Row, increasing_steps, merge_rows, pages, rows_to_points, series_from_rows
from trackbridge.model import MetricPoint


def _pages(points: list[MetricPoint], size: int = 100) -> Iterator[list[MetricPoint]]:
    for i in range(0, len(points), size):
        yield points[i:i + size]


def test_rows_split_back_into_exactly_the_points_that_went_in() -> None:
    rng = random.Random(7)
    series = {
        "loss": [MetricPoint(i, rng.random(), 1000 + i) for i in range(500)],
        "acc": [MetricPoint(i, rng.random(), 1000 + i) for i in range(0, 500, 7)],
        "twice": [MetricPoint(3, 1.0, 1003), MetricPoint(3, 2.0, 1003), MetricPoint(4, math.nan, 1004)],
        "late": [MetricPoint(i, float(i), 5000 + i) for i in range(10)],  # same steps, other times
    }
    rows = list(merge_rows({k: _pages(v) for k, v in series.items()}))
    assert all(len(set(r.values)) == len(r.values) for r in rows)
    assert [(r.step, r.timestamp) for r in rows] == sorted((r.step, r.timestamp) for r in rows)
    back: dict[str, list[tuple[int, int, str]]] = {}
    for key, point in rows_to_points(rows):
        back.setdefault(key, []).append(point.key())
    assert {k: sorted(v) for k, v in back.items()} == {k: sorted(p.key() for p in v) for k, v in series.items()}
    # points logged together share one row
    row = next(r for r in rows if r.step == 7 and r.timestamp == 1007)
    assert set(row.values) == {"loss", "acc"}
    assert [p.key() for page in series_from_rows(rows, "acc", page_size=10) for p in page] == [
        p.key() for p in series["acc"]]


def test_increasing_steps_keeps_the_first_of_each_step_and_counts_the_rest() -> None:
    rows = [Row(0, 1, {"a": 1.0}), Row(1, 2, {"a": 2.0}), Row(1, 3, {"b": 5.0}), Row(1, 4, {"a": 3.0}),
            Row(0, 5, {"c": 1.0}), Row(2, 6, {"a": 4.0})]
    dropped: Counter[str] = Counter()
    kept = list(increasing_steps(rows, dropped))
    assert [(r.step, r.values) for r in kept] == [(0, {"a": 1.0}), (1, {"a": 2.0, "b": 5.0}), (2, {"a": 4.0})]
    assert dropped == Counter({"a": 1, "c": 1})


def test_merging_ten_series_of_a_million_points_holds_one_page_each() -> None:
    """Memory is bounded by pages per key, not by the length of the run."""
    def series(key: int, n: int = 200_000) -> Iterator[list[MetricPoint]]:
        for start in range(0, n, 1000):
            yield [MetricPoint(i, float(i), i * 10 + key) for i in range(start, start + 1000)]

    tracemalloc.start()
    count = 0
    for row in merge_rows({f"k{k}": series(k) for k in range(10)}):
        count += len(row.values)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 2_000_000
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_pages_cut_a_stream_into_full_pages_and_a_rest() -> None:
    points = [MetricPoint(i, float(i), i) for i in range(7)]
    got = list(pages(iter(points), 3))
    assert [len(p) for p in got] == [3, 3, 1]
    assert [p for page in got for p in page] == points
    assert list(pages(iter(()), 3)) == []
