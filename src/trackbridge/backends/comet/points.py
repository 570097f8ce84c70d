"""How a run's canonical metric points become Comet's, for both Comet writers.

Comet has no epoch series: every point carries the epoch it was logged in, and the
readers make the series ``epoch`` from those (see :mod:`~trackbridge.backends.comet.format`).
So a writer keeps, per run, the last value of the series ``epoch`` and sends it with
every point after it.  System metrics carry no epoch and are named ``sys.<key>``; the
renames are kept in the other ``trackbridge.system_keys`` so the readers give the keys
back.  The live writer and the offline archive share this one state, so a run logged
live and the same run written to an archive hold the same points.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from trackbridge.backends.comet import format as fmt
from trackbridge.history import Row
from trackbridge.model import MetricPoint


class CometPoint(NamedTuple):
    """One metric point as Comet takes it: its Comet name and the epoch it goes with."""

    name: str
    step: int
    value: float
    timestamp: int
    epoch: int | float | None


@dataclass
class RunPoints:
    """What a writer tracks per run to write its points the way Comet keeps them."""

    #: the last value of the series ``epoch``: the epoch of the points that follow.
    epoch: float | None = None
    #: Comet name -> key of system metrics written as ``sys.<key>``.
    system_keys: dict[str, str] = field(default_factory=dict)

    def metrics(self, points: Sequence[tuple[str, MetricPoint]]) -> Iterator[CometPoint]:
        """Points in order: a point of the series ``epoch`` is the epoch from itself on."""
        for key, p in points:
            if key == fmt.EPOCH_SERIES:
                self.epoch = p.value
            yield CometPoint(key, p.step, p.value, p.timestamp, self._epoch())

    def rows(self, rows: Sequence[Row]) -> Iterator[CometPoint]:
        """Rows by step: the row's ``epoch`` (when it has one) is the epoch of all its points."""
        for row in rows:
            if fmt.EPOCH_SERIES in row.values:
                self.epoch = row.values[fmt.EPOCH_SERIES]
            epoch = self._epoch()
            for key, value in row.values.items():
                yield CometPoint(key, row.step, value, row.timestamp, epoch)

    def system(self, points: Sequence[tuple[str, MetricPoint]]) -> Iterator[tuple[CometPoint, str | None]]:
        """System points under their Comet names, without an epoch.  With each comes the
        new value of the other ``trackbridge.system_keys`` when the point's name is a new
        rename (to be written before the point), else ``None``."""
        for key, p in points:
            name = key if fmt.is_system_metric(key) else f"sys.{key}"
            keys_other = None
            if name != key and self.system_keys.get(name) != key:
                self.system_keys[name] = key
                keys_other = json.dumps(self.system_keys, sort_keys=True)
            yield CometPoint(name, p.step, p.value, p.timestamp, None), keys_other

    def _epoch(self) -> int | float | None:
        """A whole epoch as an integer, as Comet shows it."""
        epoch = self.epoch
        return int(epoch) if epoch is not None and float(epoch).is_integer() else epoch
