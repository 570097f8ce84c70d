"""``tensorboard:PATH``: TensorBoard event files as a read-only trackbridge source."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from trackbridge.backends.base import BackendInfo, Features, ReadOnlyBackend, RegistryScheme
from trackbridge.backends.tensorboard.info import INFO
from trackbridge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from trackbridge.backends.tensorboard.reader import TensorboardReader

#: what event files hold: scalar series with steps and wall times, histograms, images,
#: audio and text per step, hparams (params) and, through the hparams plugin, a status;
#: runs nest as folders.  No tags, labels, notes, summary, user, inputs, system metrics,
#: registry, models or file metadata; start and end are the first and last wall times.
TENSORBOARD_FEATURES = Features(
    nested_runs=True, settable_start_time=False, settable_end_time=False, settable_user=False,
    key_value_tags=False, labels=False, summary=False, notes=False, inputs=False, system_metrics=False,
    run_status=False, registry=RegistryScheme.NONE, tag_deletion=False, run_rename=False, alias_removal=False,
    run_deletion=False, version_deletion=False, model_metadata=False, stages=False, artifact_meta=False,
    media_kinds=frozenset({"histogram", "image", "audio", "text"}))


class TensorboardBackend(ReadOnlyBackend):
    """A TensorBoard log folder.  Option: ``path`` (required).  One reader per instance,
    so every thread of a copy shares its scans of the event files."""

    info: ClassVar[BackendInfo] = INFO
    features: ClassVar[Features] = TENSORBOARD_FEATURES

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        if not self.options.get("path"):
            raise ConfigError("the tensorboard backend needs a path, e.g. tensorboard:./runs")
        self.path = Path(str(self.options["path"])).expanduser()
        self._reader: TensorboardReader | None = None

    def reader(self) -> TensorboardReader:
        from trackbridge.backends.tensorboard.reader import TensorboardReader

        if self._reader is None:
            self._reader = TensorboardReader(self.path, self.name)
        return self._reader

    def describe(self) -> str:
        return f"tensorboard:{self.path}"
