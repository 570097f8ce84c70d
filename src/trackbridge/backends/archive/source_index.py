"""Which runs of an experiment folder were copied from which source run, kept up to date
without reading every ``run.json`` again.

The engine looks a copy up by its source run several times per copied run (after
creating it, before and after completing it); a scan of the whole experiment each time
made a copy's cost per run grow with the number of runs (quadratic).  The source run id
is written with the run and never changes, so it is indexed once per run folder; the
folder listing is re-read only when the experiment's ``runs/`` folder changed (a run
folder made or removed), and run folders that had no ``run.json`` yet are looked at
again each time.  The runs found are then read fresh by the caller.
"""
from __future__ import annotations

import threading
from pathlib import Path

from trackbridge.backends.archive.files import read_json
from trackbridge.backends.archive.layout import RUN_FILE, valid_id
from trackbridge.provenance_tags import SOURCE_RUN_ID


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
