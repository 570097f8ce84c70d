"""``--shard i/n``: one of ``n`` disjoint parts of a copy, for many workers at once.

Copies are idempotent through the provenance tags at the destination, so ``n`` workers
(a Kubernetes indexed job, a Slurm array, Ray tasks) can each copy one part of the same
selection into the same destination with nothing done twice.  A run goes to the part
of its top ancestor among the listed runs, so a nested run is always copied by the
worker that copies its parent (and is created with its parent's destination id).  The
hash is of the source run id (crc32): the same on every machine and every Python.

The registry is left to one last pass without ``--shard`` (every run is then unchanged
and found in one listing): versions are numbered in source order only when one
invocation creates them.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from trackbridge.errors import ConfigError
from trackbridge.model import RunRecord


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (0-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"i/n"`` with ``0 <= i < n`` (0-based, as a Kubernetes job's completion index)."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ConfigError(f"--shard {text!r}: write it i/n, e.g. 0/4 for the first of four parts") from None
        if count < 1 or not 0 <= index < count:
            raise ConfigError(f"--shard {text!r}: i must be in 0..n-1 (0/{max(count, 1)} is the first part)")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def part_of(self, run_id: str) -> int:
        return zlib.crc32(run_id.encode("utf-8")) % self.count

    def keep(self, runs: Sequence[RunRecord]) -> list[RunRecord]:
        """The runs of ``runs`` in this part (by their top ancestor among ``runs``)."""
        by_id = {r.run_id: r for r in runs}

        def root(run: RunRecord) -> str:
            seen = {run.run_id}
            while run.parent_run_id in by_id and run.parent_run_id not in seen:
                run = by_id[run.parent_run_id]
                seen.add(run.run_id)
            return run.run_id

        return [r for r in runs if self.part_of(root(r)) == self.index]
