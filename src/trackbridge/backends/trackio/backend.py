"""``trackio:PATH`` / ``trackio``: Trackio's project databases, read and written."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from trackbridge.backends.base import Backend, BackendInfo, Features, Limits, RegistryScheme
from trackbridge.backends.trackio.info import INFO
from trackbridge.backends.trackio.names import canonical_project_name

if TYPE_CHECKING:  # pragma: no cover
    from trackbridge.backends.trackio.reader import TrackioReader
    from trackbridge.backends.trackio.writer import TrackioWriter

#: metric series with steps and times, the config (nested kept), user and start time in
#: trackio's own columns; tags, notes, summary, status and end time in ``trackbridge.*``
#: config keys; files beside the databases.  No nesting (the parent is kept in a tag), no
#: registry; media as trackio's own values (histograms, images, tables, video, audio);
#: system metrics are written as metrics
#: (trackio's system rows have no step), native ones are read apart.  History is rows:
#: one ``metrics`` row per step and time, as ``trackio.log`` writes them.
TRACKIO_FEATURES = Features(
    nested_runs=False, inputs=False, system_metrics=False, history_rows=True, registry=RegistryScheme.NONE, alias_removal=False,
    version_deletion=False, model_metadata=False, stages=False, artifact_meta=False,
    media_kinds=frozenset({"histogram", "image", "table", "video", "audio"}))


def default_dir() -> Path:
    """Where trackio keeps its databases: ``$TRACKIO_DIR``, else ``$HF_HOME/trackio``
    (``~/.cache/huggingface/trackio``), as trackio's ``utils`` computes it."""
    if os.environ.get("TRACKIO_DIR"):
        return Path(os.environ["TRACKIO_DIR"])
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return Path(hf_home) / "trackio"


class TrackioBackend(Backend):
    """Trackio's databases.  Option: ``path`` (``trackio:PATH``); without it (the facade's
    ``TRACKBRIDGE_BACKEND=trackio``, a bare ``trackio`` remote) trackio's own default
    directory (:func:`default_dir`).  One reader and one writer per instance."""

    info: ClassVar[BackendInfo] = INFO
    features: ClassVar[Features] = TRACKIO_FEATURES

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.path = Path(str(self.options["path"])).expanduser() if self.options.get("path") else default_dir()
        self._reader: TrackioReader | None = None
        self._writer: TrackioWriter | None = None

    def reader(self) -> TrackioReader:
        from trackbridge.backends.trackio.reader import TrackioReader

        if self._reader is None:
            self._reader = TrackioReader(self.path, self.name)
        return self._reader

    def limits(self) -> Limits:
        from trackbridge.backends.trackio.writer import TRACKIO_LIMITS

        return TRACKIO_LIMITS

    def writer(self) -> TrackioWriter:
        from trackbridge.backends.trackio.writer import TrackioWriter

        if self._writer is None:
            self._writer = TrackioWriter(self.path, self.name)
        return self._writer

    def limits(self) -> Limits:
        """The writer's limits (none beyond sqlite's), known without opening it."""
        from trackbridge.backends.trackio.writer import TrackioWriter

        return TrackioWriter.limits

    def describe(self) -> str:
        return f"trackio:{self.path}"

    def experiment_name(self, name: str) -> str:
        """Trackio keeps only ``[A-Za-z0-9_-]`` of a project's name on disk."""
        return canonical_project_name(name)
