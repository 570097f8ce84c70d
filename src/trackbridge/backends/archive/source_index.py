"""Which runs of an experiment folder were copied from which source run.

The engine looks a copy up by its source run several times per copied run (after
creating it, before and after completing it), so the look-up must not grow with the
number of runs.  Two ways, both giving candidates the caller then reads fresh:

* **On disk** (:func:`indexed_runs`): an experiment made by this writer has a
  ``sources/`` folder, and each run created with a source run id gets an empty file
  ``sources/<hash of the source run id>/<run id>`` right after its ``run.json`` (so a
  concurrent invocation that lists the entry after making its own copy sees ours: the
  settling of :mod:`trackbridge.sync.transfer` stays sound).  One small listing per
  look-up, whatever the number of runs (a folder listing of 10,000 runs three times per
  copied run made 10,000 tiny runs cost 12 ms each instead of 8).
* **In memory** (:class:`SourceIndex`), for experiments written before the index
  existed: each ``run.json`` is read once, and the ``runs/`` listing again whenever
  that folder changed.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

from trackbridge.backends.archive.files import read_json
from trackbridge.backends.archive.layout import RUN_FILE, Layout, valid_id
from trackbridge.provenance_tags import SOURCE_RUN_ID


def indexed_runs(layout: Layout, exp_id: str, source_run_id: str) -> list[Path] | None:
    """Run folders listed on disk for ``source_run_id``; ``None`` when the experiment keeps
    no index (made before it existed: use :class:`SourceIndex`)."""
    entries = layout.source_entries(exp_id, source_run_id)
    try:
        names = os.listdir(entries)
    except FileNotFoundError:
        return None if not layout.sources_dir(exp_id).is_dir() else []
    return [layout.run_dir(exp_id, name) for name in sorted(names) if valid_id(name)]


def note_copy(layout: Layout, exp_id: str, tags: Mapping[str, str], run_id: str) -> None:
    """List ``run_id`` under its source run (from ``tags``) where the experiment keeps the index."""
    source = tags.get(SOURCE_RUN_ID)
    if not source or not layout.sources_dir(exp_id).is_dir():
        return
    entries = layout.source_entries(exp_id, source)
    entries.mkdir(exist_ok=True)
    (entries / run_id).touch()


def forget_copy(layout: Layout, exp_id: str, tags: Mapping[str, str], run_id: str) -> None:
    """Drop ``run_id``'s entry (its run is being deleted).  A stale entry (left when the
    run's tags could not be read) does no harm: readers check each listed run's tags."""
    source = tags.get(SOURCE_RUN_ID)
    if source:
        (layout.source_entries(exp_id, source) / run_id).unlink(missing_ok=True)


class SourceIndex:
    """Source run id -> run folders of one experiment's ``runs/`` folder."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self._stamp: tuple[int, int] | None = None
        self._seen: set[str] = set()
        self._pending: set[str] = set()
        self._by_source: dict[str, list[Path]] = {}
        self._lock = threading.Lock()

    def runs_of(self, source_run_id: str) -> list[Path]:
        with self._lock:
            self._refresh()
            return list(self._by_source.get(source_run_id, []))

    def _refresh(self) -> None:
        try:
            st = self.runs_dir.stat()
        except FileNotFoundError:
            return
        stamp = (st.st_mtime_ns, st.st_nlink)
        if stamp != self._stamp:
            self._stamp = stamp
            names = {p.name for p in self.runs_dir.iterdir() if valid_id(p.name)}
            for name in names - self._seen:
                self._seen.add(name)
                self._pending.add(name)
            for name in self._seen - names:  # removed runs: the caller's fresh read skips them too
                self._seen.discard(name)
                self._pending.discard(name)
        for name in list(self._pending):
            run_file = self.runs_dir / name / RUN_FILE
            if not run_file.is_file():
                continue  # being created: looked at again next time
            self._pending.discard(name)
            try:
                source = read_json(run_file).get("tags", {}).get(SOURCE_RUN_ID)
            except (OSError, ValueError):
                self._pending.add(name)
                continue
            if source:
                self._by_source.setdefault(source, []).append(self.runs_dir / name)
