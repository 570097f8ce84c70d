"""Bounded-memory downsampling of a metric series for drawing, fed while ``check`` streams it.

Why min/max buckets: a chart of 200 points must still show a spike or a dip of one
point out of millions (a NaN-ing loss, a diverging step), which averaging or taking
every n-th point would hide.  Each bucket keeps its lowest and highest point; when
there are more buckets than the budget, neighbours merge pairwise and the width of a
bucket (in points) doubles, so memory stays ``O(budget)`` whatever the length and the
length need not be known in advance.  Non-finite values (NaN, ±inf) cannot be drawn:
they are counted, and the report says how many were left off the chart.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from trackbridge.model import MetricPoint

#: buckets per series: each keeps at most two points, so at most 200 points are drawn.
BUCKETS = 100


def _value(point: MetricPoint) -> float:
    return point.value


@dataclass
class _Bucket:
    """The lowest and highest finite point of a run of consecutive points (none if none is finite)."""

    low: MetricPoint | None = None
    high: MetricPoint | None = None

    def take(self, low: MetricPoint, high: MetricPoint) -> None:
        if self.low is None or low.value < self.low.value:
            self.low = low
        if self.high is None or high.value > self.high.value:
            self.high = high

    def points(self) -> list[MetricPoint]:
        if self.low is None or self.high is None:
            return []
        return [self.low] if self.low is self.high else [self.low, self.high]


@dataclass
class Downsampler:
    """Keeps at most ``2 * buckets`` points of a streamed series, extremes preserved."""

    buckets: int = BUCKETS
    #: points seen (finite or not).
    count: int = 0
    #: NaN / ±inf points seen: not drawable, reported beside the chart.
    non_finite: int = 0
    _width: int = 1
    _fill: int = 0
    _kept: list[_Bucket] = field(default_factory=list)

    def add(self, page: list[MetricPoint]) -> None:
        """Feed one page.  Per bucket-sized chunk: one comprehension and a C-level
        ``min``/``max``, so the cost per point is a small fraction of comparing it."""
        self.count += len(page)
        start = 0
        while start < len(page):
            if not self._kept or self._fill >= self._width:
                self._kept.append(_Bucket())
                self._fill = 0
                if len(self._kept) > self.buckets:
                    self._halve()
            chunk = page[start:start + self._width - self._fill]
            start += len(chunk)
            self._fill += len(chunk)
            finite = [p for p in chunk if p.value - p.value == 0]  # False for NaN and ±inf
            self.non_finite += len(chunk) - len(finite)
            if finite:
                self._kept[-1].take(min(finite, key=_value), max(finite, key=_value))

    def _halve(self) -> None:
        """Merge neighbouring buckets: twice as wide, half as many."""
        merged = []
        for i in range(0, len(self._kept), 2):
            bucket = _Bucket()
            for old in self._kept[i:i + 2]:
                if old.low is not None and old.high is not None:
                    bucket.take(old.low, old.high)
            merged.append(bucket)
        # the newest bucket may be partly filled; merged with a full neighbour it holds both
        if len(self._kept) % 2 == 0:
            self._fill += self._width
        self._kept, self._width = merged, self._width * 2

    def points(self) -> list[MetricPoint]:
        """The kept points, ordered by step."""
        out = [p for bucket in self._kept for p in bucket.points()]
        out.sort(key=lambda p: p.step)
        return out
