"""``trackio:PATH``: Trackio's project databases as a trackbridge source."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from trackbridge.backends.base import BackendInfo, Features, ReadOnlyBackend, RegistryScheme
from trackbridge.backends.trackio.info import INFO

if TYPE_CHECKING:  # pragma: no cover
    from trackbridge.backends.trackio.reader import TrackioReader

#: what the databases hold as read today: metric series with steps and times, system
#: metrics apart, the config (nested kept), the user and start time.  No nesting, status,
#: end, labels, notes, summary; trackio's media, artifacts and registry are declared unread.
TRACKIO_FEATURES = Features(
    nested_runs=False, settable_end_time=False, key_value_tags=False, labels=False, summary=False, notes=False,
    inputs=False, run_status=False, artifacts=False, registry=RegistryScheme.NONE, tag_deletion=False,
    run_rename=False, alias_removal=False, run_deletion=False, version_deletion=False, model_metadata=False,
    stages=False, artifact_meta=False, media_kinds=frozenset())


def default_dir() -> Path:
    """Where trackio keeps its databases: ``$TRACKIO_DIR``, else ``$HF_HOME/trackio``
    (``~/.cache/huggingface/trackio``), as trackio's ``utils`` computes it."""
    if os.environ.get("TRACKIO_DIR"):
        return Path(os.environ["TRACKIO_DIR"])
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return Path(hf_home) / "trackio"


class TrackioBackend(ReadOnlyBackend):
    """Trackio's databases.  Option: ``path`` (``trackio:PATH``); without it, trackio's own
    default directory (:func:`default_dir`)."""

    info: ClassVar[BackendInfo] = INFO
    features: ClassVar[Features] = TRACKIO_FEATURES

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.path = Path(str(self.options["path"])).expanduser() if self.options.get("path") else default_dir()
        self._reader: TrackioReader | None = None

    def reader(self) -> TrackioReader:
        from trackbridge.backends.trackio.reader import TrackioReader

        if self._reader is None:
            self._reader = TrackioReader(self.path, self.name)
        return self._reader

    def describe(self) -> str:
        return f"trackio:{self.path}"
